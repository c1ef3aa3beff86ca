import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_SCHEDULE,
  nextDueAt,
  reauthSoonAt,
  refreshExpiry,
  retryAt,
  shardOf,
} from '../../../functions/core/lifetimes';
import type { LifetimePolicy } from '../../../functions/core/model';
import { DAY } from '../../support/fakes';

const POLICY: LifetimePolicy = {
  refreshTokenTtlSeconds: 14 * DAY,
  maxRotationSeconds: 365 * DAY,
  refreshAheadSeconds: 3 * DAY,
};
const SCHEDULE = { retryBaseSeconds: 30, retryCapSeconds: 900 };
const NOW = 1_767_225_600; // 2026-01-01T00:00:00Z
const unit = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });

describe('Function: refreshExpiry', () => {
  it('is the issue time plus the refresh token TTL when the deadline is further away', () => {
    // Act
    const expiry = refreshExpiry(NOW, NOW + 365 * DAY, POLICY);

    // Assess
    expect(expiry).toBe(NOW + 14 * DAY);
  });

  it('is capped by the rotation deadline', () => {
    // Act
    const expiry = refreshExpiry(NOW, NOW + 5 * DAY, POLICY);

    // Assess
    expect(expiry).toBe(NOW + 5 * DAY);
  });

  it('never exceeds either bound (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 400 * DAY }), (deadlineOffset) => {
        const expiry = refreshExpiry(NOW, NOW + deadlineOffset, POLICY);
        expect(expiry).toBeLessThanOrEqual(NOW + deadlineOffset);
        expect(expiry).toBeLessThanOrEqual(NOW + POLICY.refreshTokenTtlSeconds);
        expect(expiry === NOW + deadlineOffset || expiry === NOW + POLICY.refreshTokenTtlSeconds).toBe(true);
      }),
    );
  });
});

describe('Function: nextDueAt', () => {
  const refreshExpiresAt = NOW + 14 * DAY;
  const deadline = NOW + 365 * DAY;

  it('is refreshAhead before the refresh expiry when the jitter draws 0', () => {
    // Act
    const due = nextDueAt(refreshExpiresAt, deadline, POLICY, NOW, () => 0);

    // Assess
    expect(due).toBe(refreshExpiresAt - 3 * DAY);
  });

  it('takes at most 6 hours of jitter off a long refreshAhead', () => {
    // Act
    const due = nextDueAt(refreshExpiresAt, deadline, POLICY, NOW, () => 0.999_999_9);

    // Assess
    expect(due).toBe(refreshExpiresAt - 3 * DAY - (6 * 3600 - 1));
  });

  it('takes at most a quarter of a short refreshAhead as jitter', () => {
    // Prepare
    const policy = { ...POLICY, refreshTokenTtlSeconds: 7200, refreshAheadSeconds: 3600 };

    // Act
    const earliest = nextDueAt(NOW + 7200, deadline, policy, NOW, () => 0.999_999_9);

    // Assess
    expect(earliest).toBe(NOW + 7200 - 3600 - 899);
  });

  it('stays within [expiry - ahead - min(ahead/4, 6 h), expiry - ahead] for any draw (property)', () => {
    fc.assert(
      fc.property(unit, fc.integer({ min: 4, max: 10 * DAY }), (draw, ahead) => {
        const policy = { ...POLICY, refreshAheadSeconds: ahead, refreshTokenTtlSeconds: ahead * 2 };
        const expiry = NOW + ahead * 2;
        const due = nextDueAt(expiry, deadline, policy, NOW, () => draw);
        expect(Number.isInteger(due)).toBe(true);
        expect(due).toBeLessThanOrEqual(expiry - ahead);
        expect(due).toBeGreaterThanOrEqual(expiry - ahead - Math.min(ahead / 4, 6 * 3600));
      }),
    );
  });

  it('is never in the past: a record already inside its refresh window is due now', () => {
    // Act
    const due = nextDueAt(NOW + DAY, deadline, POLICY, NOW, () => 0.5);

    // Assess
    expect(due).toBe(NOW);
  });

  it('makes a record whose refresh expiry equals its rotation deadline due only at the deadline', () => {
    // Prepare
    const cappedDeadline = NOW + 10 * DAY;

    // Act
    const dues = [0, 0.5, 0.999].map((draw) =>
      nextDueAt(cappedDeadline, cappedDeadline, POLICY, NOW, () => draw),
    );

    // Assess
    expect(dues).toEqual([cappedDeadline, cappedDeadline, cappedDeadline]);
  });

  it('makes a capped record due at the deadline even when the deadline is within refreshAhead', () => {
    // Prepare
    const cappedDeadline = NOW + 3600;

    // Act
    const due = nextDueAt(cappedDeadline, cappedDeadline, POLICY, NOW, () => 0);

    // Assess
    expect(due).toBe(cappedDeadline);
  });

  it('is never after the rotation deadline (property)', () => {
    fc.assert(
      fc.property(
        unit,
        fc.integer({ min: 1, max: 30 * DAY }),
        fc.integer({ min: 0, max: 30 * DAY }),
        (draw, a, b) => {
          const expiry = NOW + a;
          const rotationDeadline = expiry + b;
          expect(nextDueAt(expiry, rotationDeadline, POLICY, NOW, () => draw)).toBeLessThanOrEqual(
            rotationDeadline,
          );
        },
      ),
    );
  });
});

