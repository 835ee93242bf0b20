import { parseArgs } from 'node:util';
import { dockerCredentials, parseCredentials } from '../client/docker-credentials.ts';
import { HttpTransport } from '../client/http-transport.ts';
import { parseImageReference } from '../client/image-reference.ts';
import { openImageSource, parseSourceName } from '../client/image-source.ts';
import { formatBytes, formatRate, ProgressDisplay } from '../client/progress.ts';
import { pushImage } from '../client/push-image.ts';
import { RegistryClient } from '../client/registry-client.ts';
import { UsageError, type Command } from './command.ts';
import { integerOption } from './serve-command.ts';

/** push's options; the docker plugin reads them too, to tell an option's value from the source positional. */
export const PUSH_OPTIONS = {
  'plain-http': { type: 'boolean', default: false },
  creds: { type: 'string' },
  parallel: { type: 'string', default: '3' },
  'chunk-size': { type: 'string' },
  'mount-from': { type: 'string' },
  quiet: { type: 'boolean', default: false },
} as const;

export const usage = `push       push an image in chunks a serverless registry accepts, with progress on stderr;
             prints the manifest digest on stdout
             ocireg push <source> <registry>/<repo>[:<tag>]
             sources: oci:DIR[:TAG]  oci-archive:FILE[:TAG]  docker-archive:FILE  docker-daemon:IMAGE
             --plain-http              talk HTTP, not HTTPS, to the registry
             --creds <user:pass>       credentials (default: ~/.docker/config.json, as docker login wrote it)
             --parallel <n>            blobs uploaded at once (default 3)
             --chunk-size <n>          bytes per PATCH (default: the registry's OCI-Chunk-Max-Length, else 4 MiB)
             --mount-from <repo>       try a cross-repository mount from this repository first
             --quiet                   no progress output`;

export const run: Command = async (args) => {
  const { values, positionals } = parseArgs({
    args,
    options: PUSH_OPTIONS,
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length !== 2) throw new UsageError(`expected <source> and <registry>/<repo>:<tag>, got ${positionals.length} argument(s)`);
  const [sourceText, destinationText] = positionals as [string, string];
  let sourceName;
  let destination;
  try {
    sourceName = parseSourceName(sourceText);
    destination = parseImageReference(destinationText);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const parallel = integerOption('--parallel', values.parallel, 1, 64);
  const chunkSize = values['chunk-size'] === undefined ? undefined : integerOption('--chunk-size', values['chunk-size'], 1024, 5 * 1024 * 1024 * 1024);
  const credentials = values.creds !== undefined ? parseCredentials(values.creds) : await dockerCredentials(destination.registry);

  const started = Date.now();
  const source = await openImageSource(sourceName);
  const transport = new HttpTransport({ maxSockets: parallel + 2 });
  const progress = values.quiet ? undefined : new ProgressDisplay(process.stderr);
  try {
    const client = new RegistryClient({
      registry: destination.registry,
      plainHttp: values['plain-http'],
      credentials,
      scopes: [`repository:${destination.repository}:pull,push`],
      transport,
    });
    await client.ping();
    const summary = await pushImage(source, {
      client,
      repository: destination.repository,
      tag: destination.tag,
      parallel,
      ...(chunkSize !== undefined ? { chunkSize } : {}),
      ...(values['mount-from'] !== undefined ? { mountFrom: values['mount-from'] } : {}),
      ...(progress ? { progress } : {}),
    });
    progress?.stop();
    const seconds = (Date.now() - started) / 1000;
    if (!values.quiet) {
      const { uploaded, exists, mounted } = summary.blobs;
      process.stderr.write(
        `pushed ${destination.registry}/${destination.repository}:${destination.tag}: ${uploaded} blob(s) uploaded (${formatBytes(summary.bytesUploaded)}, ` +
          `${formatRate(summary.bytesUploaded / Math.max(seconds, 0.001))}), ${exists} already there, ${mounted} mounted, ${summary.manifests} manifest(s), ${seconds.toFixed(1)}s\n`,
      );
    }
    process.stdout.write(`${summary.digest}\n`);
    return 0;
  } finally {
    progress?.stop();
    transport.close();
    await source.close();
  }
};
