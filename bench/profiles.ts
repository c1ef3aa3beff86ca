import type { CallsProfile } from './calls';
import type { ColdStartProfile } from './cold-start';
import type { LatencyProfile } from './latency';
import type { SweepProfile } from './sweep';

/** Everything one bench run does. */
export interface BenchProfile {
  readonly name: 'full' | 'smoke';
  readonly calls: CallsProfile;
  readonly latency: LatencyProfile;
  readonly sweep: SweepProfile;
  readonly coldStart: ColdStartProfile;
}

/**
 * `npm run bench`: about 8 minutes on 2 cores. DynamoDB Local (Java, one SQLite database) is the
 * slowest part of the machine, so the sweep cases are time-boxed invocations against a table of
 * 10,000 due records (topped up when the backlog runs low) rather than runs to the last record;
 * the report says exactly what ran.
 */
export const FULL: BenchProfile = {
  name: 'full',
  calls: { users: 100, warmRounds: 5, burst: 20 },
  latency: { warmup: 200, iterations: 2000, cpuIterations: 500 },
  sweep: {
    dueRecords: 10_000,
    caseSeconds: 30,
    pageSize: 100,
    baselineRotations: 300,
    cases: [
      { latencyMs: 0, concurrency: 64 },
      { latencyMs: 50, concurrency: 8 },
      { latencyMs: 50, concurrency: 32 },
      { latencyMs: 50, concurrency: 64 },
      { latencyMs: 200, concurrency: 8, profileCpu: true },
      { latencyMs: 200, concurrency: 32 },
      { latencyMs: 200, concurrency: 64 },
      { latencyMs: 50, concurrency: 64, idpRateLimit: 20 },
    ],
  },
  coldStart: {
    sized: ['storeTokens', 'getAccessToken', 'refreshSweep', 'disconnect', 'expiryStream'],
    functions: ['storeTokens', 'getAccessToken', 'refreshSweep'],
    runs: 5,
    withoutSourceMaps: true,
  },
};

/** `npm run bench:smoke` and the test in `npm test`: seconds; every section runs, small. */
export const SMOKE: BenchProfile = {
  name: 'smoke',
  calls: { users: 12, warmRounds: 2, burst: 5 },
  latency: { warmup: 20, iterations: 100, cpuIterations: 20 },
  sweep: {
    dueRecords: 40,
    pageSize: 100,
    baselineRotations: 20,
    cases: [{ latencyMs: 5, concurrency: 8, profileCpu: true }],
  },
  coldStart: { sized: ['getAccessToken'], functions: ['getAccessToken'], runs: 1, withoutSourceMaps: false },
};
