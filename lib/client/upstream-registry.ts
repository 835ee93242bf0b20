import type { CacheRule, Upstream, UpstreamManifest } from '../registry/ports.ts';
import type { ByteSource } from '../registry/types.ts';
import { headerValue, HttpTransport } from './http-transport.ts';
import { RegistryClient } from './registry-client.ts';

/** Every manifest type a cache stores, so the upstream answers with the exact bytes it holds (no conversion). */
const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

/**
 * A pull-through cache's upstream over HTTP(S): a RegistryClient (Docker token auth, anonymous or with the rule's
 * credentials; its token is reused across requests) per rule. 404 is "absent"; any other failure throws, and the
 * cache decides whether to serve what it holds.
 */
export class HttpUpstream implements Upstream {
  readonly #client: RegistryClient;

  constructor(rule: CacheRule, transport = new HttpTransport()) {
    const base = new URL(rule.upstream);
    this.#client = new RegistryClient({
      registry: base.host,
      plainHttp: base.protocol === 'http:',
      credentials: rule.credentials,
      transport,
      userAgent: 'ocireg-pull-through-cache',
    });
  }

  async headManifest(name: string, reference: string): Promise<string | undefined> {
    const result = await this.#client.request('HEAD', `/v2/${name}/manifests/${reference}`, { headers: { accept: MANIFEST_ACCEPT }, expect: [200, 404] });
    if (result.status === 404) return undefined;
    return headerValue(result.headers, 'docker-content-digest');
  }

  async getManifest(name: string, reference: string): Promise<UpstreamManifest | undefined> {
    const result = await this.#client.request('GET', `/v2/${name}/manifests/${reference}`, { headers: { accept: MANIFEST_ACCEPT }, expect: [200, 404] });
    if (result.status === 404) return undefined;
    return {
      digest: headerValue(result.headers, 'docker-content-digest') ?? '',
      mediaType: (headerValue(result.headers, 'content-type') ?? '').split(';')[0]!.trim(),
      content: new Uint8Array(result.body),
    };
  }

  async openBlob(name: string, digest: string): Promise<{ size: number | undefined; body: ByteSource } | undefined> {
    const response = await this.#client.open('GET', `/v2/${name}/blobs/${digest}`);
    const status = response.statusCode ?? 0;
    if (status === 404) {
      response.resume();
      return undefined;
    }
    if (status !== 200) {
      response.resume();
      throw new Error(`GET ${name}/blobs/${digest} on the upstream answered ${status}`);
    }
    const length = headerValue(response.headers, 'content-length');
    return { size: length === undefined ? undefined : Number(length), body: response };
  }
}

/** One HttpUpstream per rule (same prefix and upstream), so each keeps its token between requests. */
export function httpUpstreams(): (rule: CacheRule) => Upstream {
  const transport = new HttpTransport();
  const made = new Map<string, HttpUpstream>();
  return (rule) => {
    const key = JSON.stringify(rule);
    let upstream = made.get(key);
    if (!upstream) made.set(key, (upstream = new HttpUpstream(rule, transport)));
    return upstream;
  };
}
