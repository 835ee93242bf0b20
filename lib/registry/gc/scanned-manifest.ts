import { parseManifest } from '../manifest.ts';
import type { GcEntry } from './gc-entries.ts';

/** A manifest as the collector keeps it after the scan: its references, not its content. */
export interface ScannedManifest {
  name: string;
  digest: string;
  size: number;
  subject: string | undefined;
  tagged: boolean;
  storedAt: number;
  blobs: string[];
  manifests: string[];
}

export function scanned(entry: Extract<GcEntry, { kind: 'manifest' }>): ScannedManifest {
  const { manifest } = entry;
  let parsed;
  try {
    parsed = parseManifest(manifest.content, manifest.mediaType);
  } catch (cause) {
    // Its references are unknown: sweeping could break it. Stop rather than guess.
    throw new Error(`garbage collection stopped: manifest ${entry.name}@${manifest.digest} cannot be parsed, so its references are unknown`, { cause });
  }
  return {
    name: entry.name,
    digest: manifest.digest,
    size: manifest.content.byteLength,
    subject: manifest.subject,
    tagged: entry.tagged,
    storedAt: entry.storedAt,
    blobs: parsed.blobs,
    manifests: parsed.manifests,
  };
}

/** One key for a (repository, digest) pair. */
export function pair(name: string, digest: string): string {
  return `${name}\u0000${digest}`;
}
