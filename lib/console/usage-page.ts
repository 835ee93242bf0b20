import type { ConsoleKit } from './kit.ts';

/**
 * Storage per repository as an SVG bar chart (drawn here, no chart library), the estimated monthly cost on AWS, and
 * the retention rules in force, from `GET /v2/_ocireg/usage`. Browser code served as source text: self-contained
 * (see assets.ts).
 */
export async function usagePage(kit: ConsoleKit): Promise<HTMLElement> {
  const { h } = kit;
  type RepositoryUsage = {
    name: string;
    storedBytes: number;
    uniqueBytes: number;
    sharedBytes: number;
    tags: number;
    manifests: number;
    lastPushedAt?: string | null;
    lastPulledAt?: string | null;
    quotaBytes?: number;
  };
  type Policy = {
    glob: string;
    keepLast?: number;
    expireAfterMs?: number;
    expireUnpulledMs?: number;
    expireUntaggedMs?: number;
    protect?: string[];
    immutable?: boolean;
    mutableTags?: string[];
    quotaBytes?: number;
  };
  type Usage = { computedAt?: string | null; repositories: RepositoryUsage[]; totalBytes: number; estimatedMonthlyCostUsd?: number; pricePerGbMonthUsd?: number; policies?: Policy[] };
  const main = h('section', {}, h('h1', { tabindex: '-1' }, 'Usage'));
  let usage: Usage;
  try {
    usage = (await kit.getJson<Usage>('/v2/_ocireg/usage', 'registry:catalog:*')).body;
  } catch (error) {
    main.append(kit.alert('Cannot show usage: ' + (error as Error).message));
    return main;
  }
  const repositories = [...usage.repositories].sort((a, b) => b.storedBytes - a.storedBytes);
  const cost = usage.estimatedMonthlyCostUsd;
  main.append(
    h(
      'dl',
      { class: 'facts' },
      h('dt', {}, 'Figures of'),
      h('dd', { id: 'computed' }, usage.computedAt ? kit.formatTime(usage.computedAt) : 'never: the deployed registry keeps a summary that ocireg usage --stack (or a gc run) writes'),
      h('dt', {}, 'Stored'),
      h('dd', { id: 'total' }, kit.formatBytes(usage.totalBytes)),
      h('dt', {}, 'Estimated cost on AWS'),
      h(
        'dd',
        { id: 'cost' },
        cost === undefined ? '— (on AWS only)' : '$' + cost.toFixed(cost < 1 ? 4 : 2) + ' a month',
        usage.pricePerGbMonthUsd === undefined ? '' : h('span', { class: 'empty' }, ' (S3 storage at $' + usage.pricePerGbMonthUsd + ' per GB-month; requests and transfer not included)'),
      ),
    ),
  );

  main.append(h('h2', {}, 'Storage per repository'));
  if (repositories.length === 0) main.append(h('p', { class: 'empty' }, 'Nothing stored in repositories you may pull.'));
  else main.append(chart(repositories));
  const rows = repositories.map((r) =>
    h(
      'tr',
      { 'data-name': r.name },
      h('th', { scope: 'row' }, h('a', { href: '#/r/' + r.name }, r.name)),
      h('td', { class: 'num' }, kit.formatBytes(r.storedBytes)),
      h('td', { class: 'num' }, kit.formatBytes(r.uniqueBytes)),
      h('td', { class: 'num' }, kit.formatBytes(r.sharedBytes)),
      h('td', { class: 'num' }, String(r.tags)),
      h('td', { class: 'num' }, r.quotaBytes === undefined ? '—' : Math.round((100 * r.storedBytes) / r.quotaBytes) + '% of ' + kit.formatBytes(r.quotaBytes)),
      h('td', {}, kit.formatTime(r.lastPushedAt ?? undefined)),
      h('td', {}, kit.formatTime(r.lastPulledAt ?? undefined)),
    ),
  );
  main.append(kit.table('usage', ['Repository', 'Stored', 'Unique', 'Shared', 'Tags', 'Quota', 'Last push', 'Last pull'], rows));

  main.append(h('h2', {}, 'Retention rules in force'));
  const policies = usage.policies ?? [];
  if (policies.length === 0) main.append(h('p', { class: 'empty' }, 'No retention rules: everything pushed is kept.'));
  else main.append(kit.table('policies', ['Repositories', 'Rules'], policies.map((p) => h('tr', {}, h('th', { scope: 'row', class: 'mono' }, p.glob), h('td', {}, describe(p))))));
  return main;

  function duration(ms: number): string {
    const days = ms / 86_400_000;
    return days >= 1 && Number.isInteger(days) ? days + ' d' : Math.round(ms / 3_600_000) + ' h';
  }

  function describe(p: Policy): string {
    const rules: string[] = [];
    if (p.keepLast !== undefined) rules.push('keep the last ' + p.keepLast + ' tags');
    if (p.expireAfterMs !== undefined) rules.push('expire tags after ' + duration(p.expireAfterMs));
    if (p.expireUnpulledMs !== undefined) rules.push('expire tags unpulled for ' + duration(p.expireUnpulledMs));
    if (p.expireUntaggedMs !== undefined) rules.push('delete untagged manifests after ' + duration(p.expireUntaggedMs));
    if (p.protect?.length) rules.push('never expire ' + p.protect.join(', '));
    if (p.immutable) rules.push('immutable tags' + (p.mutableTags?.length ? ' except ' + p.mutableTags.join(', ') : ''));
    if (p.quotaBytes !== undefined) rules.push('quota ' + kit.formatBytes(p.quotaBytes));
    return rules.join('; ') || 'no rules';
  }

  /** One bar per repository, unique bytes solid and shared bytes lighter; the table below holds the same numbers. */
  function chart(items: RepositoryUsage[]): Element {
    const NS = 'http://www.w3.org/2000/svg';
    const svg = (tag: string, attrs: Record<string, string | number>, text?: string) => {
      const el = document.createElementNS(NS, tag);
      for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
      if (text !== undefined) el.textContent = text;
      return el;
    };
    const shown = items.slice(0, 20);
    const bar = 22;
    const gap = 10;
    const labelWidth = 200;
    const width = 960;
    const max = Math.max(1, ...shown.map((r) => r.storedBytes));
    const height = shown.length * (bar + gap) + gap;
    const root = svg('svg', { viewBox: '0 0 ' + width + ' ' + height, width: '100%', role: 'img', id: 'usage-chart', 'aria-label': 'Stored bytes per repository' });
    shown.forEach((r, i) => {
      const y = gap + i * (bar + gap);
      const scale = (width - labelWidth - 90) / max;
      const unique = Math.min(r.uniqueBytes, r.storedBytes) * scale;
      const stored = r.storedBytes * scale;
      const name = r.name.length > 24 ? '…' + r.name.slice(-23) : r.name;
      root.append(
        svg('text', { x: labelWidth - 8, y: y + bar * 0.7, 'text-anchor': 'end', class: 'label' }, name),
        svg('rect', { x: labelWidth, y, width: Math.max(stored, 1), height: bar, class: 'shared', rx: 3, 'data-name': r.name }),
        svg('rect', { x: labelWidth, y, width: unique, height: bar, class: 'unique', rx: 3 }),
        svg('text', { x: labelWidth + stored + 6, y: y + bar * 0.7, class: 'value' }, kit.formatBytes(r.storedBytes)),
      );
    });
    const legend = h('p', { class: 'legend' }, h('span', { class: 'swatch unique' }), ' unique to the repository ', h('span', { class: 'swatch shared' }), ' shared with others');
    const figure = h('figure', {}, root, legend);
    if (items.length > shown.length) figure.append(h('figcaption', { class: 'empty' }, 'The 20 largest of ' + items.length + ' repositories.'));
    return figure;
  }
}
