import { describe, expect, it } from 'vitest';
import { createRegistryApp } from '../../lib/http/app.ts';
import type { RegistryEvent } from '../../lib/registry/events.ts';
import { MediaType } from '../../lib/registry/manifest.ts';
import { Registry } from '../../lib/registry/registry.ts';
import { MemoryBlobStore } from '../../lib/storage/memory/memory-blob-store.ts';
import { MemoryMetadataStore } from '../../lib/storage/memory/memory-metadata-store.ts';
import { MemoryTagHistoryStore } from '../../lib/storage/memory/memory-tag-history-store.ts';
import { call } from '../support/app-client.ts';
import { imageManifest, randomBlob, type Blob } from '../support/builders.ts';

/** A registry over memory stores with tag history and an event sink that keeps what it is given. */
function versionedRegistry(depth = 10) {
  const blobs = new MemoryBlobStore();
  const metadata = new MemoryMetadataStore();
  const events: RegistryEvent[][] = [];
  const registry = new Registry({ blobs, metadata, history: new MemoryTagHistoryStore(metadata, depth), events: { publish: async (batch) => void events.push(batch) } });
  const app = createRegistryApp({ registry });
  const send = (method: string, url: string, options: Parameters<typeof call>[3] = {}) => call(app, method, url, options);
  /** Pushes a fresh image (its blobs, then the manifest under `tag`) and returns its digest and bytes. */
  const pushImage = async (name: string, tag: string, userAgent = 'docker/27.0') => {
    const [config, layer]: [Blob, Blob] = [randomBlob(50), randomBlob(700)];
    for (const blob of [config, layer]) expect((await send('POST', `/v2/${name}/blobs/uploads/?digest=${blob.digest}`, { body: blob.bytes })).status).toBe(201);
    const manifest = imageManifest(config, [layer]);
    const put = await send('PUT', `/v2/${name}/manifests/${tag}`, { body: manifest.bytes, headers: { 'content-type': MediaType.ociManifest, 'user-agent': userAgent } });
    expect(put.status).toBe(201);
    return { ...manifest, size: manifest.bytes.byteLength + config.bytes.byteLength + layer.bytes.byteLength };
  };
  const command = (path: string, body: unknown) => send('POST', path, { body: JSON.stringify(body), headers: { 'content-type': 'application/json', 'user-agent': 'ocireg/0.1' } });
  return { send, pushImage, command, events, blobs, metadata, registry };
}

describe('tag history over /v2/<name>/_ocireg/history/<tag>', () => {
  it('records created, moved and deleted with digests, who and the User-Agent, newest first', async () => {
    // Prepare
    const { send, pushImage } = versionedRegistry();
    const first = await pushImage('team/app', 'latest', 'docker/27.0');
    const second = await pushImage('team/app', 'latest', 'containerd/2.0');
    // Act
    expect((await send('DELETE', '/v2/team/app/manifests/latest')).status).toBe(202);
    const response = await send('GET', '/v2/team/app/_ocireg/history/latest');
    // Assess
    expect(response.status).toBe(200);
    const { changes } = response.json();
    expect(changes.map((change: { action: string; previous?: string; digest?: string }) => [change.action, change.previous, change.digest])).toEqual([
      ['deleted', second.digest, undefined],
      ['moved', first.digest, second.digest],
      ['created', undefined, first.digest],
    ]);
    expect(changes[1]).toMatchObject({ actor: { subject: 'anonymous' }, userAgent: 'containerd/2.0' });
    expect(Date.parse(changes[0].at)).toBeGreaterThanOrEqual(Date.parse(changes[2].at));
  });

  it('records the tags a manifest DELETE by digest removed', async () => {
    const { send, pushImage, command } = versionedRegistry();
    const image = await pushImage('team/del', 'v1');
    await command('/v2/team/del/_ocireg/tag', { reference: 'v1', tags: ['prod'] });
    expect((await send('DELETE', `/v2/team/del/manifests/${image.digest}`)).status).toBe(202);
    for (const tag of ['v1', 'prod']) {
      expect((await send('GET', `/v2/team/del/_ocireg/history/${tag}`)).json().changes[0]).toMatchObject({ action: 'deleted', previous: image.digest });
    }
  });

  it('answers NAME_INVALID and TAG_INVALID-shaped errors for a bad name or tag', async () => {
    const { send } = versionedRegistry();
    const badTag = await send('GET', '/v2/team/app/_ocireg/history/-bad');
    expect(badTag.status).toBe(400);
    expect(badTag.json().errors[0].code).toBeDefined();
    expect((await send('GET', '/v2/Bad_Name/_ocireg/history/latest')).json().errors[0].code).toBe('NAME_INVALID');
  });
});

