import { decodeJwt, errors, jwtVerify, type JWTPayload } from 'jose';
import { OciError } from '../registry/errors.ts';
import type { TeamGrant } from './identity.ts';
import { IssuerKeysError, type IssuerKeys } from './issuer-keys.ts';
import { claimMismatch, oidcSubject, type Trust } from './trust.ts';

/** What an accepted ID token may do: the grants of the trusts it matched, for a subject naming them. */
export interface OidcPrincipal {
  /** `oidc:<trust>:<sub>`: recorded as the registry token's `sub`. */
  subject: string;
  grants: TeamGrant[];
  /** The ID token's `exp`, epoch milliseconds: the registry token does not outlive it by more than a minute. */
  expiresAt: number;
}

/** Asymmetric algorithms only: `none` and HMAC (which a public key would "verify") are refused before any key is looked at. */
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

/** CI runners' clocks drift a little from the issuer's. */
const CLOCK_TOLERANCE_SECONDS = 60;

const refuse = (message: string, detail?: unknown, cause?: unknown) => new OciError('UNAUTHORIZED', message, detail, cause === undefined ? undefined : { cause });

/**
 * Verifies an OIDC ID token presented as a password (user `oidc`) against the trusts an administrator made:
 * the issuer must be trusted (checked before any fetch), the signature must verify with the issuer's published
 * keys, `exp`/`nbf` hold with {@link CLOCK_TOLERANCE_SECONDS}, and for at least one trust of that issuer the
 * audience and every claim rule match. The union of the matching trusts' grants is all the token gets.
 */
export async function verifyIdToken(idToken: string, trusts: Trust[], keys: IssuerKeys, now: number): Promise<OidcPrincipal> {
  let unverified: JWTPayload;
  try {
    unverified = decodeJwt(idToken);
  } catch (cause) {
    throw refuse('the password of user oidc must be an OIDC ID token (a JWT)', undefined, cause);
  }
  const issuer = unverified.iss;
  const candidates = trusts.filter((trust) => trust.issuer === issuer);
  if (typeof issuer !== 'string' || candidates.length === 0) {
    throw refuse(`no trust for the ID token's issuer ${JSON.stringify(issuer ?? null)}; an administrator adds one with ocireg trust add`);
  }

  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(idToken, keys.resolverFor(issuer), {
      issuer,
      algorithms: ALGORITHMS,
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
      currentDate: new Date(now),
      requiredClaims: ['exp', 'sub'],
    }));
  } catch (cause) {
    throw refuse(`ID token refused: ${reason(cause)}`, { issuer }, cause);
  }

  const accepted: Trust[] = [];
  const mismatches: string[] = [];
  const audiences = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
  for (const trust of candidates.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const mismatch = audiences.includes(trust.audience) ? claimMismatch(trust, payload) : `audience ${JSON.stringify(payload.aud ?? null)} is not the trust's`;
    if (mismatch === undefined) accepted.push(trust);
    else mismatches.push(`${trust.name}: ${mismatch}`);
  }
  if (accepted.length === 0) throw refuse(`no trust of ${issuer} accepts this ID token (${mismatches.join('; ')})`, { issuer, sub: payload.sub });
  return {
    subject: oidcSubject(
      accepted.map((trust) => trust.name),
      payload.sub!,
    ),
    grants: accepted.flatMap((trust) => trust.grants),
    expiresAt: payload.exp! * 1000,
  };
}

function reason(error: unknown): string {
  if (error instanceof IssuerKeysError) return error.message;
  if (error instanceof errors.JWTExpired) return 'it has expired';
  if (error instanceof errors.JWTClaimValidationFailed) return error.claim === 'nbf' ? 'it is not valid yet (nbf)' : `claim ${error.claim}: ${error.reason}`;
  if (error instanceof errors.JOSEAlgNotAllowed) return 'its algorithm is not accepted (asymmetric signatures only)';
  if (error instanceof errors.JWKSNoMatchingKey) return "it is signed with a key the issuer does not publish (unknown kid)";
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'its signature does not verify';
  if (error instanceof errors.JOSEError) return `it is malformed (${error.code})`;
  return 'it could not be verified';
}
