import { DynamoDBClient, type DynamoDBClientConfig, GetItemCommand } from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { AwsCallLimits } from '../../config';
import {
  ConfigurationError,
  CorruptRecordError,
  type ReauthReason,
  StoreUnavailableError,
} from '../../core/errors';
import type { RecordKey, RecordStatus, StoredTokens, TokenRecord } from '../../core/model';
import type {
  BreakerState,
  DueEntry,
  Fence,
  RecordFilter,
  RecordSchedule,
  RecordView,
  ReindexPass,
  ScheduleChange,
  SweepState,
  SweepStateChange,
  TokenStore,
  WriteOutcome,
} from '../../core/ports';
import { Secret } from '../../core/secret';
import { RESOURCE_KEY_PREFIX, USER_KEY_PREFIX } from '../../shared-facts';
import { awsClientConfig } from '../aws-client-config';
import type { TokenCipher } from '../cipher/token-cipher';
import { TOKEN_TABLE } from './table-schema';

/** Options of {@link DynamoDbTokenStore}. */
export interface DynamoDbTokenStoreOptions {
  readonly tableName: string;
  readonly cipher: TokenCipher;
  /** A client to use; when absent one is built from `clientConfig`. */
  readonly client?: DynamoDBClient;
  /** Deadline and attempts of every call of the built client. @default DEFAULT_AWS_CALL_LIMITS */
  readonly limits?: AwsCallLimits;
  /**
   * The deployment's DUE_SHARDS: the first due-index write registers them all at once, so an
   * instance records its shards in one write rather than one per new shard. @default 1
   */
  readonly dueShards?: number;
  /** Merged over the bounded configuration. @default {} (region and endpoint from the SDK's environment) */
  readonly clientConfig?: DynamoDBClientConfig;
}

/** The item as stored. Token material exists only inside `sealed`. */
interface TokenItem {
  pk: string;
  sk: string;
  userId: string;
  resource: string;
  status: RecordStatus;
  sealed?: string;
  tokenType: string;
  accessExpiresAt: number;
  refreshExpiresAt: number;
  expiresAt: number;
  authenticatedAt: number;
  rotationDeadline: number;
  version: number;
  leaseId?: string;
  leaseUntil?: number;
  dueShard?: number;
  dueAt?: number;
  failures: number;
  lastError?: string;
  lastRotatedAt?: number;
  rotations: number;
  reauthReason?: ReauthReason;
  reauthAt?: number;
  reauthSoonNotifiedAt?: number;
  /** Set by markCorrupt: when the sweep found the tokens undecryptable (never read back). */
  corruptAt?: number;
}

/** The encrypted part of an item. Short names keep items small. */
interface SealedTokens {
  a: string;
  r: string;
  i?: string;
  s?: string;
}

/** Items of the rejection breaker: never a user's (user keys start with `u#`), never in the due index. */
const BREAKER_PK = '#breaker';
const BREAKER_STATE_KEY = { pk: BREAKER_PK, sk: 'state' } as const;
/**
 * The sweep's state item. `#` cannot start a user key (those are `u#...`), it has no `dueShard`
 * (never in the due index) and no `expiresAt` (TTL never removes it), and readers of the table
 * (the expiry stream, the at-rest audit) look only at `u#` items.
 */
const SWEEP_STATE_KEY = { pk: '#meta', sk: '#sweep' } as const;

/** The sweep state item as stored. */
interface SweepStateItem {
  shardsUsed?: Set<number>;
  indexedSettings?: string;
  reindex?: ReindexPass;
  stateVersion?: number;
}

