import { isValidName, isValidTag } from '../registry/names.ts';

/** A push destination: `<registry>/<repository>[:<tag>]`, as docker writes it, without docker's Docker Hub defaults. */
export interface ImageReference {
  /** `host[:port]`, as used in URLs and as the key in `~/.docker/config.json`. */
  registry: string;
  repository: string;
  /** A tag; `latest` when none was written. */
  tag: string;
}

/**
 * Parses `registry/repo:tag` (an optional `docker://` prefix is allowed). The first component must look like a
 * host (`localhost`, or contain a `.` or `:`), since a registry push always names where it goes.
 */
export function parseImageReference(text: string): ImageReference {
  const value = text.startsWith('docker://') ? text.slice('docker://'.length) : text;
  const slash = value.indexOf('/');
  const registry = slash < 0 ? '' : value.slice(0, slash);
  if (slash < 0 || !(registry === 'localhost' || registry.includes('.') || registry.includes(':'))) {
    throw new Error(`the destination must name its registry, like 127.0.0.1:5000/team/app:1.0 or registry.example.com/team/app:1.0, got "${text}"`);
  }
  let rest = value.slice(slash + 1);
  if (rest.includes('@')) throw new Error(`push to a tag, not a digest: got "${text}"`);
  let tag = 'latest';
  const colon = rest.lastIndexOf(':');
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  if (!isValidName(rest)) throw new Error(`invalid repository name "${rest}" in "${text}": lower-case components separated by /`);
  if (!isValidTag(tag)) throw new Error(`invalid tag "${tag}" in "${text}"`);
  return { registry, repository: rest, tag };
}
