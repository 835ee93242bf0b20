import { httpUpstreams } from '../lib/client/upstream-registry.ts';
import type { CacheRule, Upstream } from '../lib/registry/ports.ts';
import type { CacheCredentialSecrets } from '../lib/storage/secrets/cache-credential-secrets.ts';

/**
 * The pull-through cache's upstreams in the function: HTTP clients as `ocireg serve` has them, except that a rule's
 * credentials are in a Secrets Manager secret (the rule item names it) and are read when the upstream is first
 * asked something, then again at most once a minute (CacheCredentialSecrets). A request for a repository that is
 * not cached never reads a secret, and a secret the function cannot read fails only the pulls of its rule.
 */
export function secretCredentialUpstreams(secrets: CacheCredentialSecrets): (rule: CacheRule) => Upstream {
  // One HTTP client per rule and credentials, so each keeps its upstream token between requests.
  const clients = httpUpstreams();
  return (rule) => {
    const secret = rule.credentialsSecret;
    if (secret === undefined) return clients(rule);
    const current = async (): Promise<Upstream> => clients({ prefix: rule.prefix, upstream: rule.upstream, credentials: await secrets.read(secret) });
    return {
      headManifest: async (name, reference) => (await current()).headManifest(name, reference),
      getManifest: async (name, reference) => (await current()).getManifest(name, reference),
      openBlob: async (name, digest) => (await current()).openBlob(name, digest),
      locateBlob: async (name, digest) => (await current()).locateBlob?.(name, digest) ?? { size: undefined },
    };
  };
}
