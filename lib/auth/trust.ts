import type { TeamGrant } from './identity.ts';
import { matchesGlob } from './repository-glob.ts';

/**
 * OIDC trust: which CI identity tokens the registry accepts instead of a stored secret, and what they may do.
 * An ID token is accepted when a trust names its issuer and audience and every claim rule matches; it then gets
 * that trust's grants and nothing more.
 */

/** The user name under which an ID token is presented (`docker login -u oidc`); never a real user. */
export const OIDC_USERNAME = 'oidc';

/** One condition on a claim of the ID token: its value (a string, number or boolean) must match `glob`. */
export interface ClaimRule {
  claim: string;
  /** `*` matches within one `/`-separated part, `**` across parts (as repository globs). */
  glob: string;
}

export interface Trust {
  name: string;
  /** Exactly the `iss` of the tokens (and the discovery document's `issuer`). */
  issuer: string;
  audience: string;
  /** All must match; at least one (an issuer like GitHub's serves every repository on it). */
  claims: ClaimRule[];
  grants: TeamGrant[];
  createdAt: number;
}

/** Issuers are reached over HTTPS; plain HTTP only on a loopback address (tests, local issuers). */
export function isAllowedIssuerUrl(text: string): boolean {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return false;
  }
  if (url.username || url.password || url.search || url.hash) return false;
  if (url.protocol === 'https:') return true;
  return url.protocol === 'http:' && isLoopback(url.hostname);
}

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127(?:\.\d{1,3}){3}$/.test(hostname);
}

/** Why a token's claims fail a trust's rules (the first rule that fails), or undefined when all match. */
export function claimMismatch(trust: Trust, claims: Record<string, unknown>): string | undefined {
  for (const rule of trust.claims) {
    const value = claims[rule.claim];
    if (value === undefined) return `claim ${rule.claim} is missing`;
    if (!['string', 'number', 'boolean'].includes(typeof value)) return `claim ${rule.claim} is not a string`;
    if (!matchesGlob(rule.glob, String(value))) return `claim ${rule.claim}=${JSON.stringify(String(value))} does not match`;
  }
  return undefined;
}

/** The JWT subject of a registry token issued to an ID token: `oidc:<trust>[+<trust>…]:<sub>`. */
export function oidcSubject(trusts: string[], sub: string): string {
  return `${OIDC_USERNAME}:${trusts.join('+')}:${sub}`;
}

/** The trust names in a subject made by {@link oidcSubject}; undefined for a user's subject (no `:` in user names). */
export function trustsOfSubject(subject: string): string[] | undefined {
  if (!subject.startsWith(`${OIDC_USERNAME}:`)) return undefined;
  const rest = subject.slice(OIDC_USERNAME.length + 1);
  return rest.slice(0, rest.indexOf(':')).split('+');
}
