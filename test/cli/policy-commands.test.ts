import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../lib/dev/aws-local.ts';
import { OCIREG_CLI } from '../support/registry-server.ts';
import { runTool } from '../support/tools.ts';
import { useLocalBackends } from '../support/local-backends.ts';

/** `ocireg policy` as an administrator types it, against a data dir and against a table (DynamoDB Local). */

const local = useLocalBackends('policy-cli');

const backends = {
  'fs (--data-dir)': (args: string[]) => runTool(process.execPath, [OCIREG_CLI, ...args, '--data-dir', join(local.dir, 'data')]),
  'DynamoDB (--table)': (args: string[]) =>
    runTool(process.execPath, [OCIREG_CLI, ...args, '--table', local.names.table], {
      env: {
        AWS_ENDPOINT_URL_DYNAMODB: local.aws.endpoints.dynamo,
        AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
        AWS_REGION: LOCAL_REGION,
      },
    }),
};

for (const [backend, ocireg] of Object.entries(backends)) {
  describe(`ocireg policy on ${backend}`, () => {
    it('sets, lists (as the options that write it again) and removes a policy', async () => {
      // Act
      const set = await ocireg(['policy', 'set', 'team/*', '--keep-last', '10', '--expire-after', '90d', '--expire-unpulled', '30d', '--expire-untagged', '12h', '--keep-history', '3', '--protect', 'v*', '--protect', 'prod-*', '--immutable', '--mutable-tags', 'latest', '--mutable-tags', 'dev-*', '--quota', '10GiB']);
      const list = await ocireg(['policy', 'list']);
      const json = await ocireg(['policy', 'list', '--json']);
      // Assess
      expect(set.code, set.stderr).toBe(0);
      expect(set.stderr).toContain('tags are immutable except latest, dev-*');
      expect(list.stdout).toBe("team/*\t--keep-last 10 --expire-after 90d --expire-unpulled 30d --expire-untagged 12h --keep-history 3 --protect 'v*' --protect 'prod-*' --immutable --mutable-tags 'latest' --mutable-tags 'dev-*' --quota 10GiB\n");
      expect(JSON.parse(json.stdout)).toEqual([
        expect.objectContaining({ glob: 'team/*', keepLast: 10, expireAfterMs: 90 * 86_400_000, expireUnpulledMs: 30 * 86_400_000, expireUntaggedMs: 12 * 3_600_000, protect: ['v*', 'prod-*'], immutable: true, mutableTags: ['latest', 'dev-*'], quotaBytes: 10 * 2 ** 30 }),
      ]);

      // Act: set replaces the policy whole, rm removes it once
      expect((await ocireg(['policy', 'set', 'team/*', '--immutable'])).code).toBe(0);
      expect((await ocireg(['policy', 'list'])).stdout).toBe('team/*\t--immutable\n');
      expect((await ocireg(['policy', 'rm', 'team/*'])).code).toBe(0);
      const again = await ocireg(['policy', 'rm', 'team/*']);
      expect(again.code).toBe(1);
      expect(again.stderr).toContain('no policy for team/*');
      expect((await ocireg(['policy', 'list'])).stdout).toBe('');
    });

    it.each([
      [['policy', 'set', 'Team/*', '--immutable'], 'a repository glob is a repository name'],
      [['policy', 'set', 'team/*'], 'give at least one rule for team/*'],
      [['policy', 'set', 'team/*', '--keep-last', '0'], '--keep-last is a whole number of tags from 1, got "0"'],
      [['policy', 'set', 'team/*', '--expire-after', '7 days'], 'a duration is a number with s, m, h or d (e.g. 90d), got "7 days"'],
      [['policy', 'set', 'team/*', '--quota', '10GB!'], 'a size is a positive number with B, KiB, MiB, GiB or TiB'],
      [['policy', 'set', 'team/*', '--mutable-tags', 'latest'], '--mutable-tags names the exceptions to --immutable: give --immutable too'],
      [['policy', 'set', 'team/*', '--immutable', '--mutable-tags', 'dev/*'], '--mutable-tags is a tag glob'],
      [['policy', 'set', 'team/*', '--keep'], 'Unknown option'],
      [['policy', 'frobnicate'], 'policy takes set, list or rm, got "frobnicate"'],
    ])('refuses %j with exit 2 and says why', async (args, message) => {
      const result = await ocireg(args);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(message);
      expect(result.stderr).not.toMatch(/\n\s+at /);
    });
  });
}
