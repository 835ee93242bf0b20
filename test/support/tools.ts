import { execFile, type ChildProcess } from 'node:child_process';
import { constants } from 'node:fs';
import { access, readdir, readFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';

/**
 * The external clients the e2e suites drive, and one way to run them: `execFile` with an argument array (never a
 * shell string), stdout and stderr captured for failure messages.
 */

/** The Debian packages `.ci/run` installs, by the command each provides. */
const PACKAGE_OF: Record<string, string> = {
  skopeo: 'skopeo',
  docker: 'docker.io',
  dockerd: 'docker.io',
  containerd: 'containerd',
  ctr: 'containerd',
  umoci: 'umoci',
  jq: 'jq',
  openssl: 'openssl',
  tar: 'tar',
  java: 'openjdk-17-jre-headless',
};

/** The line `.ci/run` runs on a machine that lacks a client. */
export const APT_LINE = 'apt-get install -y skopeo docker.io containerd umoci jq openssl openjdk-17-jre-headless chromium docker-registry';

async function onPath(name: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/**
 * Fails (throws) when `name` is not on PATH. These suites never skip: on CI (`CI=true`) a missing client means the
 * machine was not prepared; on a workstation the message says which apt line prepares it.
 */
export async function requireTool(name: string): Promise<string> {
  const found = await onPath(name);
  if (found) return found;
  const pkg = PACKAGE_OF[name] ?? name;
  if (process.env.CI === 'true') {
    throw new Error(`CI=true and "${name}" (Debian package ${pkg}) is not on PATH: .ci/run must install it with \`${APT_LINE}\` before \`npm test\``);
  }
  throw new Error(`"${name}" (Debian package ${pkg}) is not on PATH: run \`sudo ${APT_LINE}\` (the apt line in .ci/run), or run .ci/run itself`);
}

export async function requireTools(...names: string[]): Promise<void> {
  const failures: string[] = [];
  for (const name of names) {
    try {
      await requireTool(name);
    } catch (error) {
      failures.push((error as Error).message);
    }
  }
  if (failures.length > 0) throw new Error(failures.join('\n'));
}

export interface RunResult {
  command: string;
  args: string[];
  /** Exit status; 1 when the process was killed or could not start. */
  code: number;
  /** stdout decoded as UTF-8. */
  stdout: string;
  /** stdout as received, for binary output (`ctr content get`). */
  stdoutBytes: Buffer;
  stderr: string;
  ms: number;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  input?: string | Buffer;
  /** Kill the command after this long (default 5 minutes). */
  timeoutMs?: number;
}

/** Runs a command to completion; never rejects, the result carries the exit code and both streams. */
export function runTool(command: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = execFile(
      command,
      args,
      {
        env: { ...process.env, ...options.env },
        ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
        maxBuffer: 256 * 1024 * 1024,
        timeout: options.timeoutMs ?? 300_000,
        killSignal: 'SIGKILL',
        encoding: 'buffer',
      },
      (error, stdout, stderr) => {
        const status = (error as { code?: unknown } | null)?.code;
        const code = error ? (typeof status === 'number' ? status : 1) : 0;
        const extra = error && typeof status !== 'number' ? `\n[runTool] ${error.message}` : '';
        resolve({
          command,
          args,
          code,
          stdout: stdout.toString('utf8'),
          stdoutBytes: stdout,
          stderr: stderr.toString('utf8') + extra,
          ms: Math.round(performance.now() - started),
        });
      },
    );
    if (options.input !== undefined) child.stdin!.end(options.input);
    else child.stdin?.end();
  });
}

/** `runTool`, then throw with the command line and its stderr unless it exited 0. */
export async function runOk(command: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  const result = await runTool(command, args, options);
  if (result.code !== 0) throw new Error(describeFailure(result));
  return result;
}

export function describeFailure(result: RunResult): string {
  return `${result.command} ${result.args.join(' ')} exited ${result.code} after ${result.ms} ms\nstderr: ${result.stderr.trim()}\nstdout: ${result.stdout.trim().slice(0, 4000)}`;
}

/**
 * Polls `check` until it answers true (exceptions count as false). `giveUp` is asked before each attempt: a message
 * ends the wait at once with that error (e.g. the daemon being waited for has exited).
 */
export async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 30_000, intervalMs = 200, giveUp?: () => string | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const reason = giveUp?.();
    if (reason !== undefined) throw new Error(`gave up waiting for ${what}: ${reason}`);
    if (await check().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

// ---- child processes ---------------------------------------------------------------------------------------------

/** Daemons still running, killed by PID if the test process exits without stopping them (a crashed suite). */
const tracked = new Set<number>();
let exitHookInstalled = false;

/**
 * Remembers a daemon's PID so that it dies with the test process even when `afterAll` never runs; forgotten as soon
 * as the daemon exits (its PID may then be reused).
 */
export function trackChild(child: ChildProcess): void {
  const pid = child.pid;
  if (pid === undefined) return;
  tracked.add(pid);
  child.once('exit', () => tracked.delete(pid));
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const trackedPid of tracked) {
      try {
        process.kill(trackedPid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

/** A process as seen at one moment: its PID and its start time (field 22 of /proc/PID/stat), so a reused PID is not mistaken for it. */
export interface ProcessIdentity {
  pid: number;
  startTime: string;
}

function statFields(stat: string): string[] {
  // Fields after the command name, which is parenthesised and may contain spaces: [0] is the state (field 3).
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** Every live descendant of `pid` (children, grandchildren…), read from /proc. */
export async function descendants(pid: number): Promise<ProcessIdentity[]> {
  const children = new Map<number, ProcessIdentity[]>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const fields = statFields(await readFile(`/proc/${entry}/stat`, 'utf8'));
      const ppid = Number(fields[1]);
      const list = children.get(ppid) ?? [];
      list.push({ pid: Number(entry), startTime: fields[19]! });
      children.set(ppid, list);
    } catch {
      // exited while we looked
    }
  }
  const found: ProcessIdentity[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()!) ?? []) {
      found.push(child);
      queue.push(child.pid);
    }
  }
  return found;
}

/** SIGKILLs each process that is still the one recorded (same PID, same start time). */
export async function killLeftovers(processes: Iterable<ProcessIdentity>): Promise<void> {
  for (const { pid, startTime } of processes) {
    try {
      const fields = statFields(await readFile(`/proc/${pid}/stat`, 'utf8'));
      if (fields[19] !== startTime || fields[0] === 'Z') continue;
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

/** True until the child has exited (its PID may then belong to someone else). */
export function isRunning(child: ChildProcess): boolean {
  return child.pid !== undefined && child.exitCode === null && child.signalCode === null;
}

/**
 * Stops a child by its PID: SIGTERM, then SIGKILL if it has not exited after `graceMs`. Resolves once it has exited.
 * Returns how it stopped.
 */
export async function stopChild(child: ChildProcess, graceMs = 10_000): Promise<'exited' | 'terminated' | 'killed'> {
  const pid = child.pid;
  if (pid === undefined || child.exitCode !== null || child.signalCode !== null) return 'exited';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(pid, 'SIGTERM');
  let outcome: 'terminated' | 'killed' = 'terminated';
  const timer = setTimeout(() => {
    outcome = 'killed';
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // exited meanwhile
    }
  }, graceMs);
  await exited;
  clearTimeout(timer);
  return outcome;
}

/** SIGKILL by PID and wait for the exit: a crash, as far as the child can tell. */
export async function killChild(child: ChildProcess): Promise<void> {
  const pid = child.pid;
  if (pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(pid, 'SIGKILL');
  await exited;
}
