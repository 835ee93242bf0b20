import { describe, expect, it } from 'vitest';
import { runGc } from '../../lib/registry/gc/run-gc.ts';
import { Registry } from '../../lib/registry/registry.ts';
import { StoreRetentionPlanner } from '../../lib/registry/retention-planner.ts';
import { MemoryBlobStore } from '../../lib/storage/memory/memory-blob-store.ts';
import { MemoryMetadataStore } from '../../lib/storage/memory/memory-metadata-store.ts';
import { MemoryPolicyStore } from '../../lib/storage/memory/memory-policy-store.ts';
import { MemoryTagHistoryStore } from '../../lib/storage/memory/memory-tag-history-store.ts';
import { image, push } from './gc.contract.ts';

/** The planner against a run's deadline (the scheduled function stops a minute before its timeout). */
describe('retention planner and the deadline', () => {
  it('stops after the repository it is in when the deadline has passed, skips the sweep, and the next run finishes', async () => {
    // Prepare: two repositories, each with an expired tag
    const blobs = new MemoryBlobStore();
    const metadata = new MemoryMetadataStore();
    const history = new MemoryTagHistoryStore(metadata);
    const registry = new Registry({ blobs, metadata, history });
    const policies = new MemoryPolicyStore();
    for (const name of ['a/app', 'b/app']) {
      await push(registry, image(name), 'old');
      await new Promise((resolve) => setTimeout(resolve, 3));
      await push(registry, image(name), 'new');
    }
    await policies.putPolicy({ glob: '*/app', keepLast: 1, protect: [], immutable: false, mutableTags: [], updatedAt: 1 });
    const plan = new StoreRetentionPlanner({ metadata, policies, history });
    // Act: a deadline already passed
    const late = await runGc({ metadata, blobs, plan, graceMs: 0, deadline: Date.now() - 1 });
    const next = await runGc({ metadata, blobs, plan, graceMs: 0 });
    // Assess: a/app only, no sweep, incomplete; then b/app and the sweep
    expect(late.complete).toBe(false);
    expect(late.removals.map((removal) => `${removal.kind} ${'name' in removal ? removal.name : ''}`)).toEqual(['tag a/app', 'manifest a/app']);
    expect(late.scanned).toEqual({ manifests: 0, links: 0, blobs: 0, uploads: 0 });
    expect(next.complete).toBe(true);
    expect(next.removals.filter((removal) => removal.kind === 'tag').map((removal) => removal.name)).toEqual(['b/app']);
    expect(next.removals.filter((removal) => removal.kind === 'link').map((removal) => removal.name).sort()).toEqual(['a/app', 'a/app', 'b/app', 'b/app']);
  });
});
