/**
 * The capacity model of one deployment (README "Capacity"), and a time-compressed simulation of
 * idle users that checks its rotations per day: the real core (TokenService, Rotation, Sweep) on
 * an in-memory store with an instant IdP and a virtual clock, a sweep every 15 virtual minutes.
 */

import { buildRuntime } from '../functions/adapters/runtime';
import { loadConfig } from '../functions/config';
import { Secret } from '../functions/core/secret';
import { FakeClock, InMemoryTokenStore } from '../test/support/fakes';
import { InMemoryMetrics, RecordingEventPublisher } from '../test/support/observability';
import { MB_PER_VCPU, rotationIntervalDays, STACK } from './cost';
import { silentLogger } from './instrument';

const DAY = 86_400;

/** What one deployment is asked to do and what it runs on. */
export interface CapacityScenario {
  readonly name: string;
  /** IDP_RATE_LIMIT_RPS: IdP calls the sweep starts per second at most. */
  readonly idpRatePerSecond: number;
  readonly concurrency: number;
  readonly memoryMb: number;
  readonly idpLatencyMs: number;
  /** One DynamoDB request from Lambda. */
  readonly dynamoLatencyMs: number;
  /** Share of the time a sweep is running while a backlog lasts. */
  readonly dutyCycle: number;
}

/** The bounds on rotations per second, the least of them, and the users it keeps alive. */
export interface CapacityRow extends CapacityScenario {
  readonly idpBound: number;
  readonly concurrencyBound: number;
  readonly cpuBound: number;
  readonly dynamoBound: number;
  readonly rotationsPerSecond: number;
  readonly limitedBy: string;
  readonly rotationsPerDay: number;
  readonly users: number;
}

/**
 * rotations/s = min(R, k / (L + 3 d + c · 1769 / M), (M / 1769) · 1000 / c, DynamoDB) while a
 * sweep runs; users = rotations/s × 86,400 × duty cycle × I, with I the days between two rotations
 * of an idle user. `cpuMsPerRotation` is the service's CPU per rotation measured by the bench
 * (on this machine's CPU); `writeUnits` the WRU of a rotation (table + index), `indexWriteUnits`
 * the due index's part, which lands on one of DUE_SHARDS partitions of 1,000 WRU/s.
 */
export function capacity(
  s: CapacityScenario,
  measured: { cpuMsPerRotation: number; writeUnits: number; indexWriteUnits: number },
): CapacityRow {
  const cpuStretchedMs = (measured.cpuMsPerRotation * MB_PER_VCPU) / s.memoryMb;
  const idpBound = s.idpRatePerSecond;
  const concurrencyBound = (s.concurrency * 1000) / (s.idpLatencyMs + 3 * s.dynamoLatencyMs + cpuStretchedMs);
  const cpuBound = 1000 / cpuStretchedMs;
  // On-demand: 40,000 WRU/s per table by default; the index by due shard: 1,000 WRU/s per shard.
  const dynamoBound = Math.min(
    40_000 / Math.max(1, measured.writeUnits),
    (STACK.dueShards * 1000) / Math.max(1, measured.indexWriteUnits),
  );
  const bounds: [string, number][] = [
    ['IdP rate', idpBound],
    ['sweep concurrency / latency', concurrencyBound],
    [`sweep CPU at ${s.memoryMb} MB`, cpuBound],
    ['DynamoDB write capacity', dynamoBound],
  ];
  const [limitedBy, rotationsPerSecond] = bounds.reduce((a, b) => (b[1] < a[1] ? b : a));
  const rotationsPerDay = rotationsPerSecond * DAY * s.dutyCycle;
  return {
    ...s,
    idpBound,
    concurrencyBound,
    cpuBound,
    dynamoBound,
    rotationsPerSecond,
    limitedBy,
    rotationsPerDay,
    users: rotationsPerDay * rotationIntervalDays(),
  };
}

/** The outcome of {@link simulateIdleUsers}. */
export interface IdleSimulation {
  readonly users: number;
  readonly days: number;
  /** Rotations per day over the measured window (after the first rotation interval). */
  readonly measuredPerDay: number;
  /** The model: users / I. */
  readonly modelPerDay: number;
  /** measured / model - 1. */
  readonly error: number;
  readonly wallSeconds: number;
}

/**
 * Users sign in spread evenly over one rotation interval, never ask for a token, and are kept
 * alive by the sweep alone; rotations are counted over the days after the first interval.
 */
export async function simulateIdleUsers(users: number, days: number): Promise<IdleSimulation> {
  const started = performance.now();
  const clock = new FakeClock();
  const metrics = new InMemoryMetrics();
  let counter = 0;
  const runtime = buildRuntime(
    loadConfig({
      TOKEN_TABLE_NAME: 'simulated',
      LOCAL_TOKEN_KEY: Buffer.alloc(32).toString('base64'),
      CLIENT_ID: 'sim',
      CLIENT_SECRET: 'sim',
      IDP_RATE_LIMIT_RPS: '10000',
      SWEEP_CONCURRENCY: '64',
    }),
    {
      clock,
      store: new InMemoryTokenStore(),
      idp: {
        refresh: async () => ({
          accessToken: new Secret(`at-${++counter}`),
          refreshToken: new Secret(`rt-${counter}`),
          tokenType: 'Bearer',
          expiresIn: 3600,
        }),
      },
      logger: silentLogger,
      metrics,
      events: new RecordingEventPublisher(silentLogger),
      sleep: async () => {},
      sweepPageSize: 1000,
    },
  );
  const interval = rotationIntervalDays() * DAY;
  const sweepEvery = 15 * 60;
  const budget = { remainingMs: () => 300_000 };
  const start = Math.floor(clock.nowMs() / 1000);
  let signedIn = 0;
  let windowStart: number | undefined;
  for (let t = start; t < start + days * DAY; t += sweepEvery) {
    // Sign-ins spread evenly over the first interval.
    const target = Math.min(users, Math.floor(((t - start) / interval) * users));
    for (; signedIn < target; signedIn++) {
      await runtime.tokenService.storeTokens({
        key: { userId: `user-${signedIn}`, resource: 'default' },
        authenticatedAt: undefined,
        tokens: {
          accessToken: new Secret('at'),
          refreshToken: new Secret(`rt-first-${signedIn}`),
          tokenType: 'Bearer',
          expiresIn: 3600,
        },
      });
    }
    clock.set(t * 1000);
    await runtime.sweep.run(budget);
    if (windowStart === undefined && t - start >= interval + DAY)
      windowStart = metrics.total('RotationSucceeded');
  }
  const windowDays = days - rotationIntervalDays() - 1;
  const measuredPerDay = (metrics.total('RotationSucceeded') - (windowStart ?? 0)) / windowDays;
  const modelPerDay = users / rotationIntervalDays();
  return {
    users,
    days,
    measuredPerDay,
    modelPerDay,
    error: measuredPerDay / modelPerDay - 1,
    wallSeconds: (performance.now() - started) / 1000,
  };
}
