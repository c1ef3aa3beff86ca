import { describe, expect, it } from 'vitest';
import {
  ConfigurationError,
  IdpConfigurationError,
  IdpPermanentError,
  IdpTransientError,
  ReauthRequiredError,
} from '../../../functions/core/errors';
import type { TokenRecord } from '../../../functions/core/model';
import { Rotation } from '../../../functions/core/rotation';
import { Secret } from '../../../functions/core/secret';
import { Sweep } from '../../../functions/core/sweep';
import { TokenService } from '../../../functions/core/token-service';
import {
  activeRecord,
  clockBudget,
  DAY,
  type DepsOverrides,
  fixedBudget,
  KEY,
  makeDeps,
  rejectionOf,
  T0,
  tokenSet,
} from '../../support/fakes';

const AMPLE = fixedBudget(60_000);
const dead = () => new IdpPermanentError('refresh token rejected', 400, 'invalid_grant');
const notConsumed = (status = 503, retryAfter?: number) =>
  new IdpTransientError('the IdP could not answer', status, retryAfter, { notConsumed: true });
const ambiguous = (status?: number) => new IdpTransientError('the IdP timed out', status, undefined);
const refusedClient = () => new IdpConfigurationError("the IdP refused the app's client", 403, undefined);

function setup(options: DepsOverrides & { record?: Partial<TokenRecord> } = {}) {
  const deps = makeDeps(options);
  deps.store.seed(activeRecord(deps.clock.nowSeconds(), options.record));
  const record = deps.store.peek(KEY)!;
  deps.store.calls.length = 0;
  return { deps, rotation: new Rotation(deps), record, now: deps.clock.nowSeconds() };
}

