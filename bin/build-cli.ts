/**
 * `npm run build`: the CLI as one JavaScript file, `dist/ocireg.mjs`, that runs on plain Node ≥ 20 with nothing
 * else installed. Node refuses type stripping inside node_modules, so the TypeScript sources cannot be what an
 * installed package runs; esbuild bundles every dependency (the AWS SDK, jose, hash-wasm's inlined WebAssembly).
 * `npm ci` runs it through `prepare`, and `npm pack`/`npm publish` through `prepack`.
 */
import { build } from 'esbuild';
import { chmod } from 'node:fs/promises';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
export const CLI_BUNDLE = join(root, 'dist', 'ocireg.mjs');

await build({
  entryPoints: [join(root, 'bin', 'ocireg.ts')],
  outfile: CLI_BUNDLE,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // Subcommands are loaded lazily by bin/ocireg.ts; one file keeps them all (the CLI is a few MB, read once).
  splitting: false,
  minify: true,
  legalComments: 'eof',
  // CommonJS dependencies (the AWS SDK) call require(); an ES module has none until this banner makes one.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  logLevel: 'warning',
});
await chmod(CLI_BUNDLE, 0o755);
process.stdout.write(`built ${CLI_BUNDLE}\n`);
