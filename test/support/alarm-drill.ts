import { Duration, type Stack } from 'aws-cdk-lib';
import type { Template } from 'aws-cdk-lib/assertions';
import type { TokenCipher } from '../../functions/adapters/cipher/token-cipher';
import { StoreUnavailableError } from '../../functions/core/errors';
import type { TokenStore } from '../../functions/core/ports';
import { type RecordedDatapoint, RecordingMetrics } from '../../local/recording-metrics';
import {
  runSimulation,
  type SimulationOptions,
  type SimulationReport,
  type SimulationStep,
} from '../../local/simulation';
import { synthStack } from '../infra/support/app';
import { type AlarmBand, bucketCounts, bucketSums, bucketWidthMs, type RunChart } from './alarm-chart';
import {
  type AlarmDefinition,
  alarmsOfTemplate,
  DatapointIndex,
  evaluateAlarm,
  type Transition,
} from './cloudwatch-alarms';

const DAY = 86_400;
const HOUR = 3600;

/** How long the key and DynamoDB faults last. */
const OUTAGE_HOURS = 12;

/** The faults a drill can inject, from `faultAtDay` on. */
export type FaultScenario =
  | 'healthy'
  | 'idp-down-6h'
  | 'sweep-disabled'
  | 'idp-403'
  | 'token-key-disabled'
  | 'dynamodb-throttled';

/** The alarm each fault scenario must raise. */
export const EXPECTED_ALARM: Readonly<Record<Exclude<FaultScenario, 'healthy'>, string>> = {
  'idp-down-6h': 'RotationFailing',
  'sweep-disabled': 'SweepHeartbeat',
  'idp-403': 'IdpConfigurationRejected',
  // Callers fail at once (every read opens tokens); RotationFailing follows once enough records
  // have come due (3 hours of mostly failing rotations).
  'token-key-disabled': 'UnexpectedErrors',
  // The sweep cannot even query the due index: no run completes.
  'dynamodb-throttled': 'SweepHeartbeat',
};

/** What to run. */
export interface DrillOptions {
  readonly scenario: FaultScenario;
  /** When the fault starts (virtual days from the start). */
  readonly faultAtDay?: number;
  /** Simulation settings; the stack is synthesized with the same sweep interval. */
  readonly simulation: Omit<SimulationOptions, 'hooks'>;
}

/** One alarm that went to ALARM. */
export interface RaisedAlarm {
  /** The alarm's id (its name without the stack and service). */
  readonly id: string;
  readonly severity: 'critical' | 'warning';
  /** Virtual time of the first ALARM. */
  readonly firstAlarmAtMs: number;
  /** Times it went to ALARM. */
  readonly times: number;
}

/** Where one alarm's state went over the run. */
export interface AlarmTimeline {
  readonly id: string;
  readonly severity: 'critical' | 'warning';
  /** Its state changes, from INSUFFICIENT_DATA at the start. */
  readonly transitions: readonly Transition[];
  /** Whether its metric (or any metric of its expression) had a datapoint in the run. */
  readonly hadData: boolean;
}

/** What a drill found. */
export interface DrillResult {
  readonly scenario: FaultScenario;
  readonly alarms: readonly AlarmDefinition[];
  readonly raised: readonly RaisedAlarm[];
  readonly startMs: number;
  readonly endMs: number;
  readonly faultAtMs: number | undefined;
  /**
   * The earliest refresh expiry, at the fault, among records that still had rotations ahead: the
   * first token that would be lost if nothing were done.
   */
  readonly firstLossAtMs: number | undefined;
  readonly report: SimulationReport;
  readonly datapoints: number;
  /** Every datapoint the run recorded (metrics and what Lambda counts), with its virtual time. */
  readonly recorded: readonly RecordedDatapoint[];
  /** Virtual times of the refresh requests the IdP failed (injected faults). */
  readonly idpFaultsAtMs: readonly number[];
  /** Every alarm's state changes over the run. */
  readonly timelines: readonly AlarmTimeline[];
}

/** The alarms of a TokenKeeper stack synthesized with this sweep interval, Refs resolved to labels. */
export function synthesizedAlarms(sweepIntervalMinutes: number): AlarmDefinition[] {
  const { stack, template } = synthStack({ sweepInterval: Duration.minutes(sweepIntervalMinutes) });
  const tk = stack.tokenKeeper;
  const labels = new Map<string, string>();
  const label = (construct: { node: { defaultChild?: unknown } }, name: string) =>
    labels.set(stack.getLogicalId(construct.node.defaultChild as Parameters<Stack['getLogicalId']>[0]), name);
  label(tk.storeTokensFunction, 'StoreTokens');
  label(tk.getAccessTokenFunction, 'GetAccessToken');
  label(tk.refreshSweepFunction, 'RefreshSweep');
  label(tk.disconnectFunction, 'Disconnect');
  label(tk.expiryStreamFunction, 'ExpiryStream');
  const resolve = (value: unknown): string => {
    if (typeof value === 'string') return value;
    const ref = (value as { Ref?: string }).Ref;
    const getAtt = (value as { 'Fn::GetAtt'?: [string, string] })['Fn::GetAtt'];
    const id = ref ?? getAtt?.[0];
    if (id === undefined) throw new Error(`cannot resolve ${JSON.stringify(value)}`);
    return labels.get(id) ?? id;
  };
  const resources = (template as Template).toJSON().Resources as Record<
    string,
    { Type: string; Properties?: unknown }
  >;
  return alarmsOfTemplate(resources, resolve);
}

