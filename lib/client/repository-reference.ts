import { isDigest } from '../registry/digest.ts';
import { isValidName, isValidTag } from '../registry/names.ts';

/** `<registry>[/<repo>][:<tag>|@<digest>]` as the version commands take it. */
export interface RepositoryReference {
  /** `host[:port]`. */
  registry: string;
  repository?: string;
  tag?: string;
  digest?: string;
}

/** Parses a reference; the first component must look like a host (`localhost`, or hold a `.` or `:`). */
export function parseRepositoryReference(text: string): RepositoryReference {
  const slash = text.indexOf('/');
  const registry = slash < 0 ? text : text.slice(0, slash);
  if (!(registry.startsWith('localhost') || registry.includes('.') || registry.includes(':'))) {
    throw new Error(`the reference must start with its registry, like 127.0.0.1:5000/team/app:1.0, got "${text}"`);
  }
  if (slash < 0 || slash === text.length - 1) return { registry };
  let rest = text.slice(slash + 1);
  const reference: RepositoryReference = { registry };
  const at = rest.indexOf('@');
  if (at >= 0) {
    const digest = rest.slice(at + 1);
    if (!isDigest(digest)) throw new Error(`invalid digest "${digest}" in "${text}"`);
    reference.digest = digest;
    rest = rest.slice(0, at);
  } else {
    const colon = rest.lastIndexOf(':');
    if (colon >= 0) {
      const tag = rest.slice(colon + 1);
      if (!isValidTag(tag)) throw new Error(`invalid tag "${tag}" in "${text}"`);
      reference.tag = tag;
      rest = rest.slice(0, colon);
    }
  }
  if (!isValidName(rest)) throw new Error(`invalid repository name "${rest}" in "${text}": lower-case components separated by /`);
  reference.repository = rest;
  return reference;
}

/** Docker's rule: plain HTTP for a loopback registry, HTTPS elsewhere unless asked. */
export function usesPlainHttp(registry: string, plainHttpFlag: boolean): boolean {
  const host = registry.replace(/:\d+$/, '');
  return plainHttpFlag || host === 'localhost' || host === '127.0.0.1' || host === '[::1]';
}
