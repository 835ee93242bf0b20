import { parseArgs } from 'node:util';
import { dockerCredentials, parseCredentials } from '../client/docker-credentials.ts';
import { parseRepositoryReference, usesPlainHttp, type RepositoryReference } from '../client/repository-reference.ts';
import { VersionsClient } from '../client/versions-client.ts';
import { formatBytes } from '../client/progress.ts';
import type { TagChange } from '../registry/tag-history.ts';
import { UsageError, type Command } from './command.ts';

/**
 * `ocireg history | rollback | tag | ls`: the `_ocireg` extension API (docs/api.md) with the user's docker
 * credentials (or --creds), plain HTTP for localhost/127.0.0.1 as docker does, `--plain-http` elsewhere.
 */

const OPTIONS = {
  'plain-http': { type: 'boolean', default: false },
  creds: { type: 'string' },
  json: { type: 'boolean', default: false },
  to: { type: 'string' },
  steps: { type: 'string' },
} as const;

const COMMON_USAGE = `             --plain-http  HTTP, not HTTPS (automatic for localhost and 127.0.0.1)   --creds <user:pass>  (default: docker's)`;

async function connect(reference: RepositoryReference, values: { 'plain-http'?: boolean; creds?: string }): Promise<VersionsClient> {
  const credentials = values.creds !== undefined ? parseCredentials(values.creds) : await dockerCredentials(reference.registry);
  return new VersionsClient({ registry: reference.registry, plainHttp: usesPlainHttp(reference.registry, values['plain-http'] ?? false), credentials });
}

/** One option set for the four; only rollback takes --to and --steps. */
function parse(args: string[], rollbackOptions = false) {
  const parsed = parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true });
  if (!rollbackOptions && (parsed.values.to !== undefined || parsed.values.steps !== undefined)) throw new UsageError('--to and --steps belong to rollback');
  return parsed;
}

function reference(text: string | undefined, need: 'tag' | 'tag-or-digest' | 'any'): RepositoryReference & { repository: string } {
  if (text === undefined) throw new UsageError('name the image: <registry>/<repo>:<tag>');
  let parsed: RepositoryReference;
  try {
    parsed = parseRepositoryReference(text);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (parsed.repository === undefined) throw new UsageError(`name a repository after the registry, got "${text}"`);
  if (need === 'tag' && parsed.tag === undefined) throw new UsageError(`name a tag (<registry>/<repo>:<tag>), got "${text}"`);
  if (need === 'tag-or-digest' && parsed.tag === undefined && parsed.digest === undefined) throw new UsageError(`name a tag or a digest, got "${text}"`);
  return parsed as RepositoryReference & { repository: string };
}

const write = (text: string) => process.stdout.write(text);
const short = (digest: string | undefined) => (digest === undefined ? '-' : digest.slice(0, 19));

export const history = {
  usage: `history    the changes of a tag, newest first: when, what, from, to, who, client
             ocireg history <registry>/<repo>:<tag> [--json]
${COMMON_USAGE}`,
  run: (async (args) => {
    const { values, positionals } = parse(args);
    const target = reference(positionals[0], 'tag');
    const changes = await (await connect(target, values)).history(target.repository, target.tag!);
    if (values.json) write(`${JSON.stringify(changes, null, 2)}\n`);
    else write(table(['WHEN', 'ACTION', 'FROM', 'TO', 'WHO', 'CLIENT OR REASON'], changes.map(historyRow)));
    return 0;
  }) satisfies Command,
};

function historyRow(change: TagChange): string[] {
  const who = change.actor.tokenId !== undefined ? `${change.actor.subject} (token ${change.actor.tokenId})` : change.actor.subject;
  // A change no client asked for (garbage collection's retention rules) says why instead.
  return [change.at, change.action, short(change.previous), short(change.digest), who, change.userAgent ?? change.reason ?? '-'];
}

export const rollback = {
  usage: `rollback   moves a tag back (no blob moves): one change back by default
             ocireg rollback <registry>/<repo>:<tag> [--to <digest> | --steps <n>]
${COMMON_USAGE}`,
  run: (async (args) => {
    const { values, positionals } = parse(args, true);
    const target = reference(positionals[0], 'tag');
    if (values.to !== undefined && values.steps !== undefined) throw new UsageError('give --to or --steps, not both');
    let how: { to: string } | { steps: number } = { steps: 1 };
    if (values.to !== undefined) how = { to: values.to };
    if (values.steps !== undefined) {
      const steps = Number(values.steps);
      if (!Number.isInteger(steps) || steps < 1) throw new UsageError(`--steps takes a whole number of at least 1, got "${values.steps}"`);
      how = { steps };
    }
    const result = await (await connect(target, values)).rollback(target.repository, target.tag!, how);
    if (values.json) write(`${JSON.stringify(result)}\n`);
    else write(`${target.repository}:${target.tag} ${result.previous ?? '(none)'} -> ${result.digest}\n`);
    return 0;
  }) satisfies Command,
};

export const tag = {
  usage: `tag        points new tags at an image already in the repository (server-side: no blob moves)
             ocireg tag <registry>/<repo>(:<tag>|@<digest>) <new-tag>...
${COMMON_USAGE}`,
  run: (async (args) => {
    const { values, positionals } = parse(args);
    const source = reference(positionals[0], 'tag-or-digest');
    const tags = positionals.slice(1);
    if (tags.length === 0) throw new UsageError('name at least one new tag');
    const result = await (await connect(source, values)).tag(source.repository, source.digest ?? source.tag!, tags);
    if (values.json) write(`${JSON.stringify(result)}\n`);
    else write(`${result.digest} tagged ${result.tags.join(', ')}\n`);
    return 0;
  }) satisfies Command,
};

export const ls = {
  usage: `ls         the repositories you may pull, or a repository's tags with digest, size, push time and last pull
             ocireg ls <registry>[/<repo>] [--json]
${COMMON_USAGE}`,
  run: (async (args) => {
    const { values, positionals } = parse(args);
    if (positionals[0] === undefined) throw new UsageError('name a registry, or <registry>/<repo>');
    let parsed: RepositoryReference;
    try {
      parsed = parseRepositoryReference(positionals[0]);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    const client = await connect(parsed, values);
    if (parsed.repository === undefined) {
      const repositories = await client.repositories();
      write(values.json ? `${JSON.stringify(repositories)}\n` : repositories.map((name) => `${name}\n`).join(''));
      return 0;
    }
    const tags = await client.tags(parsed.repository);
    if (values.json) write(`${JSON.stringify(tags, null, 2)}\n`);
    else write(table(['TAG', 'DIGEST', 'SIZE', 'PUSHED', 'LAST PULL'], tags.map((entry) => [entry.tag, short(entry.digest), formatBytes(entry.size), entry.pushedAt ?? '-', entry.lastPulledAt?.slice(0, 10) ?? '-'])));
    return 0;
  }) satisfies Command,
};

function table(header: string[], rows: string[][]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  return [header, ...rows].map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd() + '\n').join('');
}
