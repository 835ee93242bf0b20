import { describe, expect, it } from 'vitest';
import type { RepositoryPolicy } from '../../lib/registry/policy.ts';
import { planRepository, type RepositorySnapshot, type RetentionManifest } from '../../lib/registry/retention.ts';

const DAY = 86_400_000;
const NOW = Date.parse('2026-11-28T00:00:00Z');
const daysAgo = (days: number) => NOW - days * DAY;

function policy(fields: Partial<RepositoryPolicy>): RepositoryPolicy {
  return { glob: '**', protect: [], immutable: false, mutableTags: [], updatedAt: 1, ...fields };
}

const image = (digest: string, fields: Partial<RetentionManifest> = {}): RetentionManifest => ({ digest, children: [], ...fields });

function snapshot(tags: RepositorySnapshot['tags'], manifests: RetentionManifest[], rollbackTargets: Record<string, string[]> = {}): RepositorySnapshot {
  return { name: 'team/app', tags, manifests, rollbackTargets: new Map(Object.entries(rollbackTargets)) };
}

const expiredTags = (plan: ReturnType<typeof planRepository>) => plan.tags.map((tag) => tag.tag).sort();
const deletedManifests = (plan: ReturnType<typeof planRepository>) => plan.manifests.map((manifest) => manifest.digest).sort();

describe('retention plan', () => {
  it('keeps the last N tags by push time; protected tags neither expire nor take a slot', () => {
    const repo = snapshot(
      [
        { tag: 'a', digest: 'A', pushedAt: daysAgo(1) },
        { tag: 'b', digest: 'B', pushedAt: daysAgo(2) },
        { tag: 'c', digest: 'C', pushedAt: daysAgo(3) },
        { tag: 'v1', digest: 'V', pushedAt: daysAgo(400) },
      ],
      [image('A'), image('B'), image('C'), image('V')],
    );
    const plan = planRepository(repo, policy({ keepLast: 2, protect: ['v*'] }), NOW);
    expect(plan.tags).toEqual([{ name: 'team/app', tag: 'c', digest: 'C', reason: 'not among the 2 most recently pushed tags' }]);
    expect(plan.manifests).toEqual([{ name: 'team/app', digest: 'C', reason: 'its tags expired' }]);
  });

  it('counts re-tagging as a push: an old manifest re-tagged yesterday stays', () => {
    const repo = snapshot(
      [
        { tag: 'old', digest: 'O', pushedAt: daysAgo(100) },
        { tag: 'retagged', digest: 'O2', pushedAt: daysAgo(1) },
      ],
      [image('O'), image('O2')],
    );
    const plan = planRepository(repo, policy({ expireAfterMs: 30 * DAY }), NOW);
    expect(expiredTags(plan)).toEqual(['old']);
    expect(plan.tags[0]?.reason).toBe('pushed 100d ago (expire after 30d)');
  });

  it('expires tags neither pushed nor pulled for the duration; a recent pull keeps an old tag', () => {
    const repo = snapshot(
      [
        { tag: 'pulled', digest: 'P', pushedAt: daysAgo(200), pulledAt: daysAgo(2) },
        { tag: 'idle', digest: 'I', pushedAt: daysAgo(200), pulledAt: daysAgo(90) },
        { tag: 'unknown', digest: 'U' },
      ],
      [image('P'), image('I'), image('U')],
    );
    const plan = planRepository(repo, policy({ expireUnpulledMs: 30 * DAY }), NOW);
    expect(expiredTags(plan)).toEqual(['idle']);
  });

  it('never expires a protected tag by age either', () => {
    const repo = snapshot([{ tag: 'prod-eu', digest: 'P', pushedAt: daysAgo(999) }], [image('P')]);
    expect(planRepository(repo, policy({ expireAfterMs: DAY, protect: ['v*', 'prod-*'] }), NOW)).toEqual({ tags: [], manifests: [] });
  });

  it('keeps a manifest another kept tag points at, and the children of a kept index', () => {
    const repo = snapshot(
      [
        { tag: 'old', digest: 'INDEX', pushedAt: daysAgo(100) },
        { tag: 'new', digest: 'INDEX', pushedAt: daysAgo(1) },
      ],
      [image('INDEX', { children: ['AMD64', 'ARM64'] }), image('AMD64'), image('ARM64')],
    );
    const plan = planRepository(repo, policy({ expireAfterMs: 30 * DAY }), NOW);
    expect(expiredTags(plan)).toEqual(['old']);
    expect(plan.manifests).toEqual([]);
  });

  it('deletes an expired index with the children only it referenced, and referrers with their subject', () => {
    const repo = snapshot(
      [
        { tag: 'gone', digest: 'INDEX', pushedAt: daysAgo(100) },
        { tag: 'kept', digest: 'SHARED', pushedAt: daysAgo(1) },
      ],
      [
        image('INDEX', { children: ['ONLY', 'SHARED'] }),
        image('ONLY'),
        image('SHARED'),
        image('SIG', { subject: 'INDEX' }),
        image('SBOM-SIG', { subject: 'SIG' }),
        image('KEPT-SIG', { subject: 'SHARED' }),
      ],
    );
    const plan = planRepository(repo, policy({ expireAfterMs: 30 * DAY }), NOW);
    expect(deletedManifests(plan)).toEqual(['INDEX', 'ONLY', 'SBOM-SIG', 'SIG']);
    expect(plan.manifests.find((manifest) => manifest.digest === 'SIG')?.reason).toBe('its subject INDEX goes');
    expect(plan.manifests.find((manifest) => manifest.digest === 'ONLY')?.reason).toBe('only a deleted index referenced it');
  });

  it('expires untagged manifests after the duration, not before, and never a pinned rollback target', () => {
    const repo = snapshot(
      [{ tag: 'latest', digest: 'NOW', pushedAt: daysAgo(1) }],
      [image('NOW'), image('LONG', { untaggedSince: daysAgo(10) }), image('RECENT', { untaggedSince: daysAgo(1) }), image('ROLLBACK', { untaggedSince: daysAgo(10) }), image('NEVER-KNOWN')],
      { latest: ['NOW', 'ROLLBACK'], gone: ['RECENT'] },
    );
    const plan = planRepository(repo, policy({ expireUntaggedMs: 7 * DAY }), NOW);
    expect(plan.tags).toEqual([]);
    expect(plan.manifests).toEqual([{ name: 'team/app', digest: 'LONG', reason: 'untagged for 10d (expire untagged after 7d)' }]);
  });

  it('keeps untagged manifests when there is no untagged rule', () => {
    const repo = snapshot([], [image('LONG', { untaggedSince: daysAgo(1000) })]);
    expect(planRepository(repo, policy({ keepLast: 1 }), NOW)).toEqual({ tags: [], manifests: [] });
  });
});
