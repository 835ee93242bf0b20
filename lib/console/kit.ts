/**
 * What every console page shares: element building, the registry API with the signed-in user's token, formats.
 * Browser code served as source text (see assets.ts): it must stay self-contained — no imports at run time, no
 * module-level names; types are erased.
 */
export function consoleKit() {
  const TOKEN_KEY = 'ocireg.token';
  const USER_KEY = 'ocireg.user';
  const session = window.sessionStorage;
  // Registry tokens live in memory only, per scope, until shortly before they expire; the access token the user
  // typed stays in this tab's sessionStorage (gone when the tab closes). No cookie carries either.
  const tokens = new Map<string, { token: string | undefined; until: number }>();
  // What the last action did, shown once by the next page (a rollback re-renders, a delete moves to the repository).
  let flash: string | undefined;
  const MANIFEST_TYPES = [
    'application/vnd.oci.image.index.v1+json',
    'application/vnd.oci.image.manifest.v1+json',
    'application/vnd.docker.distribution.manifest.list.v2+json',
    'application/vnd.docker.distribution.manifest.v2+json',
  ].join(', ');

  type Child = Node | string | undefined | false;
  function h(tag: string, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElement {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    for (const c of children) if (c !== undefined && c !== false) el.append(c);
    return el;
  }

  function user(): string | undefined {
    return session.getItem(USER_KEY) ?? undefined;
  }

  function signOut(): void {
    session.removeItem(TOKEN_KEY);
    session.removeItem(USER_KEY);
    tokens.clear();
  }

  function basic(name: string, secret: string): string {
    return 'Basic ' + btoa(name + ':' + secret);
  }

  /** Checks the credentials at /token and keeps them for this tab; answers the server's refusal, if any. */
  async function signIn(name: string, secret: string): Promise<string | undefined> {
    const res = await fetch('/token?service=ocireg', { headers: { authorization: basic(name, secret) } });
    if (!res.ok) return errorText(res);
    tokens.clear();
    session.setItem(USER_KEY, name);
    session.setItem(TOKEN_KEY, secret);
    return undefined;
  }

  /** A registry token for `scope` (the server grants the subset the user holds); undefined without --auth. */
  async function token(scope: string): Promise<string | undefined> {
    const kept = tokens.get(scope);
    if (kept && kept.until > Date.now()) return kept.token;
    const name = user();
    const secret = session.getItem(TOKEN_KEY);
    const headers: Record<string, string> = name && secret ? { authorization: basic(name, secret) } : {};
    const res = await fetch('/token?service=ocireg&scope=' + encodeURIComponent(scope), { headers });
    // No token endpoint: a registry without --auth, where every request is allowed.
    if (res.status === 404) {
      tokens.set(scope, { token: undefined, until: Date.now() + 60_000 });
      return undefined;
    }
    if (!res.ok) throw new Error(await errorText(res));
    const body = (await res.json()) as { token: string; expires_in?: number };
    tokens.set(scope, { token: body.token, until: Date.now() + Math.max(30, (body.expires_in ?? 60) - 30) * 1000 });
    return body.token;
  }

  /** The actions the server granted on `name` (from the token's `access` claim); all of them without --auth. */
  async function granted(name: string): Promise<string[]> {
    const jwt = await token('repository:' + name + ':pull,push,delete');
    if (jwt === undefined) return ['pull', 'push', 'delete'];
    try {
      const payload = JSON.parse(atob(jwt.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/'))) as { access?: { name: string; actions: string[] }[] };
      return (payload.access ?? []).filter((a) => a.name === name).flatMap((a) => a.actions);
    } catch {
      return [];
    }
  }

  /** The first OCI error's message and code, as the server wrote it. */
  async function errorText(res: Response): Promise<string> {
    try {
      const body = (await res.json()) as { errors?: { code: string; message: string }[] };
      const first = body.errors?.[0];
      return first ? first.message + ' (' + first.code + ', ' + res.status + ')' : res.status + ' ' + res.statusText;
    } catch {
      return res.status + ' ' + res.statusText;
    }
  }

  async function api(path: string, scope: string, init: RequestInit = {}): Promise<Response> {
    const bearer = await token(scope);
    const headers = new Headers(init.headers);
    if (bearer) headers.set('authorization', 'Bearer ' + bearer);
    return fetch(path, { ...init, headers });
  }

  const pull = (name: string) => 'repository:' + name + ':pull';

  /** GET as JSON; throws the server's error message. */
  async function getJson<T>(path: string, scope: string, accept?: string): Promise<{ body: T; res: Response }> {
    const res = await api(path, scope, accept ? { headers: { accept } } : {});
    if (!res.ok) throw new Error(await errorText(res));
    return { body: (await res.json()) as T, res };
  }

  /** Every page of a listing that answers `Link: <next>; rel="next"` (at most `limit` pages). */
  async function allPages<T>(path: string, scope: string, pick: (body: any) => T[], limit = 20): Promise<T[]> {
    const items: T[] = [];
    let next: string | undefined = path;
    for (let i = 0; next && i < limit; i++) {
      const { body, res }: { body: unknown; res: Response } = await getJson(next, scope);
      items.push(...pick(body));
      next = /<([^>]+)>;\s*rel="next"/.exec(res.headers.get('link') ?? '')?.[1];
    }
    return items;
  }

  function manifest(name: string, reference: string) {
    return getJson<any>('/v2/' + name + '/manifests/' + reference, pull(name), MANIFEST_TYPES);
  }

  /**
   * An image config, read by the registry (`_ocireg/config`): a blob GET would be a 307 to S3 on AWS, another
   * origin this page may not connect to (CSP connect-src 'self').
   */
  async function imageConfig(name: string, digest: string): Promise<{ ok: true; body: any } | { ok: false; reason: string }> {
    const res = await api('/v2/' + name + '/_ocireg/config/' + digest, pull(name));
    if (!res.ok) return { ok: false, reason: await errorText(res) };
    return { ok: true, body: await res.json() };
  }

  function formatBytes(n: number | undefined): string {
    if (n === undefined) return '—';
    const units = ['B', 'KB', 'MB', 'GB', 'TB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i++;
    }
    return (i === 0 ? String(n) : n.toFixed(1)) + ' ' + units[i];
  }

  function formatTime(iso: string | undefined): HTMLElement | string {
    if (!iso) return '—';
    const at = new Date(iso);
    return h('time', { datetime: iso, title: iso }, at.toISOString().slice(0, 16).replace('T', ' '));
  }

  const shortDigest = (digest: string) => h('span', { class: 'mono', title: digest }, digest.replace(/^sha256:/, '').slice(0, 12));

  function alert(text: string): HTMLElement {
    return h('p', { role: 'alert', class: 'error' }, text);
  }

  /** A table in a box that scrolls sideways on a phone instead of widening the page. */
  function table(id: string, columns: string[], rows: HTMLElement[]): HTMLElement {
    const head = h('thead', {}, h('tr', {}, ...columns.map((c) => h('th', { scope: 'col' }, c))));
    return h('div', { class: 'scroll', tabindex: '0', role: 'region', 'aria-label': columns[0] + ' table' }, h('table', { id }, head, h('tbody', {}, ...rows)));
  }

  /** A command in a code box with a button that copies it. */
  function copyable(text: string): HTMLElement {
    const code = h('code', {}, text);
    const button = h('button', { type: 'button', class: 'copy', 'aria-label': 'Copy: ' + text }, 'Copy');
    button.addEventListener('click', async () => {
      try {
        await navigator.clipboard.writeText(text);
        button.textContent = 'Copied';
      } catch {
        // No clipboard (an insecure origin): select the text for Ctrl+C.
        getSelection()?.selectAllChildren(code);
      }
    });
    return h('span', { class: 'copyable' }, code, button);
  }

  const tagHref = (name: string, reference: string) => '#/tag/' + name + (reference.includes(':') ? '@' : ':') + reference;

  function setFlash(text: string): void {
    flash = text;
  }

  function takeFlash(): string | undefined {
    const text = flash;
    flash = undefined;
    return text;
  }

  return { h, setFlash, takeFlash, user, signIn, signOut, token, granted, api, pull, getJson, allPages, manifest, imageConfig, errorText, formatBytes, formatTime, shortDigest, alert, table, copyable, tagHref };
}

export type ConsoleKit = ReturnType<typeof consoleKit>;
