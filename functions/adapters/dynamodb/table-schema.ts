/**
 * The one definition of the token table: the CDK construct and the embedded runtime both
 * build their table from it, so the key schema, TTL and due index cannot drift apart.
 */
export const TOKEN_TABLE = {
  partitionKey: { name: 'pk', type: 'S' },
  sortKey: { name: 'sk', type: 'S' },
  /** DynamoDB TTL attribute (epoch seconds). */
  ttlAttribute: 'expiresAt',
  /** Sparse index of records the sweep must look at: present only while a record is ACTIVE. */
  dueIndex: {
    name: 'byDue',
    partitionKey: { name: 'dueShard', type: 'N' },
    sortKey: { name: 'dueAt', type: 'N' },
    /** The sweep re-reads each due record consistently, so the index needs keys only. */
    projection: 'KEYS_ONLY',
  },
} as const;

/** The CreateTable input for a local DynamoDB (on-demand billing, same schema as the stack). */
export function createTableInput(tableName: string) {
  const { partitionKey, sortKey, dueIndex } = TOKEN_TABLE;
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST' as const,
    AttributeDefinitions: [
      { AttributeName: partitionKey.name, AttributeType: partitionKey.type },
      { AttributeName: sortKey.name, AttributeType: sortKey.type },
      { AttributeName: dueIndex.partitionKey.name, AttributeType: dueIndex.partitionKey.type },
      { AttributeName: dueIndex.sortKey.name, AttributeType: dueIndex.sortKey.type },
    ],
    KeySchema: [
      { AttributeName: partitionKey.name, KeyType: 'HASH' as const },
      { AttributeName: sortKey.name, KeyType: 'RANGE' as const },
    ],
    GlobalSecondaryIndexes: [
      {
        IndexName: dueIndex.name,
        KeySchema: [
          { AttributeName: dueIndex.partitionKey.name, KeyType: 'HASH' as const },
          { AttributeName: dueIndex.sortKey.name, KeyType: 'RANGE' as const },
        ],
        Projection: { ProjectionType: dueIndex.projection },
      },
    ],
  };
}
