import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { assertCacheRule, assertNoNesting } from '../../registry/cache-rules.ts';
import { isOciError, unsupported } from '../../registry/errors.ts';
import type { CacheRule, CacheRuleStore } from '../../registry/ports.ts';
import { key, n, s, type Item } from './attribute-values.ts';
import { DynamoDbTable } from './dynamodb-table.ts';
import { CACHE_RULES_PK, CACHE_RULES_VERSION_SK, cacheRuleKey } from './keys.ts';
import { PK, SK } from './table-definition.ts';

export interface DynamoDbCacheRuleStoreOptions {
  dynamo: DynamoDBClient;
  table: string;
  /**
   * Where rules with credentials keep them (lib/storage/secrets/cache-credential-secrets.ts: Secrets Manager).
   * Required to put such a rule (the admin CLI); the function only lists rules and reads the secrets on its own.
   */
  secrets?: RuleSecrets;
}

/**
 * What the rule store needs of a secret store: the name of a rule's secret, writing and deleting it. A port, so that
 * this DynamoDB store does not reach the Secrets Manager adapter (test/architecture.test.ts): the composition passes it.
 */
export interface RuleSecrets {
  /** The secret name of the credentials of rule `prefix` in the registry whose table is `table`; always the same. */
  nameFor(table: string, prefix: string): string;
  write(name: string, credentials: { username: string; password: string }): Promise<void>;
  remove(name: string): Promise<void>;
}

/**
 * Cache rules as items of the metadata table (CACHE_RULES / <prefix>: `upstream`, and `secret`, the name of the
 * Secrets Manager secret holding the rule's credentials, never the credentials themselves). Readers Query the one
 * partition and cache the list for seconds (lib/registry/cache-rule-cache.ts).
 *
 * No two rules may nest, which a check-then-write alone cannot promise against a concurrent `cache add`: every put
 * also moves the partition's version item from the version it read, in one transaction, so of two racing puts that
 * each passed the check against the same rules only one commits; the other reads again and is checked against the
 * winner.
 * ```
 * add hub (A)                          add hub/library (B)
 * Query: v3, no rules                  Query: v3, no rules
 * check ✓                              check ✓
 * Tx[v3→v4, put hub] ✓                 Tx[v3→v4, put hub/library] ✗ condition
 *                                      Query: v4, hub → check ✗ UNSUPPORTED (nests with hub)
 * ```
 * Secrets go first and items second: an item never names a secret that was not written. A put that drops the
 * credentials, and a remove, delete the secret after the item; one left behind by a crash between the two is
 * overwritten by the next `cache add` of that prefix.
 */
export class DynamoDbCacheRuleStore implements CacheRuleStore {
  readonly #table: DynamoDbTable;
  readonly #secrets: RuleSecrets | undefined;
  readonly #tableName: string;

  constructor(options: DynamoDbCacheRuleStoreOptions) {
    this.#table = new DynamoDbTable(options.dynamo, options.table);
    this.#secrets = options.secrets;
    this.#tableName = options.table;
  }

  async put(rule: CacheRule): Promise<void> {
    assertCacheRule(rule);
    if (rule.credentialsSecret !== undefined) throw unsupported('a cache rule is put with its credentials, not a secret name', { prefix: rule.prefix });
    // A cheap first check, so that a refused rule writes no secret; the transaction checks again.
    assertNoNesting(rule, await this.list());
    let secret: string | undefined;
    if (rule.credentials) {
      if (!this.#secrets) throw new Error('DynamoDbCacheRuleStore: a rule with credentials needs the Secrets Manager client (secrets option)');
      secret = this.#secrets.nameFor(this.#tableName, rule.prefix);
      await this.#secrets.write(secret, rule.credentials);
    }
    let replaced: CacheRule | undefined;
    await this.#table.transact(
      async () => {
        const { version, rules } = await this.#read();
        assertNoNesting(rule, rules);
        replaced = rules.find((other) => other.prefix === rule.prefix);
        const item: Item = { ...key(cacheRuleKey(rule.prefix)), upstream: s(rule.upstream) };
        if (secret !== undefined) item.secret = s(secret);
        return [
          {
            Update: {
              TableName: this.#table.name,
              Key: key({ pk: CACHE_RULES_PK, sk: CACHE_RULES_VERSION_SK }),
              UpdateExpression: 'SET #version = :next',
              ConditionExpression: version === 0 ? 'attribute_not_exists(#pk)' : '#version = :current',
              ExpressionAttributeNames: { '#version': 'version', ...(version === 0 ? { '#pk': PK } : {}) },
              ExpressionAttributeValues: { ':next': n(version + 1), ...(version === 0 ? {} : { ':current': n(version) }) },
            },
          },
          { Put: { TableName: this.#table.name, Item: item } },
        ];
      },
      (error) => isOciError(error),
    );
    if (replaced?.credentialsSecret !== undefined && secret === undefined) await this.#secrets?.remove(replaced.credentialsSecret);
  }

  async list(): Promise<CacheRule[]> {
    return (await this.#read()).rules;
  }

  async remove(prefix: string): Promise<boolean> {
    const item = await this.#table.get(cacheRuleKey(prefix));
    if (!item) return false;
    const removed = await this.#table.delete(cacheRuleKey(prefix));
    if (item.secret?.S !== undefined) {
      if (!this.#secrets) throw new Error(`DynamoDbCacheRuleStore: removed the rule ${prefix}, but its secret ${item.secret.S} needs the Secrets Manager client to be deleted`);
      await this.#secrets.remove(item.secret.S);
    }
    return removed;
  }


  async #read(): Promise<{ version: number; rules: CacheRule[] }> {
    const { items } = await this.#table.query({
      KeyConditionExpression: '#pk = :pk',
      ExpressionAttributeNames: { '#pk': PK },
      ExpressionAttributeValues: { ':pk': s(CACHE_RULES_PK) },
    });
    let version = 0;
    const rules: CacheRule[] = [];
    for (const item of items) {
      const sk = item[SK]?.S ?? '';
      if (sk === CACHE_RULES_VERSION_SK) {
        version = Number(item.version?.N ?? '0');
        continue;
      }
      const rule: CacheRule = { prefix: sk, upstream: item.upstream?.S ?? '' };
      if (item.secret?.S !== undefined) rule.credentialsSecret = item.secret.S;
      rules.push(rule);
    }
    // A Query returns sort-key order, which for these ASCII prefixes is lexical order.
    return { version, rules };
  }
}