describe('Class: Rotation (edges)', () => {
  describe('Method: rotate, when the lease answer comes late', () => {
    it('calls nobody when what is left of the lease cannot cover the IdP call and the commit', async () => {
      // Prepare: the lease write is answered 28 s into a 30 s lease.
      const { deps, rotation, record } = setup();
      deps.store.beforeNext('acquireLease', async () => deps.clock.advance(28_000));

      // Act
      const outcome = await rotation.rotate(record, AMPLE);

      // Assess
      expect(outcome).toEqual({ kind: 'contended' });
      expect(deps.idp.calls).toBe(0);
      expect(deps.metrics.total('RotationFailed', { reason: 'lease_late' })).toBe(1);
    });

    it('proceeds when exactly the IdP timeout and the commit reserve are left, with a deadline inside the lease', async () => {
      // Prepare: 15 s of a 30 s lease pass before the answer: 5 s for the IdP, 10 s for the commit.
      const { deps, rotation, record } = setup({ settings: { idpTimeoutMs: 5000, commitReserveMs: 10_000 } });
      deps.store.beforeNext('acquireLease', async () => deps.clock.advance(15_000));
      deps.idp.enqueue(tokenSet('new'));

      // Act
      const outcome = await rotation.rotate(record, AMPLE);

      // Assess
      expect(outcome.kind).toBe('rotated');
      expect(deps.idp.timeouts).toEqual([5000]);
    });
  });

  describe('Method: rotate, immediate retries', () => {
    it('retries an answer that proves the token was not consumed, within the lease, and rotates', async () => {
      // Prepare
      const { deps, rotation, record } = setup();
      deps.idp.enqueue(notConsumed(503), tokenSet('new'));

      // Act
      const outcome = await rotation.rotate(record, AMPLE);

      // Assess
      expect(outcome.kind).toBe('rotated');
      expect(deps.idp.calls).toBe(2);
      expect(deps.metrics.total('IdpRetriedAtOnce')).toBe(1);
      expect(deps.metrics.total('RotationFailed')).toBe(0);
    });

    it('honours Retry-After and never retries when it does not fit in the lease', async () => {
      // Prepare: a 429 asking for 60 s does not fit a 30 s lease.
      const { deps, rotation, record } = setup();
      deps.idp.enqueue(notConsumed(429, 60));

      // Act
      const outcome = await rotation.rotate(record, AMPLE);

      // Assess
      expect(outcome.kind).toBe('transient');
      expect(deps.idp.calls).toBe(1);
    });

    it.each([
      ['a timeout after sending', ambiguous()],
      ['a 502', ambiguous(502)],
      ['a 504', ambiguous(504)],
    ])('never presents the token again after %s', async (_, error) => {
      // Prepare
      const { deps, rotation, record } = setup();
      deps.idp.enqueue(error, tokenSet('never'));

      // Act
      const outcome = await rotation.rotate(record, AMPLE);

      // Assess
      expect(outcome.kind).toBe('transient');
      expect(deps.idp.calls).toBe(1);
    });

    it('stops after a bounded number of immediate retries', async () => {
      // Prepare
      const { deps, rotation, record } = setup();
      deps.idp.enqueue(notConsumed(), notConsumed(), notConsumed(), tokenSet('late'));

      // Act
      const outcome = await rotation.rotate(record, AMPLE);

      // Assess: one retry at once, then the record backs off (the square of the IdP's fault rate).
      expect(outcome.kind).toBe('transient');
      expect(deps.idp.calls).toBe(2);
    });
  });

  describe('Method: rotate, a refused client', () => {
    it('marks nobody, keeps the token, backs off and counts the configuration metric', async () => {
      // Prepare
      const { deps, rotation, record } = setup();
      deps.idp.enqueue(refusedClient());

      // Act
      const outcome = await rotation.rotate(record, AMPLE);

      // Assess
      expect(outcome.kind).toBe('configuration');
      const stored = deps.store.peek(KEY)!;
      expect(stored.status).toBe('ACTIVE');
      expect(stored.tokens?.refreshToken.reveal()).toBe('rt-0');
      expect(stored.failures).toBe(1);
      expect(stored.lastError).toBe('configuration');
      expect(deps.metrics.total('IdpConfigurationRejected')).toBe(1);
      expect(deps.metrics.total('ReauthRequired')).toBe(0);
    });
  });

  describe('Method: rotate, a 200 that cannot be used as is', () => {
    it('keeps the current refresh token when the answer brings none', async () => {
      // Prepare
      const { deps, rotation, record, now } = setup();
      deps.idp.enqueue({
        accessToken: new Secret('at-new'),
        refreshToken: undefined,
        tokenType: 'Bearer',
        expiresIn: 600,
      });

      // Act
      const outcome = await rotation.rotate(record, AMPLE);

      // Assess
      expect(outcome.kind).toBe('rotated');
      const stored = deps.store.peek(KEY)!;
      expect(stored.tokens?.refreshToken.reveal()).toBe('rt-0');
      expect(stored.tokens?.accessToken.reveal()).toBe('at-new');
      expect(stored.accessExpiresAt).toBe(now + 600);
    });

    it.each([
      ['absent', undefined, 3600],
      ['negative', -5, 1],
      ['in milliseconds', 3_600_000, 7 * DAY],
      ['absurd', 1e300, 7 * DAY],
      ['not finite', Number.POSITIVE_INFINITY, 3600],
    ])('stores an access lifetime within bounds when expires_in is %s', async (_, expiresIn, stored) => {
      // Prepare
      const { deps, rotation, record, now } = setup();
      deps.idp.enqueue({
        accessToken: new Secret('at-new'),
        refreshToken: new Secret('rt-new'),
        tokenType: 'Bearer',
        expiresIn,
      });

      // Act
      const outcome = await rotation.rotate(record, AMPLE);

      // Assess: rotated, never retried, the new refresh token stored.
      expect(outcome.kind).toBe('rotated');
      expect(deps.store.peek(KEY)?.accessExpiresAt).toBe(now + stored);
      expect(deps.store.peek(KEY)?.tokens?.refreshToken.reveal()).toBe('rt-new');
    });

    it('never serves an access token past its own JWT expiry', async () => {
      // Prepare: expires_in says a week; the JWT says 10 minutes.
      const { deps, rotation, record, now } = setup();
      const claims = Buffer.from(JSON.stringify({ exp: now + 600 })).toString('base64url');
      deps.idp.enqueue({
        accessToken: new Secret(`e30.${claims}.sig`),
        refreshToken: new Secret('rt-new'),
        tokenType: 'Bearer',
        expiresIn: 7 * DAY,
      });

      // Act
      await rotation.rotate(record, AMPLE);

      // Assess
      expect(deps.store.peek(KEY)?.accessExpiresAt).toBe(now + 600);
    });

    it('ends the record (quarantined) with its own reason when nothing in the answer is usable', async () => {
      // Prepare
      const { deps, rotation, record } = setup();
      deps.idp.enqueue({
        accessToken: undefined,
        refreshToken: undefined,
        tokenType: undefined,
        expiresIn: undefined,
      });

      // Act
      const outcome = await rotation.rotate(record, AMPLE);

      // Assess: never retried, never presented again.
      expect(outcome).toEqual({ kind: 'reauth', reason: 'unusable_answer' });
      expect(deps.idp.calls).toBe(1);
      const stored = deps.store.peek(KEY)!;
      expect(stored.status).toBe('REAUTH_REQUIRED');
      expect(stored.reauthReason).toBe('unusable_answer');
      expect(stored.tokens?.refreshToken.reveal()).toBe('rt-0');
      expect(stored.dueAt).toBeUndefined();
    });
  });
});

