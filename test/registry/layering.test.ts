import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/** STYLE.md §2: dependencies point inward. The core and the HTTP app know nothing of AWS, middy, node:http or CDK. */
const FORBIDDEN: Record<string, RegExp> = {
  'lib/registry': /from '(?:@aws-sdk\/|@middy\/|aws-cdk-lib|constructs|node:http|node:https|node:fs|\.\.\/(?:http|storage|server|infra)\/)/,
  'lib/auth': /from '(?:@aws-sdk\/|@middy\/|aws-cdk-lib|constructs|node:http|node:https|node:fs|\.\.\/(?:http|storage|server|infra)\/)/,
  'lib/http': /from '(?:@aws-sdk\/|@middy\/|aws-cdk-lib|constructs|node:http|node:https|node:fs|\.\.\/(?:storage|server|infra)\/)/,
};

async function sources(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((entry) => entry.isFile() && entry.name.endsWith('.ts')).map((entry) => join(entry.parentPath, entry.name));
}

describe('layering', () => {
  for (const [dir, pattern] of Object.entries(FORBIDDEN)) {
    it(`keeps ${dir} free of transport, cloud and storage imports`, async () => {
      const files = await sources(dir);
      expect(files.length).toBeGreaterThan(0);
      const offenders: string[] = [];
      for (const file of files) {
        for (const line of (await readFile(file, 'utf8')).split('\n')) {
          if (/^\s*(?:import|export)\b/.test(line) && pattern.test(line)) offenders.push(`${file}: ${line.trim()}`);
        }
      }
      expect(offenders).toEqual([]);
    });
  }
});
