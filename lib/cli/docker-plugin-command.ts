import { chmod, mkdir, realpath, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { UsageError, type Command } from './command.ts';
import { PUSH_OPTIONS } from './push-command.ts';

export const usage = `install-docker-plugin
             install a Docker CLI plugin so that \`docker ocireg push <image> <registry>/<repo>:<tag>\` pushes a
             local image in chunks (any layer size); writes $DOCKER_CONFIG/cli-plugins/docker-ocireg
             (default ~/.docker/cli-plugins), which runs this ocireg with this Node`;

/** The name docker runs a plugin under (`docker-<name>`), and the hidden command the plugin calls back into. */
export const PLUGIN_NAME = 'ocireg';
export const PLUGIN_ENTRY = 'docker-cli-plugin';

/** What `docker-<plugin> docker-cli-plugin-metadata` must print for docker to list and run the plugin. */
const METADATA = {
  SchemaVersion: '0.1.0',
  Vendor: 'ocireg',
  Version: '0.1.0',
  ShortDescription: 'Push images in chunks a serverless registry accepts (ocireg push), and the other ocireg commands',
  URL: 'https://github.com/ocireg/ocireg',
};

export const run: Command = async (args) => {
  const { positionals } = parseArgs({ args, options: {}, allowPositionals: true, strict: true });
  if (positionals.length !== 0) throw new UsageError(`takes no arguments, got ${positionals.join(' ')}`);
  const dir = join(process.env.DOCKER_CONFIG ?? join(homedir(), '.docker'), 'cli-plugins');
  const path = join(dir, `docker-${PLUGIN_NAME}`);
  // The plugin pins the Node and the CLI file that installed it: `npx ocireg` caches vanish, an absolute path stays.
  const cli = await realpath(process.argv[1]!);
  const script = `#!/bin/sh\n# Docker CLI plugin written by \`ocireg install-docker-plugin\`: docker runs it as\n# \`docker-${PLUGIN_NAME} ${PLUGIN_NAME} <args>\` for \`docker ${PLUGIN_NAME} <args>\`.\nexec ${shellQuote(process.execPath)} ${shellQuote(cli)} ${PLUGIN_ENTRY} "$@"\n`;
  await mkdir(dir, { recursive: true });
  await writeFile(`${path}.tmp`, script, { mode: 0o755 });
  await chmod(`${path}.tmp`, 0o755);
  await rename(`${path}.tmp`, path);
  process.stderr.write(`installed ${path}: try \`docker ${PLUGIN_NAME} push <image> <registry>/<repo>:<tag>\`\n`);
  return 0;
};

/**
 * Turns what docker passes a plugin into an ocireg command line, or undefined when the plugin has answered itself
 * (the metadata request). `docker ocireg push IMAGE DEST` pushes the local image: a source without a transport
 * (`oci:`, `docker-archive:`, …) is `docker-daemon:IMAGE`.
 */
export function pluginArguments(args: string[]): string[] | undefined {
  if (args[0] === 'docker-cli-plugin-metadata') {
    process.stdout.write(`${JSON.stringify(METADATA)}\n`);
    return undefined;
  }
  const rest = args[0] === PLUGIN_NAME ? args.slice(1) : args;
  if (rest[0] !== 'push') return rest;
  // The first positional, not the first word without a dash: `--chunk-size 1048576` has one too.
  const { tokens } = parseArgs({ args: rest.slice(1), options: PUSH_OPTIONS, allowPositionals: true, strict: false, tokens: true });
  const source = 1 + (tokens.find((token) => token.kind === 'positional')?.index ?? -1);
  if (source > 0 && !/^(oci|oci-archive|docker-archive|docker-daemon):/.test(rest[source]!)) {
    return [...rest.slice(0, source), `docker-daemon:${rest[source]}`, ...rest.slice(source + 1)];
  }
  return rest;
}

function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}
