import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, rm, symlink } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { cpuSecondsOf, freePort, killStartedOnExit, startOcireg, startServerProcess } from './servers.ts';

/**
 * `npx node bench/proxy.ts [--baseline <rev>] [--candidate <rev>] [--rounds 15] [--layer-mib 64]`: `ocireg proxy`
 * of git revision `--candidate` (default: this working tree) against the same command from `--baseline` (default
 * `main`), side by side in one run, both in front of one
 * `ocireg serve` (no body limit: each proxy chunks at its default 4 MiB). Each round, each proxy in turn (the
 * order alternating): a streamed PATCH of a fresh layer then the closing PUT (docker, skopeo), a monolithic PUT
 * of another (containerd), and a GET of it back through the proxy (forwarded). Prints per step the medians of the
 * wall time and of the proxy process's CPU time, and the ratios candidate / baseline. On a busy machine the wall
 * times scatter; the CPU times hold better (an A/A run, `--baseline HEAD`, shows how well).
 */

const { values: flags } = parseArgs({
  options: { baseline: { type: 'string', default: 'main' }, candidate: { type: 'string' }, rounds: { type: 'string', default: '15' }, 'layer-mib': { type: 'string', default: '64' } },
  strict: true,
});
const ROOT = resolve(import.meta.dirname, '..');
const WORK = join(import.meta.dirname, 'work', 'proxy');
const MIB = 1024 * 1024;
const rounds = Number(flags.rounds);
const layerBytes = Number(flags['layer-mib']) * MIB;
const agent = new Agent({ keepAlive: true });

type Step = 'streamed PATCH + PUT' | 'monolithic PUT' | 'GET (forwarded)';
const STEPS: Step[] = ['streamed PATCH + PUT', 'monolithic PUT', 'GET (forwarded)'];

/** One request; a `streamed` body goes in 64 KiB writes with chunked encoding, as docker sends it. The answer body is counted, not kept. */
function send(url: string, method: string, body?: Buffer, streamed = false): Promise<{ status: number; location: string | undefined; bytes: number }> {
  return new Promise((done, fail) => {
    const headers: Record<string, string> = body && !streamed ? { 'content-length': String(body.byteLength) } : {};
    const req = request(url, { method, headers, agent }, (res) => {
      let bytes = 0;
      res.on('data', (chunk: Buffer) => (bytes += chunk.byteLength));
      res.on('end', () => done({ status: res.statusCode!, location: res.headers.location, bytes }));
      res.on('error', fail);
    });
    req.on('error', fail);
    if (body && streamed) for (let at = 0; at < body.byteLength; at += 64 * 1024) req.write(body.subarray(at, at + 64 * 1024));
    else if (body) req.write(body);
    req.end();
  });
}

function expectStatus(answer: { status: number }, status: number, what: string): void {
  if (answer.status !== status) throw new Error(`${what}: expected ${status}, got ${answer.status}`);
}

interface Cost {
  /** Wall milliseconds. */
  ms: number;
  /** The proxy process's CPU milliseconds (user + system, 10 ms ticks). */
  cpuMs: number;
}

async function measured(pid: number, action: () => Promise<void>): Promise<Cost> {
  const [start, cpu] = [performance.now(), await cpuSecondsOf(pid)];
  await action();
  return { ms: performance.now() - start, cpuMs: ((await cpuSecondsOf(pid)) - cpu) * 1000 };
}

