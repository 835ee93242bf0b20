import type { ConsoleKit } from './kit.ts';

/**
 * One repository's tags: digest, size, platforms, pushed, last pulled, pushed by, and the `docker pull` command.
 * Browser code served as source text: self-contained (see assets.ts).
 */
export async function repositoryPage(kit: ConsoleKit, name: string): Promise<HTMLElement> {
  const { h } = kit;
  const main = h('section', {}, h('p', {}, h('a', { href: '#/' }, '← Repositories')), h('h1', { tabindex: '-1' }, name));
  type Details = { tag: string; digest: string; mediaType: string; size: number; pushedAt?: string; lastPulledAt?: string };
  let tags: Details[];
  try {
    tags = await kit.allPages('/v2/' + name + '/_ocireg/tags?n=1000', kit.pull(name), (body: { tags: Details[] }) => body.tags);
  } catch (error) {
    main.append(kit.alert('Cannot show ' + name + ': ' + (error as Error).message));
    return main;
  }
  if (tags.length === 0) main.append(h('p', { class: 'empty' }, 'No tags.'));
  // Platforms and "pushed by" cost three requests a tag: only the first DETAILED tags get them.
  const DETAILED = 100;
  if (tags.length > DETAILED) main.append(h('p', { class: 'empty' }, 'Platforms and pusher shown for the first ' + DETAILED + ' of ' + tags.length + ' tags; open a tag for the rest.'));
  const rows = tags.map((t, i) => {
    const platforms = h('td', {}, i < DETAILED ? '…' : '—');
    const by = h('td', {}, i < DETAILED ? '…' : '—');
    if (i < DETAILED) details(t, platforms, by);
    const reference = location.host + '/' + name + ':' + t.tag;
    return h(
      'tr',
      { 'data-tag': t.tag },
      h('th', { scope: 'row' }, h('a', { href: kit.tagHref(name, t.tag) }, t.tag)),
      h('td', {}, kit.shortDigest(t.digest)),
      h('td', { class: 'num' }, kit.formatBytes(t.size)),
      platforms,
      h('td', {}, kit.formatTime(t.pushedAt)),
      h('td', {}, kit.formatTime(t.lastPulledAt)),
      by,
      h('td', {}, kit.copyable('docker pull ' + reference)),
    );
  });
  main.append(kit.table('tags', ['Tag', 'Digest', 'Size', 'Platforms', 'Pushed', 'Last pulled', 'Pushed by', 'Pull'], rows));
  return main;

  function details(t: Details, platforms: HTMLElement, by: HTMLElement): void {
    void platformsOf(t).then((text) => (platforms.textContent = text));
    void kit
      .getJson<{ changes: { digest?: string; actor?: { subject: string } }[] }>('/v2/' + name + '/_ocireg/history/' + t.tag, kit.pull(name))
      .then(({ body }) => {
        const newest = body.changes[0];
        by.textContent = newest && newest.digest === t.digest ? (newest.actor?.subject ?? '—') : '—';
      })
      .catch(() => (by.textContent = '—'));
  }

  /** An index lists its platforms; an image's comes from its config ("image" when it has none). */
  async function platformsOf(t: Details): Promise<string> {
    try {
      const { body } = await kit.manifest(name, t.digest);
      if (Array.isArray(body.manifests)) {
        const list = (body.manifests as { platform?: { os: string; architecture: string; variant?: string } }[])
          .filter((m) => m.platform && m.platform.os !== 'unknown')
          .map((m) => m.platform!.os + '/' + m.platform!.architecture + (m.platform!.variant ? '/' + m.platform!.variant : ''));
        return list.join(', ') || 'index';
      }
      if (!body.config?.digest) return '—';
      const config = await kit.imageConfig(name, body.config.digest);
      return config.ok && config.body.os ? config.body.os + '/' + config.body.architecture : 'image';
    } catch {
      return '—';
    }
  }
}
