import { digestOf } from '../registry/digest.ts';
import type { Descriptor } from '../registry/types.ts';
import { parseJson, readRegion, sourceOfRegions, type FileRegion, type Files } from './file-region.ts';
import type { ImageSource, ManifestNode } from './image-source.ts';

/**
 * An OCI image layout (a directory, or a tar of one): the image tagged `reference` in `index.json` (or its only
 * image), with every manifest's digest checked and every blob located and sized before anything is pushed.
 * @see https://github.com/opencontainers/image-spec/blob/v1.1.1/image-layout.md
 */

const REF_NAME = 'org.opencontainers.image.ref.name';

export async function layoutSource(description: string, files: Files, reference: string | undefined, close: () => Promise<void>): Promise<ImageSource> {
  const indexRegion = await files.find('index.json');
  if (!indexRegion) throw new Error(`${files.what} is not an OCI image layout: no index.json`);
  const index = parseJson(await readRegion(indexRegion), `index.json in ${files.what}`);
  const manifests = (Array.isArray(index.manifests) ? index.manifests : []) as Array<Descriptor & { annotations?: Record<string, string> }>;
  const names = manifests.map((entry) => entry.annotations?.[REF_NAME]).filter((name): name is string => name !== undefined);
  let chosen: Descriptor | undefined;
  if (reference !== undefined) {
    chosen = manifests.find((entry) => entry.annotations?.[REF_NAME] === reference || entry.digest === reference);
    if (!chosen) throw new Error(`${files.what} has no image "${reference}"; it has: ${names.join(', ') || 'no named images'}`);
  } else if (manifests.length === 1) {
    chosen = manifests[0];
  } else {
    throw new Error(`${files.what} holds ${manifests.length} images: name one (${description}:<tag>); it has: ${names.join(', ') || 'none'}`);
  }

  const regions = new Map<string, FileRegion>();
  const blobPath = (digest: string) => {
    const [algorithm, hex] = digest.split(':');
    if (!algorithm || !hex || !/^[a-z0-9]+$/.test(algorithm) || !/^[a-f0-9]+$/.test(hex)) throw new Error(`invalid digest "${digest}" in ${files.what}`);
    return `blobs/${algorithm}/${hex}`;
  };
  const locate = async (descriptor: Descriptor): Promise<FileRegion> => {
    const region = await files.find(blobPath(descriptor.digest));
    if (!region) throw new Error(`${files.what} lacks blob ${descriptor.digest} (${descriptor.mediaType})`);
    if (region.size !== descriptor.size) throw new Error(`${files.what}: blob ${descriptor.digest} has ${region.size} bytes, its descriptor says ${descriptor.size}`);
    regions.set(descriptor.digest, region);
    return region;
  };

  const resolve = async (descriptor: Descriptor): Promise<ManifestNode> => {
    const bytes = await readRegion(await locate(descriptor));
    const actual = digestOf(bytes);
    if (descriptor.digest.startsWith('sha256:') && actual !== descriptor.digest) throw new Error(`${files.what}: manifest ${descriptor.digest} is corrupt (its content hashes to ${actual})`);
    const json = parseJson(bytes, `manifest ${descriptor.digest}`);
    const mediaType = (typeof json.mediaType === 'string' ? json.mediaType : undefined) ?? descriptor.mediaType;
    const node: ManifestNode = { descriptor: { mediaType, digest: descriptor.digest, size: descriptor.size }, bytes, layers: [], children: [] };
    if (Array.isArray(json.manifests)) {
      for (const child of json.manifests as Descriptor[]) {
        if (!(await files.find(blobPath(child.digest)))) {
          throw new Error(`${files.what}: the index ${descriptor.digest} names ${child.digest}, which the layout lacks (copy all platforms: skopeo copy --all)`);
        }
        node.children.push(await resolve(child));
      }
    } else {
      const config = json.config as Descriptor | undefined;
      const layers = (Array.isArray(json.layers) ? json.layers : []) as Array<Descriptor & { urls?: string[] }>;
      if (config) {
        await locate(config);
        node.config = { mediaType: config.mediaType, digest: config.digest, size: config.size };
      }
      for (const layer of layers) {
        // Non-distributable layers with `urls` are fetched from elsewhere; a registry need not hold them.
        if (Array.isArray(layer.urls) && !(await files.find(blobPath(layer.digest)))) continue;
        await locate(layer);
        node.layers.push({ mediaType: layer.mediaType, digest: layer.digest, size: layer.size });
      }
    }
    return node;
  };

  const root = await resolve(chosen!);
  return sourceOfRegions(description, root, regions, close);
}