/**
 * Runs the simulation with a fault from `faultAtDay` on, records every metric it emits (with
 * virtual timestamps) and what Lambda would count for each handler call, and evaluates the
 * synthesized alarms over the whole run.
 */
export async function runAlarmDrill(options: DrillOptions): Promise<DrillResult> {
  const sweepMinutes = options.simulation.sweepEveryMinutes ?? 60;
  const alarms = synthesizedAlarms(sweepMinutes);
  const faultAtSeconds = options.scenario === 'healthy' ? undefined : (options.faultAtDay ?? 0) * DAY;
  const faultRate = options.simulation.faultRate ?? 0.02;
  const state = { keyDisabled: false, throttled: false };
  let recorder: RecordingMetrics | undefined;
  let startMs: number | undefined;
  let faultAtMs: number | undefined;
  let firstLossAtMs: number | undefined;
  let nowMs = 0;
  let idpLog: SimulationStep['transmit']['refreshLog'] | undefined;

  const report = await runSimulation({
    ...options.simulation,
    hooks: {
      metrics: (clock) => {
        recorder = new RecordingMetrics(clock);
        return recorder;
      },
      onInvoke: (call) => recorder?.recordInvocation(call),
      wrapStore: (store) => throttling(store, () => state.throttled),
      wrapCipher: (cipher) => disabling(cipher, () => state.keyDisabled),
      beforeStep: async (step) => {
        startMs ??= step.nowMs;
        nowMs = step.nowMs;
        idpLog ??= step.transmit.refreshLog;
        if (faultAtSeconds === undefined || step.elapsedSeconds < faultAtSeconds) return undefined;
        const since = step.elapsedSeconds - faultAtSeconds;
        if (faultAtMs === undefined) {
          faultAtMs = step.nowMs;
          firstLossAtMs = earliestLoss(await step.scanItems());
        }
        switch (options.scenario) {
          case 'idp-down-6h':
            if (since === 0) step.transmit.faults.failRate(1, { kind: 'status', status: 503 });
            if (since >= 6 * HOUR) step.transmit.faults.failRate(faultRate, { kind: 'status', status: 503 });
            return undefined;
          case 'idp-403':
            step.transmit.faults.failRate(1, { kind: 'status', status: 403 });
            return undefined;
          case 'sweep-disabled':
            return { sweep: false };
          // Both end after OUTAGE_HOURS (the operator re-enabled the key, the load went away), so the
          // run's own end-of-run audit can read the table again.
          case 'token-key-disabled':
            state.keyDisabled = since < OUTAGE_HOURS * HOUR;
            return undefined;
          case 'dynamodb-throttled':
            state.throttled = since < OUTAGE_HOURS * HOUR;
            return undefined;
          default:
            return undefined;
        }
      },
    },
  });
  if (!recorder || startMs === undefined) throw new Error('the simulation recorded nothing');
  const endMs = nowMs + sweepMinutes * 60_000;
  const index = new DatapointIndex(recorder.datapoints);
  const raised: RaisedAlarm[] = [];
  const timelines: AlarmTimeline[] = [];
  for (const alarm of alarms) {
    const transitions = evaluateAlarm(alarm, index, startMs, endMs);
    const id = alarm.name.replace(/^TokenKeeperTest-token-keeper-/, '');
    const severity = alarm.description.startsWith('[critical]') ? 'critical' : 'warning';
    timelines.push({ id, severity, transitions, hadData: hadData(alarm, index, startMs, endMs) });
    const alarmed = transitions.filter((t) => t.state === 'ALARM');
    const first = alarmed[0];
    if (first) raised.push({ id, severity, firstAlarmAtMs: first.atMs, times: alarmed.length });
  }
  raised.sort((a, b) => a.firstAlarmAtMs - b.firstAlarmAtMs);
  return {
    scenario: options.scenario,
    alarms,
    raised,
    startMs,
    endMs,
    faultAtMs,
    firstLossAtMs,
    report,
    datapoints: recorder.datapoints.length,
    recorded: recorder.datapoints,
    idpFaultsAtMs: (idpLog ?? []).filter((entry) => entry.outcome === 'fault').map((entry) => entry.atMs),
    timelines,
  };
}

