import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { importGraph, type ImportGraph } from './support/import-graph.ts';

/**
 * Dependencies point inward (STYLE.md §2): `lambdas/`, `lib/server/` → `lib/http/` → `lib/registry/` ←
 * `lib/storage/*`, a storage backend imports no other backend, and the CDK code in `lib/infra/` is imported only by
 * `bin/app.ts` and tests. Checked on the import graph, transitively: a core file that imports a helper that imports
 * the AWS SDK breaks the rule too.
 */

const REPO = join(import.meta.dirname, '..');
const SCANNED = ['bin', 'lib', 'lambdas', 'bench', 'test'];

interface LayerRule {
  /** Files the rule applies to (root-relative prefix). */
  layer: string;
  /** Packages and builtins none of the layer's files may reach. */
  packages: RegExp;
  /** Local directories none of the layer's files may reach. */
  dirs: string[];
  /** Only the layer's own imports count, not what they import in turn (shared modules may know several layers). */
  direct?: boolean;
}

/** The storage backends, each a directory of lib/storage. */
const BACKENDS = ['memory', 'fs', 's3', 'dynamodb', 'secrets'];

const RULES: LayerRule[] = [
  {
    layer: 'lib/registry/',
    packages: /^(@aws-sdk\/|@middy\/|aws-cdk-lib|constructs$|(node:)?https?2?$)/,
    dirs: ['lib/http/', 'lib/storage/', 'lib/server/', 'lib/infra/', 'lib/proxy/', 'lib/cli/', 'lib/client/', 'lib/dev/', 'lambdas/', 'bin/'],
  },
  {
    layer: 'lib/http/',
    packages: /^(@aws-sdk\/|aws-cdk-lib)/,
    dirs: ['lib/storage/', 'lib/server/', 'lib/infra/', 'lib/dev/', 'lambdas/', 'bin/'],
  },
  // Storage implements the core's ports and is wired by the doors; it never calls them.
  {
    layer: 'lib/storage/',
    packages: /^(@middy\/|aws-cdk-lib|constructs$)/,
    dirs: ['lib/http/', 'lib/server/', 'lib/infra/', 'lib/cli/', 'lib/client/', 'lib/proxy/', 'lib/doctor/', 'lambdas/', 'bin/'],
  },
  // One backend does not import another's keys or clients (a DynamoDB store that wrote S3 keys did). Direct imports
  // only: lib/storage/aws-resources.ts defines the table and the bucket together, for CDK and dev:aws.
  ...BACKENDS.map((backend) => ({
    layer: `lib/storage/${backend}/`,
    packages: /^$/,
    dirs: BACKENDS.filter((other) => other !== backend).map((other) => `lib/storage/${other}/`),
    direct: true,
  })),
];

/** Who may import lib/infra: the CDK app and tests. */
const INFRA_IMPORTERS = (file: string) => file === 'bin/app.ts' || file.startsWith('test/');

/** Every broken rule, one line each: `lib/http/a.ts -> lib/auth/b.ts imports @aws-sdk/client-s3`. */
function violations(graph: ImportGraph): string[] {
  const found: string[] = [];
  for (const rule of RULES) {
    for (const file of graph.files.filter((candidate) => candidate.startsWith(rule.layer))) {
      const imports = rule.direct ? graph.importsOf(file).map((edge) => ({ edge, chain: [file] })) : graph.reachableImports(file);
      for (const { edge, chain } of imports) {
        // A file of the layer answers for its own imports; what lies beyond a forbidden import is not reported again.
        const reportedElsewhere = (edge.from !== file && edge.from.startsWith(rule.layer)) || rule.dirs.some((dir) => edge.from.startsWith(dir));
        if (reportedElsewhere) continue;
        const reached = edge.target ?? edge.specifier;
        const forbidden = edge.target === undefined ? rule.packages.test(edge.specifier) : rule.dirs.some((dir) => edge.target!.startsWith(dir));
        if (forbidden) found.push(`${chain.join(' -> ')} imports ${reached} (${rule.layer} must not)`);
      }
    }
  }
  for (const file of graph.files.filter((candidate) => !candidate.startsWith('lib/infra/') && !INFRA_IMPORTERS(candidate))) {
    for (const edge of graph.importsOf(file)) {
      if (edge.target?.startsWith('lib/infra/')) found.push(`${file} imports ${edge.target} (only bin/app.ts and tests may)`);
    }
  }
  return [...new Set(found)].sort();
}

