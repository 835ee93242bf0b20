import { randomBytes } from 'node:crypto';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { parseImageReference } from '../../lib/client/image-reference.ts';
import { openImageSource, parseSourceName } from '../../lib/client/image-source.ts';
import { sha256 } from '../support/digests.ts';
import { addIndex, writeOciLayout } from '../support/layouts.ts';
import { tempDirs } from '../support/temp-dirs.ts';
import { requireTools, runTool as run } from '../support/tools.ts';

const temp = tempDirs('ocireg-src-');
afterAll(() => temp.cleanUp());

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('source and destination names', () => {
  it('parses skopeo-style transports', () => {
    expect(parseSourceName('oci:/tmp/layout:v1')).toEqual({ transport: 'oci', path: '/tmp/layout', reference: 'v1' });
    expect(parseSourceName('oci:/tmp/layout')).toEqual({ transport: 'oci', path: '/tmp/layout' });
    expect(parseSourceName('oci-archive:img.tar:latest')).toEqual({ transport: 'oci-archive', path: 'img.tar', reference: 'latest' });
    expect(parseSourceName('docker-archive:save.tar')).toEqual({ transport: 'docker-archive', path: 'save.tar' });
    expect(parseSourceName('docker-daemon:localhost:5000/team/app:1.0')).toEqual({ transport: 'docker-daemon', image: 'localhost:5000/team/app:1.0' });
    expect(() => parseSourceName('docker://alpine')).toThrow(/unknown source "docker:\/\/alpine": use oci:DIR/);
    expect(() => parseSourceName('/tmp/layout')).toThrow(/unknown source/);
  });

  it('parses a destination that names its registry', () => {
    expect(parseImageReference('127.0.0.1:5000/team/app:1.0')).toEqual({ registry: '127.0.0.1:5000', repository: 'team/app', tag: '1.0' });
    expect(parseImageReference('docker://registry.example.com/a/b/c')).toEqual({ registry: 'registry.example.com', repository: 'a/b/c', tag: 'latest' });
    expect(parseImageReference('localhost/app:x')).toEqual({ registry: 'localhost', repository: 'app', tag: 'x' });
    expect(() => parseImageReference('team/app:1')).toThrow(/must name its registry/);
    expect(() => parseImageReference('localhost:5000/Team/app')).toThrow(/invalid repository name "Team\/app"/);
    expect(() => parseImageReference('localhost:5000/app@sha256:abc')).toThrow(/not a digest/);
  });
});

describe('oci: and oci-archive:', () => {
  it('reads an image by tag from a layout and from a tar of it, streaming blob regions', async () => {
    // Prepare
    await requireTools('tar');
    const dir = await temp.make();
    const layers = [randomBytes(3000), randomBytes(10)];
    const written = await writeOciLayout(join(dir, 'layout'), { v1: layers, v2: [randomBytes(5)] });
    const archive = join(dir, 'layout.tar');
    expect((await run('tar', ['-C', join(dir, 'layout'), '-cf', archive, '.'])).code).toBe(0);

    for (const name of [`oci:${join(dir, 'layout')}:v1`, `oci-archive:${archive}:v1`]) {
      // Act
      const source = await openImageSource(name);

      // Assess
      expect(source.root.descriptor.digest).toBe(written.v1!.manifestDigest);
      expect(source.root.bytes.equals(written.v1!.manifestBytes)).toBe(true);
      expect(source.root.config?.digest).toBe(written.v1!.configDigest);
      expect(source.root.layers.map((layer) => layer.digest)).toEqual(written.v1!.layerDigests);
      const blob = source.blob(written.v1!.layerDigests[0]!);
      expect((await readAll(blob.open(100, 199))).equals(layers[0]!.subarray(100, 200))).toBe(true);
      expect((await readAll(blob.open(0, blob.size - 1))).equals(layers[0]!)).toBe(true);
      await source.close();
    }
  });

  it('asks for a tag when the layout holds several images, and names them', async () => {
    const dir = await temp.make();
    await writeOciLayout(dir, { a: [randomBytes(4)], b: [randomBytes(4)] });
    await expect(openImageSource(`oci:${dir}`)).rejects.toThrow(/holds 2 images: name one .*it has: a, b/);
    await expect(openImageSource(`oci:${dir}:c`)).rejects.toThrow(/no image "c"; it has: a, b/);
  });

  it('reads an index with its children', async () => {
    const dir = await temp.make();
    const written = await writeOciLayout(dir, { amd: [randomBytes(4)], arm: [randomBytes(4)] });
    const indexDigest = await addIndex(dir, 'multi', [written.amd!, written.arm!]);
    const source = await openImageSource(`oci:${dir}:multi`);
    expect(source.root.descriptor.digest).toBe(indexDigest);
    expect(source.root.children.map((child) => child.descriptor.digest)).toEqual([written.amd!.manifestDigest, written.arm!.manifestDigest]);
    expect(source.root.children[1]!.layers[0]!.digest).toBe(written.arm!.layerDigests[0]);
  });
});

