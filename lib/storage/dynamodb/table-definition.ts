import { METADATA_TABLE } from '../aws-resources.ts';

/**
 * The metadata table's attribute names, as the items in keys.ts use them. The table itself (keys, TTL, billing)
 * is defined once, in lib/storage/aws-resources.ts.
 */
export const PK = METADATA_TABLE.partitionKey.name;
export const SK = METADATA_TABLE.sortKey.name;
export const TTL = METADATA_TABLE.timeToLiveAttribute;
