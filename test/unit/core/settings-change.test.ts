import { describe, expect, it } from 'vitest';
import { shardOf } from '../../../functions/core/lifetimes';
import type { LifetimePolicy, RecordKey } from '../../../functions/core/model';
import { type LifetimeSettings, loweredSchedule } from '../../../functions/core/reindex';
import { Secret } from '../../../functions/core/secret';
import { Sweep } from '../../../functions/core/sweep';
import { TokenService } from '../../../functions/core/token-service';
import {
  activeRecord,
  DAY,
  FakeClock,
  fixedBudget,
  InMemoryTokenStore,
  makeDeps,
  ScriptedIdentityProvider,
  T0,
  TEST_LIFETIMES,
  type TestDeps,
} from '../../support/fakes';

/** The settings a stored record depends on. */
interface Settings {
  readonly dueShards: number;
  readonly lifetimes: LifetimePolicy;
  readonly resourceLifetimes: Readonly<Record<string, Partial<LifetimePolicy>>>;
  readonly reauthSoonSeconds: number;
}

const BASE: Settings = {
  dueShards: 4,
  lifetimes: TEST_LIFETIMES,
  resourceLifetimes: {},
  reauthSoonSeconds: 0,
};
const HOUR = 3600;
/** Sweeps run hourly; a re-index starts its Scan 15 min after the first sweep that sees a change. */
const SWEEP_EVERY = HOUR;
const API = 'https://api.example.com';

function lifetimeSettings(settings: Settings): LifetimeSettings {
  const resources: Record<string, LifetimePolicy> = {};
  for (const [name, override] of Object.entries(settings.resourceLifetimes)) {
    resources[name] = { ...settings.lifetimes, ...override };
  }
  return { defaults: settings.lifetimes, resources, reauthSoonSeconds: settings.reauthSoonSeconds };
}

/** A key whose shard under `shards` satisfies `wanted`. */
function keyWhere(wanted: (key: RecordKey) => boolean, resource = 'default'): RecordKey {
  for (let i = 0; ; i++) {
    const key = { userId: `user-${i}`, resource };
    if (wanted(key)) return key;
  }
}

/**
 * One deployment whose settings change once: a store, an IdP and a clock that outlive the change,
 * and a runtime (deps, service, sweep) per settings, as Lambda instances after a redeploy.
 */
class World {
  readonly clock = new FakeClock();
  readonly store = new InMemoryTokenStore();
  readonly idp = new ScriptedIdentityProvider({ clock: this.clock }).rotateForever();

  runtime(settings: Settings): { deps: TestDeps; service: TokenService; sweep: Sweep } {
    const deps = makeDeps({
      clock: this.clock,
      store: this.store,
      idp: this.idp,
      settings: { dueShards: settings.dueShards, reauthSoonSeconds: settings.reauthSoonSeconds },
      lifetimes: settings.lifetimes,
      resourceLifetimes: settings.resourceLifetimes,
    });
    const sweep = new Sweep(deps, {
      concurrency: 4,
      pageSize: 100,
      pacingClock: this.clock,
      reindex: { lifetimes: lifetimeSettings(settings), settleSeconds: 900, pageSize: 50 },
    });
    return { deps, service: new TokenService(deps), sweep };
  }

  /** Sweeps every {@link SWEEP_EVERY} until `untilSeconds` (epoch seconds). */
  async sweepUntil(sweep: Sweep, untilSeconds: number): Promise<void> {
    while (this.clock.nowSeconds() < untilSeconds) {
      this.clock.advanceSeconds(SWEEP_EVERY);
      await sweep.run(fixedBudget(600_000));
    }
  }

  /** Epoch seconds of each IdP refresh call. */
  refreshTimes(): number[] {
    return this.idp.startedAtMs.map((ms) => Math.floor(ms / 1000));
  }
}

