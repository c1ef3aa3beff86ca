import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleEntry } from './bundle';
import { type CallsResult, measureCalls, operation } from './calls';
import {
  type CapacityRow,
  type CapacityScenario,
  capacity,
  type IdleSimulation,
  simulateIdleUsers,
} from './capacity';
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
  readonly capacity: { readonly rows: CapacityRow[]; readonly simulation: IdleSimulation };
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
    const simulation = await timed('5. capacity simulation', () =>
      simulateIdleUsers(profile.capacity.users, profile.capacity.days),
    );
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
      capacity: { rows: capacityRows(calls, sweep), simulation },
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
  const warm = operation(calls, 'getAccessToken, valid');
  const refresh = operation(calls, 'getAccessToken, refresh');
  const rotation = operation(calls, 'refreshSweep');
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

/** The capacity model for the stack's defaults and for Transmit's published limits, from measured inputs. */
export function capacityRows(calls: CallsResult, sweep: SweepResult): CapacityRow[] {
  const rotation = operation(calls, 'refreshSweep');
  const steady = sweep.cases.flatMap((s) =>
    s.steadyCpuMsPerRotation === undefined ? [] : [s.steadyCpuMsPerRotation],
  );
  const cpu = [...(steady.length > 0 ? steady : sweep.cases.map((s) => s.serviceCpuMsPerRotation))].sort(
    (a, b) => a - b,
  );
  const measured = {
    cpuMsPerRotation: cpu[Math.floor(cpu.length / 2)] ?? 5,
    writeUnits: (rotation?.writeUnitsTable ?? 6) + (rotation?.writeUnitsIndex ?? 2),
    indexWriteUnits: rotation?.writeUnitsIndex ?? 2,
  };
  const base = { idpLatencyMs: 200, dynamoLatencyMs: 5, concurrency: 8, memoryMb: 512, idpRatePerSecond: 20 };
  // A chain keeps the sweep running but for the gaps between links; without one, 285 s of every 900 s.
  const dutyCycle = sweep.chain?.dutyCycle ?? 285 / 300;
  const transmitApp = { idpRatePerSecond: 20_000 / 60, dutyCycle };
  const scenarios: (Partial<CapacityScenario> & { name: string })[] = [
    { name: 'defaults, schedule only (no continuation)', dutyCycle: 285 / 900 },
    { name: 'defaults (continuation on)', dutyCycle },
    { name: 'Transmit app limit (20,000/min), other defaults', ...transmitApp },
    { name: 'Transmit app limit, SWEEP_CONCURRENCY 96', ...transmitApp, concurrency: 96 },
    {
      name: 'Transmit app limit, SWEEP_CONCURRENCY 96, 3,008 MB',
      ...transmitApp,
      concurrency: 96,
      memoryMb: 3008,
    },
  ];
  return scenarios.map((scenario) => capacity({ ...base, dutyCycle, ...scenario }, measured));
}
