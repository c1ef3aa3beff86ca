import { describe, expect, it } from 'vitest';
import type { RecordKey, TokenRecord } from '../../functions/core/model';
import type { RecordSchedule, ReindexPass, TokenStore } from '../../functions/core/ports';
import { Secret } from '../../functions/core/secret';

/**
 * What every TokenStore must do, whatever holds the records. Run against DynamoDbTokenStore on
 * DynamoDB Local and against the in-memory fake the core's unit tests stand on, so that the fake
 * is shown to behave as DynamoDB does. Only the port is used here: no raw items, no fake helpers.
 * Where DynamoDB leaves something open (the order of a Scan, the order of equal `dueAt`, the
 * cursor's form), the contract asks for no more than the port promises.
 */

/** 2026-01-01T00:00:00Z in epoch seconds. */
const T0 = Date.UTC(2026, 0, 1) / 1000;
const T0_MS = T0 * 1000;
const DAY = 86_400;

const alice: RecordKey = { userId: 'alice', resource: 'default' };
const bob: RecordKey = { userId: 'bob', resource: 'default' };

function userKey(i: number): RecordKey {
  return { userId: `user-${String(i).padStart(2, '0')}`, resource: 'default' };
}

/** An ACTIVE record with only the mandatory fields set. */
function record(key: RecordKey, overrides: Partial<TokenRecord> = {}): TokenRecord {
  return {
    key,
    status: 'ACTIVE',
    tokens: {
      accessToken: new Secret(`at-${key.userId}`),
      refreshToken: new Secret(`rt-${key.userId}`),
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

/** A record with every optional field set. */
function fullRecord(key: RecordKey, overrides: Partial<TokenRecord> = {}): TokenRecord {
  return record(key, {
    tokens: {
      accessToken: new Secret(`at-${key.userId}`),
      refreshToken: new Secret(`rt-${key.userId}`),
      idToken: new Secret(`id-${key.userId}`),
      sessionId: new Secret(`sid-${key.userId}`),
    },
    lease: { id: 'lease-1', untilMs: T0_MS + 30_000 },
    dueShard: 3,
    dueAt: T0 + 13 * DAY,
    failures: 2,
    lastError: 'idp_timeout',
    lastRotatedAt: T0 - 3600,
    rotations: 7,
    reauthSoonNotifiedAt: T0 - 60,
    ...overrides,
  });
}

function quarantined(key: RecordKey, reauthAt: number, overrides: Partial<TokenRecord> = {}): TokenRecord {
  return record(key, { status: 'REAUTH_REQUIRED', reauthReason: 'refresh_rejected', reauthAt, ...overrides });
}

/** Secrets hide their value from `toEqual`: compare what reveal() gives; undefined fields are dropped. */
function comparable(value: TokenRecord | undefined): unknown {
  if (!value) return value;
  const { tokens, ...rest } = value;
  return {
    ...definedOnly(rest),
    tokens: tokens && {
      accessToken: tokens.accessToken.reveal(),
      refreshToken: tokens.refreshToken.reveal(),
      idToken: tokens.idToken?.reveal(),
      sessionId: tokens.sessionId?.reveal(),
    },
  };
}

function definedOnly(value: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined));
}

/** The schedule the port promises for a record: every field of RecordSchedule, nothing else. */
function scheduleOf(value: TokenRecord): Record<string, unknown> {
  const schedule: RecordSchedule = {
    key: value.key,
    status: value.status,
    version: value.version,
    lease: value.lease,
    authenticatedAt: value.authenticatedAt,
    lastRotatedAt: value.lastRotatedAt,
    refreshExpiresAt: value.refreshExpiresAt,
    rotationDeadline: value.rotationDeadline,
    expiresAt: value.expiresAt,
    dueShard: value.dueShard,
    dueAt: value.dueAt,
    failures: value.failures,
    reauthSoonNotifiedAt: value.reauthSoonNotifiedAt,
    reauthReason: value.reauthReason,
    reauthAt: value.reauthAt,
  };
  return definedOnly(schedule);
}

async function putAll(store: TokenStore, records: readonly TokenRecord[]): Promise<void> {
  for (const each of records) expect(await store.put(each, { version: undefined })).toBe('ok');
}

/** Every due entry of a shard, following the cursor, with the size of each page. */
async function allDue(store: TokenStore, shard: number, now: number, limit: number) {
  const entries: { key: RecordKey; dueAt: number }[] = [];
  const pageSizes: number[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await store.queryDue(shard, now, limit, cursor);
    entries.push(...page.entries);
    pageSizes.push(page.entries.length);
    cursor = page.cursor;
    pages += 1;
  } while (cursor !== undefined && pages < 100);
  return { entries, pageSizes };
}

/** Every record a Scan selects, following the cursor. */
async function allScanned(
  store: TokenStore,
  filter: Parameters<TokenStore['scanRecords']>[0],
  limit: number,
): Promise<RecordSchedule[]> {
  const records: RecordSchedule[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await store.scanRecords(filter, limit, cursor);
    expect(page.records.length).toBeLessThanOrEqual(limit);
    records.push(...page.records);
    cursor = page.cursor;
    pages += 1;
  } while (cursor !== undefined && pages < 100);
  return records;
}

const byUser = (a: { key: RecordKey }, b: { key: RecordKey }) => a.key.userId.localeCompare(b.key.userId);

/** Registers the TokenStore contract; `open` gives a fresh store over empty storage for each test. */
export function tokenStoreContract(name: string, open: () => Promise<TokenStore>): void {
  describe(`TokenStore contract: ${name}`, () => {
    describe('Method: put', () => {
      it('creates a record fenced on must-not-exist, and conflicts on a second create', async () => {
        // Prepare
        const store = await open();

        // Act
        const first = await store.put(record(alice), { version: undefined });
        const second = await store.put(record(alice, { version: 9 }), { version: undefined });

        // Assess
        expect(first).toBe('ok');
        expect(second).toBe('conflict');
        expect(comparable(await store.get(alice))).toEqual(comparable(record(alice)));
      });

      it('replaces the record when the fenced version is the stored one, and conflicts once it moved on', async () => {
        // Prepare
        const store = await open();
        await putAll(store, [record(alice)]);

        // Act
        const moved = await store.put(record(alice, { version: 2, failures: 1 }), { version: 1 });
        const stale = await store.put(record(alice, { version: 2, failures: 5 }), { version: 1 });

        // Assess
        expect(moved).toBe('ok');
        expect(stale).toBe('conflict');
        expect(comparable(await store.get(alice))).toEqual(
          comparable(record(alice, { version: 2, failures: 1 })),
        );
      });

      it('conflicts without creating anything when a version is fenced and there is no record', async () => {
        // Prepare
        const store = await open();

        // Act
        const outcome = await store.put(record(alice), { version: 1 });

        // Assess
        expect(outcome).toBe('conflict');
        expect(await store.get(alice)).toBeUndefined();
      });

      it('writes under a lease fence only while the stored lease is that one', async () => {
        // Prepare
        const store = await open();
        await putAll(store, [
          record(alice, { lease: { id: 'mine', untilMs: T0_MS + 30_000 } }),
          record(bob, { lease: { id: 'theirs', untilMs: T0_MS + 30_000 } }),
          record(userKey(1)),
        ]);

        // Act
        const held = await store.put(record(alice, { version: 2 }), { version: 1, leaseId: 'mine' });
        const other = await store.put(record(bob, { version: 2 }), { version: 1, leaseId: 'mine' });
        const none = await store.put(record(userKey(1), { version: 2 }), { version: 1, leaseId: 'mine' });

        // Assess
        expect([held, other, none]).toEqual(['ok', 'conflict', 'conflict']);
        expect((await store.get(alice))?.lease).toBeUndefined();
        expect((await store.get(bob))?.version).toBe(1);
      });

      it('writes under a no-live-lease fence only when no lease is live at that time (strictly before)', async () => {
        // Prepare
        const store = await open();
        const now = T0_MS + 10_000;
        await putAll(store, [
          record(userKey(1)),
          record(userKey(2), { lease: { id: 'x', untilMs: now - 1 } }),
          record(userKey(3), { lease: { id: 'x', untilMs: now } }),
          record(userKey(4), { lease: { id: 'x', untilMs: now + 1 } }),
        ]);

        // Act
        const outcomes = [];
        for (const i of [1, 2, 3, 4]) {
          outcomes.push(
            await store.put(record(userKey(i), { version: 2 }), { version: 1, noLiveLeaseAtMs: now }),
          );
        }

        // Assess
        expect(outcomes).toEqual(['ok', 'ok', 'conflict', 'conflict']);
      });

      it('reads back a record with every field set exactly as written', async () => {
        // Prepare
        const store = await open();
        const written = fullRecord(alice, {
          status: 'REAUTH_REQUIRED',
          reauthReason: 'deadline',
          reauthAt: T0,
        });

        // Act
        await putAll(store, [written]);

        // Assess
        expect(comparable(await store.get(alice))).toEqual(comparable(written));
      });

      it('reads back a minimal record with its optional fields undefined, and a record without tokens', async () => {
        // Prepare
        const store = await open();
        const minimal = record(alice);
        const tokenless = record(bob, {
          tokens: undefined,
          status: 'REAUTH_REQUIRED',
          reauthReason: 'expired',
        });

        // Act
        await putAll(store, [minimal, tokenless]);
        const readMinimal = await store.get(alice);
        const readTokenless = await store.get(bob);

        // Assess
        expect(comparable(readMinimal)).toEqual(comparable(minimal));
        for (const field of [
          'lease',
          'dueShard',
          'dueAt',
          'lastError',
          'lastRotatedAt',
          'corrupt',
        ] as const) {
          expect(readMinimal?.[field]).toBeUndefined();
        }
        expect(readTokenless?.tokens).toBeUndefined();
        expect(readTokenless?.corrupt).toBeUndefined();
      });

      it('never stores `corrupt`: it is what a read finds, not what a write says', async () => {
        // Prepare
        const store = await open();

        // Act
        await putAll(store, [record(alice, { corrupt: true })]);

        // Assess
        expect((await store.get(alice))?.corrupt).toBeUndefined();
      });

      it('keeps records of one user apart by resource', async () => {
        // Prepare
        const store = await open();
        const other: RecordKey = { userId: alice.userId, resource: 'https://api.example/x' };

        // Act
        await putAll(store, [record(alice), record(other, { version: 5 })]);

        // Assess
        expect((await store.get(alice))?.version).toBe(1);
        expect((await store.get(other))?.version).toBe(5);
      });
    });

    describe('Method: currentVersion', () => {
      it('is undefined without a record and follows every committed change', async () => {
        // Prepare
        const store = await open();
        const before = await store.currentVersion(alice);
        await putAll(store, [record(alice, { version: 7 })]);
        const created = await store.currentVersion(alice);
        await store.put(record(alice, { version: 8 }), { version: 7 });

        // Act
        const after = await store.currentVersion(alice);

        // Assess
        expect([before, created, after]).toEqual([undefined, 7, 8]);
      });
    });

    describe('Method: readSchedule', () => {
      it('is undefined without a record, and reads the schedule without token material', async () => {
        // Prepare
        const store = await open();
        const written = fullRecord(alice, {
          status: 'REAUTH_REQUIRED',
          reauthReason: 'deadline',
          reauthAt: T0,
        });
        await putAll(store, [written]);

        // Act
        const missing = await store.readSchedule(bob);
        const view = await store.readSchedule(alice);

        // Assess
        expect(missing).toBeUndefined();
        expect(definedOnly(view ?? {})).toEqual(scheduleOf(written));
        expect(view?.corruptAt).toBeUndefined();
        expect(JSON.stringify(view)).not.toContain('rt-');
      });

      it('shows when the record was marked corrupt, until a put replaces it', async () => {
        // Prepare
        const store = await open();
        await putAll(store, [record(alice)]);
        await store.markCorrupt(alice, 1, T0 + 5);

        // Act
        const marked = await store.readSchedule(alice);
        await store.put(record(alice, { version: 3 }), { version: 2 });
        const replaced = await store.readSchedule(alice);

        // Assess
        expect(marked?.corruptAt).toBe(T0 + 5);
        expect(marked?.version).toBe(2);
        expect(replaced?.corruptAt).toBeUndefined();
        expect(replaced?.version).toBe(3);
      });
    });

    describe('Method: acquireLease', () => {
      it('takes the lease when the version holds and none is live, leaving the version as it is', async () => {
        // Prepare
        const store = await open();
        await putAll(store, [record(alice)]);

        // Act
        const outcome = await store.acquireLease(alice, 1, 'mine', T0_MS + 30_000, T0_MS);

        // Assess
        expect(outcome).toBe('ok');
        const read = await store.get(alice);
        expect(read?.lease).toEqual({ id: 'mine', untilMs: T0_MS + 30_000 });
        expect(read?.version).toBe(1);
      });

      it('conflicts when the version moved on', async () => {
        // Prepare
        const store = await open();
        await putAll(store, [record(alice, { version: 2 })]);

        // Act
        const outcome = await store.acquireLease(alice, 1, 'mine', T0_MS + 30_000, T0_MS);

        // Assess
        expect(outcome).toBe('conflict');
        expect((await store.get(alice))?.lease).toBeUndefined();
      });

      it("conflicts while another's lease is live (until its end, inclusive), and takes it once it has passed", async () => {
        // Prepare
        const store = await open();
        await putAll(store, [record(alice, { lease: { id: 'theirs', untilMs: T0_MS + 30_000 } })]);

        // Act
        const live = await store.acquireLease(alice, 1, 'mine', T0_MS + 60_000, T0_MS);
        const atEnd = await store.acquireLease(alice, 1, 'mine', T0_MS + 60_000, T0_MS + 30_000);
        const after = await store.acquireLease(alice, 1, 'mine', T0_MS + 60_000, T0_MS + 30_001);

        // Assess
        expect([live, atEnd, after]).toEqual(['conflict', 'conflict', 'ok']);
        expect((await store.get(alice))?.lease).toEqual({ id: 'mine', untilMs: T0_MS + 60_000 });
      });

      it('lets the holder renew its live lease', async () => {
        // Prepare
        const store = await open();
        await putAll(store, [record(alice, { lease: { id: 'mine', untilMs: T0_MS + 30_000 } })]);

        // Act
        const outcome = await store.acquireLease(alice, 1, 'mine', T0_MS + 90_000, T0_MS);

        // Assess
        expect(outcome).toBe('ok');
        expect((await store.get(alice))?.lease).toEqual({ id: 'mine', untilMs: T0_MS + 90_000 });
      });

      it('conflicts on a REAUTH_REQUIRED record and on a missing one (creating nothing)', async () => {
        // Prepare
        const store = await open();
        await putAll(store, [quarantined(alice, T0)]);

        // Act
        const reauth = await store.acquireLease(alice, 1, 'mine', T0_MS + 30_000, T0_MS);
        const missing = await store.acquireLease(bob, 1, 'mine', T0_MS + 30_000, T0_MS);

        // Assess
        expect([reauth, missing]).toEqual(['conflict', 'conflict']);
        expect(await store.get(bob)).toBeUndefined();
      });
    });

    describe('Method: queryDue', () => {
      it('returns the entries of the asked shard with dueAt <= now, oldest first', async () => {
        // Prepare
        const store = await open();
        await putAll(store, [
          record(userKey(1), { dueShard: 0, dueAt: T0 + 30 }),
          record(userKey(2), { dueShard: 0, dueAt: T0 + 10 }),
          record(userKey(3), { dueShard: 0, dueAt: T0 + 20 }),
          record(userKey(4), { dueShard: 0, dueAt: T0 + 21 }),
          record(userKey(5), { dueShard: 1, dueAt: T0 }),
        ]);

        // Act
        const page = await store.queryDue(0, T0 + 20, 10);

        // Assess
        expect(page.entries).toEqual([
          { key: userKey(2), dueAt: T0 + 10 },
          { key: userKey(3), dueAt: T0 + 20 },
        ]);
      });

      it('returns every due entry exactly once across pages of `limit`, ties included, in dueAt order', async () => {
        // Prepare
        const store = await open();
        const dueAts = [T0 + 5, T0 + 1, T0 + 3, T0 + 3, T0 + 3, T0 + 2, T0 + 4];
        await putAll(
          store,
          dueAts.map((dueAt, i) => record(userKey(i), { dueShard: 2, dueAt })),
        );

        // Act
        const { entries, pageSizes } = await allDue(store, 2, T0 + 10, 2);

        // Assess
        expect(entries.map((entry) => entry.key.userId).sort()).toEqual(
          dueAts.map((_, i) => userKey(i).userId),
        );
        expect(entries.map((entry) => entry.dueAt)).toEqual([...dueAts].sort((a, b) => a - b));
        expect(Math.max(...pageSizes)).toBeLessThanOrEqual(2);
      });

      it('returns an empty page and no cursor when nothing is due', async () => {
        // Prepare
        const store = await open();
        await putAll(store, [record(alice, { dueShard: 0, dueAt: T0 + 100 })]);

        // Act
        const page = await store.queryDue(0, T0, 10);

        // Assess
        expect(page).toEqual({ entries: [], cursor: undefined });
      });

      it('is sparse: a record without due keys is not in the index, and a put without them takes it out', async () => {
        // Prepare
        const store = await open();
        await putAll(store, [
          record(alice, { dueShard: 0, dueAt: T0 }),
          record(bob),
          quarantined(userKey(1), T0),
        ]);

        // Act
        const before = await store.queryDue(0, T0 + DAY, 10);
        await store.put(record(alice, { version: 2 }), { version: 1 });
        const after = await store.queryDue(0, T0 + DAY, 10);

        // Assess
        expect(before.entries).toEqual([{ key: alice, dueAt: T0 }]);
        expect(after.entries).toEqual([]);
      });

      it('never lists the service items (sweep state, breaker) as due', async () => {
        // Prepare
        const store = await open();
        await store.openBreaker(T0);
        await store.countRejection(T0, T0 + DAY);
        await store.writeSweepState({ indexedSettings: 's', reindex: undefined }, 0);
        await putAll(store, [record(alice, { dueShard: 0, dueAt: T0 })]);

        // Act
        const page = await store.queryDue(0, T0 + 365 * DAY, 10);

        // Assess
        expect(page.entries).toEqual([{ key: alice, dueAt: T0 }]);
      });
    });

    describe('Method: delete', () => {
      it('deletes without a fence whatever the record holds, and answers ok when there is nothing', async () => {
        // Prepare
        const store = await open();
        await putAll(store, [record(alice, { version: 4 }), record(bob)]);

        // Act
        const deleted = await store.delete(alice);
        const nothing = await store.delete(alice);

        // Assess
        expect([deleted, nothing]).toEqual(['ok', 'ok']);
        expect(await store.get(alice)).toBeUndefined();
        expect(await store.get(bob)).toBeDefined();
      });

      it('deletes with a fence only while the record has that version, and conflicts when it is gone', async () => {
        // Prepare
        const store = await open();
        await putAll(store, [record(alice, { version: 2 }), record(bob, { version: 2 })]);

        // Act
        const moved = await store.delete(alice, { version: 1 });
        const held = await store.delete(bob, { version: 2 });
        const gone = await store.delete(bob, { version: 2 });

        // Assess
        expect([moved, held, gone]).toEqual(['conflict', 'ok', 'conflict']);
        expect((await store.get(alice))?.version).toBe(2);
        expect(await store.get(bob)).toBeUndefined();
      });
    });

    describe('Method: markCorrupt', () => {
      it('steps the version and takes the record off the due index, keeping its tokens, once', async () => {
        // Prepare
        const store = await open();
        await putAll(store, [fullRecord(alice, { dueShard: 0, dueAt: T0, lease: undefined })]);

        // Act
        const first = await store.markCorrupt(alice, 1, T0);
        const second = await store.markCorrupt(alice, 1, T0);
        const missing = await store.markCorrupt(bob, 1, T0);

        // Assess
        expect([first, second, missing]).toEqual(['ok', 'conflict', 'conflict']);
        const read = await store.get(alice);
        expect(read?.version).toBe(2);
        expect(read?.dueShard).toBeUndefined();
        expect(read?.dueAt).toBeUndefined();
        expect(read?.tokens?.refreshToken.reveal()).toBe('rt-alice');
        expect(await store.currentVersion(alice)).toBe(2);
        expect((await store.queryDue(0, T0 + DAY, 10)).entries).toEqual([]);
        expect(await store.get(bob)).toBeUndefined();
      });
    });

    describe('Rejection breaker: countRejection, getBreaker, openBreaker, closeBreaker', () => {
      it('counts rejections per window', async () => {
        // Prepare
        const store = await open();

        // Act
        const counts = [
          await store.countRejection(T0, T0 + DAY),
          await store.countRejection(T0, T0 + DAY),
          await store.countRejection(T0 + 600, T0 + DAY),
          await store.countRejection(T0, T0 + DAY),
        ];

        // Assess
        expect(counts).toEqual([1, 2, 1, 3]);
      });

      it('is closed when never written, opens once, closes with a trust period, and opens again', async () => {
        // Prepare
        const store = await open();
        const initial = await store.getBreaker();

        // Act
        const opened = await store.openBreaker(T0);
        const again = await store.openBreaker(T0 + 5);
        const open1 = await store.getBreaker();
        await store.closeBreaker(T0 + 3600);
        const closed = await store.getBreaker();
        const reopened = await store.openBreaker(T0 + 7200);
        const open2 = await store.getBreaker();

        // Assess
        expect(initial).toEqual({ openedAt: undefined, trustUntil: undefined });
        expect([opened, again, reopened]).toEqual(['ok', 'conflict', 'ok']);
        expect(open1).toEqual({ openedAt: T0, trustUntil: undefined });
        expect(closed).toEqual({ openedAt: undefined, trustUntil: T0 + 3600 });
        expect(open2).toEqual({ openedAt: T0 + 7200, trustUntil: undefined });
      });

      it('keeps the breaker apart from the records', async () => {
        // Prepare
        const store = await open();
        await putAll(store, [record(alice)]);

        // Act
        await store.openBreaker(T0);
        await store.countRejection(T0, T0 + DAY);

        // Assess
        expect(await allScanned(store, { status: 'ACTIVE' }, 10)).toHaveLength(1);
        expect(comparable(await store.get(alice))).toEqual(comparable(record(alice)));
      });
    });

    describe('Sweep state: readSweepState, writeSweepState', () => {
      const pass: ReindexPass = {
        settings: 'new',
        notBefore: T0 + 60,
        cursor: 'c1',
        scanned: 10,
        lowered: 2,
      };

      it('starts empty at version 0', async () => {
        // Prepare
        const store = await open();

        // Act
        const state = await store.readSweepState();

        // Assess
        expect(state).toEqual({ shardsUsed: [], indexedSettings: undefined, reindex: undefined, version: 0 });
      });

      it('writes fenced on its version, steps it, and removes what is written as undefined', async () => {
        // Prepare
        const store = await open();

        // Act
        const first = await store.writeSweepState({ indexedSettings: 'old', reindex: pass }, 0);
        const stale = await store.writeSweepState({ indexedSettings: 'lost', reindex: undefined }, 0);
        const written = await store.readSweepState();
        const second = await store.writeSweepState({ indexedSettings: 'new', reindex: undefined }, 1);
        const cleared = await store.readSweepState();

        // Assess
        expect([first, stale, second]).toEqual(['ok', 'conflict', 'ok']);
        expect(written).toEqual({ shardsUsed: [], indexedSettings: 'old', reindex: pass, version: 1 });
        expect(cleared).toEqual({ shardsUsed: [], indexedSettings: 'new', reindex: undefined, version: 2 });
      });

      it('keeps a re-index pass that has no cursor yet', async () => {
        // Prepare
        const store = await open();

        // Act
        await store.writeSweepState(
          { indexedSettings: undefined, reindex: { ...pass, cursor: undefined } },
          0,
        );

        // Assess
        expect((await store.readSweepState()).reindex).toEqual({ ...pass, cursor: undefined });
      });

      it('registers the due shards that puts and reschedules write into, whatever the outcome of the write', async () => {
        // Prepare
        const store = await open();
        await store.writeSweepState({ indexedSettings: 's', reindex: undefined }, 0);

        // Act
        await store.put(record(alice, { dueShard: 2, dueAt: T0 }), { version: undefined });
        await store.put(record(alice, { dueShard: 6, dueAt: T0 }), { version: undefined });
        await store.put(record(bob, { dueShard: 1, dueAt: T0 }), { version: undefined });
        await store.reschedule(
          bob,
          { version: 1 },
          {
            version: 2,
            refreshExpiresAt: T0 + DAY,
            expiresAt: T0 + DAY,
            rotationDeadline: T0 + DAY,
            dueShard: 4,
            dueAt: T0,
          },
        );
        const state = await store.readSweepState();

        // Assess: the sweep queries every shard below the largest count (a conflicting write may still land later).
        expect(Math.max(...state.shardsUsed)).toBe(7);
        expect(state.shardsUsed).toContain(7);
        expect(state.shardsUsed.every((count) => count >= 1 && count <= 7)).toBe(true);
        expect(state.version).toBe(1);
        expect(state.indexedSettings).toBe('s');
      });
    });

    describe('Method: scanRecords', () => {
      it('selects every ACTIVE record once across pages, as its schedule, without token material', async () => {
        // Prepare
        const store = await open();
        const active = [1, 2, 3, 4, 5].map((i) => fullRecord(userKey(i), { version: i }));
        await putAll(store, [...active, quarantined(userKey(6), T0), quarantined(userKey(7), T0 + 1)]);
        await store.openBreaker(T0);
        await store.writeSweepState({ indexedSettings: 's', reindex: undefined }, 0);

        // Act
        const scanned = await allScanned(store, { status: 'ACTIVE' }, 2);

        // Assess
        expect([...scanned].sort(byUser).map((each) => definedOnly(each))).toEqual(active.map(scheduleOf));
        for (const each of scanned) {
          expect(Object.keys(each)).not.toContain('tokens');
          expect(JSON.stringify(each)).not.toContain('rt-');
        }
      });

      it('selects REAUTH_REQUIRED records marked within [reauthFrom, reauthTo], both ends included', async () => {
        // Prepare
        const store = await open();
        await putAll(store, [
          quarantined(userKey(1), T0 - 1),
          quarantined(userKey(2), T0),
          quarantined(userKey(3), T0 + 50),
          quarantined(userKey(4), T0 + 100),
          quarantined(userKey(5), T0 + 101),
          record(userKey(6), { reauthAt: T0 + 50 }),
        ]);

        // Act
        const scanned = await allScanned(
          store,
          { status: 'REAUTH_REQUIRED', reauthFrom: T0, reauthTo: T0 + 100 },
          2,
        );

        // Assess
        expect(scanned.map((each) => each.key.userId).sort()).toEqual(['user-02', 'user-03', 'user-04']);
      });

      it('answers no records and no cursor over an empty table', async () => {
        // Prepare
        const store = await open();

        // Act
        const page = await store.scanRecords({ status: 'ACTIVE' }, 10);

        // Assess
        expect(page).toEqual({ records: [], cursor: undefined });
      });
    });

    describe('Method: reschedule', () => {
      const change = {
        version: 2,
        refreshExpiresAt: T0 + 2 * DAY,
        expiresAt: T0 + 2 * DAY,
        rotationDeadline: T0 + 30 * DAY,
        dueShard: 1,
        dueAt: T0 + DAY,
      };

      it('changes lifetimes, due time and version of an ACTIVE record under its fence, tokens untouched', async () => {
        // Prepare
        const store = await open();
        const written = fullRecord(alice, { lease: undefined });
        await putAll(store, [written]);

        // Act
        const outcome = await store.reschedule(alice, { version: 1 }, change);

        // Assess
        expect(outcome).toBe('ok');
        expect(comparable(await store.get(alice))).toEqual(comparable({ ...written, ...change }));
        expect((await store.queryDue(1, T0 + DAY, 10)).entries).toEqual([{ key: alice, dueAt: T0 + DAY }]);
      });

      it('conflicts when the version moved on, the record is quarantined or missing, or the fence lease is not held', async () => {
        // Prepare
        const store = await open();
        await putAll(store, [
          record(userKey(1), { version: 3 }),
          quarantined(userKey(2), T0),
          record(userKey(3), { lease: { id: 'theirs', untilMs: T0_MS + 30_000 } }),
          record(userKey(4), { lease: { id: 'theirs', untilMs: T0_MS + 30_000 } }),
        ]);

        // Act
        const outcomes = [
          await store.reschedule(userKey(1), { version: 1 }, change),
          await store.reschedule(userKey(2), { version: 1 }, change),
          await store.reschedule(userKey(9), { version: 1 }, change),
          await store.reschedule(userKey(3), { version: 1, leaseId: 'mine' }, change),
          await store.reschedule(userKey(4), { version: 1, noLiveLeaseAtMs: T0_MS }, change),
        ];

        // Assess
        expect(outcomes).toEqual(['conflict', 'conflict', 'conflict', 'conflict', 'conflict']);
        expect(await store.get(userKey(9))).toBeUndefined();
        expect((await store.get(userKey(4)))?.version).toBe(1);
      });

      it('writes under a no-live-lease fence once the lease has passed', async () => {
        // Prepare
        const store = await open();
        await putAll(store, [record(alice, { lease: { id: 'theirs', untilMs: T0_MS } })]);

        // Act
        const outcome = await store.reschedule(alice, { version: 1, noLiveLeaseAtMs: T0_MS + 1 }, change);

        // Assess
        expect(outcome).toBe('ok');
      });
    });
  });
}