/** The attributes a Scan reads: everything but the sealed token material. */
const SCHEDULE_ATTRIBUTES = [
  'pk',
  'sk',
  'status',
  'version',
  'leaseId',
  'leaseUntil',
  'authenticatedAt',
  'lastRotatedAt',
  'refreshExpiresAt',
  'rotationDeadline',
  'expiresAt',
  'dueShard',
  'dueAt',
  'failures',
  'reauthSoonNotifiedAt',
  'reauthReason',
  'reauthAt',
] as const;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** TokenStore on DynamoDB: fenced writes, a lease by conditional update, the sparse due index. */
export class DynamoDbTokenStore implements TokenStore {
  /** The low-level client, for the warm path's read (no document-client layer on the hot path). */
  private readonly client: DynamoDBClient;
  private readonly documents: DynamoDBDocumentClient;
  private readonly tableName: string;
  private readonly cipher: TokenCipher;
  /** Shards below this count are registered in the sweep state (by this instance or another). */
  private registeredShards = 0;
  private readonly dueShards: number;

  constructor(options: DynamoDbTokenStoreOptions) {
    this.dueShards = options.dueShards ?? 1;
    const client =
      options.client ?? new DynamoDBClient({ ...awsClientConfig(options.limits), ...options.clientConfig });
    this.client = client;
    this.documents = DynamoDBDocumentClient.from(client, {
      marshallOptions: { removeUndefinedValues: true },
    });
    this.tableName = options.tableName;
    this.cipher = options.cipher;
  }

  async get(key: RecordKey): Promise<TokenRecord | undefined> {
    // Every getAccessToken reads here: the low-level client with the key in wire form and one
    // unmarshall of the answer, which saves the document client's command layer on each call.
    const { pk, sk } = itemKey(key);
    const result = await this.send(() =>
      this.client.send(
        new GetItemCommand({
          TableName: this.tableName,
          Key: { pk: { S: pk }, sk: { S: sk } },
          ConsistentRead: true,
        }),
      ),
    );
    if (!result.Item) return undefined;
    return this.fromItem(unmarshall(result.Item) as TokenItem);
  }

  async currentVersion(key: RecordKey): Promise<number | undefined> {
    const version = (await this.readAttributes(key, ['version']))?.version;
    return typeof version === 'number' ? version : undefined;
  }

  async readSchedule(key: RecordKey): Promise<RecordView | undefined> {
    const item = await this.readAttributes(key, [...SCHEDULE_ATTRIBUTES, 'corruptAt']);
    return item ? { ...scheduleOf(item), corruptAt: item.corruptAt } : undefined;
  }

  /** A consistent read of some attributes of an item (no sealed tokens unless asked for). */
  private async readAttributes(
    key: RecordKey,
    attributes: readonly (keyof TokenItem)[],
  ): Promise<TokenItem | undefined> {
    const result = await this.send(() =>
      this.documents.send(
        new GetCommand({
          TableName: this.tableName,
          Key: itemKey(key),
          ConsistentRead: true,
          ProjectionExpression: attributes.map((_, i) => `#a${i}`).join(', '),
          ExpressionAttributeNames: Object.fromEntries(attributes.map((name, i) => [`#a${i}`, name])),
        }),
      ),
    );
    return result.Item as TokenItem | undefined;
  }

