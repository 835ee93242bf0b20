import { createLocalJWKSet, errors, type JSONWebKeySet, type JWSHeaderParameters, type FlattenedJWSInput } from 'jose';
import { isAllowedIssuerUrl } from './trust.ts';

/**
 * The signing keys of OIDC issuers: discovery (`<issuer>/.well-known/openid-configuration` → `jwks_uri`), then the
 * JWKS, cached per issuer. Only issuers an administrator trusts are ever fetched (the caller looks the trust up
 * by `iss` first), so a token cannot make the registry fetch a URL of its choosing.
 *
 * Refreshes, per issuer:
 * - after `maxAgeMs` (keys an issuer withdrew stop verifying within that time);
 * - on a token whose `kid` is not in the cached set: issuers publish a new key before signing with it, so the
 *   first token after a rotation finds it in a fresh fetch.
 * Anyone can send a token with a made-up `kid` from a trusted issuer, so fetches are rate-limited by a token
 * bucket: `burst` fetches at once, then one per `refillMs`. With the bucket empty, an unknown `kid` is refused
 * without a fetch, and an expired cache is used as it is.
 *
 *   t=0     token kid=A   → fetch (bucket 3→2), A verifies
 *   t=5s    token kid=B   → B unknown → fetch (2→1): the issuer rotated, B verifies
 *   t=6s    token kid=X×50 → X unknown → fetch (1→0), then 49 refusals without a fetch
 *   t=66s   bucket 0→1: the next unknown kid may fetch again
 */
export interface IssuerKeysOptions {
  /** How long a fetched JWKS is used before it is fetched again. Default 10 minutes. */
  maxAgeMs?: number;
  /** Fetches allowed at once per issuer. Default 3. */
  burst?: number;
  /** One more fetch is allowed per this interval. Default 60 s. */
  refillMs?: number;
  /** Per HTTP request. Default 5 s. */
  timeoutMs?: number;
  fetch?: typeof fetch;
  now?: () => number;
}

type KeyResolver = ReturnType<typeof createLocalJWKSet>;

interface IssuerState {
  resolve?: KeyResolver;
  fetchedAt: number;
  tokens: number;
  refilledAt: number;
  inflight?: Promise<void>;
  lastError?: string;
}

/** Discovery documents and key sets are small; anything larger is not an issuer's. */
const MAX_DOCUMENT_BYTES = 256 * 1024;

/** Why an issuer's keys could not be used: its message is for the person configuring CI. */
export class IssuerKeysError extends Error {
  override name = 'IssuerKeysError';
}

export class IssuerKeys {
  readonly #options: Required<Omit<IssuerKeysOptions, 'fetch' | 'now'>>;
  readonly #fetch: typeof fetch;
  readonly #now: () => number;
  readonly #issuers = new Map<string, IssuerState>();

  constructor(options: IssuerKeysOptions = {}) {
    this.#options = { maxAgeMs: options.maxAgeMs ?? 600_000, burst: options.burst ?? 3, refillMs: options.refillMs ?? 60_000, timeoutMs: options.timeoutMs ?? 5_000 };
    this.#fetch = options.fetch ?? globalThis.fetch;
    this.#now = options.now ?? Date.now;
  }

