import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** The two registries the bench compares, by the names used in every report. */
export type Contender = 'ocireg' | 'distribution';

/** A registry process the bench started: stopped by its PID, never by name. */
export interface RunningRegistry {
  contender: Contender;
  pid: number;
  /** `127.0.0.1:<port>`, as skopeo's docker:// references want it. */
  host: string;
  url: string;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Fresh directory for this instance: data, config and log go under it. */
  dir: string;
  /** ocireg only: write a V8 CPU profile of the server into this directory when it stops. */
  cpuProfDir?: string;
}

const ROOT = resolve(import.meta.dirname, '..');
const DISTRIBUTION_BIN = '/usr/bin/docker-registry';
const started = new Set<ChildProcess>();

/** Kills whatever the bench started if it dies early (Ctrl-C, an exception): by PID, each child on its own. */
export function killStartedOnExit(): void {
  const killAll = () => {
    for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      killAll();
      process.exit(130);
    });
  }
}

export async function startRegistry(contender: Contender, options: StartOptions): Promise<RunningRegistry> {
  return contender === 'ocireg' ? startOcireg(options) : startDistribution(options);
}

/** `node bin/ocireg.ts serve` with the filesystem store in `<dir>/data`, its request log in `<dir>/server.log`. */
export async function startOcireg(options: StartOptions): Promise<RunningRegistry> {
  const port = await freePort();
  const dataDir = join(options.dir, 'data');
  await mkdir(dataDir, { recursive: true });
  const nodeArgs = options.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfDir}`] : [];
  const args = [...nodeArgs, join(ROOT, 'bin', 'ocireg.ts'), 'serve', '--host', '127.0.0.1', '--port', String(port), '--data-dir', dataDir];
  return launch('ocireg', process.execPath, args, port, join(options.dir, 'server.log'));
}

/**
 * CNCF Distribution (`docker-registry serve`), configured as its Debian package ships it (filesystem storage,
 * in-memory blob descriptor cache, delete enabled) but in `<dir>/data`, on its own port, logging to a file.
 */
export async function startDistribution(options: StartOptions): Promise<RunningRegistry> {
  const port = await freePort();
  const dataDir = join(options.dir, 'data');
  await mkdir(dataDir, { recursive: true });
  const config = join(options.dir, 'config.yml');
  await writeFile(config, distributionConfig(dataDir, port));
  return launch('distribution', DISTRIBUTION_BIN, ['serve', config], port, join(options.dir, 'server.log'));
}

export function distributionConfig(dataDir: string, port: number): string {
  return [
    'version: 0.1',
    'log:',
    '  level: info',
    '  fields:',
    '    service: registry',
    'storage:',
    '  cache:',
    '    blobdescriptor: inmemory',
    '  filesystem:',
    `    rootdirectory: ${dataDir}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '',
  ].join('\n');
}

async function launch(contender: Contender, command: string, args: string[], port: number, logFile: string): Promise<RunningRegistry> {
  return { contender, ...(await startServerProcess(command, args, port, logFile)) };
}

/** Starts a registry-like server (one that answers `GET /v2/` with 200 when ready) on `port`, its output in `logFile`. */
export async function startServerProcess(command: string, args: string[], port: number, logFile: string): Promise<Omit<RunningRegistry, 'contender'>> {
  const log = openSync(logFile, 'a');
  const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', log, log] });
  closeSync(log);
  started.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', () => started.delete(child));
  const host = `127.0.0.1:${port}`;
  const url = `http://${host}`;
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  };
  try {
    await waitReady(url, child, logFile);
  } catch (error) {
    await stop();
    throw error;
  }
  return { pid: child.pid!, host, url, stop };
}

async function waitReady(url: string, child: ChildProcess, logFile: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${url}: server exited with ${child.exitCode}; see ${logFile}`);
    const ok = await fetch(`${url}/v2/`).then((response) => response.status === 200, () => false);
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`${url}: no answer on /v2/ within 30 s; see ${logFile}`);
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Resident set now and its high-water mark, in bytes, from /proc/<pid>/status. */
export async function memoryOf(pid: number): Promise<{ rss: number; hwm: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kib('VmRSS'), hwm: kib('VmHWM') };
}

/** CPU time the process has used so far (user + system, all threads), seconds, from /proc/<pid>/stat. */
export async function cpuSecondsOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at state; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** USER_HZ: 100 on every Linux architecture Node runs on. */
const CLOCK_TICKS = 100;

/**
 * Samples VmRSS every `intervalMs` until stopped; the peak is the larger of the samples and VmHWM read at the end.
 * VmHWM is reset first (`5` into /proc/<pid>/clear_refs, Linux ≥ 4.0), so it covers the measured span only, not
 * the warm-up before it; where the reset is refused, VmHWM covers the process's life.
 */
export function sampleMemory(pid: number, intervalMs = 25): { stop(): Promise<{ peakRss: number; hwm: number }> } {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    // not permitted: VmHWM then includes the warm-up, which only makes the reported peak larger
  }
  let peak = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const { rss } = await memoryOf(pid).catch(() => ({ rss: 0 }));
      peak = Math.max(peak, rss);
      await sleep(intervalMs);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      const { hwm, rss } = await memoryOf(pid);
      return { peakRss: Math.max(peak, rss), hwm };
    },
  };
}
