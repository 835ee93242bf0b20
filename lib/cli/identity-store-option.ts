import { resolve } from 'node:path';
import type { IdentityStore } from '../auth/identity.ts';
import type { PolicyStore } from '../registry/ports.ts';
import { FsIdentityStore } from '../storage/fs/fs-identity-store.ts';
import { FsPolicyStore } from '../storage/fs/fs-policy-store.ts';
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

/** Where `ocireg policy` finds storage policies: the same data dir or deployed table as identities. */
export async function openPolicyStore(values: Record<string, unknown>): Promise<PolicyStore> {
  const stack = values.stack as string | undefined;
  const table = values.table as string | undefined;
  if (stack !== undefined && table !== undefined) throw new UsageError('give --stack or --table, not both');
  if (stack !== undefined || table !== undefined) {
    const [{ openDeployedTable }, { DynamoDbPolicyStore }] = await Promise.all([
      import('../storage/dynamodb/deployed-identity-store.ts'),
      import('../storage/dynamodb/dynamodb-policy-store.ts'),
    ]);
    return new DynamoDbPolicyStore(await openDeployedTable({ stack, table, region: values.region as string | undefined }));
  }
  return new FsPolicyStore(new FsKeys(resolve(values['data-dir'] as string)));
}