describe('rollback over POST /v2/<name>/_ocireg/rollback/<tag>', () => {
  it('moves the tag one step back by default, N steps back, or to a digest, recording each as a change', async () => {
    // Prepare
    const { send, pushImage, command } = versionedRegistry();
    const [d1, d2, d3] = [await pushImage('r/app', 'v'), await pushImage('r/app', 'v'), await pushImage('r/app', 'v')];
    // Act + Assess: one step
    const one = await command('/v2/r/app/_ocireg/rollback/v', {});
    expect(one.status).toBe(200);
    expect(one.json()).toMatchObject({ previous: d3.digest, digest: d2.digest });
    expect((await send('GET', '/v2/r/app/manifests/v')).headers['docker-content-digest']).toBe(d2.digest);
    // The rollback is the newest change; two steps back from it is d3's predecessor's predecessor… counted on recorded changes.
    const history = (await send('GET', '/v2/r/app/_ocireg/history/v')).json().changes;
    expect(history[0]).toMatchObject({ action: 'moved', previous: d3.digest, digest: d2.digest, userAgent: 'ocireg/0.1' });
    // Three steps back from [d3→d2, d2→d3, d1→d2, →d1]: before d1→d2, i.e. d1.
    expect((await command('/v2/r/app/_ocireg/rollback/v', { steps: 3 })).json()).toMatchObject({ previous: d2.digest, digest: d1.digest });
    expect((await command('/v2/r/app/_ocireg/rollback/v', { to: d3.digest })).json()).toMatchObject({ previous: d1.digest, digest: d3.digest });
    expect((await send('GET', '/v2/r/app/manifests/v')).headers['docker-content-digest']).toBe(d3.digest);
  });

  it('refuses to go further back than the history holds, to an unknown digest, or with a malformed body', async () => {
    const { pushImage, command, send } = versionedRegistry();
    await pushImage('r/short', 'v');
    const tooFar = await command('/v2/r/short/_ocireg/rollback/v', { steps: 1 });
    expect(tooFar.status).toBe(404);
    expect(tooFar.json().errors[0]).toMatchObject({ code: 'MANIFEST_UNKNOWN' });
    expect(tooFar.json().errors[0].message).toContain('no version 1 step(s) back');
    const unknown = await command('/v2/r/short/_ocireg/rollback/v', { to: `sha256:${'0'.repeat(64)}` });
    expect(unknown.json().errors[0].code).toBe('MANIFEST_UNKNOWN');
    expect((await command('/v2/r/short/_ocireg/rollback/v', { steps: 0 })).status).toBe(405);
    const garbage = await send('POST', '/v2/r/short/_ocireg/rollback/v', { body: '{nope' });
    expect(garbage.json().errors[0].message).toContain('not JSON');
  });

  it('brings a deleted tag back one step', async () => {
    const { pushImage, command, send } = versionedRegistry();
    const image = await pushImage('r/undelete', 'v');
    expect((await send('DELETE', '/v2/r/undelete/manifests/v')).status).toBe(202);
    expect((await command('/v2/r/undelete/_ocireg/rollback/v', {})).json()).toMatchObject({ digest: image.digest });
    expect((await send('GET', '/v2/r/undelete/manifests/v')).status).toBe(200);
  });

  it('refuses --steps when the tag no longer points where its history ends (a change went unrecorded)', async () => {
    const { pushImage, command, metadata } = versionedRegistry();
    await pushImage('r/gap', 'v');
    await pushImage('r/gap', 'v');
    // A write that records nothing (data from before the history, a pull-through cache fill): the tag changed, the history did not.
    await metadata.deleteTag('r/gap', 'v');
    const refused = await command('/v2/r/gap/_ocireg/rollback/v', { steps: 1 });
    expect(refused.status).toBe(409);
    expect(refused.json().errors[0].code).toBe('TAG_CONFLICT');
  });
});

