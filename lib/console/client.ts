/**
 * The web console's browser code. It runs in the browser, not in Node: `consoleScript()` serves this function's
 * source text, so it must stay self-contained (no imports, no module-level names) — the Lambda bundle (esbuild,
 * minified) and Node's type stripping both keep a function's text valid JavaScript, and no separate build step exists.
 * It calls the registry API with the signed-in user's token, exactly as a client would: the server decides what
 * is shown and what is refused.
 */
export function consoleMain(): void {
  const TOKEN_KEY = 'ocireg.token';
  const USER_KEY = 'ocireg.user';
  const app = document.getElementById('app')!;
  const session = window.sessionStorage;

  function h(tag: string, attrs: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElement {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    for (const c of children) el.append(c);
    return el;
  }

  async function token(scope: string): Promise<string | undefined> {
    const user = session.getItem(USER_KEY);
    const secret = session.getItem(TOKEN_KEY);
    const headers: Record<string, string> = {};
    if (user && secret) headers.authorization = 'Basic ' + btoa(user + ':' + secret);
    const res = await fetch('/token?service=ocireg&scope=' + encodeURIComponent(scope), { headers });
    if (res.status === 404) return undefined; // no --auth: every request is allowed without a token
    if (!res.ok) throw new Error(await errorText(res));
    return ((await res.json()) as { token: string }).token;
  }

  async function errorText(res: Response): Promise<string> {
    try {
      const body = (await res.json()) as { errors?: { message: string }[] };
      return body.errors?.[0]?.message ?? res.statusText;
    } catch {
      return res.statusText;
    }
  }

  async function api(path: string, scope: string, init: RequestInit = {}): Promise<Response> {
    const bearer = await token(scope);
    const headers = new Headers(init.headers);
    if (bearer) headers.set('authorization', 'Bearer ' + bearer);
    return fetch(path, { ...init, headers });
  }

  function formatBytes(n: number): string {
    const units = ['B', 'KB', 'MB', 'GB', 'TB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i++;
    }
    return (i === 0 ? String(n) : n.toFixed(1)) + ' ' + units[i];
  }

  function header(): HTMLElement {
    const user = session.getItem(USER_KEY);
    const nav = h('nav', { 'aria-label': 'account' });
    if (user) {
      const out = h('button', { type: 'button', id: 'sign-out' }, 'Sign out');
      out.addEventListener('click', () => {
        session.removeItem(TOKEN_KEY);
        session.removeItem(USER_KEY);
        location.hash = '#/';
        render();
      });
      nav.append(h('span', { class: 'who' }, 'Signed in as ' + user), out);
    } else {
      nav.append(h('a', { href: '#/sign-in', id: 'sign-in-link' }, 'Sign in'));
    }
    return h('header', {}, h('a', { href: '#/', class: 'brand' }, 'ocireg'), nav);
  }

  function signIn(): HTMLElement {
    const form = h('form', { id: 'sign-in', class: 'card' });
    const error = h('p', { role: 'alert', class: 'error' });
    form.append(
      h('h1', {}, 'Sign in'),
      h('label', { for: 'user' }, 'User name'),
      h('input', { id: 'user', name: 'user', autocomplete: 'username', required: '' }),
      h('label', { for: 'secret' }, 'Access token'),
      h('input', { id: 'secret', name: 'secret', type: 'password', autocomplete: 'current-password', required: '' }),
      h('button', { type: 'submit' }, 'Sign in'),
      error,
    );
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const data = new FormData(form as HTMLFormElement);
      const user = String(data.get('user'));
      const secret = String(data.get('secret'));
      const res = await fetch('/token?service=ocireg', { headers: { authorization: 'Basic ' + btoa(user + ':' + secret) } });
      if (!res.ok) {
        error.textContent = 'Sign-in failed: ' + (await errorText(res));
        return;
      }
      // The access token stays in this tab's sessionStorage (gone when the tab closes); no cookie carries it.
      session.setItem(USER_KEY, user);
      session.setItem(TOKEN_KEY, secret);
      location.hash = '#/';
    });
    return form;
  }

  async function repositories(): Promise<HTMLElement> {
    const main = h('section', {}, h('h1', {}, 'Repositories'));
    const search = h('input', { type: 'search', id: 'search', placeholder: 'Search repositories', 'aria-label': 'Search repositories' }) as HTMLInputElement;
    main.append(search);
    const res = await api('/v2/_catalog?n=1000', 'registry:catalog:*');
    if (!res.ok) {
      main.append(h('p', { role: 'alert', class: 'error' }, 'Cannot list repositories: ' + (await errorText(res))));
      return main;
    }
    const names = ((await res.json()) as { repositories: string[] }).repositories;
    const table = h('table', { id: 'repositories' }, h('thead', {}, h('tr', {}, h('th', {}, 'Repository'), h('th', {}, 'Tags'))));
    const body = h('tbody');
    table.append(body);
    const rows = names.map((name) => {
      const count = h('td', { class: 'num' }, '…');
      const row = h('tr', { 'data-name': name }, h('td', {}, h('a', { href: '#/r/' + name }, name)), count);
      void api('/v2/' + name + '/tags/list', 'repository:' + name + ':pull').then(async (r) => {
        count.textContent = r.ok ? String(((await r.json()) as { tags: string[] | null }).tags?.length ?? 0) : '—';
      });
      return row;
    });
    body.append(...rows);
    if (names.length === 0) main.append(h('p', { class: 'empty' }, 'No repositories you may pull.'));
    search.addEventListener('input', () => {
      const q = search.value.toLowerCase();
      for (const row of rows) row.hidden = !row.dataset.name!.toLowerCase().includes(q);
    });
    main.append(table);
    return main;
  }

  async function repository(name: string): Promise<HTMLElement> {
    const main = h('section', {}, h('p', {}, h('a', { href: '#/' }, '← Repositories')), h('h1', {}, name));
    const res = await api('/v2/' + name + '/tags/list', 'repository:' + name + ':pull');
    if (!res.ok) {
      main.append(h('p', { role: 'alert', class: 'error' }, 'Cannot show ' + name + ': ' + (await errorText(res))));
      return main;
    }
    const tags = ((await res.json()) as { tags: string[] | null }).tags ?? [];
    const table = h('table', { id: 'tags' }, h('thead', {}, h('tr', {}, h('th', {}, 'Tag'), h('th', {}, 'Digest'), h('th', {}, 'Size'), h('th', {}, 'Pull'))));
    const body = h('tbody');
    table.append(body);
    for (const tag of tags) {
      const digest = h('td', { class: 'mono' }, '…');
      const size = h('td', { class: 'num' }, '…');
      const pull = location.host + '/' + name + ':' + tag;
      body.append(h('tr', {}, h('td', {}, tag), digest, size, h('td', {}, h('code', {}, 'docker pull ' + pull))));
      void api('/v2/' + name + '/manifests/' + tag, 'repository:' + name + ':pull', {
        headers: {
          accept: 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json',
        },
      }).then(async (r) => {
        if (!r.ok) return;
        digest.textContent = (r.headers.get('docker-content-digest') ?? '').slice(0, 19);
        const manifest = (await r.json()) as { layers?: { size: number }[]; config?: { size: number }; manifests?: unknown[] };
        size.textContent = manifest.layers
          ? formatBytes(manifest.layers.reduce((sum, l) => sum + l.size, manifest.config?.size ?? 0))
          : (manifest.manifests?.length ?? 0) + ' platforms';
      });
    }
    main.append(table);
    return main;
  }

  async function render(): Promise<void> {
    const route = location.hash.replace(/^#/, '') || '/';
    let page: HTMLElement;
    try {
      if (route === '/sign-in') page = signIn();
      else if (route.startsWith('/r/')) page = await repository(decodeURIComponent(route.slice(3)));
      else page = await repositories();
    } catch (error) {
      page = h('p', { role: 'alert', class: 'error' }, String((error as Error).message));
    }
    app.replaceChildren(header(), h('main', {}, page));
    (app.querySelector('h1') as HTMLElement | null)?.focus();
  }

  window.addEventListener('hashchange', () => void render());
  void render();
}
