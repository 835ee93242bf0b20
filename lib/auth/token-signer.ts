import { randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, exportPKCS8, generateKeyPair, importJWK, importPKCS8, jwtVerify, SignJWT, type CryptoKey, type JWTPayload } from 'jose';

/** One entry of the Docker token's `access` claim. @see https://distribution.github.io/distribution/spec/auth/jwt/ */
export interface AccessClaim {
  type: string;
  name: string;
  actions: string[];
}

export interface VerifiedToken {
  /** The user, or "" for an anonymous token. */
  subject: string;
  access: AccessClaim[];
  /** For refresh tokens: the access token (API key) they were issued from. */
  tokenId?: string;
}

const ALGORITHM = 'ES256';
/** Marks refresh tokens so one is never accepted as a bearer token, nor the reverse. */
const REFRESH_USE = 'refresh';

/**
 * Signs and verifies registry JWTs with one ES256 key. Verification is local: no storage read per request.
 * jwtVerify pins the algorithm, so `alg: none` and HMAC-with-the-public-key forgeries are refused.
 */
export class TokenSigner {
  readonly #privateKey: CryptoKey;
  readonly #publicKey: CryptoKey;
  readonly #kid: string;
  readonly issuer: string;
  readonly audience: string;

  private constructor(privateKey: CryptoKey, publicKey: CryptoKey, kid: string, issuer: string, audience: string) {
    this.#privateKey = privateKey;
    this.#publicKey = publicKey;
    this.#kid = kid;
    this.issuer = issuer;
    this.audience = audience;
  }

  /** A new PKCS#8 PEM ES256 private key, for key stores creating one on first start. */
  static async generatePem(): Promise<string> {
    const { privateKey } = await generateKeyPair(ALGORITHM, { extractable: true });
    return exportPKCS8(privateKey);
  }

  static async fromPem(pem: string, issuer: string, audience: string): Promise<TokenSigner> {
    const privateKey = await importPKCS8(pem, ALGORITHM, { extractable: true });
    const jwk = await exportJWK(privateKey);
    const publicJwk = { kty: jwk.kty!, crv: jwk.crv!, x: jwk.x!, y: jwk.y! };
    const publicKey = (await importJWK(publicJwk, ALGORITHM)) as CryptoKey;
    const kid = await calculateJwkThumbprint(publicJwk);
    return new TokenSigner(privateKey, publicKey, kid, issuer, audience);
  }

  /** An access token: `sub`, `access`, five standard time/id claims. */
  async signAccess(subject: string, access: AccessClaim[], ttlSeconds: number, now: number): Promise<string> {
    return this.#sign({ access }, subject, ttlSeconds, now);
  }

  /** A refresh token for `docker login`'s identity token: names the API token so revoking it ends refreshes. */
  async signRefresh(subject: string, tokenId: string, ttlSeconds: number, now: number): Promise<string> {
    return this.#sign({ use: REFRESH_USE, tid: tokenId }, subject, ttlSeconds, now);
  }

  async verifyAccess(token: string, now: number): Promise<VerifiedToken> {
    const payload = await this.#verify(token, now);
    if (payload.use !== undefined) throw new Error('not an access token');
    const access = Array.isArray(payload.access) ? (payload.access as AccessClaim[]) : [];
    return { subject: payload.sub ?? '', access };
  }

  async verifyRefresh(token: string, now: number): Promise<VerifiedToken & { tokenId: string }> {
    const payload = await this.#verify(token, now);
    if (payload.use !== REFRESH_USE || typeof payload.tid !== 'string' || !payload.sub) throw new Error('not a refresh token');
    return { subject: payload.sub, access: [], tokenId: payload.tid };
  }

  async #sign(claims: Record<string, unknown>, subject: string, ttlSeconds: number, now: number): Promise<string> {
    const iat = Math.floor(now / 1000);
    return new SignJWT(claims)
      .setProtectedHeader({ alg: ALGORITHM, typ: 'JWT', kid: this.#kid })
      .setIssuer(this.issuer)
      .setSubject(subject)
      .setAudience(this.audience)
      .setIssuedAt(iat)
      .setNotBefore(iat)
      .setExpirationTime(iat + ttlSeconds)
      .setJti(randomUUID())
      .sign(this.#privateKey);
  }

  async #verify(token: string, now: number): Promise<JWTPayload> {
    const { payload } = await jwtVerify(token, this.#publicKey, {
      algorithms: [ALGORITHM],
      issuer: this.issuer,
      audience: this.audience,
      currentDate: new Date(now),
      clockTolerance: 30,
    });
    return payload;
  }
}
