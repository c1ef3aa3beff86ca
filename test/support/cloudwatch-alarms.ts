/**
 * A small CloudWatch alarm evaluator, for proving the synthesized alarms against the datapoints a
 * simulation emits. It follows what the CloudWatch user guide documents ("Using Amazon CloudWatch
 * alarms": evaluation periods, datapoints to alarm, treatment of missing data; "Using math
 * expressions"), with these simplifications, stated so a reader can judge them:
 *
 * - Periods are aligned to the epoch (as CloudWatch aggregates) and a period is evaluated once,
 *   when it has ended; no ingestion delay, no look-back beyond the evaluation range.
 * - A metric is one namespace, name and exact set of dimensions (CloudWatch never sums across
 *   dimension combinations for an alarm).
 * - Statistics: Sum, Average, Minimum, Maximum, SampleCount, pNN (nearest rank).
 * - Math: numbers, metric ids, + - * / and parentheses, FILL(expr, number). A missing operand or a
 *   division by zero gives no datapoint; FILL turns a missing value into its number.
 * - Missing data: `notBreaching` counts a missing period as good, `breaching` as bad; `ignore` and
 *   `missing` judge by the periods that have data (and `missing` goes to INSUFFICIENT_DATA when none do).
 */

/** One datapoint: a value of one metric at one time. */
export interface Datapoint {
  readonly namespace: string;
  readonly metricName: string;
  readonly dimensions: Readonly<Record<string, string>>;
  readonly value: number;
  readonly atMs: number;
}

/** A metric and how it is aggregated per period. */
export interface MetricStat {
  readonly namespace: string;
  readonly metricName: string;
  readonly dimensions: Readonly<Record<string, string>>;
  readonly stat: string;
  readonly periodSeconds: number;
}

/** An alarm as CloudWatch evaluates it. */
export interface AlarmDefinition {
  readonly name: string;
  readonly description: string;
  /** A single metric, or metric math: the expression and the metrics it names. */
  readonly metric:
    | { readonly kind: 'metric'; readonly stat: MetricStat }
    | {
        readonly kind: 'expression';
        readonly expression: string;
        readonly periodSeconds: number;
        readonly metrics: Readonly<Record<string, MetricStat>>;
      };
  readonly evaluationPeriods: number;
  readonly datapointsToAlarm: number;
  readonly threshold: number;
  readonly comparison: string;
  readonly treatMissingData: 'breaching' | 'notBreaching' | 'ignore' | 'missing';
}

export type AlarmState = 'OK' | 'ALARM' | 'INSUFFICIENT_DATA';

/** A change of an alarm's state, at the end of the period that caused it. */
export interface Transition {
  readonly atMs: number;
  readonly state: AlarmState;
}

/** Resolves a CloudFormation value (a string, a `Ref`, a `Fn::GetAtt`) to a dimension value. */
export type ValueResolver = (value: unknown) => string;

interface CfnMetricDimension {
  readonly Name: string;
  readonly Value: unknown;
}

interface CfnAlarmProperties {
  readonly AlarmName: string;
  readonly AlarmDescription?: string;
  readonly Namespace?: string;
  readonly MetricName?: string;
  readonly Dimensions?: readonly CfnMetricDimension[];
  readonly Statistic?: string;
  readonly ExtendedStatistic?: string;
  readonly Period?: number;
  readonly Metrics?: readonly {
    readonly Id: string;
    readonly Expression?: string;
    readonly Period?: number;
    readonly MetricStat?: {
      readonly Metric: {
        readonly Namespace: string;
        readonly MetricName: string;
        readonly Dimensions?: readonly CfnMetricDimension[];
      };
      readonly Period: number;
      readonly Stat: string;
    };
  }[];
  readonly EvaluationPeriods: number;
  readonly DatapointsToAlarm?: number;
  readonly Threshold: number;
  readonly ComparisonOperator: string;
  readonly TreatMissingData?: AlarmDefinition['treatMissingData'];
}

