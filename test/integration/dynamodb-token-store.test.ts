import { randomBytes, randomUUID } from 'node:crypto';
import {
  ConditionalCheckFailedException,
  type DynamoDBClient,
  GetItemCommand,
  ProvisionedThroughputExceededException,
  RequestLimitExceeded,
  ScanCommand,
  ThrottlingException,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalTokenCipher } from '../../functions/adapters/cipher/local-cipher';
import { DynamoDbTokenStore } from '../../functions/adapters/dynamodb/dynamodb-token-store';
import { TOKEN_TABLE } from '../../functions/adapters/dynamodb/table-schema';
import { ConfigurationError, StoreUnavailableError } from '../../functions/core/errors';
import type { RecordKey, TokenRecord } from '../../functions/core/model';
import type { DueEntry } from '../../functions/core/ports';
import { Secret } from '../../functions/core/secret';
import { caught } from '../support/caught';
import { localDynamoClientAt } from '../support/dynamo';
import { rawItems as allRawItems, createTable, localDynamoClient } from '../support/harness';

/** The token records of a table, as DynamoDB holds them: the sweep state item (`#meta`, written by
 * the first put into the due index) and the breaker's items are not records. */
async function rawItems(client: DynamoDBClient, tableName: string): Promise<Record<string, unknown>[]> {
  const items = await allRawItems(client, tableName);
  return items.filter((item) => (item.pk as { S?: string } | undefined)?.S?.startsWith('u#'));
}

/** 2026-01-01T00:00:00Z in epoch seconds. */
const T0 = Date.UTC(2026, 0, 1) / 1000;
const T0_MS = T0 * 1000;
const DAY = 86_400;

/** Token values that must never be found in a raw item. */
const CANARY = {
  access: 'at-CANARY-5c1d0e',
  refresh: 'rt-CANARY-9a77b2',
  id: 'id-CANARY-3f0c61',
  session: 'sid-CANARY-e2b48d',
} as const;

const alice: RecordKey = { userId: 'alice', resource: 'default' };
const bob: RecordKey = { userId: 'bob', resource: 'default' };

/** The raw items of token records (keys `u#...`): the service's own items (sweep state, breaker) left out. */
async function recordItems(client: DynamoDBClient, tableName: string): Promise<Record<string, unknown>[]> {
  const items = await rawItems(client, tableName);
  return items.filter((item) => (item.pk as { S?: string } | undefined)?.S?.startsWith('u#'));
}

function newCipher(): LocalTokenCipher {
  return new LocalTokenCipher(randomBytes(32));
}

/** An ACTIVE record with every optional field set, so a round trip must carry all of them. */
function fullRecord(key: RecordKey, overrides: Partial<TokenRecord> = {}): TokenRecord {
  return {
    key,
    status: 'ACTIVE',
    tokens: {
      accessToken: new Secret(`${CANARY.access}-${key.userId}`),
      refreshToken: new Secret(`${CANARY.refresh}-${key.userId}`),
      idToken: new Secret(`${CANARY.id}-${key.userId}`),
      sessionId: new Secret(`${CANARY.session}-${key.userId}`),
    },
    tokenType: 'Bearer',
    accessExpiresAt: T0 + 3600,
    refreshExpiresAt: T0 + 14 * DAY,
    expiresAt: T0 + 14 * DAY,
    authenticatedAt: T0 - DAY,
    rotationDeadline: T0 + 364 * DAY,
    version: 1,
    lease: { id: 'lease-1', untilMs: T0_MS + 30_000 },
    dueShard: 3,
    dueAt: T0 + 13 * DAY,
    failures: 2,
    lastError: 'idp_timeout',
    lastRotatedAt: T0 - 3600,
    rotations: 7,
    reauthReason: 'deadline',
    reauthSoonNotifiedAt: T0 - 60,
    ...overrides,
  };
}

