import { randomBytes } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll } from 'vitest';
import { LocalTokenCipher } from '../../functions/adapters/cipher/local-cipher';
import { DynamoDbTokenStore } from '../../functions/adapters/dynamodb/dynamodb-token-store';
import { InMemoryTokenStore } from '../support/fakes';
import { createTable, localDynamoClient } from '../support/harness';
import { tokenStoreContract } from './token-store.contract';

// The in-memory fake the core's unit tests use, held to what DynamoDB Local does.
tokenStoreContract('InMemoryTokenStore (test/support/fakes.ts)', async () => new InMemoryTokenStore());

let client: DynamoDBClient;

beforeAll(() => {
  client = localDynamoClient();
});

afterAll(() => {
  client.destroy();
});

tokenStoreContract('DynamoDbTokenStore on DynamoDB Local', async () => {
  // A table per test: scans, shard registrations and the breaker see only what the test wrote.
  const tableName = await createTable(client);
  return new DynamoDbTokenStore({ tableName, client, cipher: new LocalTokenCipher(randomBytes(32)) });
});
