/**
 * Bundled and run in a fresh process by bench/sweep.ts: one sweep invocation of a fresh
 * instance (production runtime, logger and metrics; calls counted), timed, with its CPU time and
 * memory. Its logs and EMF metrics go to stdout, where the parent counts their bytes.
 */
import type { SweepSummary } from '../../functions/core/sweep';
import { startProfiling } from '../cpu-profile';
import { type BenchTarget, serviceInstance } from '../instance';
import { COUNTED, type Counts, InFlightGauge, OffsetClock, Tally } from '../instrument';
import { answerParent } from './answer-parent';
import { type BareRotationParams, type BareRotationResult, bareRotations } from './bare-rotations';

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
  /** When set, the same requests through bare clients after the sweep, at the same concurrency. */
  readonly baseline?: BareRotationParams;
}

/** What the child answers. */
export interface SweepChildResult {
  readonly summary: SweepSummary;
  readonly wallMs: number;
  readonly cpuMs: number;
  /** CPU per IdP refresh once the instance is warm (its first rotations left out), when measurable. */
  readonly steadyCpuMsPerRotation: number | undefined;
  readonly rssStartMb: number;
  readonly peakRssMb: number;
  readonly calls: Counts;
  /** Mean IdP refresh calls in flight over the sweep. */
  readonly idpInFlightMean: number;
  readonly baseline?: BareRotationResult;
}

const MB = 1024 * 1024;

answerParent('sweep child', run);

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
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
  }, 25);

  const started = performance.now();
  const budget = { remainingMs: () => params.timeoutMs - (performance.now() - started) };
  const stopProfiling = params.profileFile ? await startProfiling(1000) : undefined;
  const cpuBefore = process.cpuUsage();
  // The steady state starts once the first rotations (connections, client token, data key, JIT)
  // are behind: CPU and refreshes from there to the end.
  const warmUp = 2 * params.concurrency + 20;
  let steadyFrom: { cpu: NodeJS.CpuUsage; refreshes: number } | undefined;
  const steadySampler = setInterval(() => {
    const refreshes = tally.get(COUNTED.idpRefresh);
    if (!steadyFrom && refreshes >= warmUp) steadyFrom = { cpu: process.cpuUsage(), refreshes };
  }, 50);
  gauge.restart();
  const summary = await runtime.sweep.run(budget);
  const wallMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  clearInterval(steadySampler);
  let steadyCpuMsPerRotation: number | undefined;
  const steadyRefreshes = steadyFrom ? tally.get(COUNTED.idpRefresh) - steadyFrom.refreshes : 0;
  if (steadyFrom && steadyRefreshes >= 20) {
    const used = process.cpuUsage(steadyFrom.cpu);
    steadyCpuMsPerRotation = (used.user + used.system) / 1000 / steadyRefreshes;
  }
  if (stopProfiling && params.profileFile) await stopProfiling(params.profileFile);
  const idpInFlightMean = gauge.mean();
  runtime.flush();
  clearInterval(sampler);
  close();
  const baseline = params.baseline ? await bareRotations(params.baseline, params.concurrency) : undefined;
  return {
    summary,
    wallMs,
    cpuMs: (cpu.user + cpu.system) / 1000,
    steadyCpuMsPerRotation,
    rssStartMb,
    peakRssMb: Math.max(peakRss, process.memoryUsage.rss()) / MB,
    calls: tally.snapshot(),
    idpInFlightMean,
    ...(baseline ? { baseline } : {}),
  };
}
