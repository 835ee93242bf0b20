/**
 * Repository globs for grants and public repositories: `*` matches within one path component,
 * `**` matches any number of components (at least one), anything else matches itself.
 * `team/*` covers `team/app` but not `team/app/x`; `alice/**` covers both; `**` covers every repository.
 */
export function matchesGlob(glob: string, name: string): boolean {
  return compile(glob).test(name);
}

const cache = new Map<string, RegExp>();

function compile(glob: string): RegExp {
  let pattern = cache.get(glob);
  if (!pattern) {
    const source = glob
      .split('**')
      .map((part) => part.split('*').map(escape).join('[^/]*'))
      .join('.+');
    pattern = new RegExp(`^${source}$`);
    cache.set(glob, pattern);
  }
  return pattern;
}

function escape(text: string): string {
  return text.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
}

/** Globs are repository names with `*` and `**`: the same characters, so typos are caught when the grant is made. */
export function isValidGlob(glob: string): boolean {
  return /^(?:\*\*|[a-z0-9*]+(?:[._-]+[a-z0-9*]+)*)(?:\/(?:\*\*|[a-z0-9*]+(?:[._-]+[a-z0-9*]+)*))*$/.test(glob);
}
