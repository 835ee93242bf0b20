import { OciError } from '../registry/errors.ts';
import { repositoryActions, type Principal } from './access-policy.ts';
import { parseTokenSecret, secretMatches } from './access-token-secret.ts';
import type { AccessToken, IdentityStore } from './identity.ts';
import { IssuerKeys } from './issuer-keys.ts';
import { verifyIdToken } from './oidc-login.ts';
import { OIDC_USERNAME, trustsOfSubject } from './trust.ts';
import type { Scope } from './scope.ts';
import type { AccessClaim, TokenSigner, VerifiedToken } from './token-signer.ts';

export interface AuthServiceOptions {
  identities: IdentityStore;
  signer: TokenSigner;
  /** Bearer token lifetime. Default 300 s (docker asks again when it expires). */
  tokenTtlSeconds?: number;
  /** Refresh token lifetime (capped by the API token's own expiry). Default 90 days. */
  refreshTtlSeconds?: number;
  /** Failed logins per user or per source address before TOOMANYREQUESTS. Default 10. */
  maxFailures?: number;
  /** How long failures count and the lock-out lasts. Default 900 s. */
  failureWindowSeconds?: number;
  /** OIDC issuers' keys (discovery, JWKS cache). Default: fetched over the network as trusts need them. */
  issuerKeys?: IssuerKeys;
  now?: () => number;
}

/** A token request, from GET (Basic credentials, query) or POST (form), already parsed by lib/http. */
export interface TokenRequest {
  username?: string;
  password?: string;
  refreshToken?: string;
  scopes: Scope[];
  /** `offline_token=true` (GET) or `access_type=offline` (POST): also return a refresh token. */
  offline: boolean;
  sourceIp?: string;
}

/** The token endpoint's JSON answer. @see https://distribution.github.io/distribution/spec/auth/token/ */
export interface TokenResponse {
  token: string;
  access_token: string;
  expires_in: number;
  issued_at: string;
  refresh_token?: string;
}

/** A verified bearer token plus, for repository scopes, what it allows. */
export type Verdict = 'allowed' | 'insufficient_scope' | 'denied';

const TOUCH_INTERVAL_MS = 60_000;
const DEFAULTS = { tokenTtlSeconds: 300, refreshTtlSeconds: 90 * 24 * 3600, maxFailures: 10, failureWindowSeconds: 900 };

const unauthorized = (message: string) => new OciError('UNAUTHORIZED', message);

/**
 * Docker token authentication: the token endpoint's logic (credentials → scoped JWT) and the check of a bearer
 * token against the scope a request needs. Grants and public marks are read at token time, so changes take
 * effect with the next token (≤ tokenTtlSeconds), without a restart.
 */
export class AuthService {
  readonly #identities: IdentityStore;
  readonly #signer: TokenSigner;
  readonly #options: typeof DEFAULTS;
  readonly #issuerKeys: IssuerKeys;
  readonly #now: () => number;

