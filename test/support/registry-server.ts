import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { descendants, isRunning, killChild, killLeftovers, stopChild, trackChild, type ProcessIdentity } from './tools.ts';

/**
 * A registry server as a child process for the e2e suites: by default `node bin/ocireg.ts serve` on a free loopback
 * port over a fresh data dir; any other server that logs JSON lines and announces itself with
 * `{"msg":"listening","url":…}` (e.g. `node bin/dev-aws.ts --port P`) through `command`.
 */

export const OCIREG_CLI = join(import.meta.dirname, '../../bin/ocireg.ts');

export interface ServerCommandContext {
  port: number;
  /** Always 127.0.0.1: the suites talk loopback only. */
  listenHost: string;
  dataDir: string;
}

export interface ServerCommand {
  command: string;
  args: string[];
  /**
   * Recognises the line (one stdout line, without its newline) that says the server is ready, and answers its URL;
   * default: a JSON line with `"msg":"listening"` and `"url"`, as `ocireg serve` prints.
   */
  ready?: (line: string) => string | undefined;
}

export interface StartServerOptions {
  /** Serve this data dir and leave it in place on stop; default: a fresh temp dir, removed by `stop()`. */
  dataDir?: string;
  /** Listen on this port (a restart on the same address); default: a free one. */
  port?: number;
  /** More `ocireg serve` options, e.g. `['--tls-cert', cert, '--tls-key', key]` or `['--auth']`. */
  serveArgs?: string[];
  /**
   * Another server's command line; default `node bin/ocireg.ts serve --port P --host 127.0.0.1 --data-dir D …serveArgs`.
   * The emulated AWS deployment is `devAwsCommand()`.
   */
  command?: (context: ServerCommandContext) => ServerCommand;
  env?: NodeJS.ProcessEnv;
  /** How long the listening line may take (default 30 s). */
  readyTimeoutMs?: number;
  /** SIGTERM grace before SIGKILL in `stop()` (default 15 s; `ocireg serve` gives in-flight requests 10 s). */
  stopGraceMs?: number;
}

export interface RegistryServer {
  /** `http://127.0.0.1:PORT` (or https with a certificate), from the listening line. */
  url: string;
  /** `127.0.0.1:PORT`, as image references spell it. */
  host: string;
  port: number;
  dataDir: string;
  pid: number;
  child: ChildProcess;
  /** Every JSON line the server wrote to stdout so far. */
  lines(): Array<Record<string, unknown>>;
  /** The request log lines (`"msg":"request"`). */
  requests(): Array<Record<string, unknown>>;
  /** Everything the server wrote to stderr so far. */
  stderr(): string;
  /** Peak resident set size in bytes since the process started (`VmHWM` in /proc/PID/status). */
  peakRssBytes(): Promise<number>;
  /** Current resident set size in bytes (`VmRSS`). */
  rssBytes(): Promise<number>;
  /**
   * SIGTERM by PID, SIGKILL after the grace period; then SIGKILLs any process the server started that outlived it
   * (e.g. emulators under dev-aws), and removes the data dir if this helper created it. Says how the server ended:
   * `terminated` (by SIGTERM, in time), `killed` (needed SIGKILL) or `exited` (already gone).
   */
  stop(): Promise<'exited' | 'terminated' | 'killed'>;
  /** SIGKILL of the server's PID alone (a crash); the data dir stays for a restart, `stop()` still cleans up. */
  kill(): Promise<void>;
}

/** A TCP port nobody listens on right now, on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

export function ociregServeCommand(serveArgs: string[] = []): (context: ServerCommandContext) => ServerCommand {
  return ({ port, listenHost, dataDir }) => ({
    command: process.execPath,
    args: [OCIREG_CLI, 'serve', '--port', String(port), '--host', listenHost, '--data-dir', dataDir, ...serveArgs],
  });
}

/**
 * `node bin/ocireg.ts proxy --upstream URL --port P --host 127.0.0.1 …extraArgs`: the push proxy, which logs the same
 * JSON lines as `ocireg serve` (its request lines carry `chunks`, the PATCHes it sent upstream). It keeps no data.
 */
export function ociregProxyCommand(upstream: string, extraArgs: string[] = []): (context: ServerCommandContext) => ServerCommand {
  return ({ port, listenHost }) => ({
    command: process.execPath,
    args: [OCIREG_CLI, 'proxy', '--upstream', upstream, '--port', String(port), '--host', listenHost, ...extraArgs],
  });
}

