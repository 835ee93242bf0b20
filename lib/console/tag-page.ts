import type { ConsoleKit } from './kit.ts';

/**
 * One tag (or digest): its layers, config, platforms, referrers, and its history with rollback and delete. The
 * buttons appear when the user's token grants push (rollback) or delete; the server still judges every click, and
 * its refusal (an immutable tag, a grant gone since) is shown as it wrote it.
 * Browser code served as source text: self-contained (see assets.ts).
 */
export async function tagPage(kit: ConsoleKit, name: string, reference: string, refresh: () => void): Promise<HTMLElement> {
  const { h } = kit;
  const isTag = !reference.includes(':');
  const title = name + (isTag ? ':' : '@') + reference;
  const main = h('section', {}, h('p', {}, h('a', { href: '#/r/' + name }, '← ' + name)), h('h1', { tabindex: '-1', class: 'wrap' }, title));
  let manifest: any;
  let digest: string;
  try {
    const got = await kit.manifest(name, reference);
    manifest = got.body;
    digest = got.res.headers.get('docker-content-digest') ?? reference;
  } catch (error) {
    main.append(kit.alert('Cannot show ' + title + ': ' + (error as Error).message));
    return main;
  }
  const status = h('p', { role: 'status', class: 'status' });
  const children: { size: number }[] = manifest.layers ?? manifest.manifests ?? [];
  const total = children.reduce((sum, d) => sum + d.size, manifest.config?.size ?? 0);
  main.append(
    status,
    facts([
      ['Digest', h('span', { class: 'mono wrap', id: 'digest' }, digest)],
      ['Media type', manifest.mediaType ?? '—'],
      [manifest.manifests ? 'Platforms' : 'Size', manifest.manifests ? String(manifest.manifests.length) : kit.formatBytes(total)],
      ['Pull', kit.copyable('docker pull ' + location.host + '/' + title)],
    ]),
  );

  if (Array.isArray(manifest.manifests)) {
    main.append(h('h2', {}, 'Platforms'));
    const rows = (manifest.manifests as { digest: string; size: number; platform?: { os: string; architecture: string; variant?: string } }[]).map((m) =>
      h(
        'tr',
        {},
        h('th', { scope: 'row' }, m.platform ? m.platform.os + '/' + m.platform.architecture + (m.platform.variant ? '/' + m.platform.variant : '') : '—'),
        h('td', {}, h('a', { href: kit.tagHref(name, m.digest) }, kit.shortDigest(m.digest))),
        h('td', { class: 'num' }, kit.formatBytes(m.size)),
      ),
    );
    main.append(kit.table('platforms', ['Platform', 'Manifest', 'Size'], rows));
  } else {
    main.append(h('h2', {}, 'Layers'));
    const layers = (manifest.layers ?? []) as { digest: string; size: number; mediaType: string }[];
    const rows = layers.map((l, i) =>
      h('tr', {}, h('td', { class: 'num' }, String(i + 1)), h('td', {}, kit.shortDigest(l.digest)), h('td', { class: 'wrap' }, l.mediaType), h('td', { class: 'num' }, kit.formatBytes(l.size))),
    );
    main.append(kit.table('layers', ['#', 'Digest', 'Media type', 'Size'], rows));
    main.append(h('h2', {}, 'Config'));
    const configBox = h('div', { id: 'config' }, '…');
    main.append(configBox);
    if (manifest.config?.digest) void kit.imageConfig(name, manifest.config.digest).then((read) => configBox.replaceChildren(read.ok ? configFacts(read.body) : h('p', { class: 'empty' }, 'The config could not be read: ' + read.reason + '.')));
  }

  main.append(h('h2', {}, 'Referrers'));
  const referrersBox = h('div', {}, '…');
  main.append(referrersBox);
  void referrers().then((el) => referrersBox.replaceChildren(el));

  if (isTag) {
    main.append(h('h2', {}, 'History'));
    const historyBox = h('div', {}, '…');
    main.append(historyBox);
    void history().then((el) => historyBox.replaceChildren(el));
  }
  return main;

  function facts(pairs: [string, Node | string][]): HTMLElement {
    return h('dl', { class: 'facts' }, ...pairs.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
  }

  function list(items: string[]): HTMLElement | string {
    return items.length ? h('ul', { class: 'plain' }, ...items.map((item) => h('li', { class: 'mono wrap' }, item))) : '—';
  }

  function configFacts(config: any): HTMLElement {
    const c = config.config ?? {};
    const labels = Object.entries((c.Labels ?? {}) as Record<string, string>).map(([k, v]) => k + '=' + v);
    return facts([
      ['Created', kit.formatTime(config.created)],
      ['Platform', config.os ? config.os + '/' + config.architecture + (config.variant ? '/' + config.variant : '') : '—'],
      ['Entrypoint', list(c.Entrypoint ?? [])],
      ['Command', list(c.Cmd ?? [])],
      ['Working dir', c.WorkingDir || '—'],
      ['User', c.User || '—'],
      ['Env', list(c.Env ?? [])],
      ['Labels', list(labels)],
    ]);
  }

  function kindOf(artifactType: string): string {
    if (/sig/i.test(artifactType)) return 'signature';
    if (/spdx|cyclonedx|sbom|syft/i.test(artifactType)) return 'SBOM';
    if (/in-toto|intoto|attest|provenance|slsa/i.test(artifactType)) return 'attestation';
    return 'artifact';
  }

  async function referrers(): Promise<HTMLElement> {
    type Referrer = { digest: string; size: number; artifactType?: string; annotations?: Record<string, string> };
    try {
      const found = await kit.allPages('/v2/' + name + '/referrers/' + digest, kit.pull(name), (body: { manifests: Referrer[] }) => body.manifests);
      if (found.length === 0) return h('p', { class: 'empty' }, 'No signatures, SBOMs or attestations refer to this manifest.');
      const rows = found.map((r) =>
        h(
          'tr',
          {},
          h('th', { scope: 'row' }, kindOf(r.artifactType ?? '')),
          h('td', { class: 'wrap' }, r.artifactType ?? '—'),
          h('td', {}, h('a', { href: kit.tagHref(name, r.digest) }, kit.shortDigest(r.digest))),
          h('td', { class: 'num' }, kit.formatBytes(r.size)),
          h('td', {}, kit.formatTime(r.annotations?.['org.opencontainers.image.created'])),
        ),
      );
      return kit.table('referrers', ['Kind', 'Artifact type', 'Manifest', 'Size', 'Created'], rows);
    } catch (error) {
      return kit.alert('Cannot list referrers: ' + (error as Error).message);
    }
  }

  async function history(): Promise<HTMLElement> {
    type Change = { at: string; action: string; digest?: string; previous?: string; actor?: { subject: string }; userAgent?: string };
    let changes: Change[];
    let actions: string[];
    try {
      changes = (await kit.getJson<{ changes: Change[] }>('/v2/' + name + '/_ocireg/history/' + reference, kit.pull(name))).body.changes;
      actions = await kit.granted(name);
    } catch (error) {
      return kit.alert('Cannot show the history: ' + (error as Error).message);
    }
    const box = h('div', {});
    const mayPush = actions.includes('push');
    const toolbar = h('p', { class: 'actions' });
    if (mayPush && changes.length > 1) toolbar.append(button('Roll back one step', 'rollback-step', () => rollback({}, 'one step')));
    if (actions.includes('delete')) {
      toolbar.append(
        button('Delete tag', 'delete-tag', async () => {
          if (!confirm('Delete the tag ' + title + '? The image stays while other tags or digests refer to it.')) return;
          const res = await kit.api('/v2/' + name + '/manifests/' + reference, 'repository:' + name + ':delete', { method: 'DELETE' });
          if (!res.ok) return fail('Delete refused: ' + (await kit.errorText(res)));
          kit.setFlash('Deleted the tag ' + title + '.');
          location.hash = '#/r/' + name;
        }, 'danger'),
      );
    }
    if (toolbar.childElementCount) box.append(toolbar);
    const rows = changes.map((c, i) =>
      h(
        'tr',
        {},
        h('td', {}, kit.formatTime(c.at)),
        h('td', {}, c.action),
        h('td', {}, c.digest ? kit.shortDigest(c.digest) : '—'),
        h('td', {}, c.previous ? kit.shortDigest(c.previous) : '—'),
        h('td', {}, c.actor?.subject ?? '—'),
        h('td', { class: 'wrap' }, c.userAgent ?? '—'),
        h('td', {}, mayPush && i > 0 && c.digest && c.digest !== digest ? button('Roll back here', 'rollback-' + i, () => rollback({ to: c.digest }, 'to ' + c.digest!.slice(7, 19))) : ''),
      ),
    );
    box.append(kit.table('history', ['When', 'Change', 'Digest', 'Previous', 'By', 'Client', ''], rows));
    return box;
  }

  function button(text: string, id: string, onClick: () => Promise<void>, kind = ''): HTMLElement {
    const b = h('button', { type: 'button', id, class: kind }, text) as HTMLButtonElement;
    b.addEventListener('click', async () => {
      b.disabled = true;
      try {
        await onClick();
      } catch (error) {
        fail((error as Error).message);
      } finally {
        b.disabled = false;
      }
    });
    return b;
  }

  function fail(text: string): void {
    status.replaceChildren(kit.alert(text));
  }

  async function rollback(body: Record<string, unknown>, what: string): Promise<void> {
    const res = await kit.api('/v2/' + name + '/_ocireg/rollback/' + reference, 'repository:' + name + ':pull,push', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!res.ok) return fail('Rollback ' + what + ' refused: ' + (await kit.errorText(res)));
    const result = (await res.json()) as { digest: string };
    kit.setFlash('Rolled back ' + title + ' ' + what + ': it now points at ' + result.digest + '.');
    refresh();
  }
}
