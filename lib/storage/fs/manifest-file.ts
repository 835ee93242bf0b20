import type { StoredManifest } from '../../registry/types.ts';

/** A manifest record on disk: the stored manifest with its bytes in base64. */
export interface ManifestFile extends Omit<StoredManifest, 'content'> {
  content: string;
}

/** The record of a manifest; its last pull is kept apart (fs-pull-records.ts). */
export function toManifestFile(manifest: StoredManifest): ManifestFile {
  const { pulledAt: _kept, ...stored } = manifest;
  return { ...stored, content: Buffer.from(manifest.content).toString('base64') };
}

export function fromManifestFile(file: ManifestFile): StoredManifest {
  return { ...file, content: Buffer.from(file.content, 'base64') };
}
