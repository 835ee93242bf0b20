import { ACTIONS_OF_LEVEL, type EffectiveGrant, type TokenScope, type User } from './identity.ts';
import { matchesGlob } from './repository-glob.ts';
import type { Action } from './scope.ts';

/** Who is asking: a user (possibly through a narrowed token), a CI job holding an OIDC ID token, or nobody. */
export interface Principal {
  user?: User;
  /** The registry token's `sub` when it is not the user's name (`oidc:<trust>:<sub>`). */
  subject?: string;
  /** The user's own grants and their teams'. */
  grants: EffectiveGrant[];
  /** The access token's narrowing, if it has one. */
  tokenScopes?: TokenScope[];
}

/**
 * The actions a principal holds on a repository: admin → everything; else the union of matching grants (own and teams'),
 * plus pull on public repositories; then cut down to the token's own scopes.
 */
export function repositoryActions(principal: Principal, name: string, publicGlobs: string[]): Set<Action> {
  const actions = new Set<Action>();
  if (principal.user?.admin) ACTIONS_OF_LEVEL.admin.forEach((action) => actions.add(action));
  for (const grant of principal.grants) {
    if (matchesGlob(grant.glob, name)) ACTIONS_OF_LEVEL[grant.level].forEach((action) => actions.add(action));
  }
  if (publicGlobs.some((glob) => matchesGlob(glob, name))) actions.add('pull');
  if (principal.tokenScopes) {
    const allowed = new Set<Action>();
    for (const scope of principal.tokenScopes) {
      if (matchesGlob(scope.glob, name)) ACTIONS_OF_LEVEL[scope.level].forEach((action) => allowed.add(action));
    }
    for (const action of actions) if (!allowed.has(action)) actions.delete(action);
  }
  return actions;
}