/** A record with only the mandatory fields: every optional one is `undefined`. */
function minimalRecord(key: RecordKey, overrides: Partial<TokenRecord> = {}): TokenRecord {
  return {
    key,
    status: 'ACTIVE',
    tokens: {
      accessToken: new Secret(`${CANARY.access}-${key.userId}`),
      refreshToken: new Secret(`${CANARY.refresh}-${key.userId}`),
    },
    tokenType: 'Bearer',
    accessExpiresAt: T0 + 3600,
    refreshExpiresAt: T0 + 14 * DAY,
    expiresAt: T0 + 14 * DAY,
    authenticatedAt: T0,
    rotationDeadline: T0 + 365 * DAY,
    version: 1,
    lease: undefined,
    dueShard: undefined,
    dueAt: undefined,
    failures: 0,
    lastError: undefined,
    lastRotatedAt: undefined,
    rotations: 0,
    reauthReason: undefined,
    reauthSoonNotifiedAt: undefined,
    ...overrides,
  };
}

/** A record that is in the due index at `dueAt` of `shard`. */
function dueRecord(key: RecordKey, shard: number, dueAt: number): TokenRecord {
  return minimalRecord(key, { dueShard: shard, dueAt });
}

/** A comparable view of a record: Secrets hide their value from `toEqual`, so compare what reveal() gives. */
function comparable(record: TokenRecord | undefined) {
  if (!record) return record;
  const { tokens, ...rest } = record;
  return {
    ...rest,
    tokens: tokens && {
      accessToken: tokens.accessToken.reveal(),
      refreshToken: tokens.refreshToken.reveal(),
      idToken: tokens.idToken?.reveal(),
      sessionId: tokens.sessionId?.reveal(),
    },
  };
}

/** Reads every page of one shard's due entries. */
async function allDue(
  store: DynamoDbTokenStore,
  shard: number,
  nowSeconds: number,
  limit: number,
): Promise<{ entries: DueEntry[]; pages: number }> {
  const entries: DueEntry[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await store.queryDue(shard, nowSeconds, limit, cursor);
    expect(page.entries.length).toBeLessThanOrEqual(limit);
    entries.push(...page.entries);
    cursor = page.cursor;
    pages++;
  } while (cursor !== undefined && pages < 100);
  return { entries, pages };
}

/** The raw `sealed` attribute of a record. */
async function rawSealed(client: DynamoDBClient, tableName: string, key: RecordKey): Promise<string> {
  const { Item } = await client.send(
    new GetItemCommand({
      TableName: tableName,
      Key: { pk: { S: `u#${key.userId}` }, sk: { S: `r#${key.resource}` } },
      ConsistentRead: true,
    }),
  );
  const sealed = Item?.sealed?.S;
  if (sealed === undefined) throw new Error('the item has no sealed attribute');
  return sealed;
}

/** Overwrites the raw `sealed` attribute of a record, bypassing the store. */
async function setRawSealed(
  client: DynamoDBClient,
  tableName: string,
  key: RecordKey,
  sealed: string,
): Promise<void> {
  await client.send(
    new UpdateItemCommand({
      TableName: tableName,
      Key: { pk: { S: `u#${key.userId}` }, sk: { S: `r#${key.resource}` } },
      UpdateExpression: 'SET sealed = :sealed',
      ExpressionAttributeValues: { ':sealed': { S: sealed } },
    }),
  );
}

/** Replaces one character near the end of the envelope's ciphertext part with another base64url one. */
function tamper(sealed: string): string {
  const parts = sealed.split('.');
  const body = parts[3]!;
  const at = Math.floor(body.length / 2);
  parts[3] = `${body.slice(0, at)}${body[at] === 'A' ? 'B' : 'A'}${body.slice(at + 1)}`;
  return parts.join('.');
}

