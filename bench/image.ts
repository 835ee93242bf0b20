import { createHash, randomFillSync } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import { createGzip } from 'node:zlib';

/** One layer of the benchmark image as written to the OCI layout. */
export interface BenchLayer {
  digest: string;
  /** Bytes of the (gzip) blob: what goes over the wire. */
  size: number;
  diffId: string;
}

/** A benchmark image on disk as an OCI image layout, tagged `tag`. */
export interface BenchImage {
  layout: string;
  tag: string;
  layers: BenchLayer[];
  manifestDigest: string;
  /** Total bytes a push or a pull moves: layers, config and manifest. */
  bytes: number;
  /** The blob files, for the physical reference (hash and durable write of the same bytes). */
  blobPaths: string[];
}

export interface ImageSpec {
  layers: number;
  /** Random bytes per layer (the blob is a few hundred bytes larger: tar header, gzip framing). */
  layerBytes: number;
}

const TAG = 'bench';
const CHUNK = 1024 * 1024;

/**
 * Builds (or reuses, when `<layout>/bench-image.json` matches the spec) an image of `layers` layers of random,
 * incompressible bytes. Each layer is a real layer: a tar holding one file, gzip-framed at level 0 (stored blocks),
 * so clients recognise it as compressed and pass it through byte for byte, as they would a real image.
 */
export async function ensureImage(layout: string, spec: ImageSpec): Promise<BenchImage> {
  const stamp = join(layout, 'bench-image.json');
  const cached = await readFile(stamp, 'utf8').then((text) => JSON.parse(text) as { spec: ImageSpec; image: BenchImage }, () => undefined);
  if (cached && cached.spec.layers === spec.layers && cached.spec.layerBytes === spec.layerBytes && cached.image.layout === layout) {
    return cached.image;
  }
  await rm(layout, { recursive: true, force: true });
  const blobsDir = join(layout, 'blobs', 'sha256');
  await mkdir(blobsDir, { recursive: true });

  const layers: BenchLayer[] = [];
  for (let i = 0; i < spec.layers; i++) layers.push(await writeLayer(blobsDir, `layer-${i}.bin`, spec.layerBytes));

  const config = jsonBytes({
    architecture: 'amd64',
    os: 'linux',
    config: {},
    rootfs: { type: 'layers', diff_ids: layers.map((layer) => layer.diffId) },
    history: layers.map((_, i) => ({ created_by: `ocireg bench layer ${i}` })),
  });
  const configDigest = await writeBlob(blobsDir, config);
  const manifest = jsonBytes({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.byteLength },
    layers: layers.map((layer) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer.digest, size: layer.size })),
  });
  const manifestDigest = await writeBlob(blobsDir, manifest);
  await writeFile(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: manifestDigest,
          size: manifest.byteLength,
          annotations: { 'org.opencontainers.image.ref.name': TAG },
        },
      ],
    }),
  );
  const image: BenchImage = {
    layout,
    tag: TAG,
    layers,
    manifestDigest,
    bytes: layers.reduce((sum, layer) => sum + layer.size, 0) + config.byteLength + manifest.byteLength,
    blobPaths: layers.map((layer) => join(blobsDir, layer.digest.slice('sha256:'.length))),
  };
  await writeFile(stamp, JSON.stringify({ spec, image }, null, 2));
  return image;
}

/** A tar of one file of `bytes` random bytes, through gzip level 0, hashed on both sides of the gzip. */
async function writeLayer(blobsDir: string, tmpName: string, bytes: number): Promise<BenchLayer> {
  const tmp = join(blobsDir, tmpName);
  const diffHash = createHash('sha256');
  const blobHash = createHash('sha256');
  let size = 0;
  const gzip = createGzip({ level: 0 });
  const out = createWriteStream(tmp);
  gzip.on('data', (chunk: Buffer) => {
    blobHash.update(chunk);
    size += chunk.byteLength;
    if (!out.write(chunk)) {
      gzip.pause();
      out.once('drain', () => gzip.resume());
    }
  });
  const ended = once(gzip, 'end');
  const feed = async (chunk: Buffer) => {
    diffHash.update(chunk);
    if (!gzip.write(chunk)) await once(gzip, 'drain');
  };
  await feed(tarHeader('data.bin', bytes));
  for (let left = bytes; left > 0; left -= CHUNK) await feed(randomFillSync(Buffer.allocUnsafe(Math.min(CHUNK, left))));
  const padding = (512 - (bytes % 512)) % 512;
  await feed(Buffer.alloc(padding + 1024));
  gzip.end();
  await ended;
  out.end();
  await once(out, 'finish');
  const digest = `sha256:${blobHash.digest('hex')}`;
  await rename(tmp, join(blobsDir, digest.slice('sha256:'.length)));
  return { digest, size, diffId: `sha256:${diffHash.digest('hex')}` };
}

async function writeBlob(blobsDir: string, bytes: Uint8Array): Promise<string> {
  const hex = createHash('sha256').update(bytes).digest('hex');
  await writeFile(join(blobsDir, hex), bytes);
  return `sha256:${hex}`;
}

function jsonBytes(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

/** A ustar header for a regular file (POSIX.1-1988): the 512 bytes before its content. */
export function tarHeader(name: string, size: number): Buffer {
  const header = Buffer.alloc(512);
  const field = (offset: number, length: number, value: string) => header.write(value, offset, length, 'ascii');
  const octal = (offset: number, length: number, value: number) => field(offset, length, `${value.toString(8).padStart(length - 1, '0')}\0`);
  field(0, 100, name);
  octal(100, 8, 0o644);
  octal(108, 8, 0);
  octal(116, 8, 0);
  octal(124, 12, size);
  octal(136, 12, 0);
  field(148, 8, ' '.repeat(8));
  field(156, 1, '0');
  field(257, 6, 'ustar\0');
  field(263, 2, '00');
  let sum = 0;
  for (const byte of header) sum += byte;
  field(148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return header;
}
