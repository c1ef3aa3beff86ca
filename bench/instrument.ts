import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KMSClient } from '@aws-sdk/client-kms';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { Clock, Logger } from '../functions/core/ports';

/** Counts by name (calls per service operation, capacity units, items read); plain objects cross IPC. */
export class Tally {
  readonly #counts = new Map<string, number>();

  /** Adds `amount` to `name`. */
  add(name: string, amount = 1): void {
    this.#counts.set(name, (this.#counts.get(name) ?? 0) + amount);
  }

  /** The count of `name` (0 when never added). */
  get(name: string): number {
    return this.#counts.get(name) ?? 0;
  }

  /** Every count, as a plain object. */
  snapshot(): Counts {
    return Object.fromEntries(this.#counts);
  }
}

/** A snapshot of a {@link Tally}. */
export type Counts = Readonly<Record<string, number>>;

/** What happened between two snapshots. */
export function countsSince(after: Counts, before: Counts): Counts {
  const result: Record<string, number> = {};
  for (const [name, value] of Object.entries(after)) {
    const delta = value - (before[name] ?? 0);
    if (delta !== 0) result[name] = delta;
  }
  return result;
}

/** Every count divided by `ops` (at least 1): the counts of one operation. */
export function perOperation(counts: Counts, ops: number): Counts {
  return Object.fromEntries(Object.entries(counts).map(([name, value]) => [name, value / Math.max(1, ops)]));
}

/** Names of the counted things. */
export const COUNTED = {
  dynamo: (operation: string) => `DynamoDB ${operation}`,
  kms: (operation: string) => `KMS ${operation}`,
  secrets: (operation: string) => `SecretsManager ${operation}`,
  idpRefresh: 'IdP refresh',
  idpClientToken: 'IdP client token',
  /** Index entries returned by the due-index Query (its ScannedCount). */
  queryItems: 'DynamoDB Query items read',
  readUnits: 'DynamoDB read request units',
  writeUnitsTable: 'DynamoDB write request units (table)',
  writeUnitsIndex: 'DynamoDB write request units (byDue index)',
  /** Summed wall time of the DynamoDB requests and of the IdP refresh calls (ms). */
  dynamoMs: 'DynamoDB request ms (total)',
  idpRefreshMs: 'IdP refresh ms (total)',
} as const;

const READS = new Set(['GetItem', 'Query', 'Scan', 'BatchGetItem']);
const WITH_CAPACITY = new Set([...READS, 'PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem']);

/** The operation of an SDK command name: `GetItemCommand` -> `GetItem`. */
function operationOf(commandName: string | undefined): string {
  return (commandName ?? 'Unknown').replace(/Command$/, '');
}

interface ConsumedCapacityShape {
  readonly CapacityUnits?: number;
  readonly Table?: { readonly CapacityUnits?: number };
  readonly GlobalSecondaryIndexes?: Readonly<Record<string, { readonly CapacityUnits?: number }>>;
}

/**
 * Counts every request a DynamoDB client sends (each attempt: the middleware sits inside the
 * retry loop, so a retried request counts twice, as AWS bills it). With `capacity`, asks
 * DynamoDB for the consumed capacity of each request and adds it up by table and index.
 */
export function countDynamoDbCalls(
  client: DynamoDBClient,
  tally: Tally,
  options: { readonly capacity?: boolean } = {},
): void {
  if (options.capacity) {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (WITH_CAPACITY.has(operationOf(context.commandName))) {
          (args.input as { ReturnConsumedCapacity?: string }).ReturnConsumedCapacity = 'INDEXES';
        }
        return next(args);
      },
      { step: 'initialize', priority: 'high', name: 'benchAskConsumedCapacity' },
    );
  }
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const operation = operationOf(context.commandName);
      tally.add(COUNTED.dynamo(operation));
      const started = performance.now();
      const result = await next(args);
      tally.add(COUNTED.dynamoMs, performance.now() - started);
      const output = result.output as {
        ConsumedCapacity?: ConsumedCapacityShape | ConsumedCapacityShape[];
        ScannedCount?: number;
      };
      if (operation === 'Query') tally.add(COUNTED.queryItems, output.ScannedCount ?? 0);
      const consumed = output.ConsumedCapacity;
      for (const capacity of Array.isArray(consumed) ? consumed : consumed ? [consumed] : []) {
        if (READS.has(operation)) {
          tally.add(COUNTED.readUnits, capacity.CapacityUnits ?? 0);
        } else {
          const index = Object.values(capacity.GlobalSecondaryIndexes ?? {}).reduce(
            (sum, entry) => sum + (entry.CapacityUnits ?? 0),
            0,
          );
          tally.add(COUNTED.writeUnitsTable, capacity.Table?.CapacityUnits ?? 0);
          tally.add(COUNTED.writeUnitsIndex, index);
        }
      }
      return result;
    },
    { step: 'finalizeRequest', priority: 'low', name: 'benchCountCalls' },
  );
}

