import { spawn } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { registryBase } from '../../lib/cli/doctor-command.ts';
import { chunkPlan } from '../../lib/doctor/upload-checks.ts';
import { OCIREG_CLI, startRegistryServer, type RegistryServer } from '../support/registry-server.ts';
import { runOk, runTool } from '../support/tools.ts';
import { remapWwwAuthenticate, startBrokenFront, unchanged, zeroHeadContentLength } from './broken-front.ts';
import { doctor, notPassed } from './run-doctor.ts';

const MiB = 1024 * 1024;
const servers: RegistryServer[] = [];
const fronts: Array<{ close(): Promise<void> }> = [];
afterAll(async () => {
  await Promise.all(fronts.map((front) => front.close()));
  await Promise.all(servers.map((server) => server.stop()));
});

async function server(serveArgs: string[] = []): Promise<RegistryServer> {
  const started = await startRegistryServer({ serveArgs });
  servers.push(started);
  return started;
}

/** A user who may push to and delete from ocireg-doctor/*, made with the admin CLI; `user:token`. */
async function doctorUser(dataDir: string): Promise<string> {
  const admin = (...args: string[]) => runOk(process.execPath, [OCIREG_CLI, ...args, '--data-dir', dataDir]);
  await admin('users', 'add', 'alice');
  await admin('grants', 'set', 'alice', 'ocireg-doctor/*', 'delete');
  return `alice:${(await admin('tokens', 'create', 'alice')).stdout.trim()}`;
}

