import { describe, expect, it } from 'vitest';
import { IdpPermanentError, IdpTransientError } from '../../../functions/core/errors';
import type { TokenRecord } from '../../../functions/core/model';
import { Secret } from '../../../functions/core/secret';
import { Sweep, type SweepSettings } from '../../../functions/core/sweep';
import { TokenService } from '../../../functions/core/token-service';
import { caught } from '../../support/caught';
import {
  activeRecord,
  clockBudget,
  DAY,
  type DepsOverrides,
  FakeClock,
  fixedBudget,
  KEY,
  makeDeps,
  ScriptedIdentityProvider,
  T0,
  tick,
  tokenSet,
  until,
} from '../../support/fakes';

const AMPLE = fixedBudget(600_000);

function setup(options: DepsOverrides & { sweep?: Partial<SweepSettings> } = {}) {
  const deps = makeDeps(options);
  // The rate limiter paces in the fake time that the fake sleep advances.
  const sweep = new Sweep(deps, { concurrency: 4, pageSize: 100, pacingClock: deps.clock, ...options.sweep });
  return { deps, sweep, now: deps.clock.nowSeconds() };
}

/** Record `i` (user `user-<i>`, tokens `at-<i>`/`rt-<i>`), due `100 - i` seconds ago unless overridden. */
function dueRecord(i: number, overrides: Partial<TokenRecord> = {}): TokenRecord {
  return activeRecord(T0, {
    key: { userId: `user-${i}`, resource: 'default' },
    tokens: { accessToken: new Secret(`at-${i}`), refreshToken: new Secret(`rt-${i}`) },
    dueAt: T0 - 100 + i,
    ...overrides,
  });
}

const keyOf = (i: number) => ({ userId: `user-${i}`, resource: 'default' });