describe('Class: RejectionBreaker (through Rotation and Sweep)', () => {
  /** Seeds `count` due records of distinct users, all due now. */
  function seedUsers(deps: ReturnType<typeof makeDeps>, count: number, first = 0): TokenRecord[] {
    const now = deps.clock.nowSeconds();
    return Array.from({ length: count }, (_, i) => {
      const record = activeRecord(now, {
        key: { userId: `user-${first + i}`, resource: 'default' },
        dueShard: 0,
        dueAt: now - 1,
        tokens: {
          accessToken: new Secret(`at-${first + i}`),
          refreshToken: new Secret(`rt-${first + i}`),
        },
      });
      deps.store.seed(record);
      return record;
    });
  }

  it('marks rejected users up to the threshold, then holds every further rejection and says so once', async () => {
    // Prepare: the IdP rejects everyone (a wrong tenant answers invalid_grant).
    const deps = makeDeps({ settings: { rejectionBreaker: { threshold: 3, windowSeconds: 600 } } });
    const records = seedUsers(deps, 8);
    deps.idp.enqueue(...records.map(() => dead()));
    const rotation = new Rotation(deps);

    // Act
    const outcomes = [];
    for (const record of records) outcomes.push(await rotation.rotate(deps.store.peek(record.key)!, AMPLE));

    // Assess
    expect(outcomes.filter((o) => o.kind === 'reauth')).toHaveLength(3);
    expect(outcomes.slice(3).every((o) => o.kind === 'transient' && o.held)).toBe(true);
    expect(deps.metrics.total('RotationCircuitOpen')).toBe(1);
    expect(deps.metrics.total('ReauthRequired')).toBe(3);
    for (const record of records.slice(3)) {
      const stored = deps.store.peek(record.key)!;
      expect(stored.status).toBe('ACTIVE');
      expect(stored.lastError).toBe('rejected_held');
      expect(stored.tokens?.refreshToken.reveal()).toBe(record.tokens?.refreshToken.reveal());
    }
  });

  it('holds a rejection when the breaker state cannot be read (never destroys on doubt)', async () => {
    // Prepare
    const { deps, rotation, record } = setup();
    deps.idp.enqueue(dead());
    deps.store.failNext('getBreaker');

    // Act
    const outcome = await rotation.rotate(record, AMPLE);

    // Assess
    expect(outcome).toMatchObject({ kind: 'transient', held: true });
    expect(deps.store.peek(KEY)?.status).toBe('ACTIVE');
  });

  it('a sweep with the breaker open only probes, and closes it when probes rotate with no rejection', async () => {
    // Prepare
    const deps = makeDeps();
    seedUsers(deps, 10);
    deps.store.breaker = { openedAt: T0 - 60, trustUntil: undefined };
    deps.idp.rotateForever();
    const sweep = new Sweep(deps, { concurrency: 2, pageSize: 100, pacingClock: deps.clock });

    // Act
    const first = await sweep.run(clockBudget(deps.clock, 300_000));
    const second = await sweep.run(clockBudget(deps.clock, 300_000));

    // Assess
    expect(first.rotated).toBe(3);
    expect(deps.store.breaker.openedAt).toBeUndefined();
    expect(second.rotated).toBe(7);
    expect(deps.metrics.total('RotationCircuitOpen')).toBe(1);
  });

  it('a sweep stops rotating after the IdP refuses the client, marking nobody', async () => {
    // Prepare
    const deps = makeDeps();
    seedUsers(deps, 10);
    deps.idp.enqueue(...Array.from({ length: 10 }, refusedClient));
    const sweep = new Sweep(deps, { concurrency: 1, pageSize: 100, pacingClock: deps.clock });

    // Act
    const summary = await sweep.run(clockBudget(deps.clock, 300_000));

    // Assess: one or two calls (two workers per slot), never ten; nobody marked.
    expect(deps.idp.calls).toBeLessThanOrEqual(2);
    expect(summary.reauthRequired).toBe(0);
    expect(deps.metrics.total('ReauthRequired')).toBe(0);
  });
});

describe('Class: TokenService (edges)', () => {
  it('answers ConfigurationError, not ReauthRequired, when the client is refused and no valid token is stored', async () => {
    // Prepare
    const { deps } = setup({ record: { accessExpiresAt: T0 - 1 } });
    deps.idp.enqueue(refusedClient());
    const service = new TokenService(deps);

    // Act
    const error = await rejectionOf(service.getAccessToken({ key: KEY, minValiditySeconds: 60 }, AMPLE));

    // Assess
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(error).not.toBeInstanceOf(ReauthRequiredError);
    expect(deps.store.peek(KEY)?.status).toBe('ACTIVE');
  });

  it('serves the stored token marked stale when a sibling holds the lease past the wait', async () => {
    // Prepare: 30 s of validity left, the caller wants 60, a sibling holds the lease for good.
    const { deps } = setup({
      record: { accessExpiresAt: T0 + 30, lease: { id: 'stuck', untilMs: Number.MAX_SAFE_INTEGER } },
    });
    const service = new TokenService(deps);

    // Act
    const served = await service.getAccessToken({ key: KEY, minValiditySeconds: 60 }, AMPLE);

    // Assess
    expect(served.source).toBe('stale');
    expect(deps.idp.calls).toBe(0);
  });
});

