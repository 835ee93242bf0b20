import { newTokenSecret } from '../../lib/auth/access-token-secret.ts';
import { SERVICE_NAME } from '../../lib/auth/service-name.ts';
import { AuthService } from '../../lib/auth/auth-service.ts';
import type { AccessLevel, TokenScope } from '../../lib/auth/identity.ts';
import { TokenSigner } from '../../lib/auth/token-signer.ts';
import { createRegistryApp } from '../../lib/http/app.ts';
import { Registry } from '../../lib/registry/registry.ts';
import { MemoryBlobStore } from '../../lib/storage/memory/memory-blob-store.ts';
import { MemoryIdentityStore } from '../../lib/storage/memory/memory-identity-store.ts';
import { MemoryMetadataStore } from '../../lib/storage/memory/memory-metadata-store.ts';
import { MemoryUsageStore } from '../../lib/storage/memory/memory-usage-store.ts';
import { call, type CallOptions } from './app-client.ts';

let signingKey: Promise<string> | undefined;

/** An in-process registry with token auth over memory stores, and helpers to make users and get tokens. */
export async function authRegistry(options: { now?: () => number; maxFailures?: number; usage?: boolean } = {}) {
  signingKey ??= TokenSigner.generatePem();
  const pem = await signingKey;
  const identities = new MemoryIdentityStore();
  const signer = await TokenSigner.fromPem(pem, SERVICE_NAME, SERVICE_NAME);
  const auth = new AuthService({ identities, signer, ...(options.now ? { now: options.now } : {}), ...(options.maxFailures ? { maxFailures: options.maxFailures } : {}) });
  const metadata = new MemoryMetadataStore();
  const registry = new Registry({ blobs: new MemoryBlobStore(), metadata, ...(options.usage ? { usage: new MemoryUsageStore(metadata) } : {}) });
  const app = createRegistryApp({ registry, auth, realm: 'http://registry.test/token' });

  async function addUser(name: string, grants: Array<[string, AccessLevel]> = [], extra: { admin?: boolean; scopes?: TokenScope[]; expiresAt?: number } = {}) {
    await identities.createUser({ name, admin: extra.admin ?? false, createdAt: Date.now() });
    for (const [glob, level] of grants) await identities.setGrant({ user: name, glob, level });
    const secret = newTokenSecret();
    await identities.createToken({
      id: secret.id,
      user: name,
      secretHash: secret.secretHash,
      createdAt: Date.now(),
      ...(extra.scopes ? { scopes: extra.scopes } : {}),
      ...(extra.expiresAt !== undefined ? { expiresAt: extra.expiresAt } : {}),
    });
    return { name, token: secret.token, tokenId: secret.id };
  }

  /** GET /token with Basic credentials (or none), as docker does. */
  async function getToken(scopes: string[], credentials?: { name: string; token: string }, extra = '') {
    const query = scopes.map((scope) => `scope=${encodeURIComponent(scope)}`).join('&');
    const headers: Record<string, string> = credentials ? { authorization: `Basic ${Buffer.from(`${credentials.name}:${credentials.token}`).toString('base64')}` } : {};
    return call(app, 'GET', `/token?service=ocireg&${query}${extra}`, { headers });
  }

  async function bearer(scopes: string[], credentials?: { name: string; token: string }): Promise<string> {
    const response = await getToken(scopes, credentials);
    if (response.status !== 200) throw new Error(`token request failed: ${response.status} ${response.body}`);
    return response.json().token as string;
  }

  const withBearer = (method: string, url: string, token: string | undefined, options: CallOptions = {}) =>
    call(app, method, url, { ...options, headers: { ...(options.headers ?? {}), ...(token ? { authorization: `Bearer ${token}` } : {}) } });

  return { app, auth, identities, registry, signer, pem, addUser, getToken, bearer, call: withBearer };
}
