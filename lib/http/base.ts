import { jsonResponse, type MethodTable } from './resource.ts';

/**
 * `/v2/`: the API version check. 200 with an empty object once the caller is authenticated (the app answers 401
 * before this when auth is on); docker login ends here.
 * @see https://github.com/opencontainers/distribution-spec/blob/v1.1.1/spec.md#determining-support
 */
export const base: MethodTable<'base'> = {
  GET: async () => jsonResponse(200, {}),
  HEAD: async () => jsonResponse(200, {}),
};
