import { DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { IdentityStore } from '../../auth/identity.ts';
import { createCloudFormationClient, createDynamoDbClient } from '../aws-clients.ts';
import { DynamoDbIdentityStore } from './dynamodb-identity-store.ts';

/** The stack output that names the table (see lib/infra). */
export const TABLE_OUTPUT = 'TableName';

/**
 * The identity store of a deployed registry, for the admin CLI: the table named by `--table`, or by the
 * `TableName` output of `--stack`, reached with the administrator's normal AWS credentials.
 */
export async function openDeployedIdentityStore(options: DeployedTableOptions): Promise<IdentityStore> {
  return new DynamoDbIdentityStore(await openDeployedTable(options));
}

export interface DeployedTableOptions {
  stack?: string | undefined;
  table?: string | undefined;
  region?: string | undefined;
}

/** A DynamoDB client and the deployed table's name: `--table`, or the `TableName` output of `--stack`. */
export async function openDeployedTable(options: DeployedTableOptions): Promise<{ dynamo: DynamoDBClient; table: string }> {
  const clientOptions = options.region ? { region: options.region } : {};
  let table = options.table;
  if (table === undefined) {
    const cloudFormation = createCloudFormationClient(clientOptions);
    const { Stacks } = await cloudFormation.send(new DescribeStacksCommand({ StackName: options.stack }));
    table = Stacks?.[0]?.Outputs?.find((output) => output.OutputKey === TABLE_OUTPUT)?.OutputValue;
    if (!table) throw new Error(`stack ${options.stack} has no ${TABLE_OUTPUT} output; is it an ocireg stack? Pass --table <name> instead.`);
  }
  return { dynamo: createDynamoDbClient(clientOptions), table };
}
