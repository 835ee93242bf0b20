import { OciError } from '../registry/errors.ts';
import { jsonResponse, type HandlerContext, type MethodTable } from './resource.ts';
import type { HttpResponse } from './types.ts';

/**
 * `GET /v2/_ocireg/usage`: storage usage per repository, only the repositories the caller may pull (the catalog's
 * scope and filter), with the policies in force. Read from the stored summary on AWS, computed now on the local
 * backends (lib/registry/usage-reports.ts). Documented in docs/api.md.
 */
export const usage: MethodTable<'usage'> = { GET: report };

async function report({ registry, access }: HandlerContext<'usage'>): Promise<HttpResponse> {
  if (!registry.usage) throw new OciError('UNSUPPORTED', 'this registry keeps no usage figures', undefined);
  return jsonResponse(200, await registry.usage.report(access.catalogFilter));
}