describe('Class: DynamoDbTokenStore', () => {
  let client: DynamoDBClient;
  let tableName: string;
  let cipher: LocalTokenCipher;
  let store: DynamoDbTokenStore;

  beforeEach(async () => {
    client = localDynamoClient();
    tableName = await createTable(client);
    cipher = newCipher();
    store = new DynamoDbTokenStore({ tableName, cipher, client });
  });
  afterEach(() => {
    client.destroy();
  });

  describe('Method: put', () => {
    it('creates the record when the fence says it must not exist, then conflicts on a second create', async () => {
      // Prepare
      const first = fullRecord(alice);
      const second = fullRecord(alice, { tokenType: 'DPoP', rotations: 99 });

      // Act
      const created = await store.put(first, { version: undefined });
      const again = await store.put(second, { version: undefined });

      // Assess
      expect(created).toBe('ok');
      expect(again).toBe('conflict');
      expect(comparable(await store.get(alice))).toStrictEqual(comparable(first));
    });

    it('writes when the stored version is the fenced one', async () => {
      // Prepare
      await store.put(fullRecord(alice), { version: undefined });
      const next = fullRecord(alice, { version: 2, rotations: 8 });

      // Act
      const outcome = await store.put(next, { version: 1 });

      // Assess
      expect(outcome).toBe('ok');
      expect(comparable(await store.get(alice))).toStrictEqual(comparable(next));
    });

    it('conflicts and leaves the record unchanged when the stored version moved on', async () => {
      // Prepare
      const current = fullRecord(alice, { version: 2 });
      await store.put(fullRecord(alice), { version: undefined });
      await store.put(current, { version: 1 });

      // Act
      const outcome = await store.put(fullRecord(alice, { version: 2, rotations: 99 }), { version: 1 });

      // Assess
      expect(outcome).toBe('conflict');
      expect(comparable(await store.get(alice))).toStrictEqual(comparable(current));
    });

    it('conflicts without creating anything when a version is fenced but the record does not exist', async () => {
      // Act
      const outcome = await store.put(fullRecord(alice, { version: 2 }), { version: 1 });

      // Assess
      expect(outcome).toBe('conflict');
      expect(await recordItems(client, tableName)).toHaveLength(0);
    });

    it('writes when the fenced lease is the stored one, and the written record carries no lease', async () => {
      // Prepare
      await store.put(fullRecord(alice, { lease: { id: 'lease-1', untilMs: T0_MS + 30_000 } }), {
        version: undefined,
      });
      const committed = fullRecord(alice, { version: 2, lease: undefined });

      // Act
      const outcome = await store.put(committed, { version: 1, leaseId: 'lease-1' });

      // Assess
      expect(outcome).toBe('ok');
      const stored = await store.get(alice);
      expect(stored?.version).toBe(2);
      expect(stored?.lease).toBeUndefined();
    });

    it('conflicts when the stored lease is another one', async () => {
      // Prepare
      const current = fullRecord(alice, { lease: { id: 'lease-other', untilMs: T0_MS + 30_000 } });
      await store.put(current, { version: undefined });

      // Act
      const outcome = await store.put(fullRecord(alice, { version: 2, lease: undefined }), {
        version: 1,
        leaseId: 'lease-1',
      });

      // Assess
      expect(outcome).toBe('conflict');
      expect(comparable(await store.get(alice))).toStrictEqual(comparable(current));
    });

    it('conflicts when a lease is fenced but the record holds none', async () => {
      // Prepare
      await store.put(fullRecord(alice, { lease: undefined }), { version: undefined });

      // Act
      const outcome = await store.put(fullRecord(alice, { version: 2, lease: undefined }), {
        version: 1,
        leaseId: 'lease-1',
      });

      // Assess
      expect(outcome).toBe('conflict');
      expect((await store.get(alice))?.version).toBe(1);
    });

    it('reads back a record with every field set exactly as written', async () => {
      // Prepare
      const written = fullRecord({ userId: 'alice', resource: 'https://api.example.com/r#1' });

      // Act
      await store.put(written, { version: undefined });
      const read = await store.get(written.key);

      // Assess
      expect(comparable(read)).toStrictEqual(comparable(written));
      expect(read?.tokens?.accessToken.reveal()).toBe(`${CANARY.access}-alice`);
      expect(read?.tokens?.refreshToken.reveal()).toBe(`${CANARY.refresh}-alice`);
      expect(read?.tokens?.idToken?.reveal()).toBe(`${CANARY.id}-alice`);
      expect(read?.tokens?.sessionId?.reveal()).toBe(`${CANARY.session}-alice`);
      expect(read?.corrupt).toBeUndefined();
    });

    it('reads back a REAUTH_REQUIRED record without tokens exactly as written', async () => {
      // Prepare
      const written = minimalRecord(alice, {
        status: 'REAUTH_REQUIRED',
        tokens: undefined,
        reauthReason: 'refresh_rejected',
        failures: 1,
        lastError: 'invalid_grant',
      });

      // Act
      await store.put(written, { version: undefined });
      const read = await store.get(alice);

      // Assess
      expect(comparable(read)).toStrictEqual(comparable(written));
      expect(read?.tokens).toBeUndefined();
    });

    it('writes no attribute for an undefined optional field', async () => {
      // Prepare
      const written = minimalRecord(alice);

      // Act
      await store.put(written, { version: undefined });

      // Assess
      const [item] = await recordItems(client, tableName);
      expect(Object.keys(item ?? {}).sort()).toEqual(
        [
          'pk',
          'sk',
          'userId',
          'resource',
          'status',
          'sealed',
          'tokenType',
          'accessExpiresAt',
          'refreshExpiresAt',
          'expiresAt',
          'authenticatedAt',
          'rotationDeadline',
          'version',
          'failures',
          'rotations',
        ].sort(),
      );
      const read = await store.get(alice);
      expect(comparable(read)).toStrictEqual(comparable(written));
      expect(read?.tokens?.idToken).toBeUndefined();
      expect(read?.tokens?.sessionId).toBeUndefined();
    });

    it('writes no `sealed` attribute for a record without tokens, even over one that had them', async () => {
      // Prepare
      await store.put(fullRecord(alice), { version: undefined });

      // Act
      await store.put(minimalRecord(alice, { version: 2, status: 'REAUTH_REQUIRED', tokens: undefined }), {
        version: 1,
      });

      // Assess
      const [item] = await recordItems(client, tableName);
      expect(item).not.toHaveProperty('sealed');
      expect(item).not.toHaveProperty('leaseId');
      expect(item).not.toHaveProperty('dueAt');
    });

    it('stores the lease as leaseId and leaseUntil, the TTL in expiresAt and the due keys of the index', async () => {
      // Prepare
      const written = fullRecord(alice);

      // Act
      await store.put(written, { version: undefined });

      // Assess
      const [item] = await recordItems(client, tableName);
      expect(item).toMatchObject({
        pk: { S: 'u#alice' },
        sk: { S: 'r#default' },
        leaseId: { S: 'lease-1' },
        leaseUntil: { N: String(T0_MS + 30_000) },
        [TOKEN_TABLE.ttlAttribute]: { N: String(T0 + 14 * DAY) },
        [TOKEN_TABLE.dueIndex.partitionKey.name]: { N: '3' },
        [TOKEN_TABLE.dueIndex.sortKey.name]: { N: String(T0 + 13 * DAY) },
      });
    });

    it('stores no token value in any attribute of any item', async () => {
      // Prepare
      const keys: RecordKey[] = [alice, bob, { userId: 'carol', resource: 'https://api.example.com' }];

      // Act
      for (const key of keys) await store.put(fullRecord(key), { version: undefined });

      // Assess
      const items = await recordItems(client, tableName);
      expect(items).toHaveLength(3);
      const raw = JSON.stringify(items);
      for (const canary of Object.values(CANARY)) expect(raw).not.toContain(canary);
      for (const key of keys) {
        const { tokens } = (await store.get(key))!;
        for (const secret of [
          tokens?.accessToken,
          tokens?.refreshToken,
          tokens?.idToken,
          tokens?.sessionId,
        ]) {
          expect(raw).not.toContain(secret!.reveal());
        }
      }
    });
  });

  describe('Method: get', () => {
    it('returns undefined when there is no record', async () => {
      // Act
      const read = await store.get(alice);

      // Assess
      expect(read).toBeUndefined();
    });

    it('keeps records of one user apart by resource', async () => {
      // Prepare
      const other = { userId: 'alice', resource: 'https://api.example.com' };
      await store.put(fullRecord(alice, { rotations: 1 }), { version: undefined });
      await store.put(fullRecord(other, { rotations: 2 }), { version: undefined });

      // Act
      const [first, second] = [await store.get(alice), await store.get(other)];

      // Assess
      expect(first?.rotations).toBe(1);
      expect(second?.rotations).toBe(2);
      expect(second?.key).toEqual(other);
    });

    it('returns corrupt: true and no tokens when `sealed` was copied from another user', async () => {
      // Prepare
      await store.put(fullRecord(alice), { version: undefined });
      await store.put(fullRecord(bob), { version: undefined });
      await setRawSealed(client, tableName, alice, await rawSealed(client, tableName, bob));

      // Act
      const read = await store.get(alice);

      // Assess
      expect(read?.corrupt).toBe(true);
      expect(read?.tokens).toBeUndefined();
      expect(read?.key).toEqual(alice);
      expect(read?.version).toBe(1);
      expect(read?.status).toBe('ACTIVE');
    });

    it('returns corrupt: true and no tokens when `sealed` was copied from another resource of the same user', async () => {
      // Prepare
      const other = { userId: 'alice', resource: 'https://api.example.com' };
      await store.put(fullRecord(alice), { version: undefined });
      await store.put(fullRecord(other), { version: undefined });
      await setRawSealed(client, tableName, alice, await rawSealed(client, tableName, other));

      // Act
      const read = await store.get(alice);

      // Assess
      expect(read?.corrupt).toBe(true);
      expect(read?.tokens).toBeUndefined();
    });

    it('returns corrupt: true and no tokens when the ciphertext was tampered with', async () => {
      // Prepare
      await store.put(fullRecord(alice), { version: undefined });
      await setRawSealed(client, tableName, alice, tamper(await rawSealed(client, tableName, alice)));

      // Act
      const read = await store.get(alice);

      // Assess
      expect(read?.corrupt).toBe(true);
      expect(read?.tokens).toBeUndefined();
    });

    it('returns corrupt: true and no tokens when `sealed` is not an envelope at all', async () => {
      // Prepare
      await store.put(fullRecord(alice), { version: undefined });
      await setRawSealed(client, tableName, alice, 'not-an-envelope');

      // Act
      const read = await store.get(alice);

      // Assess
      expect(read?.corrupt).toBe(true);
      expect(read?.tokens).toBeUndefined();
    });

    it('returns corrupt: true and no tokens when read with a different cipher key', async () => {
      // Prepare
      await store.put(fullRecord(alice), { version: undefined });
      const otherKeyStore = new DynamoDbTokenStore({ tableName, cipher: newCipher(), client });

      // Act
      const read = await otherKeyStore.get(alice);

      // Assess
      expect(read?.corrupt).toBe(true);
      expect(read?.tokens).toBeUndefined();
      expect((await store.get(alice))?.corrupt).toBeUndefined();
    });
  });

  describe('Method: currentVersion', () => {
    it('reads the version alone and never opens the sealed tokens', async () => {
      // Prepare
      await store.put(fullRecord(alice, { version: 41 }), { version: undefined });
      const opening = new DynamoDbTokenStore({
        tableName,
        client,
        cipher: {
          seal: () => Promise.reject(new Error('must not seal')),
          open: () => Promise.reject(new Error('must not open')),
        },
      });

      // Act
      const [version, absent] = [await opening.currentVersion(alice), await opening.currentVersion(bob)];

      // Assess
      expect(version).toBe(41);
      expect(absent).toBeUndefined();
    });
  });

  describe('Method: markCorrupt', () => {
    it('marks the record, steps the version and takes it off the due index, keeping the sealed tokens', async () => {
      // Prepare
      await store.put(dueRecord(alice, 1, T0), { version: undefined });
      const sealedBefore = await rawSealed(client, tableName, alice);

      // Act
      const first = await store.markCorrupt(alice, 1, T0 + 5);
      const again = await store.markCorrupt(alice, 1, T0 + 6);

      // Assess
      expect([first, again]).toEqual(['ok', 'conflict']);
      const [item] = await recordItems(client, tableName);
      expect(item).toMatchObject({ corruptAt: { N: String(T0 + 5) }, version: { N: '2' } });
      expect(item).not.toHaveProperty('dueAt');
      expect(item).not.toHaveProperty('dueShard');
      expect(await rawSealed(client, tableName, alice)).toBe(sealedBefore);
      expect((await allDue(store, 1, T0 + DAY, 10)).entries).toEqual([]);
    });
  });

  describe('Method: acquireLease', () => {
    const untilMs = T0_MS + 30_000;

    it('takes the lease when the version matches and no lease exists, without changing the version', async () => {
      // Prepare
      await store.put(fullRecord(alice, { lease: undefined }), { version: undefined });

      // Act
      const outcome = await store.acquireLease(alice, 1, 'lease-a', untilMs, T0_MS);

      // Assess
      expect(outcome).toBe('ok');
      const read = await store.get(alice);
      expect(read?.lease).toEqual({ id: 'lease-a', untilMs });
      expect(read?.version).toBe(1);
    });

    it('conflicts when the version is not the stored one', async () => {
      // Prepare
      await store.put(fullRecord(alice, { lease: undefined }), { version: undefined });

      // Act
      const outcome = await store.acquireLease(alice, 2, 'lease-a', untilMs, T0_MS);

      // Assess
      expect(outcome).toBe('conflict');
      expect((await store.get(alice))?.lease).toBeUndefined();
    });

    it('conflicts while another lease is live', async () => {
      // Prepare
      await store.put(fullRecord(alice, { lease: undefined }), { version: undefined });
      await store.acquireLease(alice, 1, 'lease-a', untilMs, T0_MS);

      // Act
      const outcome = await store.acquireLease(alice, 1, 'lease-b', untilMs + 10_000, T0_MS + 10_000);

      // Assess
      expect(outcome).toBe('conflict');
      expect((await store.get(alice))?.lease).toEqual({ id: 'lease-a', untilMs });
    });

    it('takes the lease once the previous one has expired', async () => {
      // Prepare
      await store.put(fullRecord(alice, { lease: undefined }), { version: undefined });
      await store.acquireLease(alice, 1, 'lease-a', untilMs, T0_MS);
      const nowMs = untilMs + 1;

      // Act
      const outcome = await store.acquireLease(alice, 1, 'lease-b', nowMs + 30_000, nowMs);

      // Assess
      expect(outcome).toBe('ok');
      expect((await store.get(alice))?.lease).toEqual({ id: 'lease-b', untilMs: nowMs + 30_000 });
    });

    it('conflicts when the record is REAUTH_REQUIRED', async () => {
      // Prepare
      await store.put(
        minimalRecord(alice, { status: 'REAUTH_REQUIRED', tokens: undefined, reauthReason: 'expired' }),
        { version: undefined },
      );

      // Act
      const outcome = await store.acquireLease(alice, 1, 'lease-a', untilMs, T0_MS);

      // Assess
      expect(outcome).toBe('conflict');
      expect((await store.get(alice))?.lease).toBeUndefined();
    });

    it('conflicts without creating an item when the record does not exist', async () => {
      // Act
      const outcome = await store.acquireLease(alice, 1, 'lease-a', untilMs, T0_MS);

      // Assess
      expect(outcome).toBe('conflict');
      expect(await recordItems(client, tableName)).toHaveLength(0);
    });
  });

  describe('Method: queryDue', () => {
    it('returns only entries of the asked shard with dueAt <= now, oldest first', async () => {
      // Prepare
      const resource = 'https://api.example.com/r#1';
      await store.put(dueRecord({ userId: 'u-200', resource }, 1, T0 - 200), { version: undefined });
      await store.put(dueRecord({ userId: 'u-300', resource }, 1, T0 - 300), { version: undefined });
      await store.put(dueRecord({ userId: 'u-now', resource }, 1, T0), { version: undefined });
      await store.put(dueRecord({ userId: 'u-100', resource }, 1, T0 - 100), { version: undefined });
      await store.put(dueRecord({ userId: 'u-future', resource }, 1, T0 + 1), { version: undefined });
      await store.put(dueRecord({ userId: 'u-shard2', resource }, 2, T0 - 1000), { version: undefined });

      // Act
      const page = await store.queryDue(1, T0, 100);

      // Assess
      expect(page.entries).toEqual([
        { key: { userId: 'u-300', resource }, dueAt: T0 - 300 },
        { key: { userId: 'u-200', resource }, dueAt: T0 - 200 },
        { key: { userId: 'u-100', resource }, dueAt: T0 - 100 },
        { key: { userId: 'u-now', resource }, dueAt: T0 },
      ]);
      expect(page.cursor).toBeUndefined();
    });

    it('returns every due entry exactly once across pages of `limit`, in dueAt order', async () => {
      // Prepare
      const dueAts = [50, 10, 70, 30, 60, 20, 40].map((ago) => T0 - ago);
      for (const [i, dueAt] of dueAts.entries()) {
        await store.put(dueRecord({ userId: `user-${i}`, resource: 'default' }, 0, dueAt), {
          version: undefined,
        });
      }
      await store.put(dueRecord({ userId: 'later', resource: 'default' }, 0, T0 + 60), {
        version: undefined,
      });

      // Act
      const { entries, pages } = await allDue(store, 0, T0, 3);

      // Assess
      expect(pages).toBeGreaterThanOrEqual(3);
      expect(entries.map((e) => e.dueAt)).toEqual([...dueAts].sort((a, b) => a - b));
      const users = entries.map((e) => e.key.userId);
      expect(new Set(users).size).toBe(dueAts.length);
      expect(users).not.toContain('later');
    });

    it('returns an empty page and no cursor when nothing is due', async () => {
      // Prepare
      await store.put(dueRecord(alice, 0, T0 + 1), { version: undefined });

      // Act
      const page = await store.queryDue(0, T0, 10);

      // Assess
      expect(page).toEqual({ entries: [], cursor: undefined });
    });

    it('keeps records without dueAt out of the index (sparse)', async () => {
      // Prepare
      await store.put(dueRecord(alice, 0, T0 - 10), { version: undefined });
      await store.put(minimalRecord(bob), { version: undefined });
      await store.put(
        minimalRecord(
          { userId: 'carol', resource: 'default' },
          { status: 'REAUTH_REQUIRED', tokens: undefined },
        ),
        { version: undefined },
      );

      // Act
      const index = await client.send(
        new ScanCommand({ TableName: tableName, IndexName: TOKEN_TABLE.dueIndex.name }),
      );
      const due = await store.queryDue(0, T0 + 365 * DAY, 100);

      // Assess
      expect(index.Items).toHaveLength(1);
      expect(index.Items?.[0]?.pk).toEqual({ S: 'u#alice' });
      expect(due.entries.map((e) => e.key)).toEqual([alice]);
      expect(await recordItems(client, tableName)).toHaveLength(3);
    });

    it('drops a record from the index once a put writes it without due keys', async () => {
      // Prepare
      await store.put(dueRecord(alice, 0, T0 - 10), { version: undefined });

      // Act
      await store.put(minimalRecord(alice, { version: 2 }), { version: 1 });

      // Assess
      expect((await store.queryDue(0, T0, 10)).entries).toEqual([]);
    });
  });

  describe('Method: delete', () => {
    it('deletes the record and leaves other records alone', async () => {
      // Prepare
      await store.put(dueRecord(alice, 0, T0 - 10), { version: undefined });
      await store.put(fullRecord(bob), { version: undefined });

      // Act
      await store.delete(alice);

      // Assess
      expect(await store.get(alice)).toBeUndefined();
      expect((await store.get(bob))?.key).toEqual(bob);
      expect((await store.queryDue(0, T0, 10)).entries).toEqual([]);
    });

    it('answers ok when there is nothing to delete', async () => {
      // Act
      const result = store.delete(alice);

      // Assess
      await expect(result).resolves.toBe('ok');
    });
  });

  describe('Error translation', () => {
    const operations: [string, (s: DynamoDbTokenStore) => Promise<unknown>][] = [
      ['get', (s) => s.get(alice)],
      ['put', (s) => s.put(fullRecord(alice), { version: undefined })],
      ['acquireLease', (s) => s.acquireLease(alice, 1, 'lease-a', T0_MS + 30_000, T0_MS)],
      ['delete', (s) => s.delete(alice)],
      ['queryDue', (s) => s.queryDue(0, T0, 10)],
    ];

    it.each(operations)('%s throws ConfigurationError when the table does not exist', async (_name, call) => {
      // Prepare
      const missing = new DynamoDbTokenStore({ tableName: `missing-${randomUUID()}`, cipher, client });

      // Act
      const error = await caught(call(missing));

      // Assess
      expect(error).toBeInstanceOf(ConfigurationError);
      expect((error.cause as Error).name).toBe('ResourceNotFoundException');
    });
  });
});

