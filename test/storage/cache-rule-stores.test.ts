import { stat } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsCacheRuleStore } from '../../lib/storage/fs/fs-cache-rule-store.ts';
import { FsKeys } from '../../lib/storage/fs/keys.ts';
import { MemoryCacheRuleStore } from '../../lib/storage/memory/memory-cache-rule-store.ts';
import { tempDirs } from '../support/temp-dirs.ts';
import { cacheRuleStoreContract } from './cache-rule-store.contract.ts';

const dirs = tempDirs('ocireg-cache-rules-');
let dir: string;

beforeAll(async () => {
  dir = await dirs.make();
});
afterAll(() => dirs.cleanUp());

cacheRuleStoreContract('memory', async () => new MemoryCacheRuleStore());
cacheRuleStoreContract('fs', async () => new FsCacheRuleStore(new FsKeys(dir)));

describe('FsCacheRuleStore', () => {
  it('keeps the rules (with upstream credentials) in a file only its owner can read', async () => {
    const keys = new FsKeys(dir);
    await new FsCacheRuleStore(keys).put({ prefix: 'secret', upstream: 'https://example.test', credentials: { username: 'u', password: 'p' } });
    expect((await stat(keys.cacheRules)).mode & 0o777).toBe(0o600);
  });
});
