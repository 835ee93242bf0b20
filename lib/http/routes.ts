/**
 * The /v2 routes. Repository names contain `/`, so paths are matched whole with the spec's regexes rather than
 * per segment (as distribution's registry/api/v2/descriptors.go does).
 * @see https://github.com/opencontainers/distribution-spec/blob/v1.1.1/spec.md#endpoints
 */
export type Route =
  | { kind: 'base' }
  | { kind: 'catalog' }
  | { kind: 'tags'; name: string }
  | { kind: 'manifest'; name: string; reference: string }
  | { kind: 'blob'; name: string; digest: string }
  | { kind: 'uploads'; name: string }
  | { kind: 'upload'; name: string; uploadId: string }
  | { kind: 'referrers'; name: string; digest: string }
  | { kind: 'tagHistory'; name: string; tag: string }
  | { kind: 'rollback'; name: string; tag: string }
  | { kind: 'promotion'; name: string }
  | { kind: 'tagDetails'; name: string }
  | { kind: 'imageConfig'; name: string; digest: string }
  | { kind: 'usage' };

// Names are matched loosely (.+?) and validated by the core, so a bad name gets NAME_INVALID rather than 404.
const ANY_NAME = '(.+?)';
const PATTERNS: Array<[RegExp, (m: RegExpExecArray) => Route]> = [
  [/^\/v2\/?$/, () => ({ kind: 'base' })],
  [/^\/v2\/_catalog\/?$/, () => ({ kind: 'catalog' })],
  // Registry-wide extension: `_ocireg` cannot be a repository name (components never start with `_`).
  [/^\/v2\/_ocireg\/usage\/?$/, () => ({ kind: 'usage' })],
  [new RegExp(`^/v2/${ANY_NAME}/tags/list/?$`), (m) => ({ kind: 'tags', name: m[1]! })],
  [new RegExp(`^/v2/${ANY_NAME}/manifests/([^/]+)$`), (m) => ({ kind: 'manifest', name: m[1]!, reference: m[2]! })],
  [new RegExp(`^/v2/${ANY_NAME}/blobs/uploads/?$`), (m) => ({ kind: 'uploads', name: m[1]! })],
  [new RegExp(`^/v2/${ANY_NAME}/blobs/uploads/([^/]+)$`), (m) => ({ kind: 'upload', name: m[1]!, uploadId: m[2]! })],
  [new RegExp(`^/v2/${ANY_NAME}/blobs/([^/]+)$`), (m) => ({ kind: 'blob', name: m[1]!, digest: m[2]! })],
  [new RegExp(`^/v2/${ANY_NAME}/referrers/([^/]+)$`), (m) => ({ kind: 'referrers', name: m[1]!, digest: m[2]! })],
  // The spec reserves `/v2/<name>/_<extension>/…`; no name component starts with `_` (docs/api.md).
  [new RegExp(`^/v2/${ANY_NAME}/_ocireg/history/([^/]+)$`), (m) => ({ kind: 'tagHistory', name: m[1]!, tag: m[2]! })],
  [new RegExp(`^/v2/${ANY_NAME}/_ocireg/rollback/([^/]+)$`), (m) => ({ kind: 'rollback', name: m[1]!, tag: m[2]! })],
  [new RegExp(`^/v2/${ANY_NAME}/_ocireg/tag/?$`), (m) => ({ kind: 'promotion', name: m[1]! })],
  [new RegExp(`^/v2/${ANY_NAME}/_ocireg/tags/?$`), (m) => ({ kind: 'tagDetails', name: m[1]! })],
  [new RegExp(`^/v2/${ANY_NAME}/_ocireg/config/([^/]+)$`), (m) => ({ kind: 'imageConfig', name: m[1]!, digest: m[2]! })],
];

/** Matches a decoded path; undefined when no /v2 route has that shape. */
export function matchRoute(path: string): Route | undefined {
  for (const [pattern, build] of PATTERNS) {
    const match = pattern.exec(path);
    if (match) return build(match);
  }
  return undefined;
}

/** The repository a route names, if any. */
export function routeName(route: Route): string | undefined {
  return 'name' in route ? route.name : undefined;
}
