import { randomBytes } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { LocalTokenCipher } from '../functions/adapters/cipher/local-cipher';
import { type Bundle, bundleEntry, composition, runChild } from './bundle';
import { localFunctionEnv, type Percentiles, percentiles } from './latency';
import { seedRecords, withBenchTable } from './seed';

/** The functions, their entries and memory as lib/token-keeper.ts deploys them. */
export const FUNCTIONS = {
  storeTokens: { entry: 'functions/handlers/store-tokens.ts', memoryMb: 256 },
  getAccessToken: { entry: 'functions/handlers/get-access-token.ts', memoryMb: 256 },
  refreshSweep: { entry: 'functions/handlers/refresh-sweep.ts', memoryMb: 512 },
  disconnect: { entry: 'functions/handlers/disconnect.ts', memoryMb: 256 },
  expiryStream: { entry: 'functions/handlers/expiry-stream.ts', memoryMb: 256 },
  tokenStatus: { entry: 'functions/handlers/token-status.ts', memoryMb: 256 },
} as const;

/** The functions whose cold start the bench times (the other two are bundled for their size). */
export type TimedFunction = 'storeTokens' | 'getAccessToken' | 'refreshSweep';

/** A function name. */
export type FunctionName = keyof typeof FUNCTIONS;

/** How much the cold-start section does. */
export interface ColdStartProfile {
  /** Bundled and measured for size. */
  readonly sized: readonly FunctionName[];
  /** Timed in fresh processes. */
  readonly functions: readonly TimedFunction[];
  /** Fresh processes per function and mode. */
  readonly runs: number;
  /** Also run without `--enable-source-maps` (the stack sets it). */
  readonly withoutSourceMaps: boolean;
}

/** Sizes of one bundle. */
export interface BundleSize {
  readonly name: FunctionName;
  readonly memoryMb: number;
  readonly bundleBytes: number;
  readonly sourceMapBytes: number;
  /** Deflated size of both files: about the zip the stack uploads. */
  readonly zippedBytes: number;
  readonly topPackages: { name: string; bytes: number }[];
}

/** Cold-start timings of one function in one mode (medians over the runs). */
export interface ColdStartTiming {
  readonly name: TimedFunction;
  readonly sourceMaps: boolean;
  readonly runs: number;
  /** Node.js start until the harness's first line. */
  readonly nodeBootMs: Percentiles;
  /** `await import(bundle)`. */
  readonly importMs: Percentiles;
  /** The first invocation: runtime built from the environment, SDK clients, first requests. */
  readonly firstCallMs: Percentiles;
  readonly secondCallMs: Percentiles;
  /** fork() until the result: what a caller waits for beyond the Lambda service's own start. */
  readonly totalMs: Percentiles;
  readonly rssMb: number;
  readonly failures: readonly string[];
}

/** The result of the cold-start section. */
export interface ColdStartResult {
  readonly sizes: BundleSize[];
  readonly timings: ColdStartTiming[];
}

interface HarnessResult {
  readonly bootMs: number;
  readonly importMs: number;
  readonly firstCallMs: number;
  readonly secondCallMs: number;
  readonly rssMb: number;
  readonly error?: string;
}

/**
 * A plain ESM module (no TypeScript loader in the measured process): waits for the event, then
 * imports the bundle and calls its handler twice.
 */
const HARNESS = `const bootMs = performance.now();
process.once('message', async ({ bundle, event }) => {
  let error;
  const t0 = performance.now();
  const mod = await import(bundle);
  const t1 = performance.now();
  try { await mod.handler(event); } catch (e) { error = (e && e.name) || 'Error'; }
  const t2 = performance.now();
  try { await mod.handler(event); } catch (e) { error = error || (e && e.name) || 'Error'; }
  const t3 = performance.now();
  process.send({ bootMs, importMs: t1 - t0, firstCallMs: t2 - t1, secondCallMs: t3 - t2,
    rssMb: process.memoryUsage.rss() / 1048576, error }, () => process.exit(0));
});
`;

/** Section 4: bundles each function as the stack does, then times fresh processes importing and calling it. */
export async function measureColdStart(
  dynamoEndpoint: string,
  outDir: string,
  profile: ColdStartProfile,
): Promise<ColdStartResult> {
  const bundles = new Map<FunctionName, Bundle>();
  const sizes: BundleSize[] = [];
  for (const name of new Set<FunctionName>([...profile.sized, ...profile.functions])) {
    const bundle = await bundleEntry(FUNCTIONS[name].entry, join(outDir, name));
    bundles.set(name, bundle);
    const code = readFileSync(bundle.file);
    const map = readFileSync(`${bundle.file}.map`);
    sizes.push({
      name,
      memoryMb: FUNCTIONS[name].memoryMb,
      bundleBytes: statSync(bundle.file).size,
      sourceMapBytes: map.length,
      zippedBytes: deflateRawSync(code, { level: 9 }).length + deflateRawSync(map, { level: 9 }).length,
      topPackages: composition(bundle.metafile).slice(0, 6),
    });
  }
  const harness = join(outDir, 'cold-harness.mjs');
  writeFileSync(harness, HARNESS);

  const localKey = randomBytes(32).toString('base64');
  const cipher = LocalTokenCipher.fromBase64(localKey);
  return withBenchTable(dynamoEndpoint, 'cold', async ({ clock, transmit, target }) => {
    await seedRecords({ target, transmit, clock, count: 1, userPrefix: 'cold-get-', cipher });
    const timings: ColdStartTiming[] = [];
    const modes = profile.withoutSourceMaps ? [true, false] : [true];
    let dueUsers = 0;
    for (const name of profile.functions) {
      for (const sourceMaps of modes) {
        const runs: HarnessResult[] = [];
        const totals: number[] = [];
        for (let run = 0; run < profile.runs; run++) {
          let event: unknown;
          if (name === 'getAccessToken') event = { userId: 'cold-get-0' };
          else if (name === 'storeTokens') {
            const tokens = await transmit.signIn(`cold-store-${run}`);
            event = { userId: `cold-store-${run}`, tokens };
          } else {
            // One record due now (signed in 12 days ago), so the first sweep rotates it.
            await seedRecords({
              target,
              transmit,
              clock,
              count: 1,
              userPrefix: `cold-due-${dueUsers++}-`,
              cipher,
              authenticatedOffsetSeconds: -12 * 86_400,
            });
            event = { source: 'aws.events', 'detail-type': 'Scheduled Event' };
          }
          const child = await runChild<HarnessResult>(
            harness,
            { bundle: bundles.get(name)?.file, event },
            {
              env: localFunctionEnv({ ...target, localKey, sourceMaps }),
              timeoutMs: 60_000,
            },
          );
          runs.push(child.result);
          totals.push(child.wallMs);
        }
        timings.push({
          name,
          sourceMaps,
          runs: runs.length,
          nodeBootMs: percentiles(runs.map((r) => r.bootMs)),
          importMs: percentiles(runs.map((r) => r.importMs)),
          firstCallMs: percentiles(runs.map((r) => r.firstCallMs)),
          secondCallMs: percentiles(runs.map((r) => r.secondCallMs)),
          totalMs: percentiles(totals),
          rssMb: Math.max(...runs.map((r) => r.rssMb)),
          failures: runs.flatMap((r) => (r.error ? [r.error] : [])),
        });
      }
    }
    return { sizes, timings };
  });
}
