import { describe, expect, it } from 'vitest';
import {
  IdpPermanentError,
  IdpTransientError,
  RefreshUnavailableError,
  StoreUnavailableError,
} from '../../../functions/core/errors';
import { shardOf } from '../../../functions/core/lifetimes';
import type { TokenRecord } from '../../../functions/core/model';
import { Rotation } from '../../../functions/core/rotation';
import { Secret } from '../../../functions/core/secret';
import {
  activeRecord,
  clockBudget,
  DAY,
  type DepsOverrides,
  FakeClock,
  fixedBudget,
  KEY,
  makeDeps,
  rejectionOf,
  ScriptedIdentityProvider,
  T0,
  tokenSet,
} from '../../support/fakes';

const AMPLE = fixedBudget(60_000);
const rejected = () => new IdpPermanentError('the IdP rejected the refresh token', 400, 'invalid_grant');
const unavailable = (status?: number, retryAfter?: number) =>
  new IdpTransientError('the IdP could not answer', status, retryAfter);

/** Deps with one stored record (activeRecord + `record`), and a Rotation over them. */
function setup(options: DepsOverrides & { record?: Partial<TokenRecord> } = {}) {
  const deps = makeDeps(options);
  deps.store.seed(activeRecord(deps.clock.nowSeconds(), options.record));
  const record = deps.store.peek(KEY)!;
  deps.store.calls.length = 0;
  return { deps, rotation: new Rotation(deps), record, now: deps.clock.nowSeconds() };
}

