import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Child processes for the large-layer tests: `ocireg serve`, `ocireg proxy`, dockerd, and tools. Every process is
 * stopped by its own PID (SIGTERM, then SIGKILL after a grace period).
 */

export const CLI = join(import.meta.dirname, '../../../bin/ocireg.ts');

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

export function run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = execFile(
      command,
      args,
      { env: { ...process.env, ...options.env }, maxBuffer: 64 * 1024 * 1024, timeout: options.timeoutMs ?? 300_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof (error as { code?: unknown }).code === 'number' ? ((error as { code: number }).code) : 1) : 0;
        resolve({ code, stdout, stderr, ms: Math.round(performance.now() - started) });
      },
    );
    if (options.input !== undefined) child.stdin!.end(options.input);
  });
}

/** A missing client fails the test with the install command; these tests never skip. */
export async function requireTools(...names: string[]): Promise<void> {
  const missing: string[] = [];
  for (const name of names) if ((await run('sh', ['-c', `command -v ${name}`])).code !== 0) missing.push(name);
  if (missing.length > 0) throw new Error(`${missing.join(', ')} missing: apt-get install -y skopeo docker.io containerd umoci jq (as .ci/run does)`);
}

export async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export async function stopProcess(child: ChildProcess | undefined, graceMs = 5_000): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** A node process that logs one JSON line per event on stdout, starting with `{"msg":"listening","url":…}`. */
export interface JsonLoggingProcess {
  child: ChildProcess;
  url: string;
  /** `host:port`. */
  host: string;
  port: number;
  /** Every JSON line logged so far. */
  lines(): Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

async function startJsonLogging(args: string[]): Promise<JsonLoggingProcess> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    let buffer = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          lines.push(entry);
          if (entry.msg === 'listening') resolve(entry.url as string);
        } catch {
          // not JSON: ignore
        }
      }
    });
    child.once('exit', (code) => reject(new Error(`ocireg ${args[0]} exited with ${code}: ${stderr}`)));
  });
  const parsed = new URL(url);
  return { child, url, host: parsed.host, port: Number(parsed.port), lines: () => lines, stop: () => stopProcess(child) };
}

/** `ocireg serve` on a free loopback port; `maxChunkLength` emulates the serverless body limit. */
export function startServe(dataDir: string, options: { maxChunkLength?: number } = {}): Promise<JsonLoggingProcess> {
  const args = ['serve', '--port', '0', '--data-dir', dataDir];
  if (options.maxChunkLength !== undefined) args.push('--max-chunk-length', String(options.maxChunkLength));
  return startJsonLogging(args);
}

export function startProxy(upstream: string): Promise<JsonLoggingProcess> {
  return startJsonLogging(['proxy', '--upstream', upstream, '--port', '0']);
}

export interface Dockerd {
  env: NodeJS.ProcessEnv;
  docker(args: string[], input?: string): Promise<RunResult>;
  stop(): Promise<void>;
}

/** A private dockerd (vfs, no networking) on a unix socket under `work`; 127.0.0.0/8 registries are plain-HTTP for it. */
export async function startDockerd(work: string): Promise<Dockerd> {
  const socket = join(work, 'docker.sock');
  await mkdir(join(work, 'docker-config'), { recursive: true });
  await writeFile(join(work, 'docker-config', 'config.json'), '{}');
  const child = spawn(
    'dockerd',
    ['--iptables=false', '--ip6tables=false', '--bridge=none', '--storage-driver=vfs', `--data-root=${join(work, 'docker')}`, `--exec-root=${join(work, 'dx')}`, `--pidfile=${join(work, 'docker.pid')}`, '-H', `unix://${socket}`],
    { stdio: 'ignore' },
  );
  const env = { DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: join(work, 'docker-config') };
  const docker = (args: string[], input?: string) => run('docker', args, { env, ...(input !== undefined ? { input } : {}) });
  try {
    await waitFor(async () => (await docker(['version'])).code === 0, 'dockerd', 60_000);
  } catch (error) {
    await stopProcess(child);
    throw error;
  }
  return { env, docker, stop: () => stopProcess(child, 15_000) };
}

export interface Containerd {
  ctr(args: string[]): Promise<RunResult>;
  stop(): Promise<void>;
}

/** A private containerd on a unix socket under `work`, and `ctr` bound to it in namespace `e2e`. */
export async function startContainerd(work: string): Promise<Containerd> {
  const root = join(work, 'containerd');
  await mkdir(root, { recursive: true });
  const socket = join(root, 'containerd.sock');
  await writeFile(
    join(root, 'config.toml'),
    `version = 2\nroot = "${join(root, 'root')}"\nstate = "${join(root, 'state')}"\n[grpc]\n  address = "${socket}"\n[debug]\n  address = ""\n[metrics]\n  address = ""\n`,
  );
  const child = spawn('containerd', ['--config', join(root, 'config.toml')], { stdio: 'ignore' });
  const ctr = (args: string[]) => run('ctr', ['--address', socket, '--namespace', 'e2e', ...args], { timeoutMs: 120_000 });
  try {
    await waitFor(async () => (await ctr(['version'])).code === 0, 'containerd');
  } catch (error) {
    await stopProcess(child);
    throw error;
  }
  return { ctr, stop: () => stopProcess(child, 10_000) };
}
