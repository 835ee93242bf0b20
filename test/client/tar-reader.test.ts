import { mkdir, open, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { normalizeTarPath, readTarIndex, resolveTarEntry, type TarEntry } from '../../lib/client/tar-reader.ts';
import { tempDirs } from '../support/temp-dirs.ts';
import { requireTools, runTool as run } from '../support/tools.ts';

const temp = tempDirs('ocireg-tar-');
afterAll(() => temp.cleanUp());

async function tree(): Promise<{ dir: string; longPath: string; files: Record<string, Buffer> }> {
  const dir = await temp.make();
  const longDir = `${'d'.repeat(60)}/${'e'.repeat(60)}`;
  const longPath = `${longDir}/${'f'.repeat(90)}.bin`;
  const files: Record<string, Buffer> = {
    'small.txt': Buffer.from('hello\n'),
    'empty': Buffer.alloc(0),
    'blocks.bin': Buffer.alloc(1536, 7),
    [longPath]: Buffer.from('deep inside\n'),
  };
  await mkdir(join(dir, longDir), { recursive: true });
  for (const [name, bytes] of Object.entries(files)) await writeFile(join(dir, name), bytes);
  await mkdir(join(dir, 'b'));
  await symlink('../small.txt', join(dir, 'b', 'link.txt'));
  return { dir, longPath, files };
}

async function bytesOf(archive: string, entry: TarEntry): Promise<Buffer> {
  const handle = await open(archive, 'r');
  try {
    const buffer = Buffer.alloc(entry.size);
    await handle.read(buffer, 0, entry.size, entry.offset);
    return buffer;
  } finally {
    await handle.close();
  }
}

describe('readTarIndex', () => {
  for (const format of ['gnu', 'pax', 'ustar']) {
    it(`finds every member and where its bytes are in a ${format} archive`, async () => {
      // Prepare
      await requireTools('tar');
      const { dir, longPath, files } = await tree();
      const archive = join(dir, `${format}.tar`);
      const created = await run('tar', ['-C', dir, `--format=${format}`, '-cf', archive, './small.txt', './empty', './blocks.bin', `./${longPath}`, './b/link.txt']);
      expect(created.code, created.stderr).toBe(0);

      // Act
      const handle = await open(archive, 'r');
      const entries = await readTarIndex(handle);
      await handle.close();

      // Assess
      const byName = new Map(entries.map((entry) => [entry.name, entry]));
      for (const [name, bytes] of Object.entries(files)) {
        const entry = byName.get(name);
        expect(entry, name).toBeDefined();
        expect((await bytesOf(archive, entry!)).equals(bytes)).toBe(true);
      }
      expect(byName.get('b/link.txt')).toMatchObject({ type: 'symlink', linkName: '../small.txt' });
      const resolved = resolveTarEntry(byName, './b/link.txt');
      expect(resolved?.name).toBe('small.txt');
    });
  }

  it('refuses a gzip file and a file that is not a tar, saying what it is', async () => {
    const dir = await temp.make();
    await writeFile(join(dir, 'x.tar.gz'), gzipSync(Buffer.alloc(2048)));
    await writeFile(join(dir, 'x.json'), Buffer.from(`{"not":"a tar"}${' '.repeat(600)}`));
    const gz = await open(join(dir, 'x.tar.gz'), 'r');
    await expect(readTarIndex(gz)).rejects.toThrow(/gzip file, not a tar/);
    await gz.close();
    const json = await open(join(dir, 'x.json'), 'r');
    await expect(readTarIndex(json)).rejects.toThrow(/checksum/);
    await json.close();
  });

  it('follows symlinks relative to their directory and hard links from the root, and gives up on loops', async () => {
    const entries = new Map<string, TarEntry>([
      ['a/layer.tar', { name: 'a/layer.tar', type: 'file', offset: 512, size: 10 }],
      ['b/layer.tar', { name: 'b/layer.tar', type: 'hardlink', offset: 1536, size: 0, linkName: 'a/layer.tar' }],
      ['c/layer.tar', { name: 'c/layer.tar', type: 'symlink', offset: 2048, size: 0, linkName: '../b/layer.tar' }],
      ['loop', { name: 'loop', type: 'symlink', offset: 0, size: 0, linkName: 'loop' }],
    ]);
    expect(resolveTarEntry(entries, 'c/layer.tar')?.offset).toBe(512);
    expect(resolveTarEntry(entries, 'loop')).toBeUndefined();
    expect(normalizeTarPath('./blobs/sha256/')).toBe('blobs/sha256');
  });
});