describe('Class: Rotation', () => {
  describe('Method: rotate', () => {
    describe('before the IdP call', () => {
      it('returns no-time and neither leases nor calls the IdP when the budget cannot fit a call and a commit', async () => {
        // Prepare
        const { deps, rotation, record } = setup();

        // Act
        const outcome = await rotation.rotate(record, fixedBudget(5000 + 10_000 - 1));

        // Assess
        expect(outcome).toEqual({ kind: 'no-time' });
        expect(deps.store.calls).toEqual([]);
        expect(deps.idp.calls).toBe(0);
      });

      it('proceeds when the budget fits exactly the IdP timeout and the commit reserve', async () => {
        // Prepare
        const { deps, rotation, record } = setup();
        deps.idp.enqueue(tokenSet('new'));

        // Act
        const outcome = await rotation.rotate(record, fixedBudget(15_000));

        // Assess
        expect(outcome.kind).toBe('rotated');
      });

      it('returns contended without calling the IdP when another caller holds a live lease', async () => {
        // Prepare
        const { deps, rotation, record } = setup();
        deps.store.update(KEY, (r) => ({ ...r, lease: { id: 'other', untilMs: deps.clock.nowMs() + 1000 } }));

        // Act
        const outcome = await rotation.rotate(record, AMPLE);

        // Assess
        expect(outcome).toEqual({ kind: 'contended' });
        expect(deps.idp.calls).toBe(0);
        expect(deps.store.peek(KEY)?.lease?.id).toBe('other');
      });

      it('returns contended without calling the IdP when the version moved since the read', async () => {
        // Prepare
        const { deps, rotation, record } = setup();
        deps.store.update(KEY, (r) => ({ ...r, version: 2 }));

        // Act
        const outcome = await rotation.rotate(record, AMPLE);

        // Assess
        expect(outcome).toEqual({ kind: 'contended' });
        expect(deps.idp.calls).toBe(0);
      });

      it('takes over a lease that has expired', async () => {
        // Prepare
        const { deps, rotation } = setup();
        deps.store.update(KEY, (r) => ({ ...r, lease: { id: 'crashed', untilMs: deps.clock.nowMs() - 1 } }));
        deps.idp.enqueue(tokenSet('new'));

        // Act
        const outcome = await rotation.rotate(deps.store.peek(KEY)!, AMPLE);

        // Assess
        expect(outcome.kind).toBe('rotated');
        expect(deps.idp.presented).toEqual(['rt-0']);
      });

      it('leases for leaseMs from now, fenced on the version read', async () => {
        // Prepare
        const { deps, rotation, record } = setup({ newLeaseId: () => 'me' });
        let leaseSeen: TokenRecord['lease'];
        deps.idp.enqueue(() => {
          leaseSeen = deps.store.peek(KEY)?.lease;
          return tokenSet('new');
        });

        // Act
        await rotation.rotate(record, AMPLE);

        // Assess
        expect(leaseSeen).toEqual({ id: 'me', untilMs: deps.clock.nowMs() + 30_000 });
        expect(deps.store.calls[0]).toMatchObject({ method: 'acquireLease', version: 1 });
      });

      it.each([
        ['REAUTH_REQUIRED', { status: 'REAUTH_REQUIRED' as const }],
        ['without tokens', { tokens: undefined }],
        ['corrupt', { corrupt: true }],
      ])('never sends the token of a record that is %s', async (_label, change) => {
        // Prepare
        const { deps, rotation, record } = setup();

        // Act
        const outcome = await rotation.rotate({ ...record, ...change }, AMPLE);

        // Assess
        expect(outcome).toEqual({ kind: 'contended' });
        expect(deps.idp.calls).toBe(0);
        expect(deps.store.calls).toEqual([]);
      });
    });

    describe('on success', () => {
      it('commits the new tokens with version + 1, the lease cleared, the session id kept and new lifetimes', async () => {
        // Prepare
        const { deps, rotation, record, now } = setup();
        deps.idp.enqueue(tokenSet('new', 1800));

        // Act
        const outcome = await rotation.rotate(record, AMPLE);

        // Assess
        const stored = deps.store.peek(KEY)!;
        expect(outcome).toEqual({ kind: 'rotated', record: stored });
        expect(stored.tokens?.accessToken.reveal()).toBe('at-new');
        expect(stored.tokens?.refreshToken.reveal()).toBe('rt-new');
        expect(stored.tokens?.idToken?.reveal()).toBe('id-new');
        expect(stored.tokens?.sessionId?.reveal()).toBe('sess-0');
        expect(stored).toMatchObject({
          status: 'ACTIVE',
          version: 2,
          lease: undefined,
          accessExpiresAt: now + 1800,
          refreshExpiresAt: now + 14 * DAY,
          expiresAt: now + 14 * DAY,
          authenticatedAt: record.authenticatedAt,
          rotationDeadline: record.rotationDeadline,
          dueShard: shardOf(KEY, 4),
          failures: 0,
          lastError: undefined,
          lastRotatedAt: now,
          rotations: 1,
        });
        expect(stored.dueAt).toBeLessThanOrEqual(now + 11 * DAY);
        expect(stored.dueAt).toBeGreaterThanOrEqual(now + 11 * DAY - 6 * 3600);
      });

      it('sends the stored refresh token once, with the configured timeout', async () => {
        // Prepare
        const { deps, rotation, record } = setup();
        deps.idp.enqueue(tokenSet('new'));

        // Act
        await rotation.rotate(record, AMPLE);

        // Assess
        expect(deps.idp.presented).toEqual(['rt-0']);
        expect(deps.idp.fingerprints).toEqual([new Secret('rt-0').fingerprint()]);
        expect(deps.idp.timeouts).toEqual([5000]);
      });

      it('fences the commit on the version read and the lease taken', async () => {
        // Prepare
        const { deps, rotation, record } = setup({ newLeaseId: () => 'me' });
        deps.idp.enqueue(tokenSet('new'));

        // Act
        await rotation.rotate(record, AMPLE);

        // Assess
        const put = deps.store.calls.find((call) => call.method === 'put');
        expect(put?.fence).toEqual({ version: 1, leaseId: 'me' });
      });

      it('caps the new refresh expiry at the rotation deadline and makes the record due at the deadline', async () => {
        // Prepare
        const clock = new FakeClock();
        const now = clock.nowSeconds();
        const { deps, rotation, record } = setup({ clock, record: { rotationDeadline: now + 5 * DAY } });
        deps.idp.enqueue(tokenSet('new'));

        // Act
        await rotation.rotate(record, AMPLE);

        // Assess
        expect(deps.store.peek(KEY)).toMatchObject({
          refreshExpiresAt: now + 5 * DAY,
          expiresAt: now + 5 * DAY,
          dueAt: now + 5 * DAY,
        });
      });

      it("applies the resource's own lifetimes", async () => {
        // Prepare
        const key = { userId: 'user-1', resource: 'https://short.example.com' };
        const { deps, rotation, now } = setup({
          resourceLifetimes: { [key.resource]: { refreshTokenTtlSeconds: DAY, refreshAheadSeconds: 3600 } },
        });
        deps.store.seed(activeRecord(now, { key }));
        deps.idp.enqueue(tokenSet('new'));

        // Act
        await rotation.rotate(deps.store.peek(key)!, AMPLE);

        // Assess
        const stored = deps.store.peek(key)!;
        expect(stored.refreshExpiresAt).toBe(now + DAY);
        expect(stored.dueAt).toBeLessThanOrEqual(now + DAY - 3600);
        expect(stored.dueAt).toBeGreaterThanOrEqual(now + DAY - 3600 - 900);
      });

      it('counts RotationSucceeded and the IdP latency', async () => {
        // Prepare
        const clock = new FakeClock();
        const idp = new ScriptedIdentityProvider({ clock, latencyMs: 250 }).enqueue(tokenSet('new'));
        const { deps, rotation, record } = setup({ clock, idp });

        // Act
        await rotation.rotate(record, AMPLE);

        // Assess
        expect(deps.metrics.total('RotationSucceeded')).toBe(1);
        expect(deps.metrics.points.filter((p) => p.name === 'IdpLatency').map((p) => p.value)).toEqual([250]);
        expect(deps.metrics.total('RotationRecovered')).toBe(0);
        expect(deps.events.published).toEqual([]);
      });

      it('resets the failures and publishes Rotation Recovered after failed attempts', async () => {
        // Prepare
        const { deps, rotation, record, now } = setup({
          record: { failures: 3, lastError: 'http_503', dueAt: 0 },
        });
        deps.idp.enqueue(tokenSet('new'));

        // Act
        await rotation.rotate(record, AMPLE);

        // Assess
        expect(deps.store.peek(KEY)).toMatchObject({ failures: 0, lastError: undefined });
        expect(deps.metrics.total('RotationRecovered')).toBe(1);
        expect(deps.events.published).toEqual([
          { type: 'Rotation Recovered', key: KEY, failures: 3, at: now },
        ]);
      });

      it('still rotates when the event cannot be published', async () => {
        // Prepare
        const { deps, rotation, record } = setup({ record: { failures: 1 } });
        deps.events.publish = async () => {
          throw new Error('bus down');
        };
        deps.idp.enqueue(tokenSet('new'));

        // Act
        const outcome = await rotation.rotate(record, AMPLE);

        // Assess
        expect(outcome.kind).toBe('rotated');
        expect(deps.logger.lines).toContainEqual(
          expect.objectContaining({ level: 'warn', message: 'event not published' }),
        );
      });

      it('never logs token material', async () => {
        // Prepare
        const { deps, rotation, record } = setup({ record: { failures: 1 } });
        deps.idp.enqueue(tokenSet('new'));

        // Act
        await rotation.rotate(record, AMPLE);

        // Assess
        const logged = JSON.stringify(deps.logger.lines);
        for (const value of ['rt-0', 'at-0', 'sess-0', 'rt-new', 'at-new', 'id-new']) {
          expect(logged).not.toContain(value);
        }
      });
      it('brings the record up for the Reauth Soon notice when that comes before the next rotation', async () => {
        // Prepare
        const clock = new FakeClock();
        const now = clock.nowSeconds();
        const { deps, rotation, record } = setup({
          clock,
          settings: { reauthSoonSeconds: 14 * DAY },
          record: { authenticatedAt: now - 345 * DAY, rotationDeadline: now + 20 * DAY },
        });
        deps.idp.enqueue(tokenSet('new'));

        // Act
        await rotation.rotate(record, AMPLE);

        // Assess
        expect(deps.store.peek(KEY)).toMatchObject({
          refreshExpiresAt: now + 14 * DAY,
          dueAt: now + 6 * DAY,
        });
      });

      it('schedules the next rotation as usual once the notice was sent', async () => {
        // Prepare
        const clock = new FakeClock();
        const now = clock.nowSeconds();
        const { deps, rotation, record } = setup({
          clock,
          random: () => 0,
          settings: { reauthSoonSeconds: 14 * DAY },
          record: {
            authenticatedAt: now - 345 * DAY,
            rotationDeadline: now + 20 * DAY,
            reauthSoonNotifiedAt: now - DAY,
          },
        });
        deps.idp.enqueue(tokenSet('new'));

        // Act
        await rotation.rotate(record, AMPLE);

        // Assess
        expect(deps.store.peek(KEY)).toMatchObject({
          dueAt: now + 11 * DAY,
          reauthSoonNotifiedAt: now - DAY,
        });
      });
    });

    describe('when the commit fails', () => {
      it('retries the commit on StoreUnavailableError and stores the new tokens', async () => {
        // Prepare
        const { deps, rotation, record } = setup();
        deps.idp.enqueue(tokenSet('new'));
        deps.store.failNext('put', 2);

        // Act
        const outcome = await rotation.rotate(record, AMPLE);

        // Assess
        expect(outcome.kind).toBe('rotated');
        expect(deps.store.count('put')).toBe(3);
        expect(deps.store.peek(KEY)?.tokens?.refreshToken.reveal()).toBe('rt-new');
        expect(deps.sleeps).toHaveLength(2);
        expect(deps.sleeps[0]).toBeGreaterThanOrEqual(50);
        expect(deps.sleeps[0]).toBeLessThanOrEqual(100);
        expect(deps.sleeps[1]).toBeGreaterThanOrEqual(100);
        expect(deps.sleeps[1]).toBeLessThanOrEqual(200);
        expect(deps.metrics.total('PersistFailed')).toBe(0);
      });

      it('throws RefreshUnavailableError and counts PersistFailed after six failed attempts', async () => {
        // Prepare
        const { deps, rotation, record } = setup();
        deps.idp.enqueue(tokenSet('new'));
        deps.store.failNext('put', 6);

        // Act
        const error = await rejectionOf(rotation.rotate(record, AMPLE));

        // Assess
        expect(error).toBeInstanceOf(RefreshUnavailableError);
        expect(error.cause).toBeInstanceOf(StoreUnavailableError);
        expect(deps.store.count('put')).toBe(6);
        expect(deps.metrics.total('PersistFailed')).toBe(1);
        expect(deps.metrics.total('RotationSucceeded')).toBe(0);
        expect(deps.store.peek(KEY)?.tokens?.refreshToken.reveal()).toBe('rt-0');
        expect(JSON.stringify(error)).not.toContain('rt-new');
        expect(JSON.stringify(deps.logger.lines)).not.toContain('rt-new');
      });

      it('does not retry an error that is not transient', async () => {
        // Prepare
        const { deps, rotation, record } = setup();
        deps.idp.enqueue(tokenSet('new'));
        deps.store.failNext('put', 1, { error: () => new Error('ValidationException') });

        // Act
        const error = await rejectionOf(rotation.rotate(record, AMPLE));

        // Assess
        expect(error).toBeInstanceOf(RefreshUnavailableError);
        expect(deps.store.count('put')).toBe(1);
        expect(deps.metrics.total('PersistFailed')).toBe(1);
      });

      it('stops retrying when the invocation is about to end', async () => {
        // Prepare
        const clock = new FakeClock();
        const idp = new ScriptedIdentityProvider({ clock, latencyMs: 15_200 }).enqueue(tokenSet('new'));
        const { deps, rotation, record } = setup({ clock, idp });
        deps.store.failNext('put', 5);

        // Act
        const error = await rejectionOf(rotation.rotate(record, clockBudget(clock, 16_000)));

        // Assess
        expect(error).toBeInstanceOf(RefreshUnavailableError);
        expect(deps.store.count('put')).toBe(1);
        expect(deps.sleeps).toEqual([]);
        expect(deps.metrics.total('PersistFailed')).toBe(1);
      });

      it('returns contended and keeps the record when a new sign-in replaced it during the refresh', async () => {
        // Prepare
        const { deps, rotation, record } = setup();
        deps.idp.enqueue(() => {
          deps.store.update(KEY, (r) => ({
            ...r,
            version: 2,
            lease: undefined,
            tokens: { accessToken: new Secret('at-signin'), refreshToken: new Secret('rt-signin') },
          }));
          return tokenSet('new');
        });

        // Act
        const outcome = await rotation.rotate(record, AMPLE);

        // Assess
        expect(outcome).toEqual({ kind: 'contended' });
        expect(deps.store.peek(KEY)?.tokens?.refreshToken.reveal()).toBe('rt-signin');
        expect(deps.metrics.total('RotationFailed', { reason: 'commit_conflict' })).toBe(1);
        expect(deps.metrics.total('RotationSucceeded')).toBe(0);
      });

      it('returns contended when its lease was taken over during the refresh', async () => {
        // Prepare
        const { deps, rotation, record } = setup();
        deps.idp.enqueue(() => {
          deps.store.update(KEY, (r) => ({
            ...r,
            lease: { id: 'usurper', untilMs: deps.clock.nowMs() + 30_000 },
          }));
          return tokenSet('new');
        });

        // Act
        const outcome = await rotation.rotate(record, AMPLE);

        // Assess
        expect(outcome).toEqual({ kind: 'contended' });
        expect(deps.store.peek(KEY)?.tokens?.refreshToken.reveal()).toBe('rt-0');
      });

      it('keeps the new refresh token when a commit that reported a failure had in fact been applied', async () => {
        // Prepare
        const { deps, rotation, record } = setup();
        deps.idp.enqueue(tokenSet('new'));
        deps.store.failNext('put', 1, { afterApplying: true });

        // Act
        await rotation.rotate(record, AMPLE);

        // Assess
        expect(deps.store.peek(KEY)?.tokens?.refreshToken.reveal()).toBe('rt-new');
        expect(deps.metrics.total('PersistFailed')).toBe(0);
      });
    });

    describe('on a permanent IdP failure', () => {
      it('marks the record REAUTH_REQUIRED, quarantines the tokens, drops the due keys, and says so', async () => {
        // Prepare
        const { deps, rotation, record, now } = setup();
        deps.idp.enqueue(rejected());

        // Act
        const outcome = await rotation.rotate(record, AMPLE);

        // Assess
        expect(outcome).toEqual({ kind: 'reauth', reason: 'refresh_rejected' });
        expect(deps.store.peek(KEY)).toMatchObject({
          status: 'REAUTH_REQUIRED',
          tokens: record.tokens,
          reauthAt: now,
          version: 2,
          lease: undefined,
          dueShard: undefined,
          dueAt: undefined,
          reauthReason: 'refresh_rejected',
          lastError: 'refresh_rejected',
          expiresAt: now + 30 * DAY,
        });
        expect(deps.metrics.total('ReauthRequired')).toBe(1);
        expect(deps.metrics.total('ReauthRequired', { reason: 'refresh_rejected' })).toBe(1);
        expect(deps.metrics.total('RotationFailed', { reason: 'rejected' })).toBe(1);
        expect(deps.events.published).toEqual([
          { type: 'Reauth Required', key: KEY, reason: 'refresh_rejected', at: now },
        ]);
      });

      it('makes no further IdP call for the record', async () => {
        // Prepare
        const { deps, rotation, record } = setup();
        deps.idp.enqueue(rejected());
        await rotation.rotate(record, AMPLE);

        // Act
        const again = await rotation.rotate(deps.store.peek(KEY)!, AMPLE);
        const stale = await rotation.rotate(record, AMPLE);

        // Assess
        expect(again).toEqual({ kind: 'contended' });
        expect(stale).toEqual({ kind: 'contended' });
        expect(deps.idp.calls).toBe(1);
      });

      it("returns superseded with the sibling's record when the version moved meanwhile", async () => {
        // Prepare
        const { deps, rotation, record } = setup();
        deps.idp.enqueue(() => {
          deps.store.update(KEY, (r) => ({
            ...r,
            version: 2,
            lease: undefined,
            tokens: { accessToken: new Secret('at-sibling'), refreshToken: new Secret('rt-sibling') },
          }));
          return rejected();
        });

        // Act
        const outcome = await rotation.rotate(record, AMPLE);

        // Assess
        expect(outcome.kind).toBe('superseded');
        expect(outcome.kind === 'superseded' && outcome.record.tokens?.accessToken.reveal()).toBe(
          'at-sibling',
        );
        expect(deps.store.peek(KEY)).toMatchObject({ status: 'ACTIVE', version: 2 });
        expect(deps.metrics.total('ReauthRequired')).toBe(0);
        expect(deps.events.published).toEqual([]);
      });

      it('does not count a superseded rotation as a failure (a sibling winning is not a failure)', async () => {
        // Prepare
        const { deps, rotation, record } = setup();
        deps.idp.enqueue(() => {
          deps.store.update(KEY, (r) => ({ ...r, version: 2, lease: undefined }));
          return rejected();
        });

        // Act
        await rotation.rotate(record, AMPLE);

        // Assess
        expect(deps.metrics.points.filter((p) => p.name === 'RotationFailed')).toEqual([]);
      });

      it('returns superseded, not reauth, when marking loses to a lease take-over', async () => {
        // Prepare
        const { deps, rotation, record } = setup();
        deps.idp.enqueue(rejected());
        deps.store.beforeNext('put', () => {
          deps.store.update(KEY, (r) => ({
            ...r,
            lease: { id: 'usurper', untilMs: deps.clock.nowMs() + 30_000 },
          }));
        });

        // Act
        const outcome = await rotation.rotate(record, AMPLE);

        // Assess
        expect(outcome.kind).toBe('superseded');
        expect(deps.store.peek(KEY)?.status).toBe('ACTIVE');
        expect(deps.metrics.total('ReauthRequired')).toBe(0);
      });

      it('returns contended when the record was deleted meanwhile', async () => {
        // Prepare
        const { deps, rotation, record } = setup();
        deps.idp.enqueue(async () => {
          await deps.store.delete(KEY);
          return rejected();
        });

        // Act
        const outcome = await rotation.rotate(record, AMPLE);

        // Assess
        expect(outcome).toEqual({ kind: 'contended' });
        expect(deps.store.peek(KEY)).toBeUndefined();
        expect(deps.metrics.total('RotationFailed', { reason: 'rejected' })).toBe(1);
        expect(deps.metrics.total('ReauthRequired')).toBe(0);
        expect(deps.events.published).toEqual([]);
      });
    });

    describe('on a transient IdP failure', () => {
      it('releases the lease, counts the failure, and schedules a retry with backoff (version + 1)', async () => {
        // Prepare
        const { deps, rotation, record, now } = setup();
        deps.idp.enqueue(unavailable(503));

        // Act
        const outcome = await rotation.rotate(record, AMPLE);

        // Assess
        const stored = deps.store.peek(KEY)!;
        expect(outcome).toEqual({ kind: 'transient', retryAt: stored.dueAt });
        expect(stored).toMatchObject({
          status: 'ACTIVE',
          version: 2,
          lease: undefined,
          failures: 1,
          lastError: 'http_503',
          dueShard: shardOf(KEY, 4),
          refreshExpiresAt: record.refreshExpiresAt,
          accessExpiresAt: record.accessExpiresAt,
        });
        expect(stored.tokens?.refreshToken.reveal()).toBe('rt-0');
        expect(stored.dueAt).toBeGreaterThanOrEqual(now + 1);
        expect(stored.dueAt).toBeLessThanOrEqual(now + 30);
        expect(deps.metrics.total('RotationFailed', { reason: 'http_503' })).toBe(1);
        expect(deps.metrics.total('ReauthRequired')).toBe(0);
      });

      it('widens the backoff with consecutive failures, up to the cap', async () => {
        // Prepare
        const { deps, rotation, record, now } = setup({ record: { failures: 12 }, random: () => 0.999_999 });
        deps.idp.enqueue(unavailable(500));

        // Act
        await rotation.rotate(record, AMPLE);

        // Assess
        expect(deps.store.peek(KEY)).toMatchObject({ failures: 13, dueAt: now + 900 });
      });

      it('honours Retry-After on 429', async () => {
        // Prepare
        const { deps, rotation, record, now } = setup({ random: () => 0 });
        deps.idp.enqueue(unavailable(429, 120));

        // Act
        const outcome = await rotation.rotate(record, AMPLE);

        // Assess
        expect(outcome).toEqual({ kind: 'transient', retryAt: now + 120 });
        expect(deps.store.peek(KEY)?.lastError).toBe('rate_limited');
        expect(deps.metrics.total('RotationFailed', { reason: 'rate_limited' })).toBe(1);
      });

      it('retries before the refresh token expires, whatever the backoff says', async () => {
        // Prepare
        const clock = new FakeClock();
        const now = clock.nowSeconds();
        const { deps, rotation, record } = setup({
          clock,
          record: { refreshExpiresAt: now + 200, expiresAt: now + 200, failures: 8 },
        });
        deps.idp.enqueue(unavailable(503, 3600));

        // Act
        await rotation.rotate(record, AMPLE);

        // Assess
        expect(deps.store.peek(KEY)?.dueAt).toBe(now + 140);
      });

      it("names a network failure 'network'", async () => {
        // Prepare
        const { deps, rotation, record } = setup();
        deps.idp.enqueue(unavailable(undefined));

        // Act
        await rotation.rotate(record, AMPLE);

        // Assess
        expect(deps.store.peek(KEY)?.lastError).toBe('network');
      });

      it('treats an unexpected error as transient and logs it at error level', async () => {
        // Prepare
        const { deps, rotation, record } = setup();
        deps.idp.enqueue(new TypeError('bug'));

        // Act
        const outcome = await rotation.rotate(record, AMPLE);

        // Assess
        expect(outcome.kind).toBe('transient');
        expect(deps.store.peek(KEY)).toMatchObject({ failures: 1, lastError: 'error' });
        expect(deps.logger.lines).toContainEqual(
          expect.objectContaining({ level: 'error', message: 'refresh failed; will retry' }),
        );
      });

      it('still reports the transient outcome when the failure cannot be recorded', async () => {
        // Prepare
        const { deps, rotation, record } = setup();
        deps.idp.enqueue(unavailable(503));
        deps.store.failNext('put', 1);

        // Act
        const outcome = await rotation.rotate(record, AMPLE);

        // Assess
        expect(outcome.kind).toBe('transient');
        expect(deps.store.peek(KEY)).toMatchObject({ version: 1, failures: 0 });
        expect(deps.logger.lines).toContainEqual(
          expect.objectContaining({ level: 'warn', message: 'could not record the failed refresh' }),
        );
      });
    });
  });

  describe('Method: notifyReauthSoon', () => {
    it('records the notice, publishes it once and counts it', async () => {
      // Prepare
      const { deps, rotation, record, now } = setup({ settings: { reauthSoonSeconds: 14 * DAY } });

      // Act
      const next = await rotation.notifyReauthSoon(record);

      // Assess
      expect(next).toEqual(deps.store.peek(KEY));
      expect(deps.store.peek(KEY)).toMatchObject({ version: 2, reauthSoonNotifiedAt: now, status: 'ACTIVE' });
      expect(deps.store.peek(KEY)?.tokens?.refreshToken.reveal()).toBe('rt-0');
      expect(deps.metrics.total('ReauthSoon')).toBe(1);
      expect(deps.events.published).toEqual([
        { type: 'Reauth Soon', key: KEY, rotationDeadline: record.rotationDeadline, at: now },
      ]);
      expect(deps.idp.calls).toBe(0);
    });

    it('keeps a pending retry time after failures', async () => {
      // Prepare
      const { deps, rotation, record, now } = setup({ record: { failures: 2, dueAt: T0 + 90 } });

      // Act
      await rotation.notifyReauthSoon(record);

      // Assess
      expect(deps.store.peek(KEY)).toMatchObject({ failures: 2, dueAt: now + 90 });
    });

    it('returns undefined and says nothing when the record moved', async () => {
      // Prepare
      const { deps, rotation, record } = setup();
      deps.store.update(KEY, (r) => ({ ...r, version: 5 }));

      // Act
      const next = await rotation.notifyReauthSoon(record);

      // Assess
      expect(next).toBeUndefined();
      expect(deps.events.published).toEqual([]);
      expect(deps.metrics.total('ReauthSoon')).toBe(0);
    });
  });

  describe('Method: markReauthRequired', () => {
    it('marks the record with the reason, keeps it for the retention period and emits metric and event', async () => {
      // Prepare
      const { deps, rotation, record, now } = setup();

      // Act
      const marked = await rotation.markReauthRequired(record, 'deadline');

      // Assess
      expect(marked).toBe(true);
      expect(deps.store.peek(KEY)).toMatchObject({
        status: 'REAUTH_REQUIRED',
        tokens: record.tokens,
        reauthAt: now,
        reauthReason: 'deadline',
        dueAt: undefined,
        dueShard: undefined,
        version: 2,
        expiresAt: now + 30 * DAY,
      });
      expect(deps.metrics.total('ReauthRequired', { reason: 'deadline' })).toBe(1);
      expect(deps.events.published).toEqual([
        { type: 'Reauth Required', key: KEY, reason: 'deadline', at: now },
      ]);
    });

    it('returns false and says nothing when the version moved', async () => {
      // Prepare
      const { deps, rotation, record } = setup();
      deps.store.update(KEY, (r) => ({ ...r, version: 7 }));

      // Act
      const marked = await rotation.markReauthRequired(record, 'expired');

      // Assess
      expect(marked).toBe(false);
      expect(deps.store.peek(KEY)?.status).toBe('ACTIVE');
      expect(deps.metrics.points).toEqual([]);
      expect(deps.events.published).toEqual([]);
    });

    it('requires the lease when one is named', async () => {
      // Prepare
      const { deps, rotation, record } = setup();

      // Act
      const marked = await rotation.markReauthRequired(record, 'refresh_rejected', 'not-mine');

      // Assess
      expect(marked).toBe(false);
      expect(deps.store.peek(KEY)?.status).toBe('ACTIVE');
    });
  });
});
