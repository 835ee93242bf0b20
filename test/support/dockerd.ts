import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { descendants, isRunning, killLeftovers, runTool, stopChild, trackChild, waitFor, type RunOptions, type RunResult } from './tools.ts';

/**
 * A private dockerd for one suite: vfs storage, no networking, its own data/exec roots and socket under a short temp
 * dir, started as root. Registries in `insecureRegistries` (`127.0.0.1:PORT`) are spoken to over plain HTTP, so
 * start the registry first.
 */

export interface Dockerd {
  /** `unix:///tmp/…/d.sock`. */
  host: string;
  pid: number;
  /** Environment for the docker CLI: DOCKER_HOST and an empty DOCKER_CONFIG. */
  env: NodeJS.ProcessEnv;
  /** Runs `docker …args` against this daemon. */
  docker(args: string[], options?: RunOptions): Promise<RunResult>;
  /** dockerd's stderr so far (the last 256 KiB), for failure messages. */
  log(): string;
  /** SIGTERM by PID (SIGKILL after 20 s), kills leftovers of its containerd, removes its directories. */
  stop(): Promise<void>;
}

export interface StartDockerdOptions {
  insecureRegistries: string[];
  /** How long dockerd may take to answer `docker version` (default 60 s). */
  readyTimeoutMs?: number;
}

export async function startDockerd(options: StartDockerdOptions): Promise<Dockerd> {
  // Unix socket paths are limited to 108 bytes, and dockerd nests containerd's sockets under the exec root.
  const dir = await mkdtemp('/tmp/odk-');
  const socket = join(dir, 'd.sock');
  const config = join(dir, 'cfg');
  await mkdir(config);
  await writeFile(join(config, 'config.json'), '{}');
  const args = [
    '--iptables=false',
    '--ip6tables=false',
    '--bridge=none',
    '--storage-driver=vfs',
    `--data-root=${join(dir, 'root')}`,
    `--exec-root=${join(dir, 'x')}`,
    `--pidfile=${join(dir, 'd.pid')}`,
    '-H',
    `unix://${socket}`,
    ...options.insecureRegistries.flatMap((registry) => ['--insecure-registry', registry]),
  ];
  const child = spawn('dockerd', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  if (child.pid === undefined) {
    await new Promise((resolve) => child.once('error', resolve));
    await rm(dir, { recursive: true, force: true });
    throw new Error('could not start dockerd');
  }
  const pid = child.pid;
  trackChild(child);
  let log = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-256 * 1024);
  });

  const env = { DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: config };
  const docker = (dockerArgs: string[], runOptions: RunOptions = {}) => runTool('docker', dockerArgs, { ...runOptions, env: { ...env, ...runOptions.env } });

  const stop = async () => {
    const leftovers = isRunning(child) ? await descendants(pid) : [];
    await stopChild(child, 20_000);
    await killLeftovers(leftovers);
    await unmountUnder(dir);
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  };

  const exitedEarly = () => (isRunning(child) ? undefined : `it exited (${child.exitCode ?? child.signalCode})`);
  try {
    await waitFor(async () => (await docker(['version'], { timeoutMs: 10_000 })).code === 0, 'dockerd to answer on its socket', options.readyTimeoutMs ?? 60_000, 300, exitedEarly);
  } catch (error) {
    await stop();
    throw new Error(`${(error as Error).message}\ndockerd log:\n${log}`);
  }
  return { host: env.DOCKER_HOST, pid, env, docker, log: () => log, stop };
}

/**
 * dockerd bind-mounts its data root onto itself (and may mount under its exec root); a daemon that dies early leaves
 * those mounts behind, which would make the temp dir impossible to remove. Unmounts them, deepest first.
 */
async function unmountUnder(dir: string): Promise<void> {
  const mounts = (await readFile('/proc/self/mounts', 'utf8'))
    .split('\n')
    .map((line) => line.split(' ')[1])
    .filter((path): path is string => path !== undefined && (path === dir || path.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
  for (const path of mounts) await runTool('umount', [path]);
}