/** Whether an alarm's metric, or any metric of its expression, has a datapoint in the run. */
function hadData(alarm: AlarmDefinition, index: DatapointIndex, startMs: number, endMs: number): boolean {
  const metrics = alarm.metric.kind === 'metric' ? [alarm.metric.stat] : Object.values(alarm.metric.metrics);
  return metrics.some((m) => index.values(m, startMs, endMs).length > 0);
}

/** What a chart of a drill needs from its result. */
export type ChartedRun = Pick<
  DrillResult,
  'scenario' | 'startMs' | 'endMs' | 'faultAtMs' | 'recorded' | 'idpFaultsAtMs' | 'timelines'
> & {
  readonly report: {
    readonly options: Pick<SimulationReport['options'], 'users' | 'days' | 'sweepEveryMinutes' | 'faultRate'>;
  };
};

/** What a drill's chart shows: the key metrics per bucket and every alarm that left OK, as bands. */
export function chartOfDrill(result: ChartedRun): RunChart {
  const { startMs, endMs } = result;
  const sweepMs = result.report.options.sweepEveryMinutes * 60_000;
  const bucketMs = bucketWidthMs(endMs - startMs, sweepMs);
  const sums = (metricName: string) => bucketSums(result.recorded, metricName, startMs, endMs, bucketMs);
  const alarms: AlarmBand[] = [];
  for (const timeline of result.timelines) {
    const intervals: { fromMs: number; toMs: number }[] = [];
    timeline.transitions.forEach((transition, i) => {
      if (transition.state !== 'ALARM') return;
      intervals.push({ fromMs: transition.atMs, toMs: timeline.transitions[i + 1]?.atMs ?? endMs });
    });
    if (intervals.length > 0) alarms.push({ alarm: timeline.id, severity: timeline.severity, intervals });
  }
  const o = result.report.options;
  return {
    title: `${result.scenario}: ${o.users} users, ${o.days} days, sweep every ${o.sweepEveryMinutes} min, ${Math.round(o.faultRate * 100)} % IdP faults`,
    startMs,
    endMs,
    bucketMs,
    panels: [
      {
        title: 'Rotations',
        series: [
          { label: 'rotated', colour: '#1b9e77', values: sums('RotationSucceeded') },
          { label: 'rotation failed', colour: '#d95f02', values: sums('RotationFailed') },
        ],
      },
      {
        title: 'Faults',
        series: [
          {
            label: 'IdP faults (injected)',
            colour: '#7570b3',
            values: bucketCounts(result.idpFaultsAtMs, startMs, endMs, bucketMs),
          },
          { label: 'unexpected errors', colour: '#e7298a', values: sums('UnexpectedError') },
        ],
      },
      {
        title: 'Sweep',
        series: [
          { label: 'due', colour: '#1f78b4', values: sums('SweepDue') },
          { label: 'backlog', colour: '#b15928', values: sums('SweepBacklog') },
        ],
      },
      {
        title: 'Sweep runs (the heartbeat)',
        series: [{ label: 'sweeps completed', colour: '#666666', values: sums('SweepCompleted') }],
      },
    ],
    alarms,
    alarmsQuiet: result.timelines.length - alarms.length,
    markers:
      result.faultAtMs === undefined ? [] : [{ atMs: result.faultAtMs, label: `fault: ${result.scenario}` }],
  };
}

/** Minutes from the fault to an alarm. */
export function minutesToAlarm(result: DrillResult, id: string): number | undefined {
  const alarm = result.raised.find((r) => r.id === id);
  if (!alarm || result.faultAtMs === undefined) return undefined;
  return Math.round((alarm.firstAlarmAtMs - result.faultAtMs) / 60_000);
}

/** The earliest refresh expiry of an ACTIVE record that still had rotations ahead (epoch ms). */
function earliestLoss(items: Record<string, { S?: string; N?: string }>[]): number | undefined {
  let earliest: number | undefined;
  for (const item of items) {
    if (item.status?.S !== 'ACTIVE') continue;
    const expires = Number(item.refreshExpiresAt?.N);
    if (expires >= Number(item.rotationDeadline?.N)) continue;
    if (earliest === undefined || expires < earliest) earliest = expires;
  }
  return earliest === undefined ? undefined : earliest * 1000;
}

/** DynamoDB refusing every request while `on()` (the adapter turns a throttle into this error). */
function throttling(store: TokenStore, on: () => boolean): TokenStore {
  return new Proxy(store, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) =>
        on()
          ? Promise.reject(new StoreUnavailableError('DynamoDB throttled the request (ThrottlingException)'))
          : (value as (...a: unknown[]) => unknown).apply(target, args);
    },
  });
}

/** The token key disabled while `on()`: KMS refuses, which the KMS adapter reports as this error. */
function disabling(cipher: TokenCipher, on: () => boolean): TokenCipher {
  const refuse = () => Promise.reject(new StoreUnavailableError('KMS refused the key (DisabledException)'));
  return {
    seal: (plaintext, aad) => (on() ? refuse() : cipher.seal(plaintext, aad)),
    open: (sealed, aad) => (on() ? refuse() : cipher.open(sealed, aad)),
  };
}
