import type { ConsoleKit } from './kit.ts';

/** The page functions the router calls; each is one module of its own (assets.ts puts them together). */
export interface ConsolePages {
  repositories(kit: ConsoleKit): Promise<HTMLElement>;
  repository(kit: ConsoleKit, name: string): Promise<HTMLElement>;
  tag(kit: ConsoleKit, name: string, reference: string, refresh: () => void): Promise<HTMLElement>;
  usage(kit: ConsoleKit): Promise<HTMLElement>;
}

/**
 * The console's router, header and sign-in. Browser code served as source text: self-contained (see assets.ts).
 * It calls the registry API with the signed-in user's token, exactly as a client would: the server decides what
 * is shown and what is refused.
 *
 * Routes (in the fragment, so the server serves one page): `#/` repositories, `#/r/<name>` a repository,
 * `#/tag/<name>:<tag>` or `#/tag/<name>@<digest>`, `#/usage`, `#/sign-in`. Names hold `/` but never `:` or `@`.
 */
export function consoleMain(kit: ConsoleKit, pages: ConsolePages): void {
  const { h } = kit;
  const app = document.getElementById('app')!;
  // A newer navigation wins: a slow page that finishes late must not replace the one the user moved to.
  let generation = 0;

  function header(): HTMLElement {
    const user = kit.user();
    const nav = h('nav', { 'aria-label': 'main' }, h('a', { href: '#/' }, 'Repositories'), h('a', { href: '#/usage' }, 'Usage'));
    if (user) {
      const out = h('button', { type: 'button', id: 'sign-out', class: 'quiet' }, 'Sign out');
      out.addEventListener('click', () => {
        kit.signOut();
        if (location.hash === '#/') void render();
        else location.hash = '#/';
      });
      nav.append(h('span', { class: 'who' }, user), out);
    } else {
      nav.append(h('a', { href: '#/sign-in', id: 'sign-in-link' }, 'Sign in'));
    }
    return h('header', {}, h('a', { href: '#/', class: 'brand' }, 'ocireg'), nav);
  }

  function signIn(): HTMLElement {
    const form = h('form', { id: 'sign-in', class: 'card' });
    const error = h('p', { role: 'alert', class: 'error' });
    form.append(
      h('h1', { tabindex: '-1' }, 'Sign in'),
      h('p', { class: 'empty' }, 'Use your user name and an access token (ocireg tokens create). Without signing in you see public repositories.'),
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
      const refused = await kit.signIn(String(data.get('user')), String(data.get('secret')));
      if (refused !== undefined) error.textContent = 'Sign-in failed: ' + refused;
      else location.hash = '#/';
    });
    return form;
  }

  async function page(route: string): Promise<HTMLElement> {
    if (route === '/sign-in') return signIn();
    if (route === '/usage') return pages.usage(kit);
    if (route.startsWith('/r/')) return pages.repository(kit, route.slice(3));
    if (route.startsWith('/tag/')) {
      const target = route.slice(5);
      const at = target.includes('@') ? target.indexOf('@') : target.lastIndexOf(':');
      if (at > 0) return pages.tag(kit, target.slice(0, at), target.slice(at + 1), () => void render());
    }
    return pages.repositories(kit);
  }

  async function render(): Promise<void> {
    const mine = ++generation;
    const route = decodeURIComponent(location.hash.replace(/^#/, '')) || '/';
    let content: HTMLElement;
    try {
      content = await page(route);
    } catch (error) {
      content = kit.alert(String((error as Error).message));
    }
    if (mine !== generation) return;
    const flash = kit.takeFlash();
    // data-route says which navigation this page answers (the browser tests wait for it).
    const main = h('main', { id: 'main', 'data-route': route }, flash ? h('p', { role: 'status', class: 'flash' }, flash) : false, content);
    app.replaceChildren(h('a', { href: '#main', class: 'skip', id: 'skip' }, 'Skip to content'), header(), main);
    // Focus moves to the new page's heading, so keyboard and screen reader users start there.
    (app.querySelector('main h1') as HTMLElement | null)?.focus();
  }

  document.addEventListener('click', (event) => {
    // The skip link targets an element, not a route: move focus without touching the fragment.
    if ((event.target as HTMLElement).id === 'skip') {
      event.preventDefault();
      (app.querySelector('main h1') as HTMLElement | null)?.focus();
    }
  });
  window.addEventListener('hashchange', () => void render());
  void render();
}
