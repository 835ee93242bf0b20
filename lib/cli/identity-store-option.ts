import { resolve } from 'node:path';
import type { IdentityStore } from '../auth/identity.ts';
import { FsIdentityStore } from '../storage/fs/fs-identity-store.ts';
import { FsKeys } from '../storage/fs/keys.ts';
import { UsageError } from './command.ts';

/** Where the admin commands find identities: the local data dir, or a deployed stack's DynamoDB table. */
export const STORE_OPTIONS = {
  'data-dir': { type: 'string', default: './data' },
  stack: { type: 'string' },
  table: { type: 'string' },
  region: { type: 'string' },
} as const;

export const STORE_USAGE = `             --data-dir <dir>   the local registry's data dir (default ./data)
             --stack <name>     a deployed stack: its table name is read from the stack outputs
             --table <name>     a deployed stack's table, named directly; --region <r> for either`;

export async function openIdentityStore(values: Record<string, unknown>): Promise<IdentityStore> {
  const stack = values.stack as string | undefined;
  const table = values.table as string | undefined;
  const region = values.region as string | undefined;
  if (stack !== undefined && table !== undefined) throw new UsageError('give --stack or --table, not both');
  if (stack !== undefined || table !== undefined) {
    const { openDeployedIdentityStore } = await import('../storage/dynamodb/deployed-identity-store.ts');
    return openDeployedIdentityStore({ stack, table, region });
  }
  return new FsIdentityStore(new FsKeys(resolve(values['data-dir'] as string)));
}
