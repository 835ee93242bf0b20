import type { AuthService } from '../auth/auth-service.ts';
import { CATALOG_SCOPE, formatScope, type Scope } from '../auth/scope.ts';
import type { VerifiedToken } from '../auth/token-signer.ts';
import { OciError } from '../registry/errors.ts';
import { ANONYMOUS, type Actor } from '../registry/tag-history.ts';
import type { Route } from './routes.ts';
import type { HttpRequest } from './types.ts';

/**
 * Which scope each request needs, and the 401 challenge that tells a client where to get it.
 * Action mapping as distribution's: GET/HEAD → pull; POST/PUT/PATCH (and upload status/cancel) → pull,push; DELETE → delete.
 * @see https://distribution.github.io/distribution/spec/auth/token/
 */

/** What the handlers may ask about the caller. */
export interface Access {
  /** May the caller pull from this repository (the source of a cross-repository mount)? */
  mayPull(name: string): boolean;
  /** May a blob be mounted from anywhere in the registry (automatic content discovery)? Not with auth on. */
  automaticMount: boolean;
  /** Which repositories the catalog and the usage report may show (all when undefined). */
  catalogFilter?: (name: string) => boolean;
  /** Who the token names, for tag history and events: a user, `oidc:<trust>:<sub>`, or anonymous. */
  actor: Actor;
}

export const OPEN_ACCESS: Access = { mayPull: () => true, automaticMount: true, actor: ANONYMOUS };

/** A 401 with what the client should ask the token endpoint for. */
export class AuthChallenge extends OciError {
  readonly scope: Scope | undefined;
  readonly error: 'invalid_token' | 'insufficient_scope' | undefined;

  constructor(message: string, scope: Scope | undefined, error?: 'invalid_token' | 'insufficient_scope', options?: ErrorOptions) {
    super('UNAUTHORIZED', message, scope ? [{ Type: scope.type, Name: scope.name, Action: scope.actions.join(',') }] : undefined, options);
    this.scope = scope;
    this.error = error;
  }
}

/** The scope a route needs; undefined for the base endpoint, which needs any valid token. */
export function requiredScope(route: Route, method: string): Scope | undefined {
  switch (route.kind) {
    case 'base':
      return undefined;
    case 'catalog':
    case 'usage':
      return CATALOG_SCOPE;
    case 'uploads':
    case 'upload':
      return { type: 'repository', name: route.name, actions: ['pull', 'push'] };
    case 'manifest':
    case 'blob':
      if (method === 'DELETE') return { type: 'repository', name: route.name, actions: ['delete'] };
      if (method === 'PUT') return { type: 'repository', name: route.name, actions: ['pull', 'push'] };
      return { type: 'repository', name: route.name, actions: ['pull'] };
    case 'tags':
    case 'referrers':
    case 'tagHistory':
    case 'tagDetails':
    case 'imageConfig':
      return { type: 'repository', name: route.name, actions: ['pull'] };
    case 'rollback':
    case 'promotion':
      return { type: 'repository', name: route.name, actions: ['pull', 'push'] };
  }
}

/** Checks the bearer token against the route; returns what the handlers may ask, or throws the challenge. */
export async function authorize(auth: AuthService, route: Route, request: HttpRequest): Promise<Access> {
  const scope = requiredScope(route, request.method);
  let token: VerifiedToken | undefined;
  try {
    token = await auth.verifyBearer(request.headers.get('authorization'));
  } catch (error) {
    throw new AuthChallenge('authentication required: the token is invalid or expired', scope, 'invalid_token', { cause: error });
  }
  if (!token) throw new AuthChallenge('authentication required', scope);
  if (scope) {
    const verdict = auth.judge(token, scope);
    if (verdict === 'insufficient_scope') throw new AuthChallenge('authentication required: the token does not cover this request', scope, 'insufficient_scope');
    if (verdict === 'denied') throw new OciError('DENIED', 'requested access to the resource is denied', { scope: formatScope(scope) });
  }
  const held = token;
  const access: Access = {
    mayPull: (name) => auth.judge(held, { type: 'repository', name, actions: ['pull'] }) === 'allowed',
    automaticMount: false,
    actor: token.subject === '' ? ANONYMOUS : { subject: token.subject, ...(token.tokenId !== undefined ? { tokenId: token.tokenId } : {}) },
  };
  if (route.kind === 'catalog' || route.kind === 'usage') access.catalogFilter = await auth.pullFilter(token);
  return access;
}

/** `WWW-Authenticate` for a challenge. `realm` is the token endpoint's absolute URL. */
export function challengeHeader(challenge: AuthChallenge, realm: string, service: string): string {
  const parts = [`realm="${realm}"`, `service="${service}"`];
  if (challenge.scope) parts.push(`scope="${formatScope(challenge.scope)}"`);
  if (challenge.error) parts.push(`error="${challenge.error}"`);
  return `Bearer ${parts.join(',')}`;
}

/** The token endpoint's URL as the client reached us: scheme and Host of this request. */
export function realmOf(request: HttpRequest): string {
  const scheme = request.headers.get('x-forwarded-proto') ?? request.scheme ?? 'http';
  const host = request.headers.get('x-forwarded-host') ?? request.headers.get('host') ?? 'localhost';
  return `${scheme}://${host}/token`;
}
