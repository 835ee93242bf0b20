import { randomBytes } from 'node:crypto';
import { readdir, readlink, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bytesOf, readAll } from '../../lib/registry/bytes.ts';
import { digestOf, parseDigest } from '../../lib/registry/digest.ts';
import { writeHttpResponse } from '../../lib/server/node-adapter.ts';
import { isRecyclableBody, RECYCLED_CHUNKS } from '../../lib/registry/recyclable-body.ts';
import { openFsStorage } from '../../lib/storage/fs/open-fs-storage.ts';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

/** A 3.5 MiB blob: several 512 KiB reads and a short last one. */
async function storedBlob() {
  const dir = await mkdtemp(join(tmpdir(), 'ocireg-recycled-'));
  dirs.push(dir);
  const { blobs } = await openFsStorage(dir);
  const content = randomBytes(3.5 * 1024 * 1024 + 123);
  const state = await blobs.startUpload('recycled');
  const appended = await blobs.append(state, 0, bytesOf(content));
  const location = await blobs.commit(appended.state, parseDigest(digestOf(content)), appended.size);
  return { blobs, content, dir, location };
}

async function openBlobFiles(dir: string): Promise<number> {
  const links = await Promise.all((await readdir('/proc/self/fd')).map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')));
  return links.filter((target) => target.startsWith(join(dir, 'blobs'))).length;
}

describe('FsBlobStore reads through one reused buffer (RECYCLED_CHUNKS)', () => {
  it('yields the same bytes as the stream, whole and for a range, and closes the file', async () => {
    const { blobs, content, dir, location } = await storedBlob();
    for (const range of [undefined, { start: 0, end: 0 }, { start: 524_287, end: 2_000_000 }, { start: content.length - 5, end: content.length - 1 }]) {
      const read = await blobs.read(location, range);
      expect(read.kind).toBe('stream');
      const body = read.kind === 'stream' ? read.body : undefined;
      if (!isRecyclableBody(body)) throw new Error('the body offers no RECYCLED_CHUNKS');
      const chunks: Buffer[] = [];
      const buffers = new Set<ArrayBufferLike>();
      for await (const chunk of body[RECYCLED_CHUNKS]()) {
        chunks.push(Buffer.from(chunk)); // copied: the next chunk overwrites this one
        buffers.add(chunk.buffer);
      }
      const expected = range ? content.subarray(range.start, range.end + 1) : content;
      expect(Buffer.concat(chunks).equals(expected)).toBe(true);
      expect(buffers.size).toBe(1);
    }
    expect(await openBlobFiles(dir)).toBe(0);
  });

  it('still reads as an ordinary stream, fresh buffers, for any other consumer', async () => {
    const { blobs, content, location } = await storedBlob();
    const read = await blobs.read(location);
    expect(read.kind === 'stream' && Buffer.from(await readAll(read.body)).equals(content)).toBe(true);
  });

  it('is what the node:http adapter sends, byte for byte, and a dropped connection closes the file', async () => {
    const { blobs, content, dir, location } = await storedBlob();
    const server: Server = createServer((req, res) => {
      void blobs.read(location).then((read) =>
        writeHttpResponse(req, res, { status: 200, headers: { 'content-length': String(content.length) }, body: read.kind === 'stream' ? read.body : undefined }),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    try {
      expect(Buffer.from(await (await fetch(url)).arrayBuffer()).equals(content)).toBe(true);

      const abort = new AbortController();
      const response = await fetch(url, { signal: abort.signal });
      await response.body!.getReader().read();
      abort.abort();
      await expect.poll(() => openBlobFiles(dir), { timeout: 5000 }).toBe(0);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
