import { randomUUID } from 'node:crypto';
import { link, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/**
 * Writes `data` to `path` so that readers see the old file or the new one, never a part: write a temp file in
 * the same filesystem, flush it to disk, rename it over the target.
 */
export async function writeFileAtomic(tmpDir: string, path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const tmp = join(tmpDir, randomUUID());
  const file = await open(tmp, 'w', mode);
  try {
    await file.writeFile(data);
    await file.sync();
  } finally {
    await file.close();
  }
  try {
    await mkdir(dirname(path), { recursive: true });
    await rename(tmp, path);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
}

/**
 * Creates `path` with `data` unless it exists, atomically: the complete temp file is hard-linked into place,
 * which fails with EEXIST when another writer got there first. Returns whether this call created it.
 */
export async function createFileExclusive(tmpDir: string, path: string, data: string | Uint8Array): Promise<boolean> {
  const tmp = join(tmpDir, randomUUID());
  await writeFileAtomic(tmpDir, tmp, data);
  try {
    await mkdir(dirname(path), { recursive: true });
    await link(tmp, path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    await rm(tmp, { force: true });
  }
}

/** The file's text, or undefined when it does not exist. */
export async function readFileIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/** Removes a file; false when there was none. */
export async function removeFile(path: string): Promise<boolean> {
  try {
    await rm(path);
    return true;
  } catch (error) {
    if (isNotFound(error)) return false;
    throw error;
  }
}

export function isNotFound(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