  constructor(options: AuthServiceOptions) {
    this.#identities = options.identities;
    this.#signer = options.signer;
    this.#issuerKeys = options.issuerKeys ?? new IssuerKeys(options.now ? { now: options.now } : {});
    this.#now = options.now ?? Date.now;
    this.#options = {
      tokenTtlSeconds: options.tokenTtlSeconds ?? DEFAULTS.tokenTtlSeconds,
      refreshTtlSeconds: options.refreshTtlSeconds ?? DEFAULTS.refreshTtlSeconds,
      maxFailures: options.maxFailures ?? DEFAULTS.maxFailures,
      failureWindowSeconds: options.failureWindowSeconds ?? DEFAULTS.failureWindowSeconds,
    };
  }

  /** The `service` of challenges and the `aud` of tokens. */
  get service(): string {
    return this.#signer.audience;
  }

  /** Issues a token holding the subset of the requested scopes the caller has. Asking for more is not an error. */
  async issueToken(request: TokenRequest): Promise<TokenResponse> {
    const now = this.#now();
    const { principal, token, expiresAt } = await this.#principal(request, now);
    const publicGlobs = await this.#identities.listPublic();
    const access: AccessClaim[] = request.scopes.map((scope) => ({ ...scope, actions: grantedActions(principal, scope, publicGlobs) }));
    // An ID token's registry token ends with it (clients treat expires_in below 60 as 60).
    const ttl = expiresAt === undefined ? this.#options.tokenTtlSeconds : Math.max(60, Math.min(this.#options.tokenTtlSeconds, Math.floor((expiresAt - now) / 1000)));
    const jwt = await this.#signer.signAccess(principal.subject ?? principal.user?.name ?? '', access, ttl, now);
    const response: TokenResponse = { token: jwt, access_token: jwt, expires_in: ttl, issued_at: new Date(now).toISOString() };
    // Only access tokens get refresh tokens. An ID token gets none: a refresh token would outlive it (docker keeps
    // one for months) and nothing stored could revoke it; docker login keeps the ID token instead, which expires.
    if (token && request.offline && request.refreshToken === undefined) {
      const untilExpiry = token.expiresAt === undefined ? Infinity : Math.floor((token.expiresAt - now) / 1000);
      response.refresh_token = await this.#signer.signRefresh(token.user, token.id, Math.min(this.#options.refreshTtlSeconds, untilExpiry), now);
    }
    // Last use is coarse (a minute): a write per token request would double the cost of a login on DynamoDB.
    if (token && (token.lastUsedAt === undefined || now - token.lastUsedAt >= TOUCH_INTERVAL_MS)) {
      await this.#identities.touchToken(token.id, now).catch(() => undefined);
    }
    return response;
  }

  /** Verifies a bearer token: undefined when absent, UNAUTHORIZED (invalid_token) when forged, expired or foreign. */
  async verifyBearer(authorization: string | null): Promise<VerifiedToken | undefined> {
    if (!authorization) return undefined;
    const match = /^Bearer\s+(\S+)$/i.exec(authorization);
    if (!match) return undefined;
    try {
      return await this.#signer.verifyAccess(match[1]!, this.#now());
    } catch (cause) {
      throw new OciError('UNAUTHORIZED', 'invalid or expired token', undefined, { cause });
    }
  }

  /**
   * What a verified token allows for a scope. A token that considered this repository and left the action out
   * is a refusal (403 DENIED for a user); one that never mentioned it must be renewed (401 insufficient_scope).
   */
  judge(token: VerifiedToken, required: Scope): Verdict {
    const claims = token.access.filter((claim) => claim.type === required.type && claim.name === required.name);
    const held = new Set(claims.flatMap((claim) => claim.actions));
    if (required.actions.every((action) => held.has(action) || held.has('*'))) return 'allowed';
    return claims.length > 0 && token.subject !== '' ? 'denied' : 'insufficient_scope';
  }

  /** Whether the token's subject may pull a repository now (for the catalog, read fresh from the store). */
  async pullFilter(token: VerifiedToken): Promise<(name: string) => boolean> {
    const principal = await this.#subjectPrincipal(token.subject);
    const publicGlobs = await this.#identities.listPublic();
    return (name) => repositoryActions(principal, name, publicGlobs).has('pull');
  }

  /** Whom a registry token's subject names, with the grants they hold now: nobody, a user, or OIDC trusts. */
  async #subjectPrincipal(subject: string): Promise<Principal> {
    if (subject === '') return { grants: [] };
    const trustNames = trustsOfSubject(subject);
    if (trustNames) {
      const trusts = (await this.#identities.listTrusts()).filter((trust) => trustNames.includes(trust.name));
      return { subject, grants: trusts.flatMap((trust) => trust.grants) };
    }
    const access = await this.#identities.getAccess(subject);
    return access ? { user: access.user, grants: access.grants } : { grants: [] };
  }

  async #principal(request: TokenRequest, now: number): Promise<{ principal: Principal; token?: AccessToken; expiresAt?: number }> {
    if (request.refreshToken !== undefined) {
      let tokenId: string;
      try {
        tokenId = (await this.#signer.verifyRefresh(request.refreshToken, now)).tokenId;
      } catch (cause) {
        throw new OciError('UNAUTHORIZED', 'invalid refresh token', undefined, { cause });
      }
      return this.#fromAccessToken(await this.#identities.getToken(tokenId), now);
    }
    if (request.username === undefined && request.password === undefined) return { principal: { grants: [] } };

    // ID tokens are not counted as failed logins: guessing a signature is hopeless, and counting would let one
    // misconfigured pipeline lock its runner's address out. Key fetches they cause are rate-limited (IssuerKeys).
    if (request.username === OIDC_USERNAME) {
      const verified = await verifyIdToken(request.password ?? '', await this.#identities.listTrusts(), this.#issuerKeys, now);
      return { principal: { subject: verified.subject, grants: verified.grants }, expiresAt: verified.expiresAt };
    }
    const keys = [`user:${request.username ?? ''}`, ...(request.sourceIp ? [`ip:${request.sourceIp}`] : [])];
    for (const key of keys) {
      if ((await this.#identities.countFailures(key, now)) >= this.#options.maxFailures) {
        throw new OciError('TOOMANYREQUESTS', 'too many failed logins; try again later', { retryAfterSeconds: this.#options.failureWindowSeconds });
      }
    }
    const parsed = parseTokenSecret(request.password ?? '');
    const stored = parsed && (await this.#identities.getToken(parsed.id));
    if (!parsed || !stored || stored.user !== request.username || !secretMatches(parsed.secret, stored.secretHash)) {
      await Promise.all(keys.map((key) => this.#identities.recordFailure(key, this.#options.failureWindowSeconds, now)));
      throw unauthorized('invalid username or access token');
    }
    return this.#fromAccessToken(stored, now);
  }

  async #fromAccessToken(token: AccessToken | undefined, now: number): Promise<{ principal: Principal; token: AccessToken }> {
    if (!token) throw unauthorized('access token revoked');
    if (token.expiresAt !== undefined && token.expiresAt <= now) throw unauthorized('access token expired');
    const access = await this.#identities.getAccess(token.user);
    if (!access) throw unauthorized('user no longer exists');
    const principal: Principal = { user: access.user, grants: access.grants };
    if (token.scopes) principal.tokenScopes = token.scopes;
    return { principal, token };
  }
}

/** The requested actions of one scope that the principal holds (`*` asks for all it holds). */
function grantedActions(principal: Principal, scope: Scope, publicGlobs: string[]): string[] {
  if (scope.type === 'registry' && scope.name === 'catalog') {
    // Everyone may ask for the catalog; it lists only what the caller may pull.
    return scope.actions.filter((action) => action === '*');
  }
  if (scope.type !== 'repository') return [];
  const held = repositoryActions(principal, scope.name, publicGlobs);
  if (scope.actions.includes('*')) return [...held].filter((action) => action !== '*');
  return scope.actions.filter((action) => held.has(action as never));
}
