import { describe, expect, it } from 'vitest';
import { createRegistryApp } from '../../lib/http/app.ts';
import { digestOf } from '../../lib/registry/digest.ts';
import type { RepositoryPolicy } from '../../lib/registry/policy.ts';
import { PolicyCache } from '../../lib/registry/policy-cache.ts';
import { Registry } from '../../lib/registry/registry.ts';
import { MemoryBlobStore } from '../../lib/storage/memory/memory-blob-store.ts';
import { MemoryMetadataStore } from '../../lib/storage/memory/memory-metadata-store.ts';
import { MemoryPolicyStore } from '../../lib/storage/memory/memory-policy-store.ts';
import { call } from '../support/app-client.ts';

const INDEX = 'application/vnd.oci.image.index.v1+json';

/** An empty index with a label: a valid manifest that references nothing, different per label. */
function manifest(label: string): string {
  return JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests: [], annotations: { label } });
}

function policy(glob: string, fields: Partial<RepositoryPolicy>): RepositoryPolicy {
  return { glob, protect: [], immutable: false, mutableTags: [], updatedAt: 1, ...fields };
}

async function setup(policies: RepositoryPolicy[], cacheMs = 0) {
  const store = new MemoryPolicyStore();
  for (const written of policies) await store.putPolicy(written);
  const registry = new Registry({ blobs: new MemoryBlobStore(), metadata: new MemoryMetadataStore(), policies: new PolicyCache(store, cacheMs) });
  const app = createRegistryApp({ registry, log: () => {} });
  const put = (name: string, tag: string, label: string) => call(app, 'PUT', `/v2/${name}/manifests/${tag}`, { body: manifest(label), headers: { 'content-type': INDEX } });
  return { store, put, app, registry };
}

describe('immutable tags', () => {
  it('refuses to move an immutable tag with 403 DENIED naming the rule, and keeps the tag', async () => {
    // Prepare
    const { put, app } = await setup([policy('team/*', { immutable: true, mutableTags: ['latest', 'dev-*'] })]);
    expect((await put('team/app', 'v1', 'a')).status).toBe(201);
    // Act
    const moved = await put('team/app', 'v1', 'b');
    // Assess
    expect(moved.status).toBe(403);
    const [error] = (moved.json() as { errors: Array<{ code: string; message: string }> }).errors;
    expect(error?.code).toBe('DENIED');
    expect(error?.message).toBe(`tag v1 is immutable in team/app (policy team/*: tags are immutable except latest, dev-*); it points at ${digestOf(new TextEncoder().encode(manifest('a')))}: push under a new tag`);
    const pulled = await call(app, 'GET', '/v2/team/app/manifests/v1', { headers: { accept: INDEX } });
    expect(pulled.body.toString()).toBe(manifest('a'));
  });

  it('accepts the same digest again, and moves the excluded tags', async () => {
    const { put } = await setup([policy('team/*', { immutable: true, mutableTags: ['latest', 'dev-*'] })]);
    expect((await put('team/app', 'v1', 'a')).status).toBe(201);
    expect((await put('team/app', 'v1', 'a')).status).toBe(201);
    for (const tag of ['latest', 'dev-42']) {
      expect((await put('team/app', tag, 'a')).status).toBe(201);
      expect((await put('team/app', tag, 'b')).status).toBe(201);
    }
    expect((await put('team/app', 'dev', 'a')).status).toBe(201);
    expect((await put('team/app', 'dev', 'b')).status).toBe(403);
  });

  it('applies the most specific policy: an exact repository overrides its glob', async () => {
    const { put } = await setup([policy('team/*', { immutable: true }), policy('team/scratch', { keepLast: 3 })]);
    for (const name of ['team/app', 'team/scratch', 'other/app']) expect((await put(name, 'v1', 'a')).status).toBe(201);
    expect((await put('team/app', 'v1', 'b')).status).toBe(403);
    expect((await put('team/scratch', 'v1', 'b')).status).toBe(201);
    expect((await put('other/app', 'v1', 'b')).status).toBe(201);
  });

  it('refuses a server-side promotion that would move an immutable tag', async () => {
    const { put, registry } = await setup([policy('team/*', { immutable: true })]);
    expect((await put('team/app', 'v1', 'a')).status).toBe(201);
    expect((await put('team/app', 'v2', 'b')).status).toBe(201);
    await expect(registry.versions.promote('team/app', 'v1', ['v2'])).rejects.toMatchObject({ code: 'DENIED', message: expect.stringContaining('tag v2 is immutable in team/app') });
    await expect(registry.versions.promote('team/app', 'v1', ['v3'])).resolves.toMatchObject({ tags: ['v3'] });
  });

  it('takes effect without a restart once the cache expires', async () => {
    const { put, store } = await setup([], 0);
    expect((await put('team/app', 'v1', 'a')).status).toBe(201);
    await store.putPolicy(policy('**', { immutable: true }));
    expect((await put('team/app', 'v1', 'b')).status).toBe(403);
    await store.deletePolicy('**');
    expect((await put('team/app', 'v1', 'b')).status).toBe(201);
  });
});