/** The three steps through one proxy, each on a fresh random layer. */
async function round(running: { url: string; pid: number }, name: string): Promise<Record<Step, Cost>> {
  const proxy = running.url;
  const timed = (action: () => Promise<void>) => measured(running.pid, action);
  const layer = () => {
    const bytes = randomBytes(layerBytes);
    return { bytes, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}` };
  };
  const streamed = layer();
  const monolithic = layer();
  const start = async () => {
    const started = await send(`${proxy}/v2/${name}/blobs/uploads/`, 'POST');
    expectStatus(started, 202, 'POST');
    return `${proxy}${started.location!}`;
  };
  return {
    'streamed PATCH + PUT': await timed(async () => {
      const patched = await send(await start(), 'PATCH', streamed.bytes, true);
      expectStatus(patched, 202, 'PATCH');
      expectStatus(await send(`${proxy}${patched.location!}${patched.location!.includes('?') ? '&' : '?'}digest=${streamed.digest}`, 'PUT'), 201, 'PUT');
    }),
    'monolithic PUT': await timed(async () => {
      const location = await start();
      expectStatus(await send(`${location}${location.includes('?') ? '&' : '?'}digest=${monolithic.digest}`, 'PUT', monolithic.bytes), 201, 'monolithic PUT');
    }),
    'GET (forwarded)': await timed(async () => {
      const pulled = await send(`${proxy}/v2/${name}/blobs/${monolithic.digest}`, 'GET');
      expectStatus(pulled, 200, 'GET');
      if (pulled.bytes !== layerBytes) throw new Error(`GET: ${pulled.bytes} bytes, expected ${layerBytes}`);
    }),
  };
}

/** `bin/` and `lib/` of a git revision, runnable beside this tree's node_modules. */
async function checkout(rev: string): Promise<string> {
  const dir = join(WORK, `tree-${rev.replace(/[^\w.-]/g, '_')}`);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const archive = execFileSync('git', ['-C', ROOT, 'archive', rev, 'bin', 'lib', 'package.json']);
  execFileSync('tar', ['-x', '-C', dir], { input: archive });
  await symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  return dir;
}

async function startProxy(tree: string, upstream: string, label: string) {
  const port = await freePort();
  return startServerProcess(process.execPath, [join(tree, 'bin', 'ocireg.ts'), 'proxy', '--upstream', upstream, '--port', String(port)], port, join(WORK, `${label}.log`));
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;

killStartedOnExit();
await rm(WORK, { recursive: true, force: true });
await mkdir(WORK, { recursive: true });
const baselineTree = await checkout(flags.baseline);
const candidateTree = flags.candidate === undefined ? ROOT : await checkout(flags.candidate);
const candidateName = flags.candidate ?? 'this tree';
const registry = await startOcireg({ dir: join(WORK, 'registry') });
const proxies = {
  baseline: await startProxy(baselineTree, registry.url, 'baseline'),
  current: await startProxy(candidateTree, registry.url, 'current'),
};
try {
  const costs = { baseline: [] as Array<Record<Step, Cost>>, current: [] as Array<Record<Step, Cost>> };
  await round(proxies.baseline, 'warm/baseline');
  await round(proxies.current, 'warm/current');
  for (let i = 0; i < rounds; i++) {
    const order = i % 2 === 0 ? (['baseline', 'current'] as const) : (['current', 'baseline'] as const);
    for (const which of order) costs[which].push(await round(proxies[which], `bench/${which}`));
  }
  const row = (label: string, of: (cost: Record<Step, Cost>) => number, average: (values: number[]) => number) => {
    const [b, c] = [average(costs.baseline.map(of)), average(costs.current.map(of))];
    return `| ${label} | ${b.toFixed(0)} | ${c.toFixed(0)} | ${(c / b).toFixed(2)} |`;
  };
  const lines = [
    `ocireg proxy, ${candidateName} vs ${flags.baseline}: ${rounds} rounds of ${layerBytes / MIB} MiB layers after one warm-up round each: wall ms (median), proxy CPU ms (mean: 10 ms ticks)`,
    '',
    `| step | ${flags.baseline} | ${candidateName} | ratio |`,
    '|---|---:|---:|---:|',
    ...STEPS.map((step) => row(`${step}: wall ms`, (cost) => cost[step].ms, median)),
    ...STEPS.map((step) => row(`${step}: proxy CPU ms`, (cost) => cost[step].cpuMs, mean)),
    row('all steps: proxy CPU ms', (cost) => STEPS.reduce((sum, step) => sum + cost[step].cpuMs, 0), mean),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
} finally {
  await proxies.baseline.stop();
  await proxies.current.stop();
  await registry.stop();
  agent.destroy();
  await rm(WORK, { recursive: true, force: true }); // the checkouts, which tsc would otherwise read
}