describe('Class: Rotation (a commit whose answer was lost)', () => {
  it('recognises its own applied write on the retry and reports a rotation, not a conflict', async () => {
    // Prepare: the first commit is applied but its answer is lost.
    const { deps, rotation, record } = setup();
    deps.idp.enqueue(tokenSet('new'));
    deps.store.failNext('put', 1, { afterApplying: true });

    // Act
    const outcome = await rotation.rotate(record, AMPLE);

    // Assess
    expect(outcome.kind).toBe('rotated');
    expect(deps.metrics.total('RotationFailed')).toBe(0);
    expect(deps.metrics.total('RotationSucceeded')).toBe(1);
    expect(deps.store.peek(KEY)?.tokens?.refreshToken.reveal()).toBe('rt-new');
  });
});

describe('Class: TokenService (a refused client, later calls)', () => {
  it('keeps answering ConfigurationError while the record backs off after a refused client', async () => {
    // Prepare
    const { deps } = setup({ record: { accessExpiresAt: T0 - 1 } });
    deps.idp.enqueue(refusedClient());
    const service = new TokenService(deps);
    await rejectionOf(service.getAccessToken({ key: KEY, minValiditySeconds: 60 }, AMPLE));

    // Act: the next call falls in the backoff and does not call the IdP.
    const error = await rejectionOf(service.getAccessToken({ key: KEY, minValiditySeconds: 60 }, AMPLE));

    // Assess
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(deps.idp.calls).toBe(1);
  });
});

describe('Class: RejectionBreaker (an IdP that rejects most answers)', () => {
  it('trips after four rejections among the latest answers, well below the window threshold', async () => {
    // Prepare: a high window threshold, so only the mostly-rejecting check can trip it.
    const deps = makeDeps({ settings: { rejectionBreaker: { threshold: 1000, windowSeconds: 600 } } });
    const now = deps.clock.nowSeconds();
    const keys = Array.from({ length: 10 }, (_, i) => ({ userId: `user-${i}`, resource: 'default' }));
    for (const [i, key] of keys.entries()) {
      const tokens = { accessToken: new Secret(`at-${i}`), refreshToken: new Secret(`rt-${i}`) };
      deps.store.seed(activeRecord(now, { key, tokens }));
    }
    deps.idp.enqueue(tokenSet('ok-1'), tokenSet('ok-2'), ...keys.slice(2).map(() => dead()));
    const rotation = new Rotation(deps);

    // Act
    const outcomes = [];
    for (const key of keys) outcomes.push(await rotation.rotate(deps.store.peek(key)!, AMPLE));

    // Assess: two rotated; of the eight rejected, three are marked, the fourth trips, the rest held.
    expect(outcomes.filter((o) => o.kind === 'rotated')).toHaveLength(2);
    expect(outcomes.filter((o) => o.kind === 'reauth')).toHaveLength(3);
    expect(outcomes.filter((o) => o.kind === 'transient' && o.held)).toHaveLength(5);
    expect(deps.metrics.total('RotationCircuitOpen')).toBe(1);
  });

  it('does not trip on a few rejections among many rotations', async () => {
    // Prepare
    const deps = makeDeps({ settings: { rejectionBreaker: { threshold: 1000, windowSeconds: 600 } } });
    const now = deps.clock.nowSeconds();
    const keys = Array.from({ length: 12 }, (_, i) => ({ userId: `user-${i}`, resource: 'default' }));
    for (const [i, key] of keys.entries()) {
      const tokens = { accessToken: new Secret(`at-${i}`), refreshToken: new Secret(`rt-${i}`) };
      deps.store.seed(activeRecord(now, { key, tokens }));
    }
    const answers = keys.map((_, i) => (i % 4 === 3 ? dead() : tokenSet(`ok-${i}`)));
    deps.idp.enqueue(...answers);
    const rotation = new Rotation(deps);

    // Act
    for (const key of keys) await rotation.rotate(deps.store.peek(key)!, AMPLE);

    // Assess
    expect(deps.metrics.total('ReauthRequired')).toBe(3);
    expect(deps.metrics.total('RotationCircuitOpen')).toBe(0);
  });
});
