import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startDaemon } from './daemon.ts';
import { runTool, type RunOptions, type RunResult } from './tools.ts';

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
  const env = { DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: config };
  const docker = (dockerArgs: string[], runOptions: RunOptions = {}) => runTool('docker', dockerArgs, { ...runOptions, env: { ...env, ...runOptions.env } });
  const daemon = await startDaemon({
    name: 'dockerd',
    args,
    dir,
    ready: async () => (await docker(['version'], { timeoutMs: 10_000 })).code === 0,
    readyTimeoutMs: options.readyTimeoutMs ?? 60_000,
    readyIntervalMs: 300,
    stopGraceMs: 20_000,
    afterExit: () => unmountUnder(dir),
  });
  return { host: env.DOCKER_HOST, pid: daemon.pid, env, docker, log: daemon.log, stop: daemon.stop };
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
