import { execFile } from 'node:child_process';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** What a registry client authenticates with: a user and password/access token, or docker's stored refresh token. */
export type Credentials = { username: string; password: string } | { username: string; identityToken: string };

/** `user:pass` from `--creds`; the password may itself contain colons. */
export function parseCredentials(text: string): Credentials {
  const colon = text.indexOf(':');
  if (colon <= 0) throw new Error('--creds must be user:password');
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
}

/**
 * The credentials docker would use for `registry` (`host[:port]`): `credHelpers`/`credsStore` (via
 * `docker-credential-<name> get`), else `auths` in `$DOCKER_CONFIG/config.json` (default `~/.docker`), matching
 * keys written as `host`, `https://host` or `https://host/v1/`.
 */
export async function dockerCredentials(registry: string, env: NodeJS.ProcessEnv = process.env): Promise<Credentials | undefined> {
  const path = join(env.DOCKER_CONFIG ?? join(homedir(), '.docker'), 'config.json');
  let config: DockerConfig;
  try {
    config = JSON.parse(await readFile(path, 'utf8')) as DockerConfig;
  } catch (error) {
    if ((error as { code?: string }).code === 'ENOENT') return undefined;
    throw new Error(`cannot read ${path}: ${(error as Error).message}`);
  }
  const helper = config.credHelpers?.[registry] ?? config.credsStore;
  if (helper) {
    const fromHelper = await credentialHelper(helper, registry);
    if (fromHelper) return fromHelper;
  }
  for (const [key, entry] of Object.entries(config.auths ?? {})) {
    if (registryHost(key) !== registry) continue;
    let username = entry.username;
    let password = entry.password;
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon > 0) {
        username = decoded.slice(0, colon);
        password = decoded.slice(colon + 1);
      }
    }
    if (entry.identitytoken) return { username: username ?? '<token>', identityToken: entry.identitytoken };
    if (username !== undefined && password !== undefined) return { username, password };
  }
  return undefined;
}

/** `https://host:port/v1/` → `host:port`. */
export function registryHost(key: string): string {
  return key.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '');
}

function credentialHelper(helper: string, registry: string): Promise<Credentials | undefined> {
  return new Promise((resolve) => {
    const child = execFile(`docker-credential-${helper}`, ['get'], { timeout: 10_000 }, (error, stdout) => {
      if (error) return resolve(undefined);
      try {
        const answer = JSON.parse(stdout) as { Username?: string; Secret?: string };
        if (!answer.Username || !answer.Secret) return resolve(undefined);
        resolve(answer.Username === '<token>' ? { username: answer.Username, identityToken: answer.Secret } : { username: answer.Username, password: answer.Secret });
      } catch {
        resolve(undefined);
      }
    });
    child.stdin?.end(registry);
  });
}

/**
 * Stores credentials for `registry` (`host[:port]`) where `docker login` does: through `credHelpers[registry]` or
 * `credsStore` (`docker-credential-<name> store`, JSON on stdin), else base64 `user:password` under `auths` in
 * `$DOCKER_CONFIG/config.json`, which is rewritten atomically (mode 0600) keeping every other key as it was.
 * Returns where they went.
 */
export async function storeDockerCredentials(
  registry: string,
  credentials: { username: string; password: string },
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  const dir = env.DOCKER_CONFIG ?? join(homedir(), '.docker');
  const path = join(dir, 'config.json');
  let config: DockerConfig & Record<string, unknown> = {};
  try {
    config = JSON.parse(await readFile(path, 'utf8')) as DockerConfig & Record<string, unknown>;
  } catch (error) {
    if ((error as { code?: string }).code !== 'ENOENT') throw new Error(`cannot read ${path}: ${(error as Error).message}`);
  }
  const helper = config.credHelpers?.[registry] ?? config.credsStore;
  if (helper) {
    await runCredentialHelper(helper, 'store', JSON.stringify({ ServerURL: registry, Username: credentials.username, Secret: credentials.password }));
    return `docker-credential-${helper}`;
  }
  const auths = { ...config.auths };
  for (const key of Object.keys(auths)) if (registryHost(key) === registry) delete auths[key];
  auths[registry] = { auth: Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64') };
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const temp = `${path}.${process.pid}.tmp`;
  await writeFile(temp, `${JSON.stringify({ ...config, auths }, null, '\t')}\n`, { mode: 0o600 });
  await rename(temp, path);
  return path;
}

function runCredentialHelper(helper: string, verb: 'store', input: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile(`docker-credential-${helper}`, [verb], { timeout: 10_000 }, (error, _stdout, stderr) => {
      if (error) reject(new Error(`docker-credential-${helper} ${verb} failed: ${(stderr || error.message).trim()}`));
      else resolve();
    });
    child.stdin?.end(input);
  });
}
