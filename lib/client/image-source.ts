import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Descriptor } from '../registry/types.ts';
import type { BlobContent } from './blob-uploader.ts';
import { dockerArchiveSource, dockerSave } from './docker-archive-source.ts';
import { directoryFiles, tarFiles } from './file-region.ts';
import { layoutSource } from './oci-layout-source.ts';

/**
 * Images to push, named like skopeo's transports:
 *
 * | name | what it reads |
 * |---|---|
 * | `oci:DIR[:TAG]` | an OCI image layout directory (`index.json`, `blobs/sha256/…`) |
 * | `oci-archive:FILE[:TAG]` | a tar of an OCI image layout |
 * | `docker-archive:FILE[:REPO:TAG]` | `docker save` output (`manifest.json`, config, layer tars), as a Docker schema 2 manifest |
 * | `docker-daemon:IMAGE` | `docker save IMAGE` into a temp file (honours `DOCKER_HOST`), then as docker-archive |
 *
 * Bytes are never loaded whole: a blob is a region of a file (a layout blob, or a member of a tar) read with
 * offsets when it is uploaded. Only manifests and configs are read into memory.
 * @see https://github.com/opencontainers/image-spec/blob/v1.1.1/image-layout.md
 */

export type SourceName =
  | { transport: 'oci'; path: string; reference?: string }
  | { transport: 'oci-archive'; path: string; reference?: string }
  | { transport: 'docker-archive'; path: string; reference?: string }
  | { transport: 'docker-daemon'; image: string };

/** A manifest to push: its exact bytes, the blobs it needs (config and layers) and, for an index, its children. */
export interface ManifestNode {
  descriptor: Descriptor;
  bytes: Buffer;
  config?: Descriptor;
  layers: Descriptor[];
  children: ManifestNode[];
}

export interface ImageSource {
  /** For messages: `oci:/tmp/layout:v1`. */
  description: string;
  root: ManifestNode;
  /** The content of a blob the manifests name. */
  blob(digest: string): BlobContent;
  close(): Promise<void>;
}

export interface OpenOptions {
  env?: NodeJS.ProcessEnv;
  /** The docker CLI to run for `docker-daemon:` (default `docker`). */
  dockerCommand?: string;
}

const TRANSPORTS = ['oci', 'oci-archive', 'docker-archive', 'docker-daemon'] as const;

export function parseSourceName(text: string): SourceName {
  const colon = text.indexOf(':');
  const transport = colon < 0 ? '' : text.slice(0, colon);
  const rest = colon < 0 ? '' : text.slice(colon + 1);
  if (!(TRANSPORTS as readonly string[]).includes(transport) || rest === '') {
    throw new Error(`unknown source "${text}": use oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE or docker-daemon:IMAGE`);
  }
  if (transport === 'docker-daemon') return { transport, image: rest };
  const split = rest.indexOf(':');
  const path = split < 0 ? rest : rest.slice(0, split);
  const reference = split < 0 ? undefined : rest.slice(split + 1);
  const name = { transport: transport as 'oci' | 'oci-archive' | 'docker-archive', path };
  return reference ? { ...name, reference } : name;
}

export async function openImageSource(source: SourceName | string, options: OpenOptions = {}): Promise<ImageSource> {
  const name = typeof source === 'string' ? parseSourceName(source) : source;
  const description = typeof source === 'string' ? source : describe(name);
  switch (name.transport) {
    case 'oci':
      return layoutSource(description, directoryFiles(name.path), name.reference, async () => undefined);
    case 'oci-archive': {
      const archive = await tarFiles(name.path);
      return layoutSource(description, archive.files, name.reference, archive.close);
    }
    case 'docker-archive': {
      const archive = await tarFiles(name.path);
      return dockerArchiveSource(description, archive.files, name.reference, archive.close);
    }
    case 'docker-daemon': {
      const directory = await mkdtemp(join(options.env?.TMPDIR ?? tmpdir(), 'ocireg-push-'));
      const file = join(directory, 'image.tar');
      const cleanUp = () => rm(directory, { recursive: true, force: true });
      try {
        await dockerSave(options.dockerCommand ?? 'docker', name.image, file, options.env ?? process.env);
        const archive = await tarFiles(file);
        return await dockerArchiveSource(description, archive.files, name.image.includes('@') ? undefined : name.image, async () => {
          await archive.close();
          await cleanUp();
        });
      } catch (error) {
        await cleanUp();
        throw error;
      }
    }
  }
}

function describe(name: SourceName): string {
  return name.transport === 'docker-daemon' ? `docker-daemon:${name.image}` : `${name.transport}:${name.path}${name.reference ? `:${name.reference}` : ''}`;
}