/**
 * `node bin/dev-aws.ts --port P …extraArgs`: the AWS deployment emulated on this machine (API Gateway limits, the
 * production handler, DynamoDB Local and s3rver). It keeps its state in the emulators, not in the data dir; its
 * children (DynamoDB Local, s3rver) are stopped with it.
 */
export function devAwsCommand(extraArgs: string[] = []): (context: ServerCommandContext) => ServerCommand {
  return ({ port }) => ({
    command: process.execPath,
    args: [join(import.meta.dirname, '../../bin/dev-aws.ts'), '--port', String(port), ...extraArgs],
    ready: (line) => /^registry: (https?:\/\/\S+)/.exec(line)?.[1],
  });
}

/** `ocireg serve`'s announcement: `{"msg":"listening","url":…}`. */
function jsonListeningLine(line: string): string | undefined {
  try {
    const entry = JSON.parse(line) as Record<string, unknown>;
    return entry.msg === 'listening' && typeof entry.url === 'string' ? entry.url : undefined;
  } catch {
    return undefined;
  }
}

async function procStatusBytes(pid: number, field: 'VmHWM' | 'VmRSS'): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  if (!match) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

/**
 * Starts the server and resolves once it printed its listening line; rejects with its stderr if it exits first.
 * A free port can be taken by someone else before the server binds it: then it retries on another one.
 */
export async function startRegistryServer(options: StartServerOptions = {}): Promise<RegistryServer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options);
    } catch (error) {
      if (options.port !== undefined || attempt === 3 || !/EADDRINUSE/.test((error as Error).message)) throw error;
    }
  }
}

async function startOnce(options: StartServerOptions): Promise<RegistryServer> {
  const ownsDataDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'ocireg-data-')));
  const port = options.port ?? (await freePort());
  const listenHost = '127.0.0.1';
  const { command, args, ready = jsonListeningLine } = (options.command ?? ociregServeCommand(options.serveArgs))({ port, listenHost, dataDir });

  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env } });
  if (child.pid === undefined) {
    await new Promise((resolve) => child.once('error', resolve));
    throw new Error(`could not start ${command} ${args.join(' ')}`);
  }
  const pid = child.pid;
  trackChild(child);

  const lines: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  let stdoutBuffer = '';
  let announce: ((url: string) => void) | undefined;
  child.stdout!.on('data', (chunk: Buffer) => {
    stdoutBuffer += chunk.toString();
    let newline: number;
    while ((newline = stdoutBuffer.indexOf('\n')) >= 0) {
      const line = stdoutBuffer.slice(0, newline);
      stdoutBuffer = stdoutBuffer.slice(newline + 1);
      const announced = ready(line);
      if (announced !== undefined) announce?.(announced);
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a JSON log line
      }
    }
  });

  const commandLine = `${command} ${args.join(' ')}`;
  const timeoutMs = options.readyTimeoutMs ?? 30_000;
  let url: string;
  try {
    url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${commandLine} printed no listening line within ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs);
      announce = (value) => {
        clearTimeout(timer);
        resolve(value);
      };
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${commandLine} exited (${code ?? signal}) before listening; stderr: ${stderr}`));
      });
    });
  } catch (error) {
    const started = isRunning(child) ? await descendants(pid) : [];
    await killChild(child);
    await killLeftovers(started);
    if (ownsDataDir) await rm(dataDir, { recursive: true, force: true });
    throw error;
  }

  const parsed = new URL(url);
  const grace = options.stopGraceMs ?? 15_000;
  /** Processes the server started, remembered before it dies (orphans can no longer be found by parent PID). */
  const spawned: ProcessIdentity[] = [];
  return {
    url: url.replace(/\/$/, ''),
    host: parsed.host,
    port: Number(parsed.port),
    dataDir,
    pid,
    child,
    lines: () => lines,
    requests: () => lines.filter((line) => line.msg === 'request'),
    stderr: () => stderr,
    peakRssBytes: () => procStatusBytes(pid, 'VmHWM'),
    rssBytes: () => procStatusBytes(pid, 'VmRSS'),
    async stop() {
      if (isRunning(child)) spawned.push(...(await descendants(pid)));
      const outcome = await stopChild(child, grace);
      await killLeftovers(spawned);
      if (ownsDataDir) await rm(dataDir, { recursive: true, force: true });
      return outcome;
    },
    async kill() {
      if (isRunning(child)) spawned.push(...(await descendants(pid)));
      await killChild(child);
    },
  };
}