  /** A key resolver for jose's jwtVerify, bound to one issuer. */
  resolverFor(issuer: string): (header: JWSHeaderParameters, token: FlattenedJWSInput) => Promise<CryptoKey | Uint8Array> {
    return async (header, token) => {
      const state = this.#state(issuer);
      if (!state.resolve || this.#now() - state.fetchedAt >= this.#options.maxAgeMs) await this.#refresh(issuer, state, !state.resolve);
      try {
        return await state.resolve!(header, token);
      } catch (error) {
        if (!(error instanceof errors.JWKSNoMatchingKey)) throw error;
        if (!(await this.#refresh(issuer, state, false))) throw error;
        return state.resolve!(header, token);
      }
    };
  }

  #state(issuer: string): IssuerState {
    let state = this.#issuers.get(issuer);
    if (!state) {
      state = { fetchedAt: 0, tokens: this.#options.burst, refilledAt: this.#now() };
      this.#issuers.set(issuer, state);
    }
    return state;
  }

  /**
   * Fetches the issuer's keys if the bucket allows (concurrent callers share one fetch); false when it did not.
   * `required`: there are no keys at all, so a refusal is an error rather than "use what you have".
   */
  async #refresh(issuer: string, state: IssuerState, required: boolean): Promise<boolean> {
    if (state.inflight) {
      await state.inflight;
      return true;
    }
    const now = this.#now();
    const refills = Math.floor((now - state.refilledAt) / this.#options.refillMs);
    if (refills > 0) {
      state.tokens = Math.min(this.#options.burst, state.tokens + refills);
      state.refilledAt += refills * this.#options.refillMs;
    }
    if (state.tokens === 0) {
      if (required) throw new IssuerKeysError(`the keys of ${issuer} were fetched too often recently; try again in a minute${state.lastError ? ` (last error: ${state.lastError})` : ''}`);
      return false;
    }
    state.tokens -= 1;
    state.inflight = this.#load(issuer).then(
      (keys) => {
        state.resolve = createLocalJWKSet(keys);
        state.fetchedAt = this.#now();
        delete state.lastError;
      },
      (error: unknown) => {
        state.lastError = (error as Error).message;
        // With keys cached, a failed periodic refresh keeps them (the issuer may be briefly down).
        if (required || !state.resolve) throw error;
      },
    );
    try {
      await state.inflight;
    } finally {
      delete state.inflight;
    }
    return true;
  }

  async #load(issuer: string): Promise<JSONWebKeySet> {
    // `ocireg trust add` checks this too; a trust written another way must not make the registry fetch over plain HTTP.
    if (!isAllowedIssuerUrl(issuer)) throw new IssuerKeysError(`issuer ${issuer} is not an https:// URL (http:// only on loopback)`);
    const discoveryUrl = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
    const discovery = await this.#getJson(discoveryUrl);
    // OpenID Connect Discovery 1.0 §4.3: the document's issuer must be exactly the one it was fetched for.
    if (discovery.issuer !== issuer) throw new IssuerKeysError(`${discoveryUrl} names issuer ${JSON.stringify(discovery.issuer)}, not ${issuer}`);
    const jwksUri = discovery.jwks_uri;
    if (typeof jwksUri !== 'string' || !isAllowedIssuerUrl(jwksUri)) throw new IssuerKeysError(`${discoveryUrl} has no HTTPS jwks_uri (got ${JSON.stringify(jwksUri)})`);
    const jwks = await this.#getJson(jwksUri);
    if (!Array.isArray(jwks.keys)) throw new IssuerKeysError(`${jwksUri} is not a JSON Web Key Set`);
    return jwks as unknown as JSONWebKeySet;
  }

  async #getJson(url: string): Promise<Record<string, unknown>> {
    let text: string;
    try {
      const response = await this.#fetch(url, { redirect: 'error', signal: AbortSignal.timeout(this.#options.timeoutMs), headers: { accept: 'application/json' } });
      if (!response.ok) throw new IssuerKeysError(`${url} answered ${response.status}`);
      text = await response.text();
    } catch (cause) {
      if (cause instanceof IssuerKeysError) throw cause;
      throw new IssuerKeysError(`could not fetch ${url}: ${(cause as Error).message}`, { cause });
    }
    if (text.length > MAX_DOCUMENT_BYTES) throw new IssuerKeysError(`${url} is larger than ${MAX_DOCUMENT_BYTES} bytes`);
    try {
      const value: unknown = JSON.parse(text);
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
    } catch {
      // reported below
    }
    throw new IssuerKeysError(`${url} is not a JSON object`);
  }
}
