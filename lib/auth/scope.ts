/**
 * Docker token scopes: `type:name:actions`, e.g. `repository:team/app:pull,push` or `registry:catalog:*`.
 * A name may carry a `host:port/` prefix, so the type is split at the first colon and the actions at the last.
 * @see https://distribution.github.io/distribution/spec/auth/scope/
 */

export type Action = 'pull' | 'push' | 'delete' | '*';

export interface Scope {
  type: string;
  name: string;
  actions: string[];
}

/** Parses one scope; undefined when malformed (ignored, as distribution's token servers do). */
export function parseScope(text: string): Scope | undefined {
  const first = text.indexOf(':');
  const last = text.lastIndexOf(':');
  if (first <= 0 || last === first) return undefined;
  const type = text.slice(0, first);
  const name = text.slice(first + 1, last);
  const actions = text.slice(last + 1).split(',').filter((action) => action !== '');
  if (name === '') return undefined;
  return { type, name, actions };
}

/** Parses the scope parameters of a token request: repeated, and/or space-separated within one. */
export function parseScopes(values: string[]): Scope[] {
  const scopes: Scope[] = [];
  for (const value of values) {
    for (const text of value.split(' ')) {
      const scope = text === '' ? undefined : parseScope(text);
      if (scope) scopes.push(scope);
    }
  }
  return scopes;
}

export function formatScope(scope: Scope): string {
  return `${scope.type}:${scope.name}:${scope.actions.join(',')}`;
}

export const CATALOG_SCOPE: Scope = { type: 'registry', name: 'catalog', actions: ['*'] };