/** Fixed, public key of the fake KMS: every bench process can unwrap what another wrapped. */
const FAKE_KMS_MASTER_KEY = createHash('sha256').update('token-keeper bench fake KMS master key').digest();
const FAKE_KMS_MAGIC = Buffer.from('BKMS');
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** KMS ARN the bench configures; only the fake KMS ever sees it. */
export const FAKE_KEY_ARN = 'arn:aws:kms:us-east-1:000000000000:key/00000000-0000-4000-8000-000000000000';
/** Secrets Manager ARN the bench configures; only the fake Secrets Manager ever sees it. */
export const FAKE_SECRET_ARN = 'arn:aws:secretsmanager:us-east-1:000000000000:secret:token-keeper-bench';

/** Region and credentials of the local components (any value works). */
export const LOCAL_AWS = {
  region: 'us-east-1',
  credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
} as const;

/**
 * A real KMSClient whose requests are answered in process (there is no local KMS): the
 * production KmsTokenCipher runs unchanged and every GenerateDataKey / Decrypt it sends is
 * counted. Data keys are wrapped with AES-GCM under a fixed bench key.
 */
export function fakeKmsClient(tally: Tally): KMSClient {
  const client = new KMSClient(LOCAL_AWS);
  client.middlewareStack.add(
    (_next, context) => async (args) => {
      const operation = operationOf(context.commandName);
      tally.add(COUNTED.kms(operation));
      if (operation === 'GenerateDataKey') {
        const plaintext = randomBytes(32);
        const iv = randomBytes(IV_BYTES);
        const cipher = createCipheriv('aes-256-gcm', FAKE_KMS_MASTER_KEY, iv);
        const sealed = Buffer.concat([cipher.update(plaintext), cipher.final()]);
        const blob = Buffer.concat([FAKE_KMS_MAGIC, iv, sealed, cipher.getAuthTag()]);
        return {
          output: { CiphertextBlob: blob, Plaintext: plaintext, KeyId: FAKE_KEY_ARN, $metadata: {} },
          response: {},
        };
      }
      if (operation === 'Decrypt') {
        const blob = Buffer.from((args.input as { CiphertextBlob?: Uint8Array }).CiphertextBlob ?? []);
        return {
          output: { Plaintext: unwrapFakeDataKey(blob), KeyId: FAKE_KEY_ARN, $metadata: {} },
          response: {},
        };
      }
      throw new Error(`the bench's fake KMS does not implement ${operation}`);
    },
    { step: 'initialize', priority: 'high', name: 'benchFakeKms' },
  );
  return client;
}