  async markCorrupt(key: RecordKey, version: number, nowSeconds: number): Promise<WriteOutcome> {
    return this.conditional(() =>
      this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: itemKey(key),
          UpdateExpression: 'SET corruptAt = :now, #version = :next REMOVE dueShard, dueAt',
          ConditionExpression: '#version = :version',
          ExpressionAttributeNames: { '#version': 'version' },
          ExpressionAttributeValues: { ':now': nowSeconds, ':next': version + 1, ':version': version },
        }),
      ),
    );
  }

  async put(record: TokenRecord, fence: Fence): Promise<WriteOutcome> {
    const item = await this.toItem(record);
    await this.registerShard(record.dueShard);
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = {};
    let condition: string;
    if (fence.version === undefined) {
      condition = 'attribute_not_exists(pk)';
    } else {
      condition = `#version = :version${leaseConditions(fence, values)}`;
      names['#version'] = 'version';
      values[':version'] = fence.version;
    }
    return this.conditional(() =>
      this.documents.send(
        new PutCommand({
          TableName: this.tableName,
          Item: item,
          ConditionExpression: condition,
          ...(Object.keys(names).length > 0 ? { ExpressionAttributeNames: names } : {}),
          ...(Object.keys(values).length > 0 ? { ExpressionAttributeValues: values } : {}),
        }),
      ),
    );
  }

  async acquireLease(
    key: RecordKey,
    version: number,
    leaseId: string,
    untilMs: number,
    nowMs: number,
  ): Promise<WriteOutcome> {
    return this.conditional(() =>
      this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: itemKey(key),
          UpdateExpression: 'SET leaseId = :leaseId, leaseUntil = :until',
          ConditionExpression:
            '#version = :version AND #status = :active AND (attribute_not_exists(leaseUntil) OR leaseUntil < :now OR leaseId = :leaseId)',
          ExpressionAttributeNames: { '#version': 'version', '#status': 'status' },
          ExpressionAttributeValues: {
            ':leaseId': leaseId,
            ':until': untilMs,
            ':version': version,
            ':active': 'ACTIVE',
            ':now': nowMs,
          },
        }),
      ),
    );
  }

  async countRejection(windowStart: number, expiresAt: number): Promise<number> {
    const result = await this.send(() =>
      this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: BREAKER_PK, sk: `w#${windowStart}` },
          UpdateExpression: 'ADD rejections :one SET expiresAt = :expiresAt',
          ExpressionAttributeValues: { ':one': 1, ':expiresAt': expiresAt },
          ReturnValues: 'UPDATED_NEW',
        }),
      ),
    );
    return Number(result.Attributes?.rejections ?? 0);
  }

  async getBreaker(): Promise<BreakerState> {
    const result = await this.send(() =>
      this.documents.send(
        new GetCommand({ TableName: this.tableName, Key: BREAKER_STATE_KEY, ConsistentRead: true }),
      ),
    );
    const item = result.Item ?? {};
    return {
      openedAt: typeof item.openedAt === 'number' ? item.openedAt : undefined,
      trustUntil: typeof item.trustUntil === 'number' ? item.trustUntil : undefined,
    };
  }

  async openBreaker(openedAt: number): Promise<WriteOutcome> {
    return this.conditional(() =>
      this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: BREAKER_STATE_KEY,
          UpdateExpression: 'SET openedAt = :openedAt REMOVE trustUntil',
          ConditionExpression: 'attribute_not_exists(openedAt)',
          ExpressionAttributeValues: { ':openedAt': openedAt },
        }),
      ),
    );
  }

  async closeBreaker(trustUntil: number): Promise<void> {
    await this.send(() =>
      this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: BREAKER_STATE_KEY,
          UpdateExpression: 'SET trustUntil = :trustUntil REMOVE openedAt',
          ExpressionAttributeValues: { ':trustUntil': trustUntil },
        }),
      ),
    );
  }

  async delete(key: RecordKey, fence?: { readonly version: number }): Promise<WriteOutcome> {
    return this.conditional(() =>
      this.documents.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: itemKey(key),
          ...(fence
            ? {
                ConditionExpression: '#version = :version',
                ExpressionAttributeNames: { '#version': 'version' },
                ExpressionAttributeValues: { ':version': fence.version },
              }
            : {}),
        }),
      ),
    );
  }

  async readSweepState(): Promise<SweepState> {
    const result = await this.send(() =>
      this.documents.send(
        new GetCommand({ TableName: this.tableName, Key: SWEEP_STATE_KEY, ConsistentRead: true }),
      ),
    );
    const item = (result.Item ?? {}) as SweepStateItem;
    return {
      shardsUsed: [...(item.shardsUsed ?? [])].map(Number).sort((a, b) => a - b),
      indexedSettings: item.indexedSettings,
      reindex: item.reindex
        ? {
            settings: item.reindex.settings,
            notBefore: item.reindex.notBefore,
            cursor: item.reindex.cursor,
            scanned: item.reindex.scanned,
            lowered: item.reindex.lowered,
          }
        : undefined,
      version: item.stateVersion ?? 0,
    };
  }

  async writeSweepState(state: SweepStateChange, version: number): Promise<WriteOutcome> {
    const set = ['#stateVersion = :next'];
    const remove: string[] = [];
    const values: Record<string, unknown> = { ':next': version + 1 };
    if (state.indexedSettings === undefined) remove.push('#indexedSettings');
    else {
      set.push('#indexedSettings = :settings');
      values[':settings'] = state.indexedSettings;
    }
    if (state.reindex === undefined) remove.push('#reindex');
    else {
      set.push('#reindex = :reindex');
      values[':reindex'] = stripUndefined({ ...state.reindex });
    }
    if (version > 0) values[':version'] = version;
    return this.conditional(() =>
      this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: SWEEP_STATE_KEY,
          UpdateExpression: `SET ${set.join(', ')}${remove.length > 0 ? ` REMOVE ${remove.join(', ')}` : ''}`,
          ConditionExpression:
            version > 0 ? '#stateVersion = :version' : 'attribute_not_exists(#stateVersion)',
          // `reindex` is a DynamoDB reserved word: every name goes through a placeholder.
          ExpressionAttributeNames: {
            '#stateVersion': 'stateVersion',
            '#indexedSettings': 'indexedSettings',
            '#reindex': 'reindex',
          },
          ExpressionAttributeValues: values,
        }),
      ),
    );
  }

  async scanRecords(
    filter: RecordFilter,
    limit: number,
    cursor?: string,
  ): Promise<{ records: RecordSchedule[]; cursor: string | undefined }> {
    const names: Record<string, string> = {};
    for (const [i, attribute] of SCHEDULE_ATTRIBUTES.entries()) names[`#a${i}`] = attribute;
    const name = (attribute: (typeof SCHEDULE_ATTRIBUTES)[number]) =>
      `#a${SCHEDULE_ATTRIBUTES.indexOf(attribute)}`;
    const values: Record<string, unknown> = { ':user': USER_KEY_PREFIX, ':status': filter.status };
    let condition = `begins_with(${name('pk')}, :user) AND ${name('status')} = :status`;
    if (filter.status === 'REAUTH_REQUIRED') {
      condition += ` AND ${name('reauthAt')} BETWEEN :from AND :to`;
      values[':from'] = filter.reauthFrom;
      values[':to'] = filter.reauthTo;
    }
    const result = await this.send(() =>
      this.documents.send(
        new ScanCommand({
          TableName: this.tableName,
          ProjectionExpression: Object.keys(names).join(', '),
          FilterExpression: condition,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          Limit: limit,
          ...(cursor ? { ExclusiveStartKey: decodeCursor(cursor) } : {}),
        }),
      ),
    );
    const records = (result.Items ?? []).map((raw) => scheduleOf(raw as TokenItem));
    return { records, cursor: result.LastEvaluatedKey ? encodeCursor(result.LastEvaluatedKey) : undefined };
  }

  async reschedule(key: RecordKey, fence: Fence, change: ScheduleChange): Promise<WriteOutcome> {
    await this.registerShard(change.dueShard);
    const values: Record<string, unknown> = {
      ':next': change.version,
      ':refresh': change.refreshExpiresAt,
      ':expires': change.expiresAt,
      ':deadline': change.rotationDeadline,
      ':shard': change.dueShard,
      ':due': change.dueAt,
      ':active': 'ACTIVE',
      ':version': fence.version,
    };
    const condition = `#version = :version AND #status = :active${leaseConditions(fence, values)}`;
    return this.conditional(() =>
      this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: itemKey(key),
          UpdateExpression:
            'SET #version = :next, refreshExpiresAt = :refresh, expiresAt = :expires, ' +
            'rotationDeadline = :deadline, dueShard = :shard, dueAt = :due',
          ConditionExpression: condition,
          ExpressionAttributeNames: { '#version': 'version', '#status': 'status' },
          ExpressionAttributeValues: values,
        }),
      ),
    );
  }

  /**
   * Before a record goes into shard `shard` of the due index, records in the sweep state that
   * shards below `shard + 1` are in use (once per instance and count: an ADD to a number set,
   * idempotent). A record is thus never in a shard the sweep does not query, even after
   * `DUE_SHARDS` was lowered.
   */
  private async registerShard(shard: number | undefined): Promise<void> {
    if (shard === undefined || shard < this.registeredShards) return;
    const count = Math.max(shard + 1, this.dueShards);
    await this.send(() =>
      this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: SWEEP_STATE_KEY,
          UpdateExpression: 'ADD shardsUsed :count',
          ExpressionAttributeValues: { ':count': new Set([count]) },
        }),
      ),
    );
    this.registeredShards = Math.max(this.registeredShards, count);
  }

  async queryDue(
    shard: number,
    nowSeconds: number,
    limit: number,
    cursor?: string,
  ): Promise<{ entries: DueEntry[]; cursor: string | undefined }> {
    const { dueIndex } = TOKEN_TABLE;
    const result = await this.send(() =>
      this.documents.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: dueIndex.name,
          KeyConditionExpression: '#shard = :shard AND #due <= :now',
          ExpressionAttributeNames: { '#shard': dueIndex.partitionKey.name, '#due': dueIndex.sortKey.name },
          ExpressionAttributeValues: { ':shard': shard, ':now': nowSeconds },
          ScanIndexForward: true,
          Limit: limit,
          ...(cursor ? { ExclusiveStartKey: decodeCursor(cursor) } : {}),
        }),
      ),
    );
    const entries = (result.Items ?? []).map((item) => ({
      key: keyOf(item.pk as string, item.sk as string),
      dueAt: item.dueAt as number,
    }));
    return { entries, cursor: result.LastEvaluatedKey ? encodeCursor(result.LastEvaluatedKey) : undefined };
  }

  private async toItem(record: TokenRecord): Promise<TokenItem> {
    const { key, tokens, lease, corrupt: _corrupt, ...rest } = record;
    let sealed: string | undefined;
    if (tokens) {
      const plain: SealedTokens = {
        a: tokens.accessToken.reveal(),
        r: tokens.refreshToken.reveal(),
        ...(tokens.idToken ? { i: tokens.idToken.reveal() } : {}),
        ...(tokens.sessionId ? { s: tokens.sessionId.reveal() } : {}),
      };
      sealed = await this.cipher.seal(encoder.encode(JSON.stringify(plain)), associatedData(key));
    }
    return {
      ...itemKey(key),
      userId: key.userId,
      resource: key.resource,
      ...stripUndefined(rest),
      ...(sealed ? { sealed } : {}),
      ...(lease ? { leaseId: lease.id, leaseUntil: lease.untilMs } : {}),
    } as TokenItem;
  }

  private async fromItem(item: TokenItem): Promise<TokenRecord> {
    const key = keyOf(item.pk, item.sk);
    let tokens: StoredTokens | undefined;
    let corrupt = false;
    if (item.sealed !== undefined) {
      try {
        tokens = parseSealed(decoder.decode(await this.cipher.open(item.sealed, associatedData(key))));
      } catch (error) {
        if (!(error instanceof CorruptRecordError)) throw error;
        corrupt = true;
      }
    }
    return {
      key,
      status: item.status,
      tokens,
      tokenType: item.tokenType,
      accessExpiresAt: item.accessExpiresAt,
      refreshExpiresAt: item.refreshExpiresAt,
      expiresAt: item.expiresAt,
      authenticatedAt: item.authenticatedAt,
      rotationDeadline: item.rotationDeadline,
      version: item.version,
      lease: leaseOf(item),
      dueShard: item.dueShard,
      dueAt: item.dueAt,
      failures: item.failures ?? 0,
      lastError: item.lastError,
      lastRotatedAt: item.lastRotatedAt,
      rotations: item.rotations ?? 0,
      reauthReason: item.reauthReason,
      ...(item.reauthAt !== undefined ? { reauthAt: item.reauthAt } : {}),
      reauthSoonNotifiedAt: item.reauthSoonNotifiedAt,
      ...(corrupt ? { corrupt: true } : {}),
    };
  }

  /** Runs a conditional write: a failed condition is the value 'conflict'. */
  private async conditional(write: () => Promise<unknown>): Promise<WriteOutcome> {
    try {
      await write();
      return 'ok';
    } catch (error) {
      if (isNamed(error, 'ConditionalCheckFailedException')) return 'conflict';
      throw translate(error);
    }
  }

  private async send<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw translate(error);
    }
  }
}

