import { OciError } from '../registry/errors.ts';
import type { HandlerContext, MethodTable } from './resource.ts';
import type { HttpResponse } from './types.ts';

/**
 * `GET /v2/<name>/_ocireg/config/<digest>`: an image config, read by the registry and answered as it is stored. For
 * the console: on AWS a blob GET is a 307 to S3, another origin than the page's, which its Content-Security-Policy
 * (`connect-src 'self'`) does not let it read. Pull permission, as for the blob itself (access-control.ts). Only a
 * small JSON object is answered: configs are a few KB, and nothing large passes through the function this way.
 * Documented in docs/api.md.
 */
export const imageConfig: MethodTable<'imageConfig'> = { GET: read };

/** docker's image configs are a few KB; ones with long histories reach a few hundred. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

async function read({ registry, route }: HandlerContext<'imageConfig'>): Promise<HttpResponse> {
  const bytes = await registry.readSmallBlob(route.name, route.digest, MAX_CONFIG_BYTES);
  if (!isJsonObject(bytes)) throw new OciError('UNSUPPORTED', `blob ${route.digest} is not an image config (a JSON object)`, { name: route.name, digest: route.digest });
  return {
    status: 200,
    headers: {
      'content-type': 'application/json',
      'content-length': String(bytes.byteLength),
      'docker-content-digest': route.digest,
      // Content-addressed, but answered per caller's grants: browsers may keep it, shared caches may not.
      'cache-control': 'private, max-age=31536000, immutable',
    },
    body: bytes,
  };
}

function isJsonObject(bytes: Uint8Array): boolean {
  try {
    const value: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
    return typeof value === 'object' && value !== null && !Array.isArray(value);
  } catch {
    return false;
  }
}
