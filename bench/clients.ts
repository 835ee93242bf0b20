import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { rm } from 'node:fs/promises';
import autocannon from 'autocannon';

/** What a child process left behind: its exit code and the tail of its stderr, for failure messages. */
export interface CommandResult {
  code: number;
  stderr: string;
  seconds: number;
}

/** Runs a command (argument array, no shell) and times it; throws with its stderr when it fails. */
export async function runTimed(command: string, args: string[]): Promise<CommandResult> {
  const startedAt = performance.now();
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => {
    stderr = (stderr + text).slice(-4000);
  });
  const code = await new Promise<number>((resolve) => child.once('close', (exitCode) => resolve(exitCode ?? 1)));
  const seconds = (performance.now() - startedAt) / 1000;
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${code}:\n${stderr}`);
  return { code, stderr, seconds };
}

/** Options every skopeo call shares: no signature policy, no TLS, no digest-changing compression. */
const SKOPEO_COMMON = ['copy', '--insecure-policy', '--preserve-digests', '--quiet'];

/** `skopeo copy oci:LAYOUT:TAG docker://HOST/NAME:TAG`: seconds. */
export async function skopeoPush(layout: string, tag: string, host: string, name: string): Promise<number> {
  const result = await runTimed('skopeo', [...SKOPEO_COMMON, '--dest-tls-verify=false', `oci:${layout}:${tag}`, `docker://${host}/${name}:${tag}`]);
  return result.seconds;
}

/** `skopeo copy docker://HOST/NAME:TAG oci:DIR:TAG` into a fresh directory, removed afterwards: seconds. */
export async function skopeoPull(host: string, name: string, tag: string, dir: string): Promise<number> {
  await rm(dir, { recursive: true, force: true });
  try {
    const result = await runTimed('skopeo', [...SKOPEO_COMMON, '--src-tls-verify=false', `docker://${host}/${name}:${tag}`, `oci:${dir}:${tag}`]);
    return result.seconds;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** `count` pulls at once, each into its own directory: wall-clock seconds until the last one finished. */
export async function concurrentPulls(host: string, name: string, tag: string, dirs: string[]): Promise<number> {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  const startedAt = performance.now();
  try {
    await Promise.all(
      dirs.map((dir) => runTimed('skopeo', [...SKOPEO_COMMON, '--src-tls-verify=false', `docker://${host}/${name}:${tag}`, `oci:${dir}:${tag}`])),
    );
    return (performance.now() - startedAt) / 1000;
  } finally {
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  }
}

export interface LoadResult {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

export interface LoadOptions {
  url: string;
  method: 'GET' | 'HEAD';
  headers?: Record<string, string>;
  connections: number;
  seconds: number;
}

const requireFromAutocannon = createRequire(createRequire(import.meta.url).resolve('autocannon'));
const HTTPParser = (requireFromAutocannon('http-parser-js') as { HTTPParser: { kOnHeadersComplete: number } }).HTTPParser;

/**
 * autocannon at `connections` concurrent keep-alive connections; throws unless every answer was a 2xx.
 * For HEAD, the response parser is told there is no body (autocannon's parser would otherwise wait for
 * Content-Length bytes that never come, as Node's own client knows not to).
 */
export async function load(options: LoadOptions): Promise<LoadResult> {
  const result = await autocannon({
    url: options.url,
    method: options.method,
    headers: options.headers ?? {},
    connections: options.connections,
    duration: options.seconds,
    ...(options.method === 'HEAD'
      ? {
          // autocannon installs its handler after calling setupClient: wrap whatever it assigns.
          setupClient: (client: unknown) => {
            const parser = (client as { parser: object }).parser;
            let wrapped: ((...args: unknown[]) => unknown) | undefined;
            Object.defineProperty(parser, HTTPParser.kOnHeadersComplete, {
              configurable: true,
              get: () => wrapped,
              set: (handler: (...args: unknown[]) => unknown) => {
                wrapped = (...args: unknown[]) => {
                  handler(...args);
                  return true;
                };
              },
            });
          },
        }
      : {}),
  });
  const bad = result.non2xx + result.errors + result.timeouts;
  if (bad > 0 || result.requests.total === 0) {
    throw new Error(`${options.method} ${options.url}: ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts of ${result.requests.total}`);
  }
  return { requestsPerSecond: result.requests.total / result.duration, p50Ms: result.latency.p50, p99Ms: result.latency.p99 };
}

/** `openssl dgst -sha256` over the files: seconds (the page cache holds them; this is the CPU's hashing rate). */
export async function opensslSha256(paths: string[]): Promise<number> {
  return (await runTimed('openssl', ['dgst', '-sha256', ...paths])).seconds;
}

/** Copies each file with `dd ... conv=fsync` into `dir` (write + fsync, as a durable push must): seconds. */
export async function durableWrite(paths: string[], dir: string): Promise<number> {
  let seconds = 0;
  for (const [i, path] of paths.entries()) {
    const target = `${dir}/copy-${i}`;
    seconds += (await runTimed('dd', [`if=${path}`, `of=${target}`, 'bs=1M', 'conv=fsync', 'status=none'])).seconds;
    await rm(target, { force: true });
  }
  return seconds;
}
