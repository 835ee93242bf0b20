import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';

/**
 * The import graph of a source tree, read the way the compiler reads it (`ts.preProcessFile`: static, type-only,
 * dynamic `import()` and `export … from`, comments ignored), for tests that pin which layer may import which.
 * Paths are relative to the root with `/` separators: `lib/http/app.ts`.
 */

const SKIPPED_DIRS = new Set(['node_modules', 'cdk.out', '.git']);

export interface ImportEdge {
  /** The importing file. */
  from: string;
  /** As written: `@aws-sdk/client-s3`, `node:http`, `../registry/types.ts`. */
  specifier: string;
  /** The imported file for a relative specifier (root-relative), else undefined (a package or builtin). */
  target: string | undefined;
}

export interface ImportGraph {
  root: string;
  files: string[];
  /** Every import of `file`. */
  importsOf(file: string): ImportEdge[];
  /**
   * Every import made by `file` or by the local files it reaches through relative imports, each with the chain of
   * files that leads to it (`[file, …, edge.from]`), so a violation two hops away names its path.
   */
  reachableImports(file: string): Array<{ edge: ImportEdge; chain: string[] }>;
}

/** `.ts` files under `dirs` (relative to `root`), recursively. */
export function sourceFiles(root: string, dirs: string[]): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    if (!existsSync(join(root, dir))) return;
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      const path = dir === '' ? entry.name : `${dir}/${entry.name}`;
      if (entry.isDirectory() && !SKIPPED_DIRS.has(entry.name)) walk(path);
      else if (entry.isFile() && entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) found.push(path);
    }
  };
  for (const dir of dirs) walk(dir);
  return found.sort();
}

function resolveRelative(root: string, from: string, specifier: string): string {
  const base = resolve(root, dirname(from), specifier);
  const candidates = [base, `${base}.ts`, join(base, 'index.ts')];
  const hit = candidates.find((candidate) => existsSync(candidate) && candidate.endsWith('.ts')) ?? base;
  return relative(root, hit).split(sep).join('/');
}

export function importGraph(root: string, dirs: string[]): ImportGraph {
  const files = sourceFiles(root, dirs);
  const cache = new Map<string, ImportEdge[]>();
  const importsOf = (file: string): ImportEdge[] => {
    let edges = cache.get(file);
    if (edges) return edges;
    const source = readFileSync(join(root, file), 'utf8');
    edges = ts.preProcessFile(source, true, true).importedFiles.map(({ fileName: specifier }) => ({
      from: file,
      specifier,
      target: specifier.startsWith('.') ? resolveRelative(root, file, specifier) : undefined,
    }));
    cache.set(file, edges);
    return edges;
  };
  const reachableImports = (start: string) => {
    const found: Array<{ edge: ImportEdge; chain: string[] }> = [];
    const chains = new Map<string, string[]>([[start, [start]]]);
    const queue = [start];
    while (queue.length > 0) {
      const file = queue.shift()!;
      const chain = chains.get(file)!;
      for (const edge of importsOf(file)) {
        found.push({ edge, chain });
        if (edge.target !== undefined && !chains.has(edge.target) && existsSync(join(root, edge.target))) {
          chains.set(edge.target, [...chain, edge.target]);
          queue.push(edge.target);
        }
      }
    }
    return found;
  };
  return { root, files, importsOf, reachableImports };
}
