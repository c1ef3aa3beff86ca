import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleEntry } from './bundle';
import { type CallsResult, measureCalls } from './calls';
import { type ColdStartResult, measureColdStart } from './cold-start';
import { type CostResult, costModel, type MeasuredInputs } from './cost';
import { type LatencyResult, measureLatency } from './latency';
import { describeMachine, type Machine } from './machine';
import type { BenchProfile } from './profiles';
import { renderReport } from './report';
import { measureSweeps, type SweepCaseResult, type SweepResult } from './sweep';

/** Everything a bench run measured. */
export interface BenchResults {
  readonly profile: BenchProfile;
  readonly machine: Machine;
  readonly loadAverageAtEnd: readonly number[];
  readonly calls: CallsResult;
  readonly latency: LatencyResult;
  readonly sweep: SweepResult;
  readonly coldStart: ColdStartResult;
  readonly cost: CostResult;
  /** Seconds per section, and in total. */
  readonly seconds: Readonly<Record<string, number>>;
}

/** Options of {@link runBench}. */
export interface RunBenchOptions {
  /** A running DynamoDB Local. */
  readonly dynamoEndpoint: string;
  readonly profile: BenchProfile;
  /** Progress lines (the CLI prints them; the smoke test keeps quiet). */
  readonly progress?: (line: string) => void;
}

/** Runs every section of the bench against DynamoDB Local and the Transmit emulator. */
export async function runBench(
  options: RunBenchOptions,
): Promise<{ results: BenchResults; markdown: string }> {
  const { dynamoEndpoint, profile } = options;
  const say = options.progress ?? (() => undefined);
  const machine = describeMachine();
  const seconds: Record<string, number> = {};
  const started = performance.now();
  const timed = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
    const sectionStarted = performance.now();
    say(`${name}...`);
    const value = await work();
    seconds[name] = (performance.now() - sectionStarted) / 1000;
    say(`${name}: ${seconds[name]?.toFixed(1)} s`);
    return value;
  };

  const outDir = mkdtempSync(join(tmpdir(), 'token-keeper-bench-'));
  try {
    const children = await timed('bundling the bench processes', async () => ({
      latency: await bundleEntry('bench/children/latency-child.ts', join(outDir, 'latency-child')),
      sweep: await bundleEntry('bench/children/sweep-child.ts', join(outDir, 'sweep-child')),
    }));
    const calls = await timed('1. calls per operation', () => measureCalls(dynamoEndpoint, profile.calls));
    const latency = await timed('2. latency', () =>
      measureLatency(dynamoEndpoint, children.latency.file, profile.latency),
    );
    const sweep = await timed('3. sweep throughput', () =>
      measureSweeps(dynamoEndpoint, children.sweep.file, profile.sweep, (c) =>
        say(
          `   ${c.latencyMs} ms, concurrency ${c.concurrency}, ${c.due} due: ` +
            `${c.rotationsPerSecond.toFixed(1)} rotations/s in ${c.wallSeconds.toFixed(1)} s` +
            (c.problems.length > 0 ? ` (${c.problems.join('; ')})` : ''),
        ),
      ),
    );
    const coldStart = await timed('4. cold start', () =>
      measureColdStart(dynamoEndpoint, join(outDir, 'functions'), profile.coldStart),
    );
    const cost = costModel(measuredInputs(calls, latency, sweep.cases, coldStart));
    seconds.total = (performance.now() - started) / 1000;
    const results: BenchResults = {
      profile,
      machine,
      loadAverageAtEnd: describeMachine().loadAverage,
      calls,
      latency,
      sweep,
      coldStart,
      cost,
      seconds,
    };
    return { results, markdown: renderReport(results) };
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
}

/** The measured figures the cost model starts from. */
export function measuredInputs(
  calls: CallsResult,
  latency: LatencyResult,
  sweeps: readonly SweepCaseResult[],
  coldStart: ColdStartResult,
): MeasuredInputs {
  const op = (prefix: string) => calls.operations.find((o) => o.operation.startsWith(prefix));
  const warm = op('getAccessToken, valid');
  const refresh = op('getAccessToken, refresh');
  const rotation = op('refreshSweep');
  const cpu = sweeps.map((s) => s.serviceCpuMsPerRotation).sort((a, b) => a - b);
  const logs = sweeps.map((s) => s.logBytesPerRotation).sort((a, b) => a - b);
  const sweepCold = coldStart.timings.find((t) => t.name === 'refreshSweep' && t.sourceMaps);
  const anyCold = coldStart.timings.find((t) => t.sourceMaps);
  const cold = sweepCold ?? anyCold;
  return {
    warm: { readUnits: warm?.readUnits ?? 1, calls: warm?.perOp.total ?? 1 },
    refresh: {
      readUnits: refresh?.readUnits ?? 1,
      writeUnits: (refresh?.writeUnitsTable ?? 0) + (refresh?.writeUnitsIndex ?? 0),
    },
    rotation: {
      readUnits: rotation?.readUnits ?? 1,
      writeUnits: (rotation?.writeUnitsTable ?? 0) + (rotation?.writeUnitsIndex ?? 0),
      indexWriteUnits: rotation?.writeUnitsIndex ?? 0,
    },
    warmCpuMs: latency.handlerCpuMs,
    rotationCpuMs: cpu[Math.floor(cpu.length / 2)] ?? 0,
    warmLogBytes: latency.logBytesPerCall,
    rotationLogBytes: logs[Math.floor(logs.length / 2)] ?? 0,
    itemBytes: calls.meanItemBytes,
    sweepColdStartMs: cold ? cold.importMs.p50 + cold.firstCallMs.p50 : 0,
  };
}
