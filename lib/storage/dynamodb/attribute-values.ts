import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import type { ItemKey } from './keys.ts';
import { PK, SK } from './table-definition.ts';

/** An item as the low-level client reads and writes it. */
export type Item = Record<string, AttributeValue>;

/** The key attributes of an item built in keys.ts. */
export function key(itemKey: ItemKey): Item {
  return { [PK]: s(itemKey.pk), [SK]: s(itemKey.sk) };
}

export function s(value: string): AttributeValue {
  return { S: value };
}

export function n(value: number): AttributeValue {
  return { N: String(value) };
}
