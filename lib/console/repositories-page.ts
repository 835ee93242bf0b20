import type { ConsoleKit } from './kit.ts';

/**
 * The repositories the user may pull (`/v2/_catalog` is filtered by the server), with search, tag count, size and
 * last push from each one's `_ocireg/tags`. Browser code served as source text: self-contained (see assets.ts).
 */
export async function repositoriesPage(kit: ConsoleKit): Promise<HTMLElement> {
  const { h } = kit;
  const main = h('section', {}, h('h1', { tabindex: '-1' }, 'Repositories'));
  const search = h('input', { type: 'search', id: 'search', placeholder: 'Search repositories', 'aria-label': 'Search repositories' }) as HTMLInputElement;
  main.append(search);
  let names: string[];
  try {
    names = await kit.allPages('/v2/_catalog?n=1000', 'registry:catalog:*', (body: { repositories: string[] }) => body.repositories);
  } catch (error) {
    main.append(kit.alert('Cannot list repositories: ' + (error as Error).message));
    return main;
  }
  const rows = names.map((name) => {
    const cells = { tags: h('td', { class: 'num' }, '…'), size: h('td', { class: 'num' }, '…'), pushed: h('td', {}, '…') };
    const row = h('tr', { 'data-name': name }, h('th', { scope: 'row' }, h('a', { href: '#/r/' + name }, name)), cells.tags, cells.size, cells.pushed);
    void kit
      .allPages('/v2/' + name + '/_ocireg/tags?n=1000', kit.pull(name), (body: { tags: { digest: string; size: number; pushedAt?: string }[] }) => body.tags)
      .then((tags) => {
        // Tags sharing a manifest count once; layers shared between manifests are counted per manifest.
        const sizes = new Map(tags.map((t) => [t.digest, t.size]));
        const last = tags.map((t) => t.pushedAt ?? '').sort().at(-1);
        cells.tags.textContent = String(tags.length);
        cells.size.textContent = kit.formatBytes([...sizes.values()].reduce((a, b) => a + b, 0));
        cells.pushed.replaceChildren(kit.formatTime(last || undefined));
        row.dataset.loaded = '';
      })
      .catch((error: Error) => {
        for (const cell of Object.values(cells)) cell.textContent = '—';
        cells.tags.title = error.message;
        row.dataset.loaded = '';
      });
    return row;
  });
  main.append(kit.table('repositories', ['Repository', 'Tags', 'Size', 'Last push'], rows));
  const empty = h('p', { class: 'empty', role: 'status' }, names.length === 0 ? 'No repositories you may pull.' : '');
  main.append(empty);
  search.addEventListener('input', () => {
    const q = search.value.trim().toLowerCase();
    let shown = 0;
    for (const row of rows) {
      row.hidden = !row.dataset.name!.toLowerCase().includes(q);
      if (!row.hidden) shown++;
    }
    empty.textContent = shown === 0 ? (names.length === 0 ? 'No repositories you may pull.' : 'No repository matches “' + search.value + '”.') : '';
  });
  return main;
}