describe('ocireg doctor against ocireg serve', () => {
  it('passes every check on an open registry, skips the token and limit rows, and leaves nothing behind', async () => {
    // Prepare
    const registry = await server();
    // Act
    const { code, report, row } = await doctor(registry.host);
    // Assess
    expect(code, notPassed(report).join('\n')).toBe(0);
    expect(report.registry).toBe(registry.url);
    expect(report.repository).toMatch(/^ocireg-doctor\/[0-9a-f]{12}$/);
    expect(report.rows.filter((r) => r.status === 'skip').map((r) => r.id).sort()).toEqual(['over-chunk-limit', 'over-gateway-limit', 'token-get', 'token-post', 'token-refresh']);
    expect(row('push-large-chunked').sent).toMatch(/5 PATCHes/);
    expect(row('blob-get-range').observed).toMatch(/^200; ranged GET 206/);
    const tags = await fetch(`${registry.url}/v2/${report.repository}/tags/list`);
    expect(tags.status).toBe(404);
  }, 120_000);

  it('checks the 413 and OCI-Chunk-Max-Length when the server limits bodies', async () => {
    const registry = await server(['--max-chunk-length', String(2 * MiB)]);
    const { code, report, row } = await doctor(registry.url);
    expect(code, notPassed(report).join('\n')).toBe(0);
    expect(row('chunk-max-length').observed).toMatch(/OCI-Chunk-Max-Length: 2097152/);
    expect(row('over-chunk-limit')).toMatchObject({ status: 'pass' });
    expect(row('over-chunk-limit').observed).toMatch(/^413 with an OCI error body .*PAYLOAD_TOO_LARGE/);
    expect(row('over-gateway-limit').observed).toMatch(/^413/);
    // 12 MiB in chunks ≤ 2 MiB whose boundaries fall on every 5 MiB
    expect(row('push-large-chunked').sent).toMatch(/7 PATCHes .*\(2 \+ 2 \+ 1 \+ 2 \+ 2 \+ 1 \+ 2 MiB\)/);
  }, 120_000);

  it('passes with token auth, getting tokens by GET and by POST', async () => {
    const registry = await server(['--auth']);
    const creds = await doctorUser(registry.dataDir);
    const { code, report, row } = await doctor(registry.url, '--creds', creds);
    expect(code, notPassed(report).join('\n')).toBe(0);
    expect(row('base').observed).toMatch(/^401, WWW-Authenticate: Bearer realm=".*\/token",service="/);
    expect(row('token-get')).toMatchObject({ status: 'pass' });
    expect(row('token-get').observed).toMatch(/GET \/v2\/ with it: 200/);
    expect(row('token-post')).toMatchObject({ status: 'pass' });
    expect(row('token-refresh').observed).toMatch(/^GET 200 with a refresh_token; POST 200, .*GET \/v2\/ with it: 200/);
  }, 120_000);

  it('fails without credentials on a registry that wants them, and says to pass --creds', async () => {
    const registry = await server(['--auth']);
    const { code, row } = await doctor(registry.url);
    expect(code).toBe(1);
    expect(row('token-get')).toMatchObject({ status: 'fail' });
    expect(row('token-get').advice).toMatch(/--creds/);
    expect(row('delete')).toMatchObject({ status: 'pass' });
  }, 120_000);

  it('fails behind a front that zeroes Content-Length on HEAD, naming the blobHeadRedirect construct prop', async () => {
    // Prepare
    const registry = await server();
    const front = await startBrokenFront(registry.url, zeroHeadContentLength);
    fronts.push(front);
    // Act
    const { code, row, report } = await doctor(front.url);
    // Assess
    expect(code).toBe(1);
    expect(row('blob-head')).toMatchObject({ status: 'fail' });
    expect(row('blob-head').observed).toMatch(/Content-Length 0 instead of 65536/);
    expect(row('blob-head').advice).toMatch(/blobHeadRedirect: true/);
    expect(row('blob-head-large').advice).toMatch(/blobHeadRedirect/);
    expect(row('manifest-head')).toMatchObject({ status: 'fail' });
    // only the HEAD rows fail; the doctor still cleans up behind the front
    expect(report.rows.filter((r) => r.status === 'fail').map((r) => r.id).sort()).toEqual(['blob-head', 'blob-head-large', 'manifest-head']);
    expect(row('delete')).toMatchObject({ status: 'pass' });
  }, 120_000);

  it('prints one block per row for people, the advice under a failure, and a summary', async () => {
    const registry = await server();
    const front = await startBrokenFront(registry.url, zeroHeadContentLength);
    fronts.push(front);
    const result = await runTool(process.execPath, [OCIREG_CLI, 'doctor', front.url]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^PASS {2}push-monolithic: .*\n {6}sent: {5}POST /m);
    expect(result.stdout).toMatch(/^FAIL {2}blob-head: .*\n {6}sent: .*\n {6}observed: .*Content-Length 0 instead of 65536.*\n {6}to do: .*blobHeadRedirect: true/m);
    expect(result.stdout).toMatch(/: \d+ passed, 3 failed, 5 skipped\nfailed: manifest-head, blob-head, blob-head-large\n$/);
  }, 120_000);

  it('on Ctrl-C finishes the check under way, skips the rest and still deletes what it pushed', async () => {
    // Prepare: a front that answers each request after 300 ms, so the run lasts long enough to be interrupted
    const registry = await server();
    const front = await startBrokenFront(registry.url, unchanged, 300);
    fronts.push(front);
    const child = spawn(process.execPath, [OCIREG_CLI, 'doctor', front.url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    // Act: interrupt once the first blob is pushed
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        if (/^PASS {2}push-monolithic/m.test(stdout)) resolve();
      });
    });
    child.kill('SIGINT');
    const code = await exited;
    // Assess
    expect(code).toBe(130);
    expect(stdout).toMatch(/^SKIP {2}blob-read-large: .*\n.*\n {6}observed: not run: interrupted/m);
    expect(stdout).toMatch(/^PASS {2}delete: /m);
    expect(stdout).toMatch(/interrupted: the remaining checks were skipped\n$/);
    const catalog = (await (await fetch(`${registry.url}/v2/_catalog`)).json()) as { repositories: string[] };
    expect(catalog.repositories).toEqual([]);
  }, 120_000);

  it('fails behind a front that remaps WWW-Authenticate, and says what the header is for', async () => {
    const registry = await server(['--auth']);
    const creds = await doctorUser(registry.dataDir);
    const front = await startBrokenFront(registry.url, remapWwwAuthenticate);
    fronts.push(front);
    const { code, row } = await doctor(front.url, '--creds', creds);
    expect(code).toBe(1);
    expect(row('base')).toMatchObject({ status: 'fail' });
    expect(row('base').observed).toMatch(/no WWW-Authenticate \(but x-amzn-Remapped-WWW-Authenticate: Bearer/);
    expect(row('base').advice).toMatch(/WWW-Authenticate/);
    expect(row('push-monolithic')).toMatchObject({ status: 'skip', observed: 'not run: base did not pass' });
  }, 120_000);
});

describe('doctor command line and chunk plan', () => {
  it('talks plain HTTP to a bare loopback host, HTTPS to others unless told', () => {
    expect(registryBase('127.0.0.1:5000', false).href).toBe('http://127.0.0.1:5000/');
    expect(registryBase('localhost:5000', false).href).toBe('http://localhost:5000/');
    expect(registryBase('abc.execute-api.eu-west-1.amazonaws.com', false).href).toBe('https://abc.execute-api.eu-west-1.amazonaws.com/');
    expect(registryBase('https://abc.execute-api.eu-west-1.amazonaws.com/', false).href).toBe('https://abc.execute-api.eu-west-1.amazonaws.com/');
    expect(registryBase('registry.internal:5000', true).href).toBe('http://registry.internal:5000/');
    expect(() => registryBase('https://host/prod', false)).toThrow(/no path/);
  });

  it('plans chunks no larger than the maximum that end on every 5 MiB part boundary', () => {
    expect(chunkPlan(12 * MiB, 4 * MiB)).toEqual([4, 1, 4, 1, 2].map((n) => n * MiB));
    expect(chunkPlan(12 * MiB, 8 * MiB)).toEqual([5, 5, 2].map((n) => n * MiB));
  });
});