function unwrapFakeDataKey(blob: Buffer): Buffer {
  const sealedEnd = blob.length - TAG_BYTES;
  const start = FAKE_KMS_MAGIC.length + IV_BYTES;
  if (sealedEnd <= start || !blob.subarray(0, FAKE_KMS_MAGIC.length).equals(FAKE_KMS_MAGIC)) {
    throw invalidCiphertext();
  }
  try {
    const decipher = createDecipheriv(
      'aes-256-gcm',
      FAKE_KMS_MASTER_KEY,
      blob.subarray(FAKE_KMS_MAGIC.length, start),
    );
    decipher.setAuthTag(blob.subarray(sealedEnd));
    return Buffer.concat([decipher.update(blob.subarray(start, sealedEnd)), decipher.final()]);
  } catch {
    throw invalidCiphertext();
  }
}

function invalidCiphertext(): Error {
  const error = new Error('the fake KMS cannot unwrap this data key');
  error.name = 'InvalidCiphertextException';
  return error;
}

/** A real SecretsManagerClient answered in process with the emulator's client credentials; calls counted. */
export function fakeSecretsManagerClient(
  tally: Tally,
  credentials: { readonly clientId: string; readonly clientSecret: string },
): SecretsManagerClient {
  const client = new SecretsManagerClient(LOCAL_AWS);
  client.middlewareStack.add(
    (_next, context) => async () => {
      const operation = operationOf(context.commandName);
      tally.add(COUNTED.secrets(operation));
      if (operation !== 'GetSecretValue') {
        throw new Error(`the bench's fake Secrets Manager does not implement ${operation}`);
      }
      const secretString = JSON.stringify({
        client_id: credentials.clientId,
        client_secret: credentials.clientSecret,
      });
      return { output: { ARN: FAKE_SECRET_ARN, SecretString: secretString, $metadata: {} }, response: {} };
    },
    { step: 'initialize', priority: 'high', name: 'benchFakeSecretsManager' },
  );
  return client;
}

/** Time-weighted number of requests in flight: how full the sweep keeps its pool toward the IdP. */
export class InFlightGauge {
  #inFlight = 0;
  #area = 0;
  #since = performance.now();
  #startedAt = performance.now();

  /** Starts measuring afresh (requests in flight stay counted). */
  restart(): void {
    this.#area = 0;
    this.#since = performance.now();
    this.#startedAt = this.#since;
  }

  /** A request starts. */
  enter(): void {
    this.#advance();
    this.#inFlight++;
  }

  /** A request ends. */
  leave(): void {
    this.#advance();
    this.#inFlight--;
  }

  /** Mean requests in flight since the gauge was (re)started. */
  mean(): number {
    this.#advance();
    const elapsed = performance.now() - this.#startedAt;
    return elapsed > 0 ? this.#area / elapsed : 0;
  }

  #advance(): void {
    const now = performance.now();
    this.#area += this.#inFlight * (now - this.#since);
    this.#since = now;
  }
}

/** `fetch` that counts IdP requests by endpoint (and tracks them in flight when given a gauge). */
export function countingFetch(tally: Tally, gauge?: InFlightGauge): typeof fetch {
  return async (input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    const path = new URL(url).pathname;
    const refresh = path.endsWith('/token/refresh');
    tally.add(
      refresh ? COUNTED.idpRefresh : path.endsWith('/token') ? COUNTED.idpClientToken : `IdP ${path}`,
    );
    if (refresh) gauge?.enter();
    const started = performance.now();
    try {
      return await fetch(input, init);
    } finally {
      if (refresh) {
        gauge?.leave();
        tally.add(COUNTED.idpRefreshMs, performance.now() - started);
      }
    }
  };
}

/** Real time shifted by an offset: the bench moves whole fleets of records into "due" without sleeping. */
export class OffsetClock implements Clock {
  constructor(public offsetMs = 0) {}

  nowMs(): number {
    return Date.now() + this.offsetMs;
  }

  /** Shifts the clock so that it reads `targetMs` now; it never moves backwards. */
  jumpTo(targetMs: number): void {
    this.offsetMs = Math.max(this.offsetMs, targetMs - Date.now());
  }
}

/** A logger that drops everything (bulk seeding would otherwise print 10,000 lines). */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};
