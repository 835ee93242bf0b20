import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { MAX_MANIFEST_BYTES } from '../registry/manifest.ts';
import type { BlobContent } from './blob-uploader.ts';
import type { ImageSource, ManifestNode } from './image-source.ts';
import { normalizeTarPath, readTarIndex, resolveTarEntry, type TarEntry } from './tar-reader.ts';

/**
 * Where an image source's files are: a directory (an OCI layout) or members of a tar (an OCI archive, `docker save`
 * output), both as regions of files on disk that blobs are streamed from with offsets, never loaded whole.
 */

/** A region of a file on disk. */
export interface FileRegion {
  path: string;
  offset: number;
  size: number;
}

export interface Files {
  /** The region holding a path of the layout or archive, or undefined when absent. */
  find(path: string): Promise<FileRegion | undefined>;
  what: string;
}

export function directoryFiles(root: string): Files {
  return {
    what: `the directory ${root}`,
    async find(path) {
      const full = join(root, path);
      const info = await stat(full).catch(() => undefined);
      return info?.isFile() ? { path: full, offset: 0, size: info.size } : undefined;
    },
  };
}

export async function tarFiles(file: string): Promise<{ files: Files; close: () => Promise<void> }> {
  let handle: FileHandle;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    throw new Error(`cannot open ${file}: ${(error as Error).message}`);
  }
  let entries: Map<string, TarEntry>;
  try {
    entries = new Map((await readTarIndex(handle)).map((entry) => [entry.name, entry]));
  } catch (error) {
    throw new Error(`${file}: ${(error as Error).message}`);
  } finally {
    await handle.close();
  }
  return {
    files: {
      what: `the archive ${file}`,
      async find(path) {
        const entry = resolveTarEntry(entries, normalizeTarPath(path));
        return entry ? { path: file, offset: entry.offset, size: entry.size } : undefined;
      },
    },
    close: async () => undefined,
  };
}

/** Reads a manifest or config into memory: at most the registry's manifest limit, as a registry would accept. */
export async function readRegion(region: FileRegion, limit = MAX_MANIFEST_BYTES): Promise<Buffer> {
  if (region.size > limit) throw new Error(`${region.path}: ${region.size} bytes is too large for a manifest or config`);
  const handle = await open(region.path, 'r');
  try {
    const buffer = Buffer.alloc(region.size);
    const { bytesRead } = await handle.read(buffer, 0, region.size, region.offset);
    if (bytesRead !== region.size) throw new Error(`${region.path}: short read`);
    return buffer;
  } finally {
    await handle.close();
  }
}

function regionContent(digest: string, region: FileRegion): BlobContent {
  return {
    digest,
    size: region.size,
    open: (start, end) => createReadStream(region.path, { start: region.offset + start, end: region.offset + end, highWaterMark: 256 * 1024 }),
  };
}

/** An image source whose blobs are regions of files (a layout directory or an archive), by digest. */
export function sourceOfRegions(description: string, root: ManifestNode, regions: Map<string, FileRegion>, close: () => Promise<void>): ImageSource {
  return {
    description,
    root,
    blob(digest) {
      const region = regions.get(digest);
      if (!region) throw new Error(`no blob ${digest} in ${description}`);
      return regionContent(digest, region);
    },
    close,
  };
}

export async function hashRegion(region: FileRegion): Promise<string> {
  const hash = createHash('sha256');
  if (region.size > 0) {
    await pipeline(createReadStream(region.path, { start: region.offset, end: region.offset + region.size - 1, highWaterMark: 1024 * 1024 }), hash);
  }
  return `sha256:${hash.digest('hex')}`;
}

export function parseJson(bytes: Buffer, what: string): Record<string, unknown> {
  try {
    const value = JSON.parse(bytes.toString('utf8')) as unknown;
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new Error(`${what} is not a JSON object`);
}