/** The schedule fields of an item read by a Scan. */
function scheduleOf(item: TokenItem): RecordSchedule {
  return {
    key: keyOf(item.pk, item.sk),
    status: item.status,
    version: item.version,
    lease: leaseOf(item),
    authenticatedAt: item.authenticatedAt,
    lastRotatedAt: item.lastRotatedAt,
    refreshExpiresAt: item.refreshExpiresAt,
    rotationDeadline: item.rotationDeadline,
    expiresAt: item.expiresAt,
    dueShard: item.dueShard,
    dueAt: item.dueAt,
    failures: item.failures ?? 0,
    reauthSoonNotifiedAt: item.reauthSoonNotifiedAt,
    reauthReason: item.reauthReason,
    reauthAt: item.reauthAt,
  };
}

/** Binds a ciphertext to its record: copied to another user or resource, it does not decrypt. */
function associatedData(key: RecordKey): Uint8Array {
  return encoder.encode(`token-keeper/v1\u0000${key.userId}\u0000${key.resource}`);
}

function parseSealed(json: string): StoredTokens {
  let value: Partial<SealedTokens>;
  try {
    value = JSON.parse(json) as Partial<SealedTokens>;
  } catch (error) {
    throw new CorruptRecordError('stored tokens are not valid JSON', { cause: error });
  }
  if (typeof value.a !== 'string' || typeof value.r !== 'string') {
    throw new CorruptRecordError('stored tokens lack the access or refresh token');
  }
  return {
    accessToken: new Secret(value.a),
    refreshToken: new Secret(value.r),
    ...(typeof value.i === 'string' ? { idToken: new Secret(value.i) } : {}),
    ...(typeof value.s === 'string' ? { sessionId: new Secret(value.s) } : {}),
  };
}

