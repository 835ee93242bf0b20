import { spawn, type ChildProcess } from 'node:child_process';
import bcrypt from 'bcryptjs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort } from './registry-server.ts';
import { isRunning, requireTool, stopChild, trackChild, waitFor } from './tools.ts';

/**
 * CNCF Distribution (`docker-registry`, Debian package docker-registry) on a free loopback port over a filesystem
 * store in `dir`: the upstream of the pull-through cache suites. `start()` again after `stop()` serves the same
 * content on the same port (an upstream that went away and came back). With `htpasswd`, every request needs Basic
 * credentials of those users (distribution's htpasswd auth reads bcrypt hashes only; `openssl passwd` has no bcrypt,
 * so bcryptjs writes them). With `token`, every request needs a Bearer token from that token server.
 */
export interface DistributionRegistryOptions {
  htpasswd?: Record<string, string>;
  /** Bearer token auth (`auth: token`) trusting a token server's certificate (test/support/token-server.ts). */
  token?: { realm: string; service: string; issuer: string; certificate: string };
}

export interface DistributionRegistry {
  url: string;
  host: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export async function distributionRegistry(dir: string, options: DistributionRegistryOptions = {}): Promise<DistributionRegistry> {
  const binary = await requireTool('docker-registry');
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const config = join(dir, 'config.yml');
  await mkdir(join(dir, 'storage'), { recursive: true });
  // https://distribution.github.io/distribution/about/configuration/
  await writeFile(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: error',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(dir, 'storage')}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: ${host}`,
      ...(options.htpasswd ? ['auth:', '  htpasswd:', '    realm: upstream', `    path: ${join(dir, 'htpasswd')}`] : []),
      ...(options.token
        ? ['auth:', '  token:', `    realm: ${options.token.realm}`, `    service: ${options.token.service}`, `    issuer: ${options.token.issuer}`, `    rootcertbundle: ${options.token.certificate}`]
        : []),
      '',
    ].join('\n'),
  );
  if (options.htpasswd) {
    const lines = Object.entries(options.htpasswd).map(([user, password]) => `${user}:${bcrypt.hashSync(password, 10)}`);
    await writeFile(join(dir, 'htpasswd'), `${lines.join('\n')}\n`);
  }
  // Ready when /v2/ answers: 200, or 401 with a challenge when auth is on.
  const ready = options.htpasswd || options.token ? 401 : 200;
  let child: ChildProcess | undefined;
  let stderr = '';
  return {
    url: `http://${host}`,
    host,
    async start() {
      stderr = '';
      const started = spawn(binary, ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
      child = started;
      trackChild(started);
      started.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
      await waitFor(async () => (await fetch(`http://${host}/v2/`)).status === ready, `docker-registry on ${host}`, 30_000, 100, () =>
        isRunning(started) ? undefined : `docker-registry exited: ${stderr.trim()}`,
      );
    },
    async stop() {
      if (child) await stopChild(child, 5_000);
      child = undefined;
    },
  };
}
