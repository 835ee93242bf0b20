import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { deflateRawSync } from 'node:zlib';
import { build } from 'esbuild';
import { summarize, type Sample } from './report.ts';

const ROOT = resolve(import.meta.dirname, '..');

export interface BundleReport {
  entry: string;
  /** Bytes of the minified ESM bundle. */
  bytes: number;
  /** Bytes after raw deflate: about what the zipped Lambda asset weighs. */
  deflatedBytes: number;
  /** The largest inputs, by bytes they contribute to the output. */
  largestInputs: { path: string; bytes: number }[];
  /** Module import time (handler module evaluated: SDK clients and stores built), ms, fresh process each. */
  importMs: Sample;
  /** From process start (performance.timeOrigin) to the import done, ms. */
  processToReadyMs: Sample;
}

/**
 * Bundles the handler as lib/infra/oci-registry.ts has the CDK do it (esbuild: bundle, minify, ESM, node24, main
 * fields module,main, the AWS SDK bundled, the createRequire banner) and times its import in `runs` fresh processes
 * with the environment the function gets (table and bucket names; no request is sent at import).
 */
export async function measureLambdaBundle(entry: string, outDir: string, runs = 10): Promise<BundleReport> {
  const outfile = join(outDir, 'index.mjs');
  const result = await build({
    entryPoints: [join(ROOT, entry)],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    minify: true,
    sourcemap: false,
    mainFields: ['module', 'main'],
    banner: { js: "import { createRequire as __ociregCreateRequire } from 'node:module'; const require = __ociregCreateRequire(import.meta.url);" },
    metafile: true,
    logLevel: 'warning',
  });
  const bytes = await readFile(outfile);
  const output = Object.values(result.metafile.outputs)[0]!;
  const byPackage = new Map<string, number>();
  for (const [path, input] of Object.entries(output.inputs)) {
    const key = packageOf(path);
    byPackage.set(key, (byPackage.get(key) ?? 0) + input.bytesInOutput);
  }
  const largestInputs = [...byPackage]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 8)
    .map(([path, size]) => ({ path, bytes: size }));

  const script = [
    'const started = performance.now();',
    `await import(${JSON.stringify(pathToFileURL(outfile).href)});`,
    'const done = performance.now();',
    'process.stdout.write(JSON.stringify({ importMs: done - started, processToReadyMs: done }));',
  ].join('\n');
  const env = { ...process.env, TABLE_NAME: 'ocireg-bench', BUCKET_NAME: 'ocireg-bench', AWS_REGION: 'us-east-1', POWERTOOLS_LOG_LEVEL: 'ERROR' };
  const importMs: number[] = [];
  const processToReadyMs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { env });
    const timing = JSON.parse(stdout) as { importMs: number; processToReadyMs: number };
    importMs.push(timing.importMs);
    processToReadyMs.push(timing.processToReadyMs);
  }
  return {
    entry,
    bytes: bytes.byteLength,
    deflatedBytes: deflateRawSync(bytes, { level: 9 }).byteLength,
    largestInputs,
    importMs: summarize(importMs),
    processToReadyMs: summarize(processToReadyMs),
  };
}

/** `node_modules/@aws-sdk/client-s3/dist-es/…` → `@aws-sdk/client-s3`; project files by their folder. */
export function packageOf(path: string): string {
  const at = path.lastIndexOf('node_modules/');
  if (at < 0) return path.split('/').slice(0, -1).join('/') || path;
  const parts = path.slice(at + 'node_modules/'.length).split('/');
  return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
}
