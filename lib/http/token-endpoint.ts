import type { AuthService, TokenRequest } from '../auth/auth-service.ts';
import { parseScopes } from '../auth/scope.ts';
import { limitBytes, readAll } from '../registry/bytes.ts';
import { OciError } from '../registry/errors.ts';
import { jsonResponse, type HttpMethod } from './resource.ts';
import type { HttpRequest, HttpResponse } from './types.ts';

const MAX_FORM_BYTES = 64 * 1024;

/**
 * The Docker token endpoint (`/token`): GET with Basic credentials (docker, skopeo) and POST with a form
 * (containerd and buildkit try it first; docker uses it with the refresh token stored at login).
 * @see https://distribution.github.io/distribution/spec/auth/token/
 * @see https://distribution.github.io/distribution/spec/auth/oauth/
 */
export const tokenEndpoint: Readonly<Partial<Record<HttpMethod, TokenHandler>>> = {
  GET: async (auth, request) =>
    issue(auth, request, {
      scopes: parseScopes(request.query.getAll('scope')),
      offline: request.query.get('offline_token') === 'true',
      ...basicCredentials(request.headers.get('authorization')),
    }),
  POST: async (auth, request) => issue(auth, request, await formRequest(request)),
};

type TokenHandler = (auth: AuthService, request: HttpRequest) => Promise<HttpResponse>;

async function issue(auth: AuthService, request: HttpRequest, tokenRequest: TokenRequest): Promise<HttpResponse> {
  if (request.sourceIp !== undefined) tokenRequest.sourceIp = request.sourceIp;
  return jsonResponse(200, await auth.issueToken(tokenRequest), { 'cache-control': 'no-store' });
}

async function formRequest(request: HttpRequest): Promise<TokenRequest> {
  const tooLarge = (): never => {
    throw new OciError('PAYLOAD_TOO_LARGE', 'token request form too large');
  };
  const form = new URLSearchParams(new TextDecoder().decode(await readAll(limitBytes(request.body, MAX_FORM_BYTES, tooLarge))));
  const tokenRequest: TokenRequest = {
    scopes: parseScopes(form.getAll('scope')),
    offline: form.get('access_type') === 'offline',
  };
  switch (form.get('grant_type')) {
    case 'password':
      tokenRequest.username = form.get('username') ?? '';
      tokenRequest.password = form.get('password') ?? '';
      break;
    case 'refresh_token':
      tokenRequest.refreshToken = form.get('refresh_token') ?? '';
      break;
    default:
      throw new OciError('UNSUPPORTED', 'grant_type must be password or refresh_token', { grant_type: form.get('grant_type') });
  }
  return tokenRequest;
}

function basicCredentials(authorization: string | null): { username?: string; password?: string } {
  const match = authorization && /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(authorization);
  if (!match) return {};
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return { username: decoded, password: '' };
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}
