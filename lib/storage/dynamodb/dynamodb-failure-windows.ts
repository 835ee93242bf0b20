import { ConditionalCheckFailedException, GetItemCommand, PutItemCommand, UpdateItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { METADATA_TABLE } from '../aws-resources.ts';
import { failureWindowKey } from './keys.ts';

/**
 * Failed-login counters in the table, one item per key and window. Windows expire by TTL; the window check does not
 * depend on TTL timing (which may run ~48 h late).
 */

/** Where the windows are: the registry's table. */
interface WindowTable {
  dynamo: DynamoDBClient;
  table: string;
}

/** ADD within the current window; a window that has ended is replaced by a new one (conditional put). */
export async function recordFailure({ dynamo, table }: WindowTable, key: string, windowSeconds: number, now: number): Promise<number> {
  const until = now + windowSeconds * 1000;
  const keyAttributes = windowKey(key);
  try {
    const result = await dynamo.send(
      new UpdateItemCommand({
        TableName: table,
        Key: keyAttributes,
        UpdateExpression: 'ADD #count :one',
        ConditionExpression: '#until > :now',
        ExpressionAttributeNames: { '#count': 'count', '#until': 'until' },
        ExpressionAttributeValues: { ':one': { N: '1' }, ':now': { N: String(now) } },
        ReturnValues: 'UPDATED_NEW',
      }),
    );
    return Number(result.Attributes?.count?.N ?? '1');
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
  }
  await dynamo.send(
    new PutItemCommand({
      TableName: table,
      Item: { ...keyAttributes, count: { N: '1' }, until: { N: String(until) }, [METADATA_TABLE.timeToLiveAttribute]: { N: String(Math.ceil(until / 1000)) } },
    }),
  );
  return 1;
}

export async function countFailures({ dynamo, table }: WindowTable, key: string, now: number): Promise<number> {
  const result = await dynamo.send(new GetItemCommand({ TableName: table, Key: windowKey(key), ConsistentRead: true }));
  const item = result.Item;
  if (!item || Number(item.until?.N ?? 0) <= now) return 0;
  return Number(item.count?.N ?? 0);
}

function windowKey(key: string) {
  const window = failureWindowKey(key);
  return { [METADATA_TABLE.partitionKey.name]: { S: window.pk }, [METADATA_TABLE.sortKey.name]: { S: window.sk } };
}
