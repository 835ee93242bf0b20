import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { RepositoryPolicy } from '../../registry/policy.ts';
import type { PolicyStore } from '../../registry/ports.ts';
import { key, s } from './attribute-values.ts';
import { DynamoDbTable } from './dynamodb-table.ts';
import { POLICIES_PK, policyKey } from './keys.ts';
import { PK } from './table-definition.ts';

/**
 * Policies as items of the metadata table (POLICIES / <glob>, the policy as JSON in `doc`). Readers Query the one
 * partition and cache the list (lib/registry/policy-cache.ts); each put replaces one item whole.
 */
export class DynamoDbPolicyStore implements PolicyStore {
  readonly #table: DynamoDbTable;

  constructor(options: { dynamo: DynamoDBClient; table: string }) {
    this.#table = new DynamoDbTable(options.dynamo, options.table);
  }

  async listPolicies(): Promise<RepositoryPolicy[]> {
    const { items } = await this.#table.query({
      KeyConditionExpression: '#pk = :pk',
      ExpressionAttributeNames: { '#pk': PK },
      ExpressionAttributeValues: { ':pk': s(POLICIES_PK) },
    });
    return items.flatMap((item) => (item.doc?.S !== undefined ? [JSON.parse(item.doc.S) as RepositoryPolicy] : []));
  }

  async putPolicy(policy: RepositoryPolicy): Promise<void> {
    await this.#table.put({ Item: { ...key(policyKey(policy.glob)), doc: s(JSON.stringify(policy)) } });
  }

  async deletePolicy(glob: string): Promise<boolean> {
    return this.#table.delete(policyKey(glob));
  }
}
