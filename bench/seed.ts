import { randomUUID } from 'node:crypto';
import {
  type AttributeValue,
  BatchWriteItemCommand,
  CreateTableCommand,
  DeleteTableCommand,
  type DynamoDBClient,
  type WriteRequest,
} from '@aws-sdk/client-dynamodb';
import { KmsTokenCipher } from '../functions/adapters/cipher/kms-cipher';
import type { TokenCipher } from '../functions/adapters/cipher/token-cipher';
import { DynamoDbTokenStore } from '../functions/adapters/dynamodb/dynamodb-token-store';
import { createTableInput } from '../functions/adapters/dynamodb/table-schema';
import { buildRuntime } from '../functions/adapters/runtime';
import type { Clock } from '../functions/core/ports';
import { Secret } from '../functions/core/secret';
import {
  startTransmitServer,
  type TransmitServer,
  type TransmitTokenResponse,
} from '../local/transmit-server';
import { InMemoryMetrics, RecordingEventPublisher } from '../test/support/observability';
import { type BenchTarget, benchConfig, localDynamoDb } from './instance';
import { FAKE_KEY_ARN, fakeKmsClient, OffsetClock, silentLogger, Tally } from './instrument';

type Item = Record<string, AttributeValue>;

/** Options of {@link seedRecords}. */
export interface SeedOptions {
  readonly target: BenchTarget;
  readonly transmit: TransmitServer;
  /** The clock the emulator and the service share. */
  readonly clock: Clock;
  readonly count: number;
  /** User ids are `<prefix><n>`. */
  readonly userPrefix: string;
  /** Seals the tokens. @default the production KMS cipher on the fake KMS */
  readonly cipher?: TokenCipher;
  /** Sign-in time relative to now (negative: in the past). @default 0 */
  readonly authenticatedOffsetSeconds?: number;
}

/** What {@link seedRecords} wrote. */
export interface SeedResult {
  readonly count: number;
  readonly seconds: number;
}

/**
 * Signs `count` users in at the emulator and stores their tokens the way storeTokens does (the
 * real TokenService and DynamoDbTokenStore make each item, sealed by the real cipher), but
 * writes the items with BatchWriteItem: 25 items a request instead of a read and a write each.
 */
export async function seedRecords(options: SeedOptions): Promise<SeedResult> {
  const started = performance.now();
  const captured: Item[] = [];
  const runtime = buildRuntime(benchConfig(options.target), {
    clock: options.clock,
    logger: silentLogger,
    metrics: new InMemoryMetrics(),
    events: new RecordingEventPublisher(silentLogger),
    store: new DynamoDbTokenStore({
      tableName: options.target.tableName,
      client: capturingClient(captured),
      cipher:
        options.cipher ??
        new KmsTokenCipher({ keyId: FAKE_KEY_ARN, client: fakeKmsClient(new Tally()), clock: options.clock }),
    }),
  });
  const authenticatedAt =
    options.authenticatedOffsetSeconds === undefined
      ? undefined
      : Math.floor(options.clock.nowMs() / 1000) + options.authenticatedOffsetSeconds;
  for (let start = 0; start < options.count; start += 100) {
    const batch: Promise<unknown>[] = [];
    for (let n = start; n < Math.min(options.count, start + 100); n++) {
      const userId = `${options.userPrefix}${n}`;
      batch.push(
        runtime.tokenService.storeTokens({
          key: { userId, resource: 'default' },
          authenticatedAt,
          tokens: tokenSet(await options.transmit.signIn(userId)),
        }),
      );
    }
    await Promise.all(batch);
  }

  const client = localDynamoDb(options.target.dynamoEndpoint);
  try {
    await batchWrite(client, options.target.tableName, captured);
  } finally {
    client.destroy();
  }
  return { count: captured.length, seconds: (performance.now() - started) / 1000 };
}

/** The tokens of a sign-in as storeTokens receives them. */
export function tokenSet(tokens: TransmitTokenResponse) {
  return {
    accessToken: new Secret(tokens.access_token),
    refreshToken: new Secret(tokens.refresh_token),
    idToken: new Secret(tokens.id_token),
    sessionId: new Secret(tokens.session_id),
    tokenType: tokens.token_type,
    expiresIn: tokens.expires_in,
  };
}

/**
 * A DynamoDB client that sends nothing: GetItem finds no item, UpdateItem does nothing and PutItem
 * hands its (already marshalled) item to `captured`. The store on top of it is the real one.
 */
function capturingClient(captured: Item[]): DynamoDBClient {
  const client = localDynamoDb('http://127.0.0.1:9');
  client.middlewareStack.add(
    (_next, context) => async (args) => {
      if (context.commandName === 'PutItemCommand') {
        captured.push((args.input as { Item: Item }).Item);
      } else if (context.commandName !== 'GetItemCommand' && context.commandName !== 'UpdateItemCommand') {
        // UpdateItem: the store records the due shards it writes into (the sweep state); the
        // seeded shards are the current DUE_SHARDS, which the sweep queries anyway.
        throw new Error(`seeding does not expect ${context.commandName}`);
      }
      return { output: { $metadata: {} }, response: {} };
    },
    { step: 'build', priority: 'high', name: 'benchCapture' },
  );
  return client;
}

/** Writes items 25 at a time, four requests in flight, retrying what DynamoDB leaves unprocessed. */
async function batchWrite(client: DynamoDBClient, tableName: string, items: Item[]): Promise<void> {
  const requests: WriteRequest[][] = [];
  for (let i = 0; i < items.length; i += 25) {
    requests.push(items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } })));
  }
  let next = 0;
  const worker = async () => {
    while (next < requests.length) {
      let pending: WriteRequest[] | undefined = requests[next++];
      while (pending && pending.length > 0) {
        const result = await client.send(
          new BatchWriteItemCommand({ RequestItems: { [tableName]: pending } }),
        );
        pending = result.UnprocessedItems?.[tableName];
      }
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
}

/** What a section measures against: a table of its own, the emulator, one clock for both. */
export interface BenchEnvironment {
  /** A client of DynamoDB Local for the section's own requests (not counted). */
  readonly admin: DynamoDBClient;
  readonly clock: OffsetClock;
  readonly transmit: TransmitServer;
  readonly target: BenchTarget;
}

/**
 * Runs `work` against a fresh table with the stack's schema and a Transmit emulator on one clock;
 * removes both afterwards (a deleted table frees DynamoDB Local's memory between sections).
 */
export async function withBenchTable<T>(
  dynamoEndpoint: string,
  section: string,
  work: (environment: BenchEnvironment) => Promise<T>,
): Promise<T> {
  const admin = localDynamoDb(dynamoEndpoint);
  const tableName = `bench-${section}-${randomUUID()}`;
  await admin.send(new CreateTableCommand(createTableInput(tableName)));
  const clock = new OffsetClock();
  const transmit = await startTransmitServer({ clock });
  try {
    return await work({
      admin,
      clock,
      transmit,
      target: { dynamoEndpoint, tableName, transmitBaseUrl: transmit.baseUrl },
    });
  } finally {
    await transmit.close();
    await admin.send(new DeleteTableCommand({ TableName: tableName })).catch(() => undefined);
    admin.destroy();
  }
}
