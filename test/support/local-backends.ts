import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { startAwsLocal, type AwsLocal } from '../../lib/dev/aws-local.ts';
import { createLocalResources, resourceNames } from '../../lib/storage/aws-resources.ts';

/** A temp dir for the fs backend and DynamoDB Local with the table (and bucket), for a suite that runs on both. */
export interface LocalBackends {
  readonly dir: string;
  readonly aws: AwsLocal;
  readonly names: ReturnType<typeof resourceNames>;
}

/** Starts both in the suite's beforeAll and removes them in its afterAll; read the fields inside tests. */
export function useLocalBackends(label: string): LocalBackends {
  const state = { names: resourceNames(label) } as { dir: string; aws: AwsLocal; names: ReturnType<typeof resourceNames> };
  beforeAll(async () => {
    state.dir = await mkdtemp(join(tmpdir(), `ocireg-${label}-`));
    state.aws = await startAwsLocal();
    await createLocalResources(state.aws.dynamo, state.aws.s3, state.names);
  }, 120_000);
  afterAll(async () => {
    await state.aws?.stop();
    if (state.dir) await rm(state.dir, { recursive: true, force: true });
  });
  return state;
}
