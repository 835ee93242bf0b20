import type { TagChange } from '../registry/tag-history.ts';
import type { TagDetails } from '../registry/tag-versions.ts';
import type { Credentials } from './docker-credentials.ts';
import { RegistryClient } from './registry-client.ts';

/**
 * The `_ocireg` extension API (docs/api.md) over the registry client: docker's token flow, the user's docker
 * credentials. One client per repository, with the scope the command needs (pull to read, pull,push to change).
 */
export interface VersionsClientOptions {
  registry: string;
  plainHttp: boolean;
  credentials: Credentials | undefined;
}

const JSON_HEADERS = { 'content-type': 'application/json' };

export class VersionsClient {
  readonly #options: VersionsClientOptions;

  constructor(options: VersionsClientOptions) {
    this.#options = options;
  }

  async history(repository: string, tag: string): Promise<TagChange[]> {
    return (await this.#get<{ changes: TagChange[] }>(repository, `/v2/${repository}/_ocireg/history/${tag}`, 'pull')).changes;
  }

  async rollback(repository: string, tag: string, target: { to: string } | { steps: number }): Promise<{ previous?: string; digest: string }> {
    return this.#post(repository, `/v2/${repository}/_ocireg/rollback/${tag}`, target);
  }

  async tag(repository: string, reference: string, tags: string[]): Promise<{ digest: string; tags: string[] }> {
    return this.#post(repository, `/v2/${repository}/_ocireg/tag`, { reference, tags });
  }

  /** Every tag of the repository with details, following `Link` pages. */
  async tags(repository: string): Promise<TagDetails[]> {
    const all: TagDetails[] = [];
    const client = this.#client(repository, 'pull');
    let next: string | undefined = `/v2/${repository}/_ocireg/tags`;
    while (next !== undefined) {
      const response = await client.request('GET', next);
      all.push(...(JSON.parse(response.body.toString('utf8')) as { tags: TagDetails[] }).tags);
      next = nextLink(response.headers.link);
    }
    return all;
  }

  /** The repositories the caller may pull (the catalog filters them with auth on), following `Link` pages. */
  async repositories(): Promise<string[]> {
    const client = new RegistryClient({ ...this.#base(), scopes: ['registry:catalog:*'] });
    const all: string[] = [];
    let next: string | undefined = '/v2/_catalog';
    while (next !== undefined) {
      const response = await client.request('GET', next);
      all.push(...(JSON.parse(response.body.toString('utf8')) as { repositories: string[] }).repositories);
      next = nextLink(response.headers.link);
    }
    return all;
  }

  async #get<T>(repository: string, path: string, actions: string): Promise<T> {
    const response = await this.#client(repository, actions).request('GET', path);
    return JSON.parse(response.body.toString('utf8')) as T;
  }

  async #post<T>(repository: string, path: string, body: unknown): Promise<T> {
    const response = await this.#client(repository, 'pull,push').request('POST', path, { headers: JSON_HEADERS, body: Buffer.from(JSON.stringify(body)) });
    return JSON.parse(response.body.toString('utf8')) as T;
  }

  #client(repository: string, actions: string): RegistryClient {
    return new RegistryClient({ ...this.#base(), scopes: [`repository:${repository}:${actions}`] });
  }

  #base() {
    return { registry: this.#options.registry, plainHttp: this.#options.plainHttp, credentials: this.#options.credentials, userAgent: 'ocireg-cli' };
  }
}

function nextLink(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  const match = value && /<([^>]+)>;\s*rel="?next"?/.exec(value);
  return match ? match[1] : undefined;
}
