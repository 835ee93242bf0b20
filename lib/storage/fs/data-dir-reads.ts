import { access, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isNotFound, readFileIfExists } from './atomic-file.ts';

/** The names in a directory; none when it does not exist. */
export async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    if (isNotFound(error)) return [];
    throw error;
  }
}

/** The entries two directory levels down: [first, second] pairs, e.g. [algorithm, file]. */
export async function listTwoLevels(dir: string): Promise<[string, string][]> {
  const pairs: [string, string][] = [];
  for (const first of await listDir(dir)) for (const second of await listDir(join(dir, first))) pairs.push([first, second]);
  return pairs;
}

/** A JSON file and its modification time, or undefined when it does not exist. */
export async function readDated<T>(path: string): Promise<{ value: T; at: number } | undefined> {
  const [text, info] = await Promise.all([readFileIfExists(path), statIfExists(path)]);
  return text === undefined || info === undefined ? undefined : { value: JSON.parse(text) as T, at: info.changedAt };
}

/**
 * Size and the later of modification and status change (a rename sets the change time: bytes renamed into place
 * count as new), or undefined when absent.
 */
export async function statIfExists(path: string): Promise<{ size: number; changedAt: number } | undefined> {
  try {
    const info = await stat(path);
    return { size: info.size, changedAt: Math.max(info.mtimeMs, info.ctimeMs) };
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

export async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    (error: unknown) => (isNotFound(error) ? false : Promise.reject(error)),
  );
}
