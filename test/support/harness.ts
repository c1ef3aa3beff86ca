import { randomBytes, randomUUID } from 'node:crypto';
import { CreateTableCommand, type DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { inject } from 'vitest';
import { LocalTokenCipher } from '../../functions/adapters/cipher/local-cipher';
import { DynamoDbTokenStore } from '../../functions/adapters/dynamodb/dynamodb-token-store';
import { createTableInput } from '../../functions/adapters/dynamodb/table-schema';
import { LogEventPublisher } from '../../functions/adapters/observability/events';
import { MemoryLogger } from '../../functions/adapters/observability/logger';
import { InMemoryMetrics } from '../../functions/adapters/observability/metrics';
import { buildRuntime, type Runtime, type RuntimeOverrides } from '../../functions/adapters/runtime';
import { loadConfig } from '../../functions/config';
import type { Clock } from '../../functions/core/ports';
import type { Budget } from '../../functions/core/rotation';
import { Secret } from '../../functions/core/secret';
import {
  startTransmitServer,
  type TransmitServer,
  type TransmitServerOptions,
  type TransmitTokenResponse,
} from '../../local/transmit-server';
import { localDynamoClientAt } from './dynamo';

/** A clock that moves only when told to; shared by the service and the IdP emulator. */
export class VirtualClock implements Clock {
  constructor(private ms = Date.UTC(2026, 0, 1)) {}
  nowMs(): number {
    return this.ms;
  }
  advanceSeconds(seconds: number): void {
    this.ms += seconds * 1000;
  }
}

/** Plenty of time: tests are not Lambda invocations near their timeout. */
export const ample: Budget = { remainingMs: () => 60_000 };

/** A DynamoDB client for the run's DynamoDB Local. */
export function localDynamoClient(): DynamoDBClient {
  return localDynamoClientAt(inject('dynamoEndpoint'));
}

/** Creates a fresh table with the stack's schema and returns its name. */
export async function createTable(client: DynamoDBClient): Promise<string> {
  const tableName = `tokens-${randomUUID()}`;
  await client.send(new CreateTableCommand(createTableInput(tableName)));
  return tableName;
}

/** Every raw item of a table, as DynamoDB holds it. */
export async function rawItems(
  client: DynamoDBClient,
  tableName: string,
): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let start: Record<string, never> | undefined;
  do {
    const page = await client.send(new ScanCommand({ TableName: tableName, ExclusiveStartKey: start }));
    items.push(...((page.Items ?? []) as Record<string, unknown>[]));
    start = page.LastEvaluatedKey as Record<string, never> | undefined;
  } while (start);
  return items;
}

/** Options of {@link startHarness}. */
export interface HarnessOptions {
  /** Environment settings on top of the harness's own. */
  readonly env?: Readonly<Record<string, string>>;
  readonly transmit?: TransmitServerOptions;
  readonly overrides?: RuntimeOverrides;
}

/** The service on real local components: DynamoDB Local, the Transmit emulator over HTTP. */
export interface Harness {
  readonly clock: VirtualClock;
  readonly transmit: TransmitServer;
  readonly runtime: Runtime;
  readonly dynamo: DynamoDBClient;
  readonly tableName: string;
  readonly metrics: InMemoryMetrics;
  readonly logger: MemoryLogger;
  readonly events: LogEventPublisher;
  /** Signs a user in at the emulator and stores the tokens, as an app's auth backend would. */
  signInAndStore(userId: string, resource?: string): Promise<TransmitTokenResponse>;
  close(): Promise<void>;
}

/** Starts a harness with its own table and Transmit emulator, sharing one virtual clock. */
export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const clock = new VirtualClock();
  const dynamo = localDynamoClient();
  const tableName = await createTable(dynamo);
  const transmit = await startTransmitServer({ clock, ...options.transmit });
  const config = loadConfig({
    TOKEN_TABLE_NAME: tableName,
    TRANSMIT_BASE_URL: transmit.baseUrl,
    CLIENT_ID: 'local-client',
    CLIENT_SECRET: 'local-secret',
    LOCAL_TOKEN_KEY: randomBytes(32).toString('base64'),
    ...options.env,
  });
  const metrics = new InMemoryMetrics();
  const logger = new MemoryLogger();
  const events = new LogEventPublisher(logger);
  const cipher = LocalTokenCipher.fromBase64(config.cipher.kind === 'local' ? config.cipher.keyBase64 : '');
  const runtime = buildRuntime(config, {
    clock,
    metrics,
    logger,
    events,
    store: new DynamoDbTokenStore({ tableName, cipher, client: dynamo }),
    ...options.overrides,
  });
  return {
    clock,
    transmit,
    runtime,
    dynamo,
    tableName,
    metrics,
    logger,
    events,
    async signInAndStore(userId, resource) {
      const tokens = transmit.signIn(userId, resource ? { resource } : {});
      await runtime.tokenService.storeTokens({
        key: { userId, resource: resource ?? 'default' },
        authenticatedAt: undefined,
        tokens: {
          accessToken: secret(tokens.access_token),
          refreshToken: secret(tokens.refresh_token),
          idToken: secret(tokens.id_token),
          sessionId: secret(tokens.session_id),
          tokenType: tokens.token_type,
          expiresIn: tokens.expires_in,
        },
      });
      return tokens;
    },
    async close() {
      await transmit.close();
      dynamo.destroy();
    },
  };
}

function secret(value: string): Secret {
  return new Secret(value);
}
