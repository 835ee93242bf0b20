import { headerValue } from './http-transport.ts';
import { short, uploadBlob, type UploadOutcome } from './blob-uploader.ts';
import type { Descriptor } from '../registry/types.ts';
import type { ImageSource, ManifestNode } from './image-source.ts';
import type { ProgressDisplay } from './progress.ts';
import type { RegistryClient } from './registry-client.ts';
import { DEFAULT_RETRY, RegistryError, withRetry, type RetryPolicy } from './retry.ts';

export interface PushOptions {
  client: RegistryClient;
  repository: string;
  tag: string;
  /** Blobs uploaded at the same time (default 3). */
  parallel?: number;
  chunkSize?: number;
  mountFrom?: string;
  retry?: RetryPolicy;
  progress?: ProgressDisplay;
}

export interface PushSummary {
  digest: string;
  blobs: Record<UploadOutcome, number>;
  /** Bytes actually sent (blobs that existed or were mounted count nothing). */
  bytesUploaded: number;
  manifests: number;
}

/**
 * Pushes an image or index: the layers of every manifest (a few at a time), then the configs, then the child
 * manifests by digest, then the root manifest under the tag — so the registry never sees a manifest whose blobs
 * it lacks.
 */
export async function pushImage(source: ImageSource, options: PushOptions): Promise<PushSummary> {
  const { client, repository, progress } = options;
  const policy = options.retry ?? DEFAULT_RETRY;
  const layers = new Map<string, Descriptor>();
  const configs = new Map<string, Descriptor>();
  const manifests: ManifestNode[] = [];
  const visit = (node: ManifestNode) => {
    for (const child of node.children) visit(child);
    for (const layer of node.layers) layers.set(layer.digest, layer);
    if (node.config) configs.set(node.config.digest, node.config);
    manifests.push(node);
  };
  visit(source.root);
  for (const digest of configs.keys()) layers.delete(digest);

  const summary: PushSummary = { digest: source.root.descriptor.digest, blobs: { exists: 0, mounted: 0, uploaded: 0 }, bytesUploaded: 0, manifests: 0 };
  const upload = async (descriptor: Descriptor) => {
    const task = progress?.add(short(descriptor.digest), descriptor.size);
    try {
      const result = await uploadBlob(client, repository, source.blob(descriptor.digest), {
        ...(options.chunkSize !== undefined ? { chunkSize: options.chunkSize } : {}),
        ...(options.mountFrom !== undefined ? { mountFrom: options.mountFrom } : {}),
        retry: policy,
        onProgress: (bytes) => task?.update(bytes),
        onRetry: (message) => progress?.note(message),
      });
      summary.blobs[result.outcome]++;
      if (result.outcome === 'uploaded') summary.bytesUploaded += descriptor.size;
      task?.finish(result.outcome === 'uploaded' ? 'pushed' : result.outcome);
    } catch (error) {
      task?.finish('failed');
      throw error;
    }
  };
  await eachLimited([...layers.values()], options.parallel ?? 3, upload);
  await eachLimited([...configs.values()], options.parallel ?? 3, upload);

  for (const node of manifests) {
    const reference = node === source.root ? options.tag : node.descriptor.digest;
    const response = await withRetry(
      () =>
        client.request('PUT', `/v2/${repository}/manifests/${reference}`, {
          headers: { 'content-type': node.descriptor.mediaType },
          body: node.bytes,
          expect: [201, 200, 204],
        }),
      policy,
      (error, delay) => progress?.note(`manifest ${short(node.descriptor.digest)}: ${(error as Error).message}; retrying in ${delay} ms`),
    );
    const stored = headerValue(response.headers, 'docker-content-digest');
    if (stored !== undefined && stored !== node.descriptor.digest) {
      throw new RegistryError(`the registry stored manifest ${stored}, expected ${node.descriptor.digest}`, response.status);
    }
    summary.manifests++;
  }
  return summary;
}

/** Runs `action` over `items`, at most `limit` at a time; the first failure stops new starts and is rethrown. */
export async function eachLimited<T>(items: T[], limit: number, action: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (failure === undefined && next < items.length) {
      const item = items[next++]!;
      try {
        await action(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failure) throw failure.error;
}
