import { unsupported } from './errors.ts';
import { isValidName } from './names.ts';
import type { CacheRule } from './ports.ts';

/**
 * What every cache rule store shares: which prefixes are valid, which clash, and which rule a repository falls under.
 * A repository `hub/library/alpine` under the rule `hub` is `library/alpine` on the upstream.
 */

/** UNSUPPORTED unless `prefix` is a repository name and `upstream` an http(s) URL without a path. */
export function assertCacheRule(rule: CacheRule): void {
  if (!isValidName(rule.prefix)) throw unsupported(`a cache prefix is a repository name (e.g. hub), got "${rule.prefix}"`, { prefix: rule.prefix });
  let url: URL;
  try {
    url = new URL(rule.upstream);
  } catch {
    throw unsupported(`the upstream is a URL like https://registry-1.docker.io, got "${rule.upstream}"`, { upstream: rule.upstream });
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || (url.pathname !== '/' && url.pathname !== '') || url.search || url.username) {
    throw unsupported(`the upstream is a registry's base URL (scheme and host only, e.g. https://registry-1.docker.io), got "${rule.upstream}"`, { upstream: rule.upstream });
  }
}

/** Whether two prefixes nest (`hub` and `hub/library`): a repository would fall under both. */
export function prefixesNest(a: string, b: string): boolean {
  return a !== b && (a.startsWith(`${b}/`) || b.startsWith(`${a}/`));
}

/** UNSUPPORTED when `rule` nests with one of `existing` (replacing the rule of the same prefix is fine). */
export function assertNoNesting(rule: CacheRule, existing: CacheRule[]): void {
  const clash = existing.find((other) => prefixesNest(other.prefix, rule.prefix));
  if (clash) throw unsupported(`cache prefix "${rule.prefix}" nests with the rule "${clash.prefix}": remove that one first`, { prefix: rule.prefix, existing: clash.prefix });
}

/** The rule `name` falls under and the name on the upstream, or undefined. The prefix itself is not a repository. */
export function ruleFor(rules: CacheRule[], name: string): { rule: CacheRule; upstreamName: string } | undefined {
  const rule = rules.find((candidate) => name.startsWith(`${candidate.prefix}/`));
  return rule && { rule, upstreamName: name.slice(rule.prefix.length + 1) };
}