describe('Function: reauthSoonAt', () => {
  const record = {
    authenticatedAt: NOW - 300 * DAY,
    rotationDeadline: NOW + 65 * DAY,
    reauthSoonNotifiedAt: undefined,
  };

  it('is the notice window before the rotation deadline', () => {
    // Act
    const at = reauthSoonAt(record, 14 * DAY);

    // Assess
    expect(at).toBe(NOW + 51 * DAY);
  });

  it('is never earlier than halfway to the deadline (a short max rotation would warn at sign-in)', () => {
    // Act
    const at = reauthSoonAt({ ...record, authenticatedAt: NOW, rotationDeadline: NOW + 7 * DAY }, 14 * DAY);

    // Assess
    expect(at).toBe(NOW + 3.5 * DAY);
  });

  it('is undefined when the notice is off or was already sent', () => {
    // Act
    const off = reauthSoonAt(record, 0);
    const sent = reauthSoonAt({ ...record, reauthSoonNotifiedAt: NOW - 1 }, 14 * DAY);

    // Assess
    expect(off).toBeUndefined();
    expect(sent).toBeUndefined();
  });

  it('brings the next due time forward to the notice, never into the past', () => {
    // Act
    const forward = nextDueAt(NOW + 14 * DAY, NOW + 20 * DAY, POLICY, NOW, () => 0, NOW + 6 * DAY);
    const later = nextDueAt(NOW + 14 * DAY, NOW + 200 * DAY, POLICY, NOW, () => 0, NOW + 186 * DAY);
    const past = nextDueAt(NOW + 14 * DAY, NOW + 20 * DAY, POLICY, NOW, () => 0, NOW - DAY);
    const capped = nextDueAt(NOW + 5 * DAY, NOW + 5 * DAY, POLICY, NOW, () => 0, NOW + 3 * DAY);

    // Assess
    expect(forward).toBe(NOW + 6 * DAY);
    expect(later).toBe(NOW + 11 * DAY);
    expect(past).toBe(NOW);
    expect(capped).toBe(NOW + 3 * DAY);
  });
});