/** The alarms of a synthesized template, as the evaluator needs them. */
export function alarmsOfTemplate(
  resources: Readonly<Record<string, { readonly Type: string; readonly Properties?: unknown }>>,
  resolve: ValueResolver,
): AlarmDefinition[] {
  const dimensionsOf = (dims: readonly CfnMetricDimension[] | undefined) =>
    Object.fromEntries((dims ?? []).map((d) => [d.Name, resolve(d.Value)]));
  return Object.values(resources)
    .filter((r) => r.Type === 'AWS::CloudWatch::Alarm')
    .map((r) => {
      const p = r.Properties as CfnAlarmProperties;
      let metric: AlarmDefinition['metric'];
      if (p.Metrics) {
        const expression = p.Metrics.find((m) => m.Expression !== undefined);
        if (!expression?.Expression) throw new Error(`${p.AlarmName}: metric math without an expression`);
        const metrics: Record<string, MetricStat> = {};
        for (const m of p.Metrics) {
          if (!m.MetricStat) continue;
          metrics[m.Id] = {
            namespace: m.MetricStat.Metric.Namespace,
            metricName: m.MetricStat.Metric.MetricName,
            dimensions: dimensionsOf(m.MetricStat.Metric.Dimensions),
            stat: m.MetricStat.Stat,
            periodSeconds: m.MetricStat.Period,
          };
        }
        const periodSeconds = expression.Period ?? Object.values(metrics)[0]?.periodSeconds ?? 300;
        metric = { kind: 'expression', expression: expression.Expression, periodSeconds, metrics };
      } else {
        metric = {
          kind: 'metric',
          stat: {
            namespace: String(p.Namespace),
            metricName: String(p.MetricName),
            dimensions: dimensionsOf(p.Dimensions),
            stat: p.ExtendedStatistic ?? String(p.Statistic),
            periodSeconds: Number(p.Period),
          },
        };
      }
      return {
        name: p.AlarmName,
        description: p.AlarmDescription ?? '',
        metric,
        evaluationPeriods: p.EvaluationPeriods,
        datapointsToAlarm: p.DatapointsToAlarm ?? p.EvaluationPeriods,
        threshold: p.Threshold,
        comparison: p.ComparisonOperator,
        treatMissingData: p.TreatMissingData ?? 'missing',
      };
    });
}

/** Datapoints indexed by metric identity, for fast per-period aggregation. */
export class DatapointIndex {
  readonly #byMetric = new Map<string, Datapoint[]>();

  constructor(datapoints: readonly Datapoint[]) {
    for (const point of datapoints) {
      const key = metricKey(point);
      const list = this.#byMetric.get(key);
      if (list) list.push(point);
      else this.#byMetric.set(key, [point]);
    }
    for (const list of this.#byMetric.values()) list.sort((a, b) => a.atMs - b.atMs);
  }

  /** The values of one metric in [fromMs, toMs). */
  values(metric: Omit<MetricStat, 'stat' | 'periodSeconds'>, fromMs: number, toMs: number): number[] {
    const list = this.#byMetric.get(metricKey(metric)) ?? [];
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid]!.atMs < fromMs) lo = mid + 1;
      else hi = mid;
    }
    const values: number[] = [];
    for (let i = lo; i < list.length && list[i]!.atMs < toMs; i++) values.push(list[i]!.value);
    return values;
  }
}

/** One statistic of the values of a period; undefined when there are none (missing data). */
export function statistic(stat: string, values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  switch (stat) {
    case 'Sum':
      return values.reduce((a, b) => a + b, 0);
    case 'Average':
      return values.reduce((a, b) => a + b, 0) / values.length;
    case 'Minimum':
      return Math.min(...values);
    case 'Maximum':
      return Math.max(...values);
    case 'SampleCount':
      return values.length;
  }
  const percentile = /^p(\d+(\.\d+)?)$/.exec(stat);
  if (percentile) {
    const sorted = [...values].sort((a, b) => a - b);
    const rank = Math.ceil((Number(percentile[1]) / 100) * sorted.length);
    return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
  }
  throw new Error(`unsupported statistic ${stat}`);
}

/** The value of an alarm's metric (or expression) over [fromMs, fromMs + period). */
export function periodValue(
  alarm: AlarmDefinition,
  index: DatapointIndex,
  fromMs: number,
): number | undefined {
  const metricValue = (m: MetricStat) =>
    statistic(m.stat, index.values(m, fromMs, fromMs + m.periodSeconds * 1000));
  if (alarm.metric.kind === 'metric') return metricValue(alarm.metric.stat);
  const { metrics, expression } = alarm.metric;
  const values: Record<string, number | undefined> = {};
  for (const [id, m] of Object.entries(metrics)) values[id] = metricValue(m);
  return evaluateExpression(expression, values);
}

/** The period of an alarm, in ms. */
export function periodMsOf(alarm: AlarmDefinition): number {
  return (
    (alarm.metric.kind === 'metric' ? alarm.metric.stat.periodSeconds : alarm.metric.periodSeconds) * 1000
  );
}

/**
 * Evaluates an alarm at the end of every period in [startMs, endMs) and returns its state changes
 * (it starts in INSUFFICIENT_DATA).
 */