/** Signs `key` in at T0 under `before`, sweeps under `before` until `changeAt`, then under `after` until `until`. */
async function scenario(options: {
  key: RecordKey;
  before: Partial<Settings>;
  after: Partial<Settings>;
  changeAt: number;
  until: number;
}) {
  const world = new World();
  const before = world.runtime({ ...BASE, ...options.before });
  await before.service.storeTokens({
    key: options.key,
    authenticatedAt: undefined,
    tokens: {
      accessToken: new Secret('at-signin'),
      refreshToken: new Secret('rt-signin'),
      sessionId: new Secret('sess-signin'),
      tokenType: 'Bearer',
      expiresIn: 3600,
    },
  });
  const stored = world.store.peek(options.key)!;
  await world.sweepUntil(before.sweep, options.changeAt);
  const rotationsBefore = world.idp.calls;
  const after = world.runtime({ ...BASE, ...options.after });
  await world.sweepUntil(after.sweep, options.until);
  return {
    world,
    stored,
    after,
    /** Refresh calls made after the settings changed. */
    rotationsAfter: world.refreshTimes().slice(rotationsBefore),
    final: world.store.peek(options.key)!,
  };
}

describe('Settings that change under stored records', () => {
  it('DUE_SHARDS lowered (8 to 4): a record in shard 4-7 is still rotated on time, and moves under 4', async () => {
    // Prepare
    const key = keyWhere((k) => shardOf(k, 8) >= 4);

    // Act
    const { stored, final, rotationsAfter, after } = await scenario({
      key,
      before: { dueShards: 8 },
      after: { dueShards: 4 },
      changeAt: T0 + DAY,
      until: T0 + 15 * DAY,
    });

    // Assess
    expect(stored.dueShard).toBeGreaterThanOrEqual(4);
    expect(rotationsAfter[0]).toBeDefined();
    expect(rotationsAfter[0]!).toBeLessThanOrEqual(stored.dueAt! + SWEEP_EVERY);
    expect(final.status).toBe('ACTIVE');
    expect(final.dueShard).toBeLessThan(4);
    expect(after.deps.metrics.total('TokensExpired')).toBe(0);
  });

  it('DUE_SHARDS raised (4 to 8): a record is still rotated on time', async () => {
    // Prepare
    const key = keyWhere((k) => shardOf(k, 4) !== shardOf(k, 8));

    // Act
    const { stored, final, rotationsAfter } = await scenario({
      key,
      before: { dueShards: 4 },
      after: { dueShards: 8 },
      changeAt: T0 + DAY,
      until: T0 + 15 * DAY,
    });

    // Assess
    expect(rotationsAfter[0]!).toBeLessThanOrEqual(stored.dueAt! + SWEEP_EVERY);
    expect(final.status).toBe('ACTIVE');
  });

  it('REFRESH_TOKEN_TTL_SECONDS lowered (14 d to 7 d): rotated before the shorter lifetime ends', async () => {
    // Prepare
    const key = { userId: 'ttl', resource: 'default' };
    const ttl = 7 * DAY;

    // Act
    const { stored, final, rotationsAfter, world } = await scenario({
      key,
      before: {},
      after: { lifetimes: { ...TEST_LIFETIMES, refreshTokenTtlSeconds: ttl } },
      changeAt: T0 + DAY,
      until: T0 + 8 * DAY,
    });

    // Assess: due under the new TTL at T0 + 7 d - 3 d (refresh ahead), give or take a sweep.
    expect(stored.refreshExpiresAt).toBe(T0 + 14 * DAY);
    expect(rotationsAfter[0]!).toBeLessThanOrEqual(T0 + ttl - TEST_LIFETIMES.refreshAheadSeconds + 2 * HOUR);
    expect(final.status).toBe('ACTIVE');
    expect(final.lastRotatedAt).toBeDefined();
    expect(world.store.count('scanRecords')).toBeGreaterThan(0);
  });

  it("a TTL lowered below a record's age does not end it: the record is rotated at once instead", async () => {
    // Prepare: signed in at T0 under 14 days; at T0 + 8 d the TTL drops to 7 d (already over).
    const key = { userId: 'aged', resource: 'default' };

    // Act
    const { final, rotationsAfter, after } = await scenario({
      key,
      before: {},
      after: { lifetimes: { ...TEST_LIFETIMES, refreshTokenTtlSeconds: 7 * DAY } },
      changeAt: T0 + 8 * DAY,
      until: T0 + 9 * DAY,
    });

    // Assess: sweeps after the change start the pass, Scan and lower it (due now), then rotate it.
    expect(rotationsAfter[0]!).toBeLessThanOrEqual(T0 + 8 * DAY + 3 * SWEEP_EVERY);
    expect(final.status).toBe('ACTIVE');
    expect(after.deps.metrics.total('TokensExpired')).toBe(0);
    expect(after.deps.metrics.total('ReauthRequired')).toBe(0);
  });

  it('REFRESH_TOKEN_TTL_SECONDS raised: no Scan, the record is just rotated at its stored time', async () => {
    // Prepare
    const key = { userId: 'ttl-up', resource: 'default' };

    // Act
    const { stored, rotationsAfter, world } = await scenario({
      key,
      before: {},
      after: { lifetimes: { ...TEST_LIFETIMES, refreshTokenTtlSeconds: 30 * DAY } },
      changeAt: T0 + DAY,
      until: T0 + 12 * DAY,
    });

    // Assess: one Scan (the first sweep's, settings unknown before it) and none after the change.
    expect(rotationsAfter[0]!).toBeLessThanOrEqual(stored.dueAt! + SWEEP_EVERY);
    expect(world.store.count('scanRecords')).toBe(1);
  });

  it('REFRESH_AHEAD_SECONDS raised (3 d to 6 d): rotated 6 days ahead', async () => {
    // Prepare
    const key = { userId: 'ahead', resource: 'default' };
    const ahead = 6 * DAY;

    // Act
    const { rotationsAfter } = await scenario({
      key,
      before: {},
      after: { lifetimes: { ...TEST_LIFETIMES, refreshAheadSeconds: ahead } },
      changeAt: T0 + DAY,
      until: T0 + 12 * DAY,
    });

    // Assess
    expect(rotationsAfter[0]!).toBeLessThanOrEqual(T0 + 14 * DAY - ahead + 2 * HOUR);
  });

  it('MAX_ROTATION_SECONDS lowered (365 d to 30 d): the record ends at the new deadline, not a year later', async () => {
    // Prepare
    const key = { userId: 'max-rotation', resource: 'default' };

    // Act
    const { final, after } = await scenario({
      key,
      before: {},
      after: { lifetimes: { ...TEST_LIFETIMES, maxRotationSeconds: 30 * DAY } },
      changeAt: T0 + DAY,
      until: T0 + 31 * DAY,
    });

    // Assess: rotations stop extending past T0 + 30 d; there the record needs a new sign-in.
    expect(final).toMatchObject({ status: 'REAUTH_REQUIRED', reauthReason: 'deadline' });
    expect(final.rotationDeadline).toBe(T0 + 30 * DAY);
    expect(final.reauthAt!).toBeLessThanOrEqual(T0 + 30 * DAY + SWEEP_EVERY);
    expect(after.deps.metrics.total('TokensExpired')).toBe(0);
  });

  it('RESOURCE_LIFETIMES lowered for one resource (TTL 7 d): that resource is rotated in time', async () => {
    // Prepare
    const key = { userId: 'resource', resource: API };

    // Act
    const { rotationsAfter } = await scenario({
      key,
      before: {},
      after: { resourceLifetimes: { [API]: { refreshTokenTtlSeconds: 7 * DAY } } },
      changeAt: T0 + DAY,
      until: T0 + 8 * DAY,
    });

    // Assess
    expect(rotationsAfter[0]!).toBeLessThanOrEqual(
      T0 + 7 * DAY - TEST_LIFETIMES.refreshAheadSeconds + 2 * HOUR,
    );
  });

  it('REAUTH_SOON_DAYS raised (off to 14 d): the app hears it 14 days before the deadline', async () => {
    // Prepare: a 30-day maximum rotation; the change lands after the first rotation scheduled the next.
    const key = { userId: 'soon', resource: 'default' };
    const lifetimes = { ...TEST_LIFETIMES, maxRotationSeconds: 30 * DAY };

    // Act
    const { after } = await scenario({
      key,
      before: { lifetimes },
      after: { lifetimes, reauthSoonSeconds: 14 * DAY },
      changeAt: T0 + 12 * DAY,
      until: T0 + 20 * DAY,
    });

    // Assess
    const soon = after.deps.events.published.find((e) => e.type === 'Reauth Soon');
    expect(soon).toBeDefined();
    expect(soon!.at).toBeLessThanOrEqual(T0 + 16 * DAY + 2 * HOUR);
  });

  it('never clobbers a rotation: it waits out a live lease, then lowers what the rotation committed', async () => {
    // Prepare: stored under a 14-day TTL; the TTL is lowered to 7 days; a caller holds the lease.
    const world = new World();
    const before = world.runtime(BASE);
    const key = { userId: 'leased', resource: 'default' };
    await before.sweep.run(fixedBudget(600_000));
    await before.service.storeTokens({
      key,
      authenticatedAt: undefined,
      tokens: {
        accessToken: new Secret('a'),
        refreshToken: new Secret('r'),
        tokenType: 'Bearer',
        expiresIn: 3600,
      },
    });
    world.clock.advanceSeconds(HOUR);
    await before.sweep.run(fixedBudget(600_000));
    const after = world.runtime({
      ...BASE,
      lifetimes: { ...TEST_LIFETIMES, refreshTokenTtlSeconds: 7 * DAY },
    });
    await after.sweep.run(fixedBudget(600_000));
    world.clock.advanceSeconds(HOUR);
    world.store.update(key, (r) => ({
      ...r,
      lease: { id: 'caller', untilMs: world.clock.nowMs() + 30_000 },
    }));
    const leased = world.store.peek(key)!;
    // The lease holder (an instance still on the 14-day TTL) commits while the re-index waits.
    let committedAt = 0;
    world.store.beforeNext('get', () => {
      committedAt = world.clock.nowSeconds();
      world.store.update(key, (r) => ({
        ...r,
        version: r.version + 1,
        lease: undefined,
        lastRotatedAt: committedAt,
        refreshExpiresAt: committedAt + 14 * DAY,
        expiresAt: committedAt + 14 * DAY,
        dueAt: committedAt + 11 * DAY,
        rotations: r.rotations + 1,
      }));
    });

    // Act
    await after.sweep.run(fixedBudget(600_000));

    // Assess: the commit landed (its version), then the re-index lowered its result.
    const final = world.store.peek(key)!;
    expect(committedAt).toBeGreaterThan(0);
    expect(world.clock.nowMs()).toBeGreaterThanOrEqual(leased.lease!.untilMs);
    expect(final.version).toBe(leased.version + 2);
    expect(final.rotations).toBe(1);
    expect(final.refreshExpiresAt).toBe(committedAt + 7 * DAY);
    expect(final.dueAt!).toBeLessThanOrEqual(committedAt + 4 * DAY);
  });

  it('leaves a record in backoff at its retry time: a re-index never undoes the backoff', () => {
    // Prepare: it failed and waits for its retry in 5 minutes.
    const now = T0;
    const record = activeRecord(now, { failures: 2, dueAt: now + 300, refreshExpiresAt: now + DAY });

    // Act: under the same settings, and under a TTL that lowers its expiry (issued 10 days ago).
    const same = loweredSchedule(record, TEST_LIFETIMES, 0, 4, now, () => 0.5);
    const lowered = loweredSchedule(
      { ...record, refreshExpiresAt: now + 10 * DAY, lastRotatedAt: now - 10 * DAY },
      TEST_LIFETIMES,
      0,
      4,
      now,
      () => 0.5,
    );

    // Assess
    expect(same).toBeUndefined();
    expect(lowered).toMatchObject({ refreshExpiresAt: now + 4 * DAY, dueAt: now + 300 });
  });
});
