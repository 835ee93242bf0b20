import { tagImmutable } from './errors.ts';
import { tagMayMove } from './policy.ts';
import type { PolicyCache } from './policy-cache.ts';
import { TagFixedConflict, type MetadataStore, type PutManifestOptions } from './ports.ts';
import type { StoredManifest } from './types.ts';

/**
 * Every write that points tags at a manifest (a push, a rollback, a promotion) goes through here, with its references
 * and tag history (`options`): the tags the repository's policy makes immutable are passed to the store as fixed, so
 * the store refuses to move them atomically, and its refusal becomes the DENIED error that names the rule.
 */
export async function putManifestWithPolicy(
  metadata: MetadataStore,
  policies: PolicyCache | undefined,
  name: string,
  manifest: StoredManifest,
  tags: string[],
  options: Omit<PutManifestOptions, 'fixedTags'> = {},
): Promise<void> {
  const policy = tags.length > 0 ? await policies?.policyFor(name) : undefined;
  const fixedTags = tags.filter((tag) => !tagMayMove(policy, tag));
  try {
    await metadata.putManifest(name, manifest, tags, { ...options, ...(fixedTags.length > 0 ? { fixedTags } : {}) });
  } catch (error) {
    if (error instanceof TagFixedConflict && policy) throw tagImmutable(name, error.tag, error.current, policy);
    throw error;
  }
}