describe('Class: Sweep', () => {
  describe('Method: run', () => {
    describe('what it picks up', () => {
      it('rotates every due record, leaves the others alone, and reports the counts', async () => {
        // Prepare
        const { deps, sweep } = setup();
        for (let i = 0; i < 5; i++) deps.store.seed(dueRecord(i));
        for (let i = 5; i < 8; i++) deps.store.seed(dueRecord(i, { dueAt: T0 + 60 }));
        deps.idp.rotateForever();

        // Act
        const summary = await sweep.run(AMPLE);

        // Assess
        expect(summary).toEqual({
          due: 5,
          rotated: 5,
          failed: 0,
          reauthRequired: 0,
          skipped: 0,
          backlog: 0,
          rescheduled: 0,
        });
        expect([...deps.idp.presented].sort()).toEqual(['rt-0', 'rt-1', 'rt-2', 'rt-3', 'rt-4']);
        for (let i = 0; i < 5; i++) expect(deps.store.peek(keyOf(i))?.version).toBe(2);
        for (let i = 5; i < 8; i++) expect(deps.store.peek(keyOf(i))?.version).toBe(1);
        expect(deps.metrics.total('SweepDue')).toBe(5);
        expect(deps.metrics.total('SweepBacklog')).toBe(0);
        expect(deps.metrics.total('RotationSucceeded')).toBe(5);
      });

      it('reads only due records: reads grow with records due, not records stored', async () => {
        // Prepare
        const { deps, sweep } = setup();
        for (let i = 0; i < 3; i++) deps.store.seed(dueRecord(i));
        for (let i = 3; i < 200; i++) deps.store.seed(dueRecord(i, { dueAt: T0 + DAY }));
        deps.idp.rotateForever();

        // Act
        await sweep.run(AMPLE);

        // Assess
        expect(deps.store.count('get')).toBe(3);
        expect(deps.store.count('queryDue')).toBe(4);
      });

      it('returns an all-zero summary when nothing is due', async () => {
        // Prepare
        const { deps, sweep } = setup();

        // Act
        const summary = await sweep.run(AMPLE);

        // Assess
        expect(summary).toEqual({
          due: 0,
          rotated: 0,
          failed: 0,
          reauthRequired: 0,
          skipped: 0,
          backlog: 0,
          rescheduled: 0,
        });
        expect(deps.metrics.total('SweepDue')).toBe(0);
        expect(deps.idp.calls).toBe(0);
      });

      it('counts one SweepCompleted per run that finished, the heartbeat', async () => {
        // Prepare
        const { deps, sweep } = setup();
        deps.store.seed(dueRecord(0));
        deps.idp.enqueue(tokenSet('new-0'));

        // Act
        await sweep.run(AMPLE);
        await sweep.run(AMPLE);

        // Assess
        expect(deps.metrics.total('SweepCompleted')).toBe(2);
      });

      it('counts no SweepCompleted when the run fails', async () => {
        // Prepare
        const { deps, sweep } = setup();
        deps.store.failNext('queryDue', 1);

        // Act
        await caught(sweep.run(AMPLE));

        // Assess
        expect(deps.metrics.total('SweepCompleted')).toBe(0);
      });

      it('skips a record whose live lease belongs to someone else', async () => {
        // Prepare
        const { deps, sweep } = setup();
        deps.store.seed(dueRecord(0, { lease: { id: 'caller', untilMs: T0 * 1000 + 5000 } }));

        // Act
        const summary = await sweep.run(AMPLE);

        // Assess
        expect(summary).toMatchObject({ due: 1, skipped: 1, rotated: 0 });
        expect(deps.idp.calls).toBe(0);
        expect(deps.store.peek(keyOf(0))?.lease?.id).toBe('caller');
      });

      it('rotates a record whose lease has expired', async () => {
        // Prepare
        const { deps, sweep } = setup();
        deps.store.seed(dueRecord(0, { lease: { id: 'crashed', untilMs: T0 * 1000 - 1 } }));
        deps.idp.rotateForever();

        // Act
        const summary = await sweep.run(AMPLE);

        // Assess
        expect(summary.rotated).toBe(1);
      });

      it('skips a record that is no longer due when it is read (the index lags)', async () => {
        // Prepare
        const { deps, sweep } = setup();
        deps.store.seed(dueRecord(0));
        deps.store.beforeNext('get', () =>
          deps.store.update(keyOf(0), (r) => ({ ...r, version: 2, dueAt: T0 + 11 * DAY })),
        );

        // Act
        const summary = await sweep.run(AMPLE);

        // Assess
        expect(summary).toMatchObject({ due: 1, skipped: 1 });
        expect(deps.idp.calls).toBe(0);
      });

      it('skips a REAUTH_REQUIRED record that a stale index still lists', async () => {
        // Prepare
        const { deps, sweep } = setup();
        deps.store.seed(dueRecord(0, { status: 'REAUTH_REQUIRED', tokens: undefined }));

        // Act
        const summary = await sweep.run(AMPLE);

        // Assess
        expect(summary).toMatchObject({ due: 1, skipped: 1, reauthRequired: 0 });
        expect(deps.idp.calls).toBe(0);
        expect(deps.events.published).toEqual([]);
      });

      it('skips a record deleted after the query', async () => {
        // Prepare
        const { deps, sweep } = setup();
        deps.store.seed(dueRecord(0));
        deps.store.beforeNext('get', async () => {
          await deps.store.delete(keyOf(0));
        });

        // Act
        const summary = await sweep.run(AMPLE);

        // Assess
        expect(summary).toMatchObject({ due: 1, skipped: 1 });
      });

      it('processes the oldest due records first', async () => {
        // Prepare
        const { deps, sweep } = setup({ sweep: { concurrency: 1 } });
        const dueAts = [T0 - 10, T0 - 40, T0 - 20, T0 - 30, T0 - 50];
        for (const [i, dueAt] of dueAts.entries()) deps.store.seed(dueRecord(i, { dueAt }));
        deps.idp.rotateForever();

        // Act
        await sweep.run(AMPLE);

        // Assess
        expect(deps.idp.presented).toEqual(['rt-4', 'rt-1', 'rt-3', 'rt-2', 'rt-0']);
      });
    });

    describe('records at the end of their life', () => {
      it('marks a record at its rotation deadline REAUTH_REQUIRED (deadline) without calling the IdP', async () => {
        // Prepare
        const { deps, sweep } = setup();
        deps.store.seed(
          dueRecord(0, {
            refreshExpiresAt: T0 - 5,
            expiresAt: T0 - 5,
            rotationDeadline: T0 - 5,
            dueAt: T0 - 5,
          }),
        );

        // Act
        const summary = await sweep.run(AMPLE);

        // Assess
        expect(summary).toMatchObject({ due: 1, reauthRequired: 1 });
        expect(deps.idp.calls).toBe(0);
        expect(deps.store.peek(keyOf(0))).toMatchObject({
          status: 'REAUTH_REQUIRED',
          reauthReason: 'deadline',
          reauthAt: T0,
          dueAt: undefined,
        });
        expect(deps.metrics.total('ReauthRequired', { reason: 'deadline' })).toBe(1);
        expect(deps.metrics.total('TokensExpired')).toBe(0);
        expect(deps.events.published).toEqual([
          { type: 'Reauth Required', key: keyOf(0), reason: 'deadline', at: T0 },
        ]);
      });

      it('marks a refresh token that died before its rotation (expired) and counts TokensExpired', async () => {
        // Prepare
        const { deps, sweep } = setup();
        deps.store.seed(dueRecord(0, { refreshExpiresAt: T0 - 5, expiresAt: T0 - 5, failures: 9 }));

        // Act
        const summary = await sweep.run(AMPLE);

        // Assess
        expect(summary).toMatchObject({ due: 1, reauthRequired: 1 });
        expect(deps.idp.calls).toBe(0);
        expect(deps.store.peek(keyOf(0))).toMatchObject({
          status: 'REAUTH_REQUIRED',
          reauthReason: 'expired',
        });
        expect(deps.metrics.total('TokensExpired')).toBe(1);
        expect(deps.metrics.total('ReauthRequired', { reason: 'expired' })).toBe(1);
        expect(deps.logger.lines).toContainEqual(
          expect.objectContaining({ level: 'error', message: 'refresh token expired before it was rotated' }),
        );
      });

      it('parks a capped record that became due early at its deadline, without an IdP call', async () => {
        // Prepare
        const { deps, sweep } = setup();
        const deadline = T0 + 2 * DAY;
        deps.store.seed(
          dueRecord(0, {
            refreshExpiresAt: deadline,
            expiresAt: deadline,
            rotationDeadline: deadline,
            failures: 1,
          }),
        );

        // Act
        const summary = await sweep.run(AMPLE);

        // Assess
        expect(summary).toMatchObject({ due: 1, skipped: 1, rotated: 0 });
        expect(deps.idp.calls).toBe(0);
        expect(deps.store.peek(keyOf(0))).toMatchObject({ dueAt: deadline, version: 2, status: 'ACTIVE' });
      });

      it('leaves a parked record refreshable on demand once the IdP is back', async () => {
        // Prepare
        const { deps, sweep } = setup();
        const deadline = T0 + 5 * DAY;
        deps.store.seed(
          dueRecord(0, {
            key: KEY,
            refreshExpiresAt: deadline,
            expiresAt: deadline,
            rotationDeadline: deadline,
            failures: 1,
            lastError: 'http_503',
            dueAt: T0 - 10,
            accessExpiresAt: T0 - 1,
          }),
        );
        await sweep.run(AMPLE);
        deps.idp.enqueue(tokenSet('new'));

        // Act
        const served = await new TokenService(deps)
          .getAccessToken({ key: KEY, minValiditySeconds: 60 }, AMPLE)
          .catch((error: Error) => error);

        // Assess
        expect(served).not.toBeInstanceOf(Error);
        expect(deps.idp.presented).toEqual(['rt-0']);
      });

      it('never calls the IdP for a record capped from the start, and ends it at the deadline', async () => {
        // Prepare
        const { deps, sweep } = setup({ lifetimes: { maxRotationSeconds: 7 * DAY } });
        await new TokenService(deps).storeTokens({
          key: KEY,
          authenticatedAt: undefined,
          tokens: tokenSet('signin'),
        });
        const deadline = deps.store.peek(KEY)!.rotationDeadline;

        // Act
        const summaries = [];
        while (deps.clock.nowSeconds() < deadline) {
          deps.clock.advanceSeconds(6 * 3600);
          summaries.push(await sweep.run(AMPLE));
        }

        // Assess
        expect(deps.idp.calls).toBe(0);
        expect(summaries.reduce((sum, s) => sum + s.reauthRequired, 0)).toBe(1);
        expect(deps.store.peek(KEY)).toMatchObject({ status: 'REAUTH_REQUIRED', reauthReason: 'deadline' });
      });

      it('tells the app once, ahead of the deadline (Reauth Soon), when no rotation can extend access', async () => {
        // Prepare
        const { deps, sweep } = setup({
          lifetimes: { maxRotationSeconds: 7 * DAY },
          settings: { reauthSoonSeconds: 2 * DAY },
        });
        await new TokenService(deps).storeTokens({
          key: KEY,
          authenticatedAt: undefined,
          tokens: tokenSet('signin'),
        });
        const deadline = deps.store.peek(KEY)!.rotationDeadline;

        // Act
        while (deps.clock.nowSeconds() + 6 * 3600 < deadline) {
          deps.clock.advanceSeconds(6 * 3600);
          await sweep.run(AMPLE);
        }

        // Assess
        const notices = deps.events.published.filter((event) => event.type === 'Reauth Soon');
        expect(notices).toEqual([
          { type: 'Reauth Soon', key: KEY, rotationDeadline: deadline, at: expect.any(Number) },
        ]);
        expect(notices[0]!.at).toBeGreaterThanOrEqual(deadline - 2 * DAY);
        expect(notices[0]!.at).toBeLessThan(deadline - 2 * DAY + 6 * 3600);
        expect(deps.metrics.total('ReauthSoon')).toBe(1);
        expect(deps.store.peek(KEY)).toMatchObject({ status: 'ACTIVE', dueAt: deadline });
        expect(deps.idp.calls).toBe(0);
      });

      it('tells the app ahead of the deadline and keeps rotating a record that is not capped yet', async () => {
        // Prepare
        const { deps, sweep } = setup({ settings: { reauthSoonSeconds: 14 * DAY } });
        deps.idp.rotateForever();
        await new TokenService(deps).storeTokens({
          key: KEY,
          authenticatedAt: undefined,
          tokens: tokenSet('signin'),
        });
        const deadline = deps.store.peek(KEY)!.rotationDeadline;

        // Act
        while (deps.clock.nowSeconds() < deadline) {
          deps.clock.advanceSeconds(DAY / 2);
          await sweep.run(AMPLE);
        }

        // Assess
        const events = deps.events.published;
        const notice = events.find((event) => event.type === 'Reauth Soon');
        const end = events.find((event) => event.type === 'Reauth Required');
        expect(events.filter((event) => event.type === 'Reauth Soon')).toHaveLength(1);
        expect(notice!.at).toBeGreaterThanOrEqual(deadline - 14 * DAY);
        expect(notice!.at).toBeLessThanOrEqual(deadline - 14 * DAY + DAY / 2);
        expect(end).toMatchObject({ reason: 'deadline' });
        expect(new Set(deps.idp.presented).size).toBe(deps.idp.calls);
        expect(deps.idp.calls).toBeGreaterThanOrEqual(Math.floor(365 / 12));
        expect(deps.metrics.total('TokensExpired')).toBe(0);
      });

      it('counts a corrupt record once, takes it off the due index and leaves its tokens for the operator', async () => {
        // Prepare
        const { deps, sweep } = setup();
        deps.store.seed(dueRecord(0, { corrupt: true }));

        // Act
        const first = await sweep.run(AMPLE);
        const second = await sweep.run(AMPLE);
        const third = await sweep.run(AMPLE);

        // Assess
        expect(first).toMatchObject({ due: 1, failed: 1 });
        expect(second.due + third.due).toBe(0);
        expect(deps.idp.calls).toBe(0);
        expect(deps.store.peek(keyOf(0))).toMatchObject({ version: 2, status: 'ACTIVE', dueAt: undefined });
        expect(deps.metrics.total('CorruptRecordFound')).toBe(1);
        expect(deps.metrics.total('RotationFailed')).toBe(0);
      });

      it('does not count a corrupt record a sibling sweep marked first', async () => {
        // Prepare
        const { deps, sweep } = setup();
        deps.store.seed(dueRecord(0, { corrupt: true }));
        deps.store.beforeNext('markCorrupt', () =>
          deps.store.update(keyOf(0), (r) => ({ ...r, version: 2 })),
        );

        // Act
        await sweep.run(AMPLE);

        // Assess
        expect(deps.metrics.total('CorruptRecordFound')).toBe(0);
      });
    });

    describe('outcomes', () => {
      it('counts transient failures as failed and rejected tokens as reauthRequired', async () => {
        // Prepare
        const { deps, sweep } = setup();
        for (let i = 0; i < 4; i++) deps.store.seed(dueRecord(i));
        const answers: Record<string, () => Error | ReturnType<typeof tokenSet>> = {
          'rt-0': () => tokenSet('new-0'),
          'rt-1': () => new IdpTransientError('down', 503, undefined),
          'rt-2': () => new IdpPermanentError('rejected', 400, 'invalid_grant'),
          'rt-3': () => new IdpTransientError('slow', 429, 60),
        };
        for (let i = 0; i < 4; i++) deps.idp.enqueue((token) => answers[token.reveal()]!());

        // Act
        const summary = await sweep.run(AMPLE);

        // Assess
        expect(summary).toEqual({
          due: 4,
          rotated: 1,
          failed: 2,
          reauthRequired: 1,
          skipped: 0,
          backlog: 0,
          rescheduled: 0,
        });
        expect(deps.store.peek(keyOf(1))).toMatchObject({ failures: 1, lastError: 'http_503' });
        expect(deps.store.peek(keyOf(3))).toMatchObject({
          failures: 1,
          lastError: 'rate_limited',
          dueAt: T0 + 60,
        });
        expect(deps.store.peek(keyOf(2))?.status).toBe('REAUTH_REQUIRED');
      });

      it('counts an unexpected error on one record as failed and goes on with the others', async () => {
        // Prepare
        const { deps, sweep } = setup({ sweep: { concurrency: 1 } });
        for (let i = 0; i < 3; i++) deps.store.seed(dueRecord(i));
        deps.idp.rotateForever();
        deps.store.failNext('get', 1);

        // Act
        const summary = await sweep.run(AMPLE);

        // Assess
        expect(summary).toMatchObject({ due: 3, rotated: 2, failed: 1 });
        expect(deps.metrics.total('RotationFailed', { reason: 'error' })).toBe(1);
      });

      it('counts a commit that could not be stored as failed (PersistFailed)', async () => {
        // Prepare
        const { deps, sweep } = setup();
        deps.store.seed(dueRecord(0));
        deps.idp.rotateForever();
        deps.store.failNext('put', 6);

        // Act
        const summary = await sweep.run(AMPLE);

        // Assess
        expect(summary).toMatchObject({ due: 1, failed: 1 });
        expect(deps.metrics.total('PersistFailed')).toBe(1);
      });

      it('is harmless when two sweeps overlap: every refresh token is sent once', async () => {
        // Prepare
        const { deps, sweep } = setup();
        const twin = new Sweep(deps, { concurrency: 3, pageSize: 2 });
        for (let i = 0; i < 12; i++) deps.store.seed(dueRecord(i));
        deps.idp.rotateForever();

        // Act
        const [a, b] = await Promise.all([sweep.run(AMPLE), twin.run(AMPLE)]);

        // Assess
        expect(deps.idp.calls).toBe(12);
        expect(new Set(deps.idp.presented).size).toBe(12);
        expect(a.rotated + b.rotated).toBe(12);
        expect(a.skipped + b.skipped).toBe(a.due + b.due - 12);
        for (let i = 0; i < 12; i++) expect(deps.store.peek(keyOf(i))?.version).toBe(2);
      });
    });

    describe('time and load', () => {
      it('stops starting work when the time left cannot fit a call and a commit, and reports the backlog', async () => {
        // Prepare
        const clock = new FakeClock();
        const idp = new ScriptedIdentityProvider({ clock, latencyMs: 3000 }).rotateForever();
        const { deps, sweep } = setup({ clock, idp, sweep: { concurrency: 1 } });
        for (let i = 0; i < 6; i++) deps.store.seed(dueRecord(i));

        // Act
        const summary = await sweep.run(clockBudget(clock, 23_000));

        // Assess
        expect(summary).toEqual({
          due: 6,
          rotated: 3,
          failed: 0,
          reauthRequired: 0,
          skipped: 0,
          backlog: 3,
          rescheduled: 0,
        });
        expect(deps.idp.presented).toEqual(['rt-0', 'rt-1', 'rt-2']);
        for (let i = 3; i < 6; i++)
          expect(deps.store.peek(keyOf(i))).toMatchObject({ version: 1, lease: undefined });
        expect(deps.metrics.total('SweepBacklog')).toBe(3);
      });

      it('reads no further pages once it is out of time', async () => {
        // Prepare
        const { deps, sweep } = setup({ settings: { dueShards: 1 }, sweep: { pageSize: 2 } });
        for (let i = 0; i < 6; i++) deps.store.seed(dueRecord(i, { dueShard: 0 }));

        // Act
        const summary = await sweep.run(fixedBudget(14_999));

        // Assess
        expect(summary).toMatchObject({ due: 2, backlog: 2, rotated: 0 });
        expect(deps.store.count('queryDue')).toBe(1);
        expect(deps.store.count('get')).toBe(0);
        expect(deps.idp.calls).toBe(0);
      });

      it.each([1, 3, 8])(
        'keeps at most %i IdP calls in flight, even while the IdP is slow',
        async (concurrency) => {
          // Prepare
          const { deps, sweep } = setup({ sweep: { concurrency, idpRequestsPerSecond: 10_000 } });
          for (let i = 0; i < 20; i++) deps.store.seed(dueRecord(i));
          deps.idp.rotateForever();
          const release = deps.idp.hold();

          // Act
          const running = sweep.run(AMPLE);
          await until(() => deps.idp.inFlight === concurrency);
          for (let turn = 0; turn < 50; turn++) await tick();
          const heldInFlight = deps.idp.inFlight;
          release();
          const summary = await running;

          // Assess
          expect(heldInFlight).toBe(concurrency);
          expect(deps.idp.maxInFlight).toBe(concurrency);
          expect(summary.rotated).toBe(20);
        },
      );

      it('starts no more IdP calls per second than idpRequestsPerSecond', async () => {
        // Prepare
        const { deps, sweep } = setup({ sweep: { concurrency: 8, idpRequestsPerSecond: 5 } });
        for (let i = 0; i < 20; i++) deps.store.seed(dueRecord(i));
        deps.idp.rotateForever();

        // Act
        const summary = await sweep.run(AMPLE);

        // Assess
        const starts = deps.idp.startedAtMs;
        expect(summary.rotated).toBe(20);
        expect(starts).toHaveLength(20);
        for (const start of starts) {
          const inWindow = starts.filter((other) => other >= start && other < start + 1000);
          expect(inWindow.length).toBeLessThanOrEqual(5);
        }
        expect(starts.at(-1)! - starts[0]!).toBeGreaterThanOrEqual(19 * 200);
      });

      it('pauses every call for the Retry-After of a 429', async () => {
        // Prepare
        const { deps, sweep } = setup({ sweep: { concurrency: 1 } });
        for (let i = 0; i < 3; i++) deps.store.seed(dueRecord(i));
        deps.idp.enqueue(new IdpTransientError('slow down', 429, 2)).rotateForever();

        // Act
        const summary = await sweep.run(AMPLE);

        // Assess
        expect(summary).toMatchObject({ rotated: 2, failed: 1 });
        expect(deps.idp.startedAtMs[1]! - deps.idp.startedAtMs[0]!).toBeGreaterThanOrEqual(2000);
      });

      it('follows the pages of every shard to the end', async () => {
        // Prepare
        const { deps, sweep } = setup({ sweep: { pageSize: 2, concurrency: 2 } });
        for (let i = 0; i < 25; i++) deps.store.seed(dueRecord(i));
        deps.idp.rotateForever();

        // Act
        const summary = await sweep.run(AMPLE);

        // Assess
        expect(summary).toMatchObject({ due: 25, rotated: 25, skipped: 0 });
        expect(new Set(deps.idp.presented).size).toBe(25);
        const shards = deps.store.calls.filter((c) => c.method === 'queryDue').map((c) => c.shard);
        expect(new Set(shards)).toEqual(new Set([0, 1, 2, 3]));
        expect(shards.length).toBeGreaterThan(4);
        for (let i = 0; i < 25; i++) expect(deps.store.peek(keyOf(i))?.version).toBe(2);
      });
    });

    describe('races with getAccessToken', () => {
      it('does not discard a rotation that a caller started while the sweep was parking the record', async () => {
        // Prepare
        const { deps, sweep } = setup();
        const deadline = T0 + 2 * DAY;
        deps.store.seed(
          dueRecord(0, {
            key: KEY,
            refreshExpiresAt: deadline,
            expiresAt: deadline,
            rotationDeadline: deadline,
            failures: 1,
            dueAt: T0 - 10,
            accessExpiresAt: T0 - 1,
          }),
        );
        deps.idp.enqueue(tokenSet('new'));
        const release = deps.idp.hold();
        const service = new TokenService(deps);
        let caller: Promise<unknown> = Promise.resolve();
        deps.store.beforeNext('put', async () => {
          // Between the sweep's read and its write, a caller leases the record and calls the IdP.
          caller = service.getAccessToken({ key: KEY, minValiditySeconds: 60 }, AMPLE);
          await until(() => deps.idp.calls === 1);
        });

        // Act
        await sweep.run(AMPLE);
        release();
        await Promise.allSettled([caller]);

        // Assess
        expect(deps.idp.reused).toEqual([]);
        expect(deps.store.peek(KEY)?.status).toBe('ACTIVE');
        expect(deps.store.peek(KEY)?.tokens?.refreshToken.reveal()).toBe('rt-new');
      });

      it('does not discard a rotation that a caller started while the sweep was sending Reauth Soon', async () => {
        // Prepare
        const { deps, sweep } = setup({ settings: { reauthSoonSeconds: 14 * DAY } });
        deps.store.seed(
          dueRecord(0, {
            key: KEY,
            authenticatedAt: T0 - 355 * DAY,
            rotationDeadline: T0 + 10 * DAY,
            dueAt: T0 - 4 * DAY,
            accessExpiresAt: T0 - 1,
          }),
        );
        deps.idp.enqueue(tokenSet('new'));
        const release = deps.idp.hold();
        const service = new TokenService(deps);
        let caller: Promise<unknown> = Promise.resolve();
        deps.store.beforeNext('put', async () => {
          caller = service.getAccessToken({ key: KEY, minValiditySeconds: 60 }, AMPLE);
          await until(() => deps.idp.calls === 1);
        });

        // Act: the notice gives way to the caller's rotation, and goes out with the next sweep.
        await sweep.run(AMPLE);
        release();
        await Promise.allSettled([caller]);
        await sweep.run(AMPLE);

        // Assess
        expect(deps.events.published.map((event) => event.type)).toContain('Reauth Soon');
        expect(deps.idp.reused).toEqual([]);
        expect(deps.store.peek(KEY)?.status).toBe('ACTIVE');
        expect(deps.store.peek(KEY)?.tokens?.refreshToken.reveal()).toBe('rt-new');
      });

      it('does not mark a new sign-in that replaced an expired record while the sweep was deciding', async () => {
        // Prepare
        const { deps, sweep } = setup();
        deps.store.seed(dueRecord(0, { key: KEY, refreshExpiresAt: T0 - 5, expiresAt: T0 - 5 }));
        deps.store.beforeNext('put', async () => {
          // DynamoDB's TTL deletes the expired item and the user signs in again.
          await deps.store.delete(KEY);
          await new TokenService(deps).storeTokens({
            key: KEY,
            authenticatedAt: undefined,
            tokens: tokenSet('signin'),
          });
        });

        // Act
        await sweep.run(AMPLE);

        // Assess
        expect(deps.store.peek(KEY)).toMatchObject({ status: 'ACTIVE' });
        expect(deps.store.peek(KEY)?.tokens?.refreshToken.reveal()).toBe('rt-signin');
      });
    });
  });
});
