import { limitBytes, readAll } from '../registry/bytes.ts';
import { OciError, payloadTooLarge } from '../registry/errors.ts';
import type { RollbackTarget } from '../registry/tag-versions.ts';
import { nextPageLink, pageRequest } from './page-query.ts';
import { changeContext, jsonResponse, type HandlerContext, type MethodTable } from './resource.ts';
import type { HttpRequest, HttpResponse } from './types.ts';

/**
 * The `_ocireg` extension (the spec reserves `/v2/<name>/_<extension>/…`): tag history, rollback, promotion and tag
 * details. Pull to read, push to change (access-control.ts). Documented in docs/api.md.
 */
export const tagHistory: MethodTable<'tagHistory'> = { GET: history };
export const rollback: MethodTable<'rollback'> = { POST: rollBack };
export const promotion: MethodTable<'promotion'> = { POST: promote };
export const tagDetails: MethodTable<'tagDetails'> = { GET: details };

/** Command bodies are a few digests and tags. */
const MAX_COMMAND_BYTES = 64 * 1024;

async function history({ registry, route }: HandlerContext<'tagHistory'>): Promise<HttpResponse> {
  const changes = await registry.versions.history(route.name, route.tag);
  return jsonResponse(200, { name: route.name, tag: route.tag, changes });
}

/** Body `{"to": "<digest>"}` or `{"steps": N}`; none means one step. */
async function rollBack({ registry, route, request, access }: HandlerContext<'rollback'>): Promise<HttpResponse> {
  const body = await commandBody(request);
  let target: RollbackTarget;
  if (body.to !== undefined) {
    if (typeof body.to !== 'string' || body.steps !== undefined) throw invalidCommand('give either "to" (a digest) or "steps" (a number)', body);
    target = { to: body.to };
  } else {
    const steps = body.steps ?? 1;
    if (typeof steps !== 'number') throw invalidCommand('"steps" must be a number', body);
    target = { steps };
  }
  const result = await registry.versions.rollback(route.name, route.tag, target, changeContext(access, request));
  return jsonResponse(200, { name: route.name, tag: route.tag, ...result });
}

/** Body `{"reference": "<tag or digest>", "tags": ["prod", …]}`. */
async function promote({ registry, route, request, access }: HandlerContext<'promotion'>): Promise<HttpResponse> {
  const body = await commandBody(request);
  if (typeof body.reference !== 'string' || !Array.isArray(body.tags) || !body.tags.every((tag) => typeof tag === 'string')) {
    throw invalidCommand('expected {"reference": "<tag or digest>", "tags": ["<tag>", …]}', body);
  }
  const result = await registry.versions.promote(route.name, body.reference, body.tags as string[], changeContext(access, request));
  return jsonResponse(200, { name: route.name, ...result });
}

async function details({ registry, route, request }: HandlerContext<'tagDetails'>): Promise<HttpResponse> {
  const page = pageRequest(request);
  const result = await registry.versions.details(route.name, page);
  const link = nextPageLink(`/v2/${route.name}/_ocireg/tags`, page, result, result.items.at(-1)?.tag);
  return jsonResponse(200, { name: route.name, tags: result.items }, link);
}

async function commandBody(request: HttpRequest): Promise<Record<string, unknown>> {
  const bytes = await readAll(limitBytes(request.body, MAX_COMMAND_BYTES, (seen) => {
    throw payloadTooLarge(`a command body holds at most ${MAX_COMMAND_BYTES} bytes`, { seen });
  }));
  if (bytes.byteLength === 0) return {};
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw invalidCommand('the body is not JSON', undefined);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalidCommand('the body must be a JSON object', value);
  return value as Record<string, unknown>;
}

const invalidCommand = (reason: string, body: unknown) => new OciError('UNSUPPORTED', `invalid command: ${reason}`, { body });
