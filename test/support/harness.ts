import { randomBytes, randomUUID } from 'node:crypto';
import { CreateTableCommand, type DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { inject } from 'vitest';
import { LocalTokenCipher } from '../../functions/adapters/cipher/local-cipher';
import { DynamoDbTokenStore } from '../../functions/adapters/dynamodb/dynamodb-token-store';
import { createTableInput } from '../../functions/adapters/dynamodb/table-schema';
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
import {
  assertNoLeaks,
  type Canary,
  canaryFor,
  collectingFetch,
  countHarnessCheck,
  outputPlaces,
  type Place,
  placesOf,
  registerCanary,
  registerTokenFields,
} from './leak-guard';
import { InMemoryMetrics, MemoryLogger, RecordingEventPublisher } from './observability';

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
  readonly events: RecordingEventPublisher;
  /** Signs a user in at the emulator and stores the tokens, as an app's auth backend would. */
  signInAndStore(userId: string, resource?: string): Promise<TransmitTokenResponse>;
  /** How many token values (canaries) this harness saw the IdP hand out so far. */
  canariesCollected(): number;
  /**
   * Stops the emulator and the client. First it checks that no token value the IdP handed out
   * (see leak-guard.ts) appears in a log line, metric, event, raw table item or anything written
   * to stdout/stderr/the console; a leak fails the test, naming the place but not the value.
   */
  close(): Promise<void>;
}

/** Starts a harness with its own table and Transmit emulator, sharing one virtual clock. */
export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const clock = new VirtualClock();
  const dynamo = localDynamoClient();
  const tableName = await createTable(dynamo);
  // Every token value the IdP hands out becomes a canary: from the service's HTTP calls (refresh,
  // client token) and from sign-ins made through the emulator object.
  const collected = new Map<string, Canary>();
  const collect = (canaries: Canary[]) => {
    for (const canary of canaries) collected.set(canary.value, canary);
  };
  const transmit = collectingSignIns(await startTransmitServer({ clock, ...options.transmit }), collect);
  const baseFetch = options.overrides?.fetch ?? ((input, init) => globalThis.fetch(input, init));
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
  const events = new RecordingEventPublisher(logger);
  const cipher = LocalTokenCipher.fromBase64(config.cipher.kind === 'local' ? config.cipher.keyBase64 : '');
  const runtime = buildRuntime(config, {
    clock,
    metrics,
    logger,
    events,
    store: new DynamoDbTokenStore({ tableName, cipher, client: dynamo }),
    ...options.overrides,
    fetch: collectingFetch(baseFetch, collect),
  });
  if (config.credentials?.source === 'static')
    registerCanary(config.credentials.clientSecret, 'client secret');
  let closed = false;
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
      const tokens = await transmit.signIn(userId, resource ? { resource } : {});
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
    canariesCollected: () => collected.size,
    async close() {
      if (closed) return;
      closed = true;
      let leak: unknown;
      try {
        await checkForLeaks({ transmit, runtime, dynamo, tableName, logger, metrics, events, collected });
      } catch (error) {
        leak = error;
      } finally {
        await transmit.close();
        dynamo.destroy();
      }
      if (leak) throw leak;
    },
  };
}

/** The emulator, with every token set its `signIn` issues registered as canaries. */
function collectingSignIns(
  transmit: TransmitServer,
  onCanaries: (canaries: Canary[]) => void,
): TransmitServer {
  return new Proxy(transmit, {
    get(target, property) {
      if (property === 'signIn') {
        return async (userId: string, signInOptions?: { resource?: string }) => {
          const tokens = await target.signIn(userId, signInOptions);
          const values = registerTokenFields(tokens, 'sign-in at the emulator');
          onCanaries(values.flatMap((value) => canaryFor(value) ?? []));
          return tokens;
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** The leak checks of {@link Harness.close}. */
async function checkForLeaks(parts: {
  transmit: TransmitServer;
  runtime: Runtime;
  dynamo: DynamoDBClient;
  tableName: string;
  logger: MemoryLogger;
  metrics: InMemoryMetrics;
  events: RecordingEventPublisher;
  collected: ReadonlyMap<string, Canary>;
}): Promise<void> {
  const { transmit, runtime, collected } = parts;
  // Not vacuous: when the emulator answered a refresh, the service saw tokens, so the collecting
  // fetch must have seen them too (otherwise the runtime bypassed it and nothing was checked).
  const answered = transmit.refreshLog.some((entry) => entry.status === 200);
  const fromRefresh = [...collected.values()].some((c) => c.origin.includes('/cis/v1/auth/token/refresh'));
  if (answered && !fromRefresh) {
    throw new Error(
      'leak guard: the emulator answered refreshes but no token was collected from them; the ' +
        "runtime did not use the harness's fetch, so the leak checks would check nothing",
    );
  }
  const loggers = new Set([parts.logger, runtime.logger]);
  const metrics = new Set([parts.metrics, runtime.metrics]);
  const publishers = new Set([parts.events, runtime.events]);
  const places: Place[] = [];
  for (const logger of loggers) {
    if (!(logger instanceof MemoryLogger)) continue;
    for (const [i, line] of logger.lines.entries()) {
      places.push(
        ...placesOf(`log line #${i} (${line.level})`, { message: line.message, fields: line.fields }),
      );
    }
  }
  for (const sink of metrics) {
    if (!(sink instanceof InMemoryMetrics)) continue;
    for (const [i, point] of sink.points.entries())
      places.push(...placesOf(`metric #${i} (${point.name})`, point));
  }
  for (const publisher of publishers) {
    if (!(publisher instanceof RecordingEventPublisher)) continue;
    for (const [i, event] of publisher.published.entries()) {
      places.push(...placesOf(`event #${i} (${event.type})`, event));
    }
  }
  for (const [i, item] of (await rawItems(parts.dynamo, parts.tableName)).entries()) {
    places.push(...placesOf(`table item #${i}`, item));
  }
  places.push(...outputPlaces());
  assertNoLeaks(places);
  countHarnessCheck();
}

function secret(value: string): Secret {
  return new Secret(value);
}