describe('dependencies point inward', () => {
  const graph = importGraph(REPO, SCANNED);

  it('reads the whole tree, including the core, the HTTP app and the CDK stack', () => {
    expect(graph.files).toEqual(expect.arrayContaining(['lib/registry/registry.ts', 'lib/http/app.ts', 'lib/infra/oci-registry.ts', 'bin/app.ts', 'lambdas/registry-api.ts']));
    expect(graph.importsOf('lib/http/app.ts').some((edge) => edge.target?.startsWith('lib/registry/'))).toBe(true);
  });

  it('lib/registry reaches no HTTP, AWS, CDK or middy code and no outer layer', () => {
    expect(violations(graph).filter((line) => line.startsWith('lib/registry/'))).toEqual([]);
  });

  it('lib/http reaches no AWS SDK and no storage backend', () => {
    expect(violations(graph).filter((line) => line.startsWith('lib/http/'))).toEqual([]);
  });

  it('lib/storage reaches no door (HTTP app, servers, Lambda, CLI, CDK) and no backend reaches another', () => {
    expect(violations(graph).filter((line) => line.startsWith('lib/storage/'))).toEqual([]);
  });

  it('lib/infra is imported only by bin/app.ts and tests', () => {
    expect(violations(graph).filter((line) => line.endsWith('(only bin/app.ts and tests may)'))).toEqual([]);
  });

  it('reports each kind of violation, with the chain of imports that leads to it', async () => {
    // Prepare: a tree that breaks every rule once, directly or through another file
    const root = await mkdtemp(join(tmpdir(), 'ocireg-arch-'));
    const files: Record<string, string> = {
      'lib/registry/core.ts': "import type { S3Client } from '@aws-sdk/client-s3';\nimport { helper } from './helper.ts';\n",
      'lib/registry/helper.ts': "export const helper = () => import('node:http');\n",
      'lib/registry/clean.ts': "// import { x } from '../storage/fs/y.ts' in a comment does not count\nimport { createHash } from 'node:crypto';\n",
      'lib/http/app.ts': "import { check } from '../auth/check.ts';\n",
      'lib/auth/check.ts': "export { FsBlobStore } from '../storage/fs/fs-blob-store.ts';\n",
      'lib/storage/fs/fs-blob-store.ts': 'export class FsBlobStore {}\n',
      'lib/storage/dynamodb/store.ts': "import { manifestKey } from '../s3/keys.ts';\nimport { renderOciError } from '../../http/error-response.ts';\n",
      'lib/storage/s3/keys.ts': 'export const manifestKey = 1;\n',
      'lib/infra/stack.ts': "import { Stack } from 'aws-cdk-lib';\n",
      'lambdas/handler.ts': "import { RegistryStack } from '../lib/infra/stack.ts';\n",
      'bin/app.ts': "import { RegistryStack } from '../lib/infra/stack.ts';\n",
      'test/infra/stack.test.ts': "import { RegistryStack } from '../../lib/infra/stack.ts';\n",
    };
    try {
      for (const [path, text] of Object.entries(files)) {
        await mkdir(join(root, dirname(path)), { recursive: true });
        await writeFile(join(root, path), text);
      }

      // Act
      const found = violations(importGraph(root, SCANNED));

      // Assess
      expect(found).toEqual([
        'lambdas/handler.ts imports lib/infra/stack.ts (only bin/app.ts and tests may)',
        'lib/http/app.ts -> lib/auth/check.ts imports lib/storage/fs/fs-blob-store.ts (lib/http/ must not)',
        'lib/registry/core.ts imports @aws-sdk/client-s3 (lib/registry/ must not)',
        'lib/registry/helper.ts imports node:http (lib/registry/ must not)',
        'lib/storage/dynamodb/store.ts imports lib/http/error-response.ts (lib/storage/ must not)',
        'lib/storage/dynamodb/store.ts imports lib/storage/s3/keys.ts (lib/storage/dynamodb/ must not)',
      ]);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

/**
 * One small module per concept (STYLE.md §1, §7): a file in lib/ over 300 lines says at its top why, with the words
 * "over 300 lines" in its first 40 lines (e.g. "Over 300 lines on purpose: declarations only").
 */
const MAX_LINES = 300;

/** The lib/ files over `MAX_LINES` lines without a reason at their top. */
async function unexplainedLongFiles(root: string, files: string[]): Promise<string[]> {
  const found: string[] = [];
  for (const file of files.filter((candidate) => candidate.startsWith('lib/'))) {
    const lines = (await readFile(join(root, file), 'utf8')).split('\n');
    const length = lines.at(-1) === '' ? lines.length - 1 : lines.length;
    const explained = /over 300 lines/i.test(lines.slice(0, 40).join('\n'));
    if (length > MAX_LINES && !explained) found.push(`${file}: ${length} lines, no reason at its top`);
  }
  return found.sort();
}

describe('module size', () => {
  it('every lib/ file over 300 lines says at its top why', async () => {
    expect(await unexplainedLongFiles(REPO, importGraph(REPO, ['lib']).files)).toEqual([]);
  });

  it('names a long file without a reason, and accepts one with a reason or of 300 lines', async () => {
    // Prepare
    const root = await mkdtemp(join(tmpdir(), 'ocireg-size-'));
    const long = (head: string) => `${head}\n${'export const x = 1;\n'.repeat(MAX_LINES)}`;
    const files: Record<string, string> = {
      'lib/a/long.ts': long('// a long file'),
      'lib/a/explained.ts': long('/** Over 300 lines on purpose: one table. */'),
      'lib/a/short.ts': 'export const y = 2;\n',
      'lib/a/at-limit.ts': 'export const z = 3;\n'.repeat(MAX_LINES),
    };
    try {
      for (const [path, text] of Object.entries(files)) {
        await mkdir(join(root, dirname(path)), { recursive: true });
        await writeFile(join(root, path), text);
      }

      // Act
      const found = await unexplainedLongFiles(root, Object.keys(files));

      // Assess
      expect(found).toEqual([
        'lib/a/long.ts: 301 lines, no reason at its top',
      ]);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