export function evaluateAlarm(
  alarm: AlarmDefinition,
  index: DatapointIndex,
  startMs: number,
  endMs: number,
): Transition[] {
  const periodMs = periodMsOf(alarm);
  const firstPeriod = Math.floor(startMs / periodMs) * periodMs;
  // Period values, oldest first; evaluated as each period ends.
  const window: (number | undefined)[] = [];
  const transitions: Transition[] = [];
  let state: AlarmState = 'INSUFFICIENT_DATA';
  for (let from = firstPeriod; from + periodMs <= endMs; from += periodMs) {
    window.push(periodValue(alarm, index, from));
    if (window.length > alarm.evaluationPeriods) window.shift();
    const next = judge(alarm, window, state);
    if (next !== state) {
      transitions.push({ atMs: from + periodMs, state: next });
      state = next;
    }
  }
  return transitions;
}

function judge(
  alarm: AlarmDefinition,
  window: readonly (number | undefined)[],
  current: AlarmState,
): AlarmState {
  let breaching = 0;
  let present = 0;
  // Before N periods exist, the periods before the start are missing data.
  const missing = alarm.evaluationPeriods - window.filter((v) => v !== undefined).length;
  for (const value of window) {
    if (value === undefined) continue;
    present++;
    if (breaches(alarm, value)) breaching++;
  }
  switch (alarm.treatMissingData) {
    case 'breaching':
      breaching += missing;
      break;
    case 'notBreaching':
      break;
    case 'ignore':
      if (present === 0) return current;
      break;
    case 'missing':
      if (present === 0) return 'INSUFFICIENT_DATA';
      break;
  }
  return breaching >= alarm.datapointsToAlarm ? 'ALARM' : 'OK';
}

function breaches(alarm: AlarmDefinition, value: number): boolean {
  switch (alarm.comparison) {
    case 'GreaterThanThreshold':
      return value > alarm.threshold;
    case 'GreaterThanOrEqualToThreshold':
      return value >= alarm.threshold;
    case 'LessThanThreshold':
      return value < alarm.threshold;
    case 'LessThanOrEqualToThreshold':
      return value <= alarm.threshold;
    default:
      throw new Error(`unsupported comparison ${alarm.comparison}`);
  }
}

/** Evaluates a metric-math expression for one period; undefined is a missing datapoint. */
export function evaluateExpression(
  expression: string,
  values: Readonly<Record<string, number | undefined>>,
): number | undefined {
  const tokens = expression.match(/\d+(\.\d+)?|[A-Za-z_][A-Za-z0-9_]*|[-+*/(),]/g) ?? [];
  let at = 0;
  const peek = () => tokens[at];
  const take = (expected?: string) => {
    const token = tokens[at++];
    if (token === undefined || (expected !== undefined && token !== expected)) {
      throw new Error(`bad expression "${expression}" near ${token ?? 'the end'}`);
    }
    return token;
  };
  const binary = (a: number | undefined, b: number | undefined, op: string) => {
    if (a === undefined || b === undefined) return undefined;
    switch (op) {
      case '+':
        return a + b;
      case '-':
        return a - b;
      case '*':
        return a * b;
      default:
        return b === 0 ? undefined : a / b;
    }
  };
  const primary = (): number | undefined => {
    const token = take();
    if (token === '(') {
      const value = sum();
      take(')');
      return value;
    }
    if (token === '-') {
      const value = primary();
      return value === undefined ? undefined : -value;
    }
    if (/^\d/.test(token)) return Number(token);
    if (token === 'FILL') {
      take('(');
      const value = sum();
      take(',');
      const fill = Number(take());
      take(')');
      return value ?? fill;
    }
    if (!(token in values)) throw new Error(`unknown metric id ${token} in "${expression}"`);
    return values[token];
  };
  const product = (): number | undefined => {
    let value = primary();
    while (peek() === '*' || peek() === '/') {
      const op = take();
      value = binary(value, primary(), op);
    }
    return value;
  };
  const sum = (): number | undefined => {
    let value = product();
    while (peek() === '+' || peek() === '-') {
      const op = take();
      value = binary(value, product(), op);
    }
    return value;
  };
  const result = sum();
  if (at !== tokens.length) throw new Error(`bad expression "${expression}"`);
  return result;
}

function metricKey(m: {
  namespace: string;
  metricName: string;
  dimensions: Readonly<Record<string, string>>;
}) {
  const dims = Object.entries(m.dimensions)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  return `${m.namespace}|${m.metricName}|${dims}`;
}
