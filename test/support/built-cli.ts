import { copyFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { runOk, runTool } from './tools.ts';

const ROOT = join(import.meta.dirname, '../..');

export interface BuiltCli {
  /** A Node ≥ 20 that is not the project's node_modules one: what a user who ran `npm i -g ocireg` has. */
  node: string;
  nodeVersion: string;
  /** The built `ocireg.mjs`, copied alone into a temp dir outside the repository. */
  cli: string;
  dir: string;
}

/**
 * `npm run build`, then the bundle copied alone to a temp dir, and the first `node` on PATH outside this
 * repository's node_modules (npm scripts put the project's Node 22 first; the machine's own is the user's).
 */
export async function buildCliOutsideRepository(): Promise<BuiltCli> {
  await runOk(process.execPath, [join(ROOT, 'bin', 'build-cli.ts')], { cwd: ROOT, timeoutMs: 120_000 });
  const dir = await mkdtemp(join(tmpdir(), 'ocireg-cli-'));
  const cli = join(dir, 'ocireg.mjs');
  await copyFile(join(ROOT, 'dist', 'ocireg.mjs'), cli);
  for (const entry of (process.env.PATH ?? '').split(delimiter)) {
    if (entry === '' || entry.includes('node_modules')) continue;
    const candidate = join(entry, 'node');
    const version = await runTool(candidate, ['--version'], { timeoutMs: 10_000 });
    if (version.code !== 0) continue;
    const major = Number(/^v(\d+)/.exec(version.stdout.trim())?.[1]);
    if (major >= 20) return { node: candidate, nodeVersion: version.stdout.trim(), cli, dir };
  }
  throw new Error('no Node >= 20 on PATH outside node_modules to run the built CLI with: apt-get install -y nodejs');
}