function itemKey(key: RecordKey): { pk: string; sk: string } {
  return { pk: USER_KEY_PREFIX + key.userId, sk: RESOURCE_KEY_PREFIX + key.resource };
}

/** The record key of an item key. */
export function keyOf(pk: string, sk: string): RecordKey {
  return { userId: pk.slice(USER_KEY_PREFIX.length), resource: sk.slice(RESOURCE_KEY_PREFIX.length) };
}

function stripUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

function encodeCursor(key: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

function decodeCursor(cursor: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as Record<string, unknown>;
}

function isNamed(error: unknown, name: string): boolean {
  return error instanceof Error && error.name === name;
}

/** SDK errors become domain errors; the SDK error stays in `cause`. */
function translate(error: unknown): Error {
  if (isNamed(error, 'ResourceNotFoundException')) {
    return new ConfigurationError('the token table does not exist (check TOKEN_TABLE_NAME)', {
      cause: error,
    });
  }
  if (isNamed(error, 'AccessDeniedException')) {
    return new ConfigurationError('access to the token table was denied', { cause: error });
  }
  if (isNamed(error, 'ValidationException')) return error as Error;
  return new StoreUnavailableError('the token table is unavailable right now', { cause: error });
}

/**
 * The lease parts of a fence as condition terms (each starting with ` AND `), their values added
 * to `values`: the writer's own lease still in place, or no live lease at all.
 */
function leaseConditions(fence: Fence, values: Record<string, unknown>): string {
  let terms = '';
  if (fence.leaseId !== undefined) {
    terms += ' AND leaseId = :leaseId';
    values[':leaseId'] = fence.leaseId;
  }
  if (fence.noLiveLeaseAtMs !== undefined) {
    terms += ' AND (attribute_not_exists(leaseUntil) OR leaseUntil < :now)';
    values[':now'] = fence.noLiveLeaseAtMs;
  }
  return terms;
}

/** The lease an item holds, if any. */
function leaseOf(item: TokenItem): TokenRecord['lease'] {
  return item.leaseId !== undefined && item.leaseUntil !== undefined
    ? { id: item.leaseId, untilMs: item.leaseUntil }
    : undefined;
}