describe('promotion and tag details', () => {
  it('points new tags at a manifest by tag or digest without moving a blob, and lists tags with digest, size and push time', async () => {
    // Prepare
    const { send, pushImage, command, events } = versionedRegistry();
    const image = await pushImage('p/app', 'sha-abc');
    // Act
    const promoted = await command('/v2/p/app/_ocireg/tag', { reference: 'sha-abc', tags: ['prod', 'stable'] });
    const byDigest = await command('/v2/p/app/_ocireg/tag', { reference: image.digest, tags: ['by-digest'] });
    // Assess
    expect(promoted.json()).toEqual({ name: 'p/app', digest: image.digest, tags: ['prod', 'stable'] });
    expect(byDigest.status).toBe(200);
    const listing = (await send('GET', '/v2/p/app/_ocireg/tags')).json();
    expect(listing.tags.map((tag: { tag: string }) => tag.tag)).toEqual(['by-digest', 'prod', 'sha-abc', 'stable']);
    for (const tag of listing.tags) expect(tag).toMatchObject({ digest: image.digest, size: image.size, mediaType: MediaType.ociManifest, pushedAt: expect.any(String) });
    expect(events.flat().map((event) => [event.detail['action-type'], event.detail['image-tags']])).toEqual([
      ['PUSH', ['sha-abc']],
      ['TAG', ['prod', 'stable']],
      ['TAG', ['by-digest']],
    ]);
    const page = await send('GET', '/v2/p/app/_ocireg/tags?n=2');
    expect(page.json().tags).toHaveLength(2);
    expect(page.headers.link).toContain('last=prod');
  });

  it('answers MANIFEST_UNKNOWN for an unknown reference and NAME_UNKNOWN for an empty repository', async () => {
    const { send, command, pushImage } = versionedRegistry();
    await pushImage('p/x', 'a');
    expect((await command('/v2/p/x/_ocireg/tag', { reference: 'nope', tags: ['b'] })).json().errors[0].code).toBe('MANIFEST_UNKNOWN');
    expect((await command('/v2/p/x/_ocireg/tag', { reference: 'a' })).status).toBe(405);
    expect((await send('GET', '/v2/p/none/_ocireg/tags')).json().errors[0].code).toBe('NAME_UNKNOWN');
  });
});

describe('garbage collection in the tag history and events', () => {
  it('records a tag the retention rules removed as deleted by gc with the rule, once, and publishes one GC event per report', async () => {
    // Prepare: the planner deleted the tag without a history entry
    const { send, pushImage, events, metadata, registry } = versionedRegistry();
    const image = await pushImage('team/expired', 'v1');
    await metadata.deleteTag('team/expired', 'v1');
    const removal = { kind: 'tag' as const, name: 'team/expired', tag: 'v1', digest: image.digest, reason: 'not among the 1 most recently pushed tags' };
    events.length = 0;
    // Act
    await registry.versions.recordCollected(removal);
    await registry.versions.recordCollected(removal);
    // Assess
    const { changes } = (await send('GET', '/v2/team/expired/_ocireg/history/v1')).json();
    expect(changes.map((change: { action: string }) => change.action)).toEqual(['deleted', 'created']);
    expect(changes[0]).toMatchObject({ previous: image.digest, actor: { subject: 'gc' }, reason: 'removed by retention: not among the 1 most recently pushed tags' });
    const detail = { 'action-type': 'GC', result: 'SUCCESS', 'repository-name': 'team/expired', 'image-digest': image.digest, 'artifact-type': 'tag', 'image-tag': 'v1', 'image-tags': ['v1'], reason: removal.reason };
    expect(events.flat().map((event) => event.detail)).toEqual([detail, detail]);
  });

  it('publishes nothing for removals outside a repository (blob records, uploads, stray bytes)', async () => {
    const { events, registry } = versionedRegistry();
    await registry.versions.recordCollected({ kind: 'blob', digest: `sha256:${'0'.repeat(64)}`, bytes: 10 });
    await registry.versions.recordCollected({ kind: 'upload', uploadId: 'u1', bytes: 0 });
    await registry.versions.recordCollected({ kind: 'bytes', location: 'sha256/00', bytes: 1 });
    expect(events).toEqual([]);
  });
});
