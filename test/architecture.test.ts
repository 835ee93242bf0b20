import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { importGraph, type ImportGraph } from './support/import-graph.ts';

/**
 * Dependencies point inward (STYLE.md §2): `lambdas/`, `lib/server/` → `lib/http/` → `lib/registry/` ←
 * `lib/storage/*`, and the CDK code in `lib/infra/` is imported only by `bin/app.ts` and tests. Checked on the
 * import graph, transitively: a core file that imports a helper that imports the AWS SDK breaks the rule too.
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
}

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
];

/** Who may import lib/infra: the CDK app and tests. */
const INFRA_IMPORTERS = (file: string) => file === 'bin/app.ts' || file.startsWith('test/');

/** Every broken rule, one line each: `lib/http/a.ts -> lib/auth/b.ts imports @aws-sdk/client-s3`. */
function violations(graph: ImportGraph): string[] {
  const found: string[] = [];
  for (const rule of RULES) {
    for (const file of graph.files.filter((candidate) => candidate.startsWith(rule.layer))) {
      for (const { edge, chain } of graph.reachableImports(file)) {
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
      ]);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