describe('docker-archive:', () => {
  it('converts docker save output to a schema 2 manifest: uncompressed and gzip layers, linked duplicates, digests computed', async () => {
    // Prepare: the legacy docker save layout, with the second layer linked to the first
    await requireTools('tar');
    const dir = await temp.make();
    const save = join(dir, 'save');
    const plain = randomBytes(5000);
    const gzipped = gzipSync(randomBytes(2000));
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
    for (const id of ['aaa', 'bbb', 'ccc']) await mkdir(join(save, id), { recursive: true });
    await writeFile(join(save, 'aaa', 'layer.tar'), plain);
    await symlink('../aaa/layer.tar', join(save, 'bbb', 'layer.tar'));
    await writeFile(join(save, 'ccc', 'layer.tar'), gzipped);
    await writeFile(join(save, 'cfg.json'), config);
    await writeFile(join(save, 'manifest.json'), JSON.stringify([{ Config: 'cfg.json', RepoTags: ['team/app:1'], Layers: ['aaa/layer.tar', 'bbb/layer.tar', 'ccc/layer.tar'] }]));
    const archive = join(dir, 'save.tar');
    expect((await run('tar', ['-C', save, '-cf', archive, '.'])).code).toBe(0);

    // Act
    const source = await openImageSource(`docker-archive:${archive}`);

    // Assess
    const manifest = JSON.parse(source.root.bytes.toString()) as { mediaType: string; config: { digest: string; mediaType: string }; layers: Array<{ mediaType: string; digest: string; size: number }> };
    expect(source.root.descriptor).toEqual({ mediaType: 'application/vnd.docker.distribution.manifest.v2+json', digest: sha256(source.root.bytes), size: source.root.bytes.byteLength });
    expect(manifest.config).toEqual({ mediaType: 'application/vnd.docker.container.image.v1+json', digest: sha256(config), size: config.byteLength });
    expect(manifest.layers).toEqual([
      { mediaType: 'application/vnd.docker.image.rootfs.diff.tar', digest: sha256(plain), size: plain.byteLength },
      { mediaType: 'application/vnd.docker.image.rootfs.diff.tar', digest: sha256(plain), size: plain.byteLength },
      { mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: sha256(gzipped), size: gzipped.byteLength },
    ]);
    expect((await readAll(source.blob(sha256(gzipped)).open(0, gzipped.byteLength - 1))).equals(gzipped)).toBe(true);
    await source.close();
    await expect(openImageSource(`docker-archive:${archive}:other/app:2`)).resolves.toBeDefined(); // one image: the reference is only a hint
  });

  it('says what is wrong with a file that is not docker save output', async () => {
    const dir = await temp.make();
    await writeFile(join(dir, 'index.json'), '{}');
    const archive = join(dir, 'x.tar');
    await run('tar', ['-C', dir, '-cf', archive, 'index.json']);
    await expect(openImageSource(`docker-archive:${archive}`)).rejects.toThrow(/not docker save output: no manifest.json/);
    await expect(openImageSource(`docker-archive:${join(dir, 'missing.tar')}`)).rejects.toThrow(/cannot open/);
  });
});
