/**
 * Bundled and run in a fresh process by bench/sweep.ts: one sweep invocation of a fresh
 * instance (production runtime, logger and metrics; calls counted), timed, with its CPU time and
 * memory. Its logs and EMF metrics go to stdout, where the parent counts their bytes.
 */
import type { SweepSummary } from '../../functions/core/sweep';
import { startProfiling } from '../cpu-profile';
import { type BenchTarget, serviceInstance } from '../instance';
import { type Counts, InFlightGauge, OffsetClock, Tally } from '../instrument';

/** What the parent sends. */
export interface SweepParams {
  readonly target: BenchTarget;
  /** The shared clock's offset from real time. */
  readonly offsetMs: number;
  readonly concurrency: number;
  /** IDP_RATE_LIMIT_RPS. */
  readonly idpRateLimit: number;
  readonly pageSize: number;
  /** The invocation's timeout (the stack gives the sweep 300 s). */
  readonly timeoutMs: number;
  /** When set, a CPU profile of the sweep is written there. */
  readonly profileFile?: string;
}

/** What the child answers. */
export interface SweepChildResult {
  readonly summary: SweepSummary;
  readonly wallMs: number;
  readonly cpuMs: number;
  readonly rssStartMb: number;
  readonly peakRssMb: number;
  readonly peakHeapMb: number;
  readonly calls: Counts;
  readonly idpInFlight: { mean: number; peak: number };
  /** The shared clock when the sweep ended (epoch ms). */
  readonly endMs: number;
}

const MB = 1024 * 1024;

process.once('message', (message) => {
  run(message as SweepParams).then(
    (result) => process.send?.(result, () => process.exit(0)),
    (error: unknown) => {
      process.stderr.write(`sweep child failed: ${error instanceof Error ? error.name : typeof error}\n`);
      process.exit(1);
    },
  );
});

async function run(params: SweepParams): Promise<SweepChildResult> {
  const clock = new OffsetClock(params.offsetMs);
  const tally = new Tally();
  const gauge = new InFlightGauge();
  const { runtime, close } = serviceInstance({
    target: params.target,
    clock,
    tally,
    gauge,
    env: { SWEEP_CONCURRENCY: String(params.concurrency), IDP_RATE_LIMIT_RPS: String(params.idpRateLimit) },
    overrides: { sweepPageSize: params.pageSize },
  });
  const rssStartMb = process.memoryUsage.rss() / MB;
  let peakRss = process.memoryUsage.rss();
  let peakHeap = process.memoryUsage().heapUsed;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
    peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
  }, 25);

  const started = performance.now();
  const budget = { remainingMs: () => params.timeoutMs - (performance.now() - started) };
  const stopProfiling = params.profileFile ? await startProfiling(1000) : undefined;
  const cpuBefore = process.cpuUsage();
  gauge.restart();
  const summary = await runtime.sweep.run(budget);
  const wallMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  if (stopProfiling && params.profileFile) await stopProfiling(params.profileFile);
  const idpInFlight = gauge.read();
  runtime.flush();
  clearInterval(sampler);
  close();
  return {
    summary,
    wallMs,
    cpuMs: (cpu.user + cpu.system) / 1000,
    rssStartMb,
    peakRssMb: Math.max(peakRss, process.memoryUsage.rss()) / MB,
    peakHeapMb: peakHeap / MB,
    calls: tally.snapshot(),
    idpInFlight,
    endMs: clock.nowMs(),
  };
}