describe('Class: DynamoDbTokenStore (mocked SDK)', () => {
  // The store sends through a DynamoDBDocumentClient built from the given client, whose own
  // `send` bypasses a mock of the DynamoDBClient instance: mock the document client class instead.
  // Stubbing the class patches every document client, so the stub lives only for one test at a time.
  const mockDocuments = () => mockClient(DynamoDBDocumentClient);
  let documents: ReturnType<typeof mockDocuments>;
  // Unreachable on purpose: should the mock ever miss a call, it fails instead of reaching a server.
  const unreachable = localDynamoClientAt('http://127.0.0.1:9');
  const mockedStore = () =>
    new DynamoDbTokenStore({ tableName: 'tokens', cipher: newCipher(), client: unreachable });

  beforeEach(() => {
    documents = mockDocuments();
  });
  afterEach(() => {
    documents.restore();
  });

  const throttles: [string, () => Error][] = [
    [
      'ProvisionedThroughputExceededException',
      () => new ProvisionedThroughputExceededException({ message: 'slow down', $metadata: {} }),
    ],
    ['ThrottlingException', () => new ThrottlingException({ message: 'slow down', $metadata: {} })],
    ['RequestLimitExceeded', () => new RequestLimitExceeded({ message: 'slow down', $metadata: {} })],
  ];

  describe('Method: get', () => {
    it.each(throttles)(
      'throws StoreUnavailableError (retryable, SDK error as cause) on %s',
      async (_n, make) => {
        // Prepare: the warm read goes through the low-level client itself, not the document client.
        const sdkError = make();
        const raw = mockClient(unreachable);
        raw.on(GetItemCommand).rejects(sdkError);

        // Act
        const error = await caught(mockedStore().get(alice));
        raw.restore();

        // Assess
        expect(error).toBeInstanceOf(StoreUnavailableError);
        expect((error as StoreUnavailableError).retryable).toBe(true);
        expect(error.cause).toBe(sdkError);
        expect(raw.commandCalls(GetItemCommand)).toHaveLength(1);
      },
    );
  });

  describe('Method: put', () => {
    it('returns conflict on ConditionalCheckFailedException', async () => {
      // Prepare
      documents
        .on(PutCommand)
        .rejects(new ConditionalCheckFailedException({ message: 'failed', $metadata: {} }));

      // Act
      const outcome = await mockedStore().put(fullRecord(alice), { version: 1, leaseId: 'lease-1' });

      // Assess
      expect(outcome).toBe('conflict');
      expect(documents.commandCalls(PutCommand)[0]?.args[0].input).toMatchObject({
        TableName: 'tokens',
        ConditionExpression: '#version = :version AND leaseId = :leaseId',
        ExpressionAttributeValues: { ':version': 1, ':leaseId': 'lease-1' },
      });
    });

    it('throws StoreUnavailableError on throttling', async () => {
      // Prepare
      const throttled = new ProvisionedThroughputExceededException({ message: 'slow down', $metadata: {} });
      documents.on(PutCommand).rejects(throttled);

      // Act
      const error = await caught(mockedStore().put(fullRecord(alice), { version: 1 }));

      // Assess
      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect(error.cause).toBe(throttled);
    });
  });

  describe('Method: acquireLease', () => {
    it('returns conflict on ConditionalCheckFailedException', async () => {
      // Prepare
      documents
        .on(UpdateCommand)
        .rejects(new ConditionalCheckFailedException({ message: 'failed', $metadata: {} }));

      // Act
      const outcome = await mockedStore().acquireLease(alice, 1, 'lease-a', T0_MS + 30_000, T0_MS);

      // Assess
      expect(outcome).toBe('conflict');
      expect(documents.commandCalls(UpdateCommand)).toHaveLength(1);
    });

    it('throws StoreUnavailableError on throttling', async () => {
      // Prepare
      const throttled = new ThrottlingException({ message: 'slow down', $metadata: {} });
      documents.on(UpdateCommand).rejects(throttled);

      // Act
      const error = await caught(mockedStore().acquireLease(alice, 1, 'lease-a', T0_MS + 30_000, T0_MS));

      // Assess
      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect(error.cause).toBe(throttled);
    });
  });

  describe('Method: queryDue and delete', () => {
    it('throw StoreUnavailableError on throttling', async () => {
      // Prepare
      const throttled = new ProvisionedThroughputExceededException({ message: 'slow down', $metadata: {} });
      documents.on(QueryCommand).rejects(throttled);
      documents.on(DeleteCommand).rejects(throttled);

      // Act
      const [queryError, deleteError] = [
        await caught(mockedStore().queryDue(0, T0, 10)),
        await caught(mockedStore().delete(alice)),
      ];

      // Assess
      expect(queryError).toBeInstanceOf(StoreUnavailableError);
      expect(queryError.cause).toBe(throttled);
      expect(deleteError).toBeInstanceOf(StoreUnavailableError);
      expect(deleteError.cause).toBe(throttled);
    });
  });
});
