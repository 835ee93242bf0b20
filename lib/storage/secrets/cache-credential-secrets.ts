import {
  CreateSecretCommand,
  DeleteSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  RestoreSecretCommand,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';

/** Upstream credentials as a secret holds them (JSON `{"username","password"}`). */
export interface UpstreamCredentials {
  username: string;
  password: string;
}

/**
 * The name prefix of the cache rules' secrets of the registry whose table is `table`: `ocireg-cache/<table>/`. The
 * stack lets the function read only secrets under it (lib/infra/registry-cache.ts); the admin CLI, with the
 * administrator's credentials, creates and deletes them. Table names ([A-Za-z0-9_.-]) and cache prefixes
 * (repository names) only hold characters secret names allow.
 */
export function cacheSecretPrefix(table: string): string {
  return `ocireg-cache/${table}/`;
}

/** How long the function uses a secret it read before reading it again: how soon a changed password applies. */
export const CACHE_SECRET_TTL_MS = 60_000;

/**
 * One Secrets Manager secret per cache rule with credentials, named `<cacheSecretPrefix(table)><rule prefix>`.
 *
 * Writes (admin CLI): `write` creates the secret, or puts a new version when it exists (`cache add` again with
 * another password), or restores it first when an earlier `cache rm` scheduled it for deletion. `remove` deletes it
 * without a recovery window: a removed rule's password is not kept, and its name is free for the next `cache add`.
 *
 * Reads (the function): `read` caches each value for {@link CACHE_SECRET_TTL_MS}; concurrent readers share one
 * GetSecretValue, and a failed read is not kept (the next pull tries again).
 */
export class CacheCredentialSecrets {
  readonly #client: SecretsManagerClient;
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #read = new Map<string, { at: number; value: Promise<UpstreamCredentials> }>();

  constructor(client: SecretsManagerClient, options: { ttlMs?: number; now?: () => number } = {}) {
    this.#client = client;
    this.#ttlMs = options.ttlMs ?? CACHE_SECRET_TTL_MS;
    this.#now = options.now ?? Date.now;
  }

  /** The secret of rule `prefix`'s credentials: always the same name, so a rewrite replaces rather than leaks. */
  nameFor(table: string, prefix: string): string {
    return `${cacheSecretPrefix(table)}${prefix}`;
  }

  /** Stores `credentials` as the current value of secret `name`, creating it if needed. */
  async write(name: string, credentials: UpstreamCredentials): Promise<void> {
    const SecretString = JSON.stringify({ username: credentials.username, password: credentials.password });
    try {
      await this.#client.send(new CreateSecretCommand({ Name: name, SecretString, Description: 'ocireg pull-through cache: upstream credentials of one cache rule' }));
      return;
    } catch (error) {
      const kind = errorName(error);
      if (kind === 'InvalidRequestException') {
        // Scheduled for deletion (a rule removed by an older ocireg, or by hand with a recovery window).
        await this.#client.send(new RestoreSecretCommand({ SecretId: name }));
      } else if (kind !== 'ResourceExistsException') {
        throw error;
      }
    }
    await this.#client.send(new PutSecretValueCommand({ SecretId: name, SecretString }));
  }

  /** Deletes secret `name` at once (no recovery window); absent is fine. */
  async remove(name: string): Promise<void> {
    try {
      await this.#client.send(new DeleteSecretCommand({ SecretId: name, ForceDeleteWithoutRecovery: true }));
    } catch (error) {
      if (errorName(error) !== 'ResourceNotFoundException') throw error;
    }
  }

  /** The credentials in secret `name` (by name or ARN), read at most once per TTL. */
  async read(name: string): Promise<UpstreamCredentials> {
    const now = this.#now();
    const cached = this.#read.get(name);
    if (cached && now - cached.at < this.#ttlMs) return cached.value;
    const value = this.#fetch(name);
    this.#read.set(name, { at: now, value });
    value.catch(() => {
      if (this.#read.get(name)?.value === value) this.#read.delete(name);
    });
    return value;
  }

  async #fetch(name: string): Promise<UpstreamCredentials> {
    const { SecretString } = await this.#client.send(new GetSecretValueCommand({ SecretId: name }));
    let parsed: Partial<UpstreamCredentials> | undefined;
    try {
      parsed = JSON.parse(SecretString ?? '') as Partial<UpstreamCredentials>;
    } catch {
      parsed = undefined;
    }
    if (typeof parsed?.username !== 'string' || typeof parsed.password !== 'string') {
      throw new Error(`secret ${name} does not hold upstream credentials as {"username","password"} JSON: run ocireg cache add again with --username`);
    }
    return { username: parsed.username, password: parsed.password };
  }
}

function errorName(error: unknown): string | undefined {
  return (error as { name?: string } | undefined)?.name;
}
