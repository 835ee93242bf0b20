import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { descendants, isRunning, killLeftovers, stopChild, trackChild, waitFor } from './tools.ts';

/**
 * A root daemon for one suite (dockerd, containerd): started from a private temp dir, its PID tracked so it dies
 * with the test process, its stderr kept for failure messages, ready once `ready()` answers true.
 */

export interface DaemonOptions {
  /** `dockerd`, `containerd`: for messages. */
  name: string;
  args: string[];
  /** The daemon's private directory (sockets, roots, config), removed by `stop()`. */
  dir: string;
  /** True once the daemon answers (e.g. `docker version` exits 0). */
  ready: () => Promise<boolean>;
  readyTimeoutMs: number;
  readyIntervalMs: number;
  /** SIGTERM grace before SIGKILL. */
  stopGraceMs: number;
  /** Runs after the daemon and its leftovers are gone and before `dir` is removed (e.g. unmount what it mounted). */
  afterExit?: () => Promise<void>;
}

export interface Daemon {
  pid: number;
  /** The daemon's stderr so far (the last 256 KiB). */
  log(): string;
  /** SIGTERM by PID (SIGKILL after the grace period), SIGKILLs the processes it had started, removes its directory. */
  stop(): Promise<void>;
}

export async function startDaemon(options: DaemonOptions): Promise<Daemon> {
  const { name, dir } = options;
  const child = spawn(name, options.args, { stdio: ['ignore', 'ignore', 'pipe'] });
  if (child.pid === undefined) {
    await new Promise((resolve) => child.once('error', resolve));
    await rm(dir, { recursive: true, force: true });
    throw new Error(`could not start ${name}`);
  }
  const pid = child.pid;
  trackChild(child);
  let log = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-256 * 1024);
  });

  const stop = async () => {
    // Shims and helpers are found by parent PID, so only while the daemon still lives.
    const leftovers = isRunning(child) ? await descendants(pid) : [];
    await stopChild(child, options.stopGraceMs);
    await killLeftovers(leftovers);
    await options.afterExit?.();
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  };

  const exitedEarly = () => (isRunning(child) ? undefined : `it exited (${child.exitCode ?? child.signalCode})`);
  try {
    await waitFor(options.ready, `${name} to answer on its socket`, options.readyTimeoutMs, options.readyIntervalMs, exitedEarly);
  } catch (error) {
    await stop();
    throw new Error(`${(error as Error).message}\n${name} log:\n${log}`);
  }
  return { pid, log: () => log, stop };
}