describe('Function: retryAt', () => {
  const record = { refreshExpiresAt: NOW + 4 * DAY };

  it('waits at least half the ceiling even when the jitter draws 0 (equal jitter)', () => {
    // Act
    const at = retryAt(record, 1, undefined, NOW, SCHEDULE, () => 0);

    // Assess
    expect(at).toBe(NOW + 15);
  });

  it('waits at most the base delay after the first failure', () => {
    // Act
    const at = retryAt(record, 1, undefined, NOW, SCHEDULE, () => 0.999_999);

    // Assess
    expect(at).toBe(NOW + 30);
  });

  it('doubles the ceiling per consecutive failure', () => {
    // Act
    const ceilings = [1, 2, 3, 4, 5].map(
      (failures) => retryAt(record, failures, undefined, NOW, SCHEDULE, () => 0.999_999) - NOW,
    );

    // Assess
    expect(ceilings).toEqual([30, 60, 120, 240, 480]);
  });

  it('caps the ceiling at retryCapSeconds', () => {
    // Act
    const delays = [6, 7, 20, 1000].map(
      (failures) => retryAt(record, failures, undefined, NOW, SCHEDULE, () => 0.999_999) - NOW,
    );

    // Assess
    expect(delays).toEqual([900, 900, 900, 900]);
  });

  it('draws the delay uniformly in [ceiling / 2, ceiling] (equal jitter, property)', () => {
    fc.assert(
      fc.property(unit, fc.integer({ min: 1, max: 40 }), (draw, failures) => {
        const delay = retryAt(record, failures, undefined, NOW, SCHEDULE, () => draw) - NOW;
        const ceiling = Math.min(900, 30 * 2 ** (failures - 1));
        expect(delay).toBeGreaterThanOrEqual(ceiling / 2);
        expect(delay).toBeLessThanOrEqual(ceiling);
        expect(delay).toBe(Math.max(1, Math.ceil(ceiling / 2 + (draw * ceiling) / 2)));
      }),
    );
  });

  it('bounds the attempts per hour at the cap: no more than 3600 / (cap / 2)', () => {
    // Act: the shortest possible delays, back to back, once failures reached the cap.
    let at = NOW;
    let attempts = 0;
    while (at < NOW + 3600) {
      at = retryAt({ refreshExpiresAt: NOW + 4 * DAY }, 10, undefined, at, SCHEDULE, () => 0);
      attempts++;
    }

    // Assess
    expect(attempts).toBeLessThanOrEqual(3600 / (900 / 2));
  });

  it('honours a Retry-After longer than the drawn delay', () => {
    // Act
    const at = retryAt(record, 1, 120, NOW, SCHEDULE, () => 0.5);

    // Assess
    expect(at).toBe(NOW + 120);
  });

  it('honours a Retry-After longer than the backoff cap', () => {
    // Act
    const at = retryAt(record, 1, 3600, NOW, SCHEDULE, () => 0.5);

    // Assess
    expect(at).toBe(NOW + 3600);
  });

  it('keeps the drawn delay when Retry-After is shorter', () => {
    // Act
    const at = retryAt(record, 5, 2, NOW, SCHEDULE, () => 0.5);

    // Assess
    expect(at).toBe(NOW + 360); // ceiling 480: 240 fixed + half of 240 drawn
  });

  it('never schedules the retry after refreshExpiresAt - 60, even against Retry-After', () => {
    // Prepare
    const soon = { refreshExpiresAt: NOW + 300 };

    // Act
    const backoff = retryAt(soon, 10, undefined, NOW, SCHEDULE, () => 0.999);
    const told = retryAt(soon, 1, 86_400, NOW, SCHEDULE, () => 0);

    // Assess
    expect(backoff).toBe(NOW + 240);
    expect(told).toBe(NOW + 240);
  });

  it('retries in one second when the refresh token expires within the minute', () => {
    // Act
    const at = retryAt({ refreshExpiresAt: NOW + 30 }, 3, 600, NOW, SCHEDULE, () => 0.9);

    // Assess
    expect(at).toBe(NOW + 1);
  });

  it('is always in the future and never later than max(now + 1, refreshExpiresAt - 60) (property)', () => {
    fc.assert(
      fc.property(
        unit,
        fc.integer({ min: 1, max: 2000 }),
        fc.option(fc.integer({ min: 0, max: 10 * DAY }), { nil: undefined }),
        fc.integer({ min: -600, max: 20 * DAY }),
        (draw, failures, retryAfter, expiresIn) => {
          const at = retryAt(
            { refreshExpiresAt: NOW + expiresIn },
            failures,
            retryAfter,
            NOW,
            SCHEDULE,
            () => draw,
          );
          expect(Number.isSafeInteger(at)).toBe(true);
          expect(at).toBeGreaterThan(NOW);
          expect(at).toBeLessThanOrEqual(Math.max(NOW + 1, NOW + expiresIn - 60));
        },
      ),
    );
  });

  it('uses 30 s base and 15 min cap by default', () => {
    // Assess
    expect(DEFAULT_SCHEDULE).toEqual({ retryBaseSeconds: 30, retryCapSeconds: 900 });
  });
});

describe('Function: shardOf', () => {
  it('gives the same shard for the same key every time', () => {
    // Prepare
    const key = { userId: 'user-42', resource: 'https://api.example.com' };

    // Act
    const shards = Array.from({ length: 5 }, () => shardOf({ ...key }, 16));

    // Assess
    expect(new Set(shards).size).toBe(1);
  });

  it('pins known keys to known shards (a changed hash would strand stored records)', () => {
    // Act
    const shards = [
      shardOf({ userId: 'user-1', resource: 'default' }, 4),
      shardOf({ userId: 'user-1', resource: 'default' }, 64),
      shardOf({ userId: 'user-2', resource: 'default' }, 64),
      shardOf({ userId: 'user-1', resource: 'default' }, 1),
    ];

    // Assess
    expect(shards).toEqual([1, 17, 32, 0]);
  });

  it('stays in [0, shards) for any key and shard count (property)', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.integer({ min: 1, max: 64 }), (userId, resource, shards) => {
        const shard = shardOf({ userId, resource }, shards);
        expect(Number.isInteger(shard)).toBe(true);
        expect(shard).toBeGreaterThanOrEqual(0);
        expect(shard).toBeLessThan(shards);
      }),
    );
  });

  it('separates user id and resource (moving a character across the boundary changes the hash)', () => {
    // Act
    let same = 0;
    for (let i = 0; i < 64; i++) {
      if (
        shardOf({ userId: `ab${i}`, resource: 'c' }, 64) === shardOf({ userId: 'a', resource: `b${i}c` }, 64)
      )
        same++;
    }

    // Assess
    expect(same).toBeLessThan(8);
  });

  it('spreads keys over every shard', () => {
    // Act
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 2000; i++) counts[shardOf({ userId: `user-${i}`, resource: 'default' }, 4)]! += 1;

    // Assess
    for (const count of counts) expect(count).toBeGreaterThan(350);
  });
});
