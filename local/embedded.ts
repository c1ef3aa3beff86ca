import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import { createTableInput, TOKEN_TABLE } from '../functions/adapters/dynamodb/table-schema';
import { type DynamoDbLocal, startDynamoDbLocal } from './dynamodb-local';
import { type HandlerServer, startHandlerServer } from './handler-server';
import { startTransmitServer, type TransmitServer } from './transmit-server';

/** Settings of the embedded runtime. Every one has a default, so `npm start` needs none. */
export interface EmbeddedOptions {
  /** @default 4000 */
  readonly servicePort?: number;
  /** @default 4001 */
  readonly transmitPort?: number;
  /** @default 4002 */
  readonly dynamoPort?: number;
  /** Folder for DynamoDB data and the local token key. @default `.data` */
  readonly dataDir?: string;
  /** Keep nothing on disk (tests). @default false */
  readonly inMemory?: boolean;
  /** @default 30 */
  readonly sweepIntervalSeconds?: number;
  /** Short demo lifetimes so a rotation can be watched: refresh token 10 min. @default 600 */
  readonly refreshTokenTtlSeconds?: number;
  /** @default 480 (rotate about 2 minutes after each sign-in or rotation) */
  readonly refreshAheadSeconds?: number;
  /** @default 86_400 */
  readonly maxRotationSeconds?: number;
}

/** The running embedded runtime. */
export interface Embedded {
  readonly serviceUrl: string;
  readonly transmit: TransmitServer;
  readonly dynamoEndpoint: string;
  readonly tableName: string;
  /** Runs one sweep now (the timer runs them too). */
  sweepNow(): Promise<unknown>;
  stop(): Promise<void>;
}

/** The table `npm start` keeps its data in (also what `npm run restore -- --local` opens). */
export const LOCAL_TABLE_NAME = 'token-keeper-local';
const TABLE_NAME = LOCAL_TABLE_NAME;
/** The demo lifetimes of `npm start` (seconds), unless its options say otherwise. */
export const DEMO_LIFETIMES = {
  refreshTokenTtlSeconds: 600,
  refreshAheadSeconds: 480,
  maxRotationSeconds: 86_400,
};
/** Where `npm start` listens for DynamoDB Local by default. */
export const LOCAL_DYNAMO_PORT = 4002;

/**
 * Starts DynamoDB Local, the local Transmit server and the handlers behind a small HTTP
 * server, with the sweep on a timer. The handlers are the real ones, configured through the same
 * environment variables as in AWS (the SDK's own AWS_ENDPOINT_URL_DYNAMODB points at DynamoDB Local).
 */
