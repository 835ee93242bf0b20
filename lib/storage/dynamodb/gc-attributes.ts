/**
 * Garbage-collection attributes of blob records, links and manifest items (keys.ts lists the items). Items written
 * before garbage collection existed have none: never referenced since, created at 0 (old).
 */
export const GC_ATTRIBUTES = {
  /** Epoch ms the item was written (a link: its last (re)link; a manifest: its last push). */
  createdAt: 'createdAt',
  /** Epoch ms of the last write that referenced it, by the writer's clock (or a lease end, see putManifest). */
  referencedAt: 'lastReferencedAt',
  /** The id of the collector run that will delete it; every referencing write refuses a doomed item. */
  doomed: 'doomed',
} as const;
