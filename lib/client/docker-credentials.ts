import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
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
