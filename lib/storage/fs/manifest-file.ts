import type { StoredManifest } from '../../registry/types.ts';

/** A manifest record on disk: the stored manifest with its bytes in base64. */
export interface ManifestFile extends Omit<StoredManifest, 'content'> {
  content: string;
}

export function toManifestFile(manifest: StoredManifest): ManifestFile {
  return { ...manifest, content: Buffer.from(manifest.content).toString('base64') };
}

export function fromManifestFile(file: ManifestFile): StoredManifest {
  return { ...file, content: Buffer.from(file.content, 'base64') };
}