export async function startEmbedded(options: EmbeddedOptions = {}): Promise<Embedded> {
  const dataDir = resolve(options.dataDir ?? '.data');
  const refreshTtl = options.refreshTokenTtlSeconds ?? DEMO_LIFETIMES.refreshTokenTtlSeconds;
  const maxRotation = options.maxRotationSeconds ?? DEMO_LIFETIMES.maxRotationSeconds;
  const started: { close(): Promise<void> }[] = [];
  try {
    const dynamo: DynamoDbLocal = await startDynamoDbLocal({
      port: options.dynamoPort ?? LOCAL_DYNAMO_PORT,
      inMemory: options.inMemory ?? false,
      dataDir: resolve(dataDir, 'dynamodb'),
    });
    started.push({ close: () => dynamo.stop() });

    const transmit = await startTransmitServer({
      port: options.transmitPort ?? 4001,
      refreshTokenTtlSeconds: refreshTtl,
      maxRotationSeconds: maxRotation,
    });
    started.push(transmit);

    Object.assign(process.env, {
      AWS_REGION: process.env.AWS_REGION ?? 'local',
      AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'local',
      AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? 'local',
      AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
      TOKEN_TABLE_NAME: TABLE_NAME,
      IDP_FLAVOR: 'transmit',
      TRANSMIT_BASE_URL: transmit.baseUrl,
      CLIENT_ID: 'local-client',
      CLIENT_SECRET: 'local-secret',
      LOCAL_TOKEN_KEY: options.inMemory ? randomBytes(32).toString('base64') : localKey(dataDir),
      REFRESH_TOKEN_TTL_SECONDS: String(refreshTtl),
      REFRESH_AHEAD_SECONDS: String(options.refreshAheadSeconds ?? DEMO_LIFETIMES.refreshAheadSeconds),
      MAX_ROTATION_SECONDS: String(maxRotation),
      // storeTokens checks each ID token against the emulator's keys, as it would against Transmit's.
      ID_TOKEN_JWKS_URL: `${transmit.baseUrl}/cis/oidc/jwks`,
      ID_TOKEN_ISSUER: transmit.baseUrl,
      ID_TOKEN_AUDIENCE: 'local-client',
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'WARN',
      // EMF metric records are for CloudWatch; locally they would drown the log.
      POWERTOOLS_METRICS_DISABLED: process.env.POWERTOOLS_METRICS_DISABLED ?? 'true',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    });
    await ensureTable(dynamo.endpoint);

    // Imported after the environment is set: the handlers read it on first call.
    const { handler: storeTokens } = await import('../functions/handlers/store-tokens');
    const { handler: getAccessToken } = await import('../functions/handlers/get-access-token');
    const { handler: refreshSweep } = await import('../functions/handlers/refresh-sweep');
    const { handler: disconnect } = await import('../functions/handlers/disconnect');
    const { handler: tokenStatus } = await import('../functions/handlers/token-status');
    const sweepNow = () => refreshSweep({ source: 'local.timer', 'detail-type': 'Scheduled Event' });

    const service: HandlerServer = await startHandlerServer(
      {
        'store-tokens': (event) => storeTokens(event),
        'get-access-token': (event) => getAccessToken(event),
        'refresh-sweep': () => sweepNow(),
        disconnect: (event) => disconnect(event),
        'token-status': (event) => tokenStatus(event),
      },
      { port: options.servicePort ?? 4000 },
    );
    started.push(service);

    let sweeping = false;
    const timer = setInterval(
      () => {
        if (sweeping) return;
        sweeping = true;
        sweepNow()
          .catch(() => undefined)
          .finally(() => {
            sweeping = false;
          });
      },
      (options.sweepIntervalSeconds ?? 30) * 1000,
    );
    started.push({ close: async () => clearInterval(timer) });

    return {
      serviceUrl: service.url,
      transmit,
      dynamoEndpoint: dynamo.endpoint,
      tableName: TABLE_NAME,
      sweepNow,
      stop: () => closeAll(started),
    };
  } catch (error) {
    await closeAll(started);
    throw error;
  }
}

async function closeAll(started: { close(): Promise<void> }[]): Promise<void> {
  for (const part of started.reverse()) await part.close().catch(() => undefined);
}

/** The local AES key, made once and kept beside the data so a restart can still decrypt. */
function localKey(dataDir: string): string {
  const file = resolve(dataDir, 'local-token-key');
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, randomBytes(32).toString('base64'), { mode: 0o600 });
  }
  return readFileSync(file, 'utf8').trim();
}

/** Creates the table (same schema as the stack) and its TTL setting, unless it exists. */
async function ensureTable(endpoint: string): Promise<void> {
  const client = new DynamoDBClient({ endpoint });
  try {
    await client.send(new DescribeTableCommand({ TableName: TABLE_NAME }));
  } catch {
    await client.send(new CreateTableCommand(createTableInput(TABLE_NAME)));
    await client.send(
      new UpdateTimeToLiveCommand({
        TableName: TABLE_NAME,
        TimeToLiveSpecification: { AttributeName: TOKEN_TABLE.ttlAttribute, Enabled: true },
      }),
    );
  } finally {
    client.destroy();
  }
}
