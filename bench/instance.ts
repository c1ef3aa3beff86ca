import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KmsTokenCipher } from '../functions/adapters/cipher/kms-cipher';
import { SecretsManagerClientCredentials } from '../functions/adapters/credentials/secrets-manager-credentials';
import { DynamoDbTokenStore } from '../functions/adapters/dynamodb/dynamodb-token-store';
import { buildRuntime, type Runtime, type RuntimeOverrides } from '../functions/adapters/runtime';
import { type Config, loadConfig } from '../functions/config';
import type { Clock } from '../functions/core/ports';
import {
  COUNTED,
  countDynamoDbCalls,
  countingFetch,
  FAKE_KEY_ARN,
  FAKE_SECRET_ARN,
  fakeKmsClient,
  fakeSecretsManagerClient,
  type InFlightGauge,
  LOCAL_AWS,
  type Tally,
} from './instrument';

/** The emulator's client credentials (its defaults). */
export const EMULATOR_CLIENT = { clientId: 'local-client', clientSecret: 'local-secret' } as const;

/** Shards of the due index, as the stack configures them. */
export const DUE_SHARDS = 4;

/** Where the service under test finds its table and IdP. */
export interface BenchTarget {
  readonly dynamoEndpoint: string;
  readonly tableName: string;
  readonly transmitBaseUrl: string;
}

/**
 * The configuration the stack deploys (KMS key, Secrets Manager secret, default lifetimes, four
 * due shards, 5 s IdP timeout, 30 s lease), pointed at the local components.
 */
export function benchConfig(target: BenchTarget, env: Readonly<Record<string, string>> = {}): Config {
  return loadConfig({
    TOKEN_TABLE_NAME: target.tableName,
    TRANSMIT_BASE_URL: target.transmitBaseUrl,
    TOKEN_KEY_ARN: FAKE_KEY_ARN,
    CLIENT_CREDENTIALS_SECRET_ARN: FAKE_SECRET_ARN,
    DUE_SHARDS: String(DUE_SHARDS),
    IDP_TIMEOUT_MS: '5000',
    LEASE_SECONDS: '30',
    LOG_LEVEL: 'INFO',
    ...env,
  });
}

/** A DynamoDB client for DynamoDB Local. */
export function localDynamoDb(endpoint: string): DynamoDBClient {
  return new DynamoDBClient({ endpoint, ...LOCAL_AWS });
}

/** Options of {@link serviceInstance}. */
export interface ServiceInstanceOptions {
  readonly target: BenchTarget;
  readonly clock: Clock;
  /** Every AWS and IdP call of this instance is counted here. */
  readonly tally: Tally;
  /** Tracks IdP refreshes in flight. */
  readonly gauge?: InFlightGauge;
  /** Ask DynamoDB for the consumed capacity of every request. @default false */
  readonly capacity?: boolean;
  /** Settings on top of {@link benchConfig}. */
  readonly env?: Readonly<Record<string, string>>;
  /** Logger, metrics, events, page size: the production ones unless given. */
  readonly overrides?: Pick<RuntimeOverrides, 'logger' | 'metrics' | 'events' | 'sweepPageSize'>;
}

/**
 * One "Lambda instance" of the service as the stack configures it: the production runtime,
 * KMS envelope cipher, Secrets Manager credentials and Transmit client, with each SDK client
 * counted. Only the transports differ: DynamoDB Local, the Transmit emulator over HTTP, and KMS
 * and Secrets Manager answered in process. A fresh instance has cold caches, as a new Lambda
 * instance would.
 */
export function serviceInstance(options: ServiceInstanceOptions): ServiceInstance {
  const { target, clock, tally } = options;
  const dynamo = localDynamoDb(target.dynamoEndpoint);
  countDynamoDbCalls(dynamo, tally, { capacity: options.capacity ?? false });
  const config = benchConfig(target, options.env);
  const runtime = buildRuntime(config, {
    clock,
    store: new DynamoDbTokenStore({
      tableName: target.tableName,
      client: dynamo,
      dueShards: config.dueShards,
      cipher: new KmsTokenCipher({ keyId: FAKE_KEY_ARN, client: fakeKmsClient(tally), clock }),
    }),
    credentials: new SecretsManagerClientCredentials({
      secretId: FAKE_SECRET_ARN,
      client: fakeSecretsManagerClient(tally, EMULATOR_CLIENT),
      clock,
    }),
    fetch: countingFetch(tally, options.gauge),
    ...options.overrides,
  });
  return { runtime, close: () => dynamo.destroy() };
}

/** A service instance and the way to release its connections. */
export interface ServiceInstance {
  readonly runtime: Runtime;
  close(): void;
}

/** Every call an instance made, by kind: the figures of the calls-per-operation table. */
export interface CallBreakdown {
  readonly dynamoReads: number;
  readonly dynamoWrites: number;
  readonly dynamoQueries: number;
  readonly idp: number;
  readonly kms: number;
  readonly secretsManager: number;
  readonly total: number;
}

/** Groups counted calls by service. */
export function breakdown(counts: Readonly<Record<string, number>>): CallBreakdown {
  const c = (name: string) => counts[name] ?? 0;
  const dynamoReads = c(COUNTED.dynamo('GetItem'));
  const dynamoWrites =
    c(COUNTED.dynamo('PutItem')) + c(COUNTED.dynamo('UpdateItem')) + c(COUNTED.dynamo('DeleteItem'));
  const dynamoQueries = c(COUNTED.dynamo('Query'));
  const idp = c(COUNTED.idpRefresh) + c(COUNTED.idpClientToken);
  const kms = c(COUNTED.kms('GenerateDataKey')) + c(COUNTED.kms('Decrypt'));
  const secretsManager = c(COUNTED.secrets('GetSecretValue'));
  const scanned = c(COUNTED.dynamo('Scan'));
  return {
    dynamoReads,
    dynamoWrites,
    dynamoQueries,
    idp,
    kms,
    secretsManager,
    total: dynamoReads + dynamoWrites + dynamoQueries + scanned + idp + kms + secretsManager,
  };
}
