import type { MetricName, Metrics } from '../../core/ports';

/** Options of {@link EmfMetrics}. */
export interface EmfMetricsOptions {
  /** @default 'TokenKeeper' */
  readonly namespace?: string;
  /** Becomes the `service` dimension of every metric. @default 'token-keeper' */
  readonly serviceName?: string;
  /** Writes nothing (local runs, where EMF records would drown the log). @default false */
  readonly disabled?: boolean;
  /** Where each document goes, one JSON line. @default a write to stdout */
  readonly write?: (line: string) => void;
}

type Unit = 'Count' | 'Milliseconds';

/** Values of one metric, in the order they were recorded. */
interface Series {
  readonly unit: Unit;
  readonly values: number[];
}

/** The values recorded with one set of dimension values (such as `reason=rejected`). */
interface Breakdown {
  readonly dimensions: Readonly<Record<string, string>>;
  readonly metrics: Map<MetricName, Series>;
}

/** One metric directive of an EMF document: names published under the same dimension sets. */
interface Directive {
  Namespace: string;
  Dimensions: string[][];
  Metrics: { Name: string; Unit: Unit }[];
}

/** CloudWatch accepts at most 100 values per metric in one document. */
const MAX_VALUES = 100;

/**
 * CloudWatch embedded metric format (EMF), written directly: every value goes into the plain total
 * (dimension `service` only, what the alarms watch), and a value with a breakdown (such as
 * `reason`) also into that breakdown. `flush()` writes, at the end of an invocation, ONE document
 * holding the totals and the breakdowns whose values they share (both dimension sets apply to the
 * same value, as EMF allows), plus one more document for each breakdown that cannot share it (a
 * second `reason` in the same invocation). A warm getAccessToken writes a single line.
 */
export class EmfMetrics implements Metrics {
  private readonly namespace: string;
  private readonly serviceName: string;
  private readonly disabled: boolean;
  private readonly write: (line: string) => void;
  private totals = new Map<MetricName, Series>();
  private breakdowns = new Map<string, Breakdown>();

  constructor(options: EmfMetricsOptions = {}) {
    this.namespace = options.namespace ?? 'TokenKeeper';
    this.serviceName = options.serviceName ?? 'token-keeper';
    this.disabled = options.disabled ?? false;
    this.write = options.write ?? ((line) => process.stdout.write(line));
  }

  count(name: MetricName, value = 1, dimensions?: Readonly<Record<string, string>>): void {
    this.add(name, 'Count', value, dimensions);
  }

  milliseconds(name: MetricName, value: number): void {
    this.add(name, 'Milliseconds', value);
  }

  /** Writes the buffered metrics (call once per invocation); writes nothing when none are stored. */
  flush(): void {
    if (this.totals.size === 0) return;
    const totals = this.totals;
    const breakdowns = [...this.breakdowns.values()];
    this.totals = new Map();
    this.breakdowns = new Map();
    if (this.disabled) return;

    const timestamp = Date.now();
    const document: Record<string, unknown> = { service: this.serviceName };
    for (const [name, series] of totals) document[name] = emfValue(series);
    // Dimension sets of each name in the main document: the total, plus the breakdown that shares it.
    const setsOf = new Map<MetricName, string[][]>();
    for (const name of totals.keys()) setsOf.set(name, [['service']]);
    const apart: Breakdown[] = [];
    for (const breakdown of breakdowns) {
      if (canShare(breakdown, totals, document)) {
        Object.assign(document, breakdown.dimensions);
        const set = ['service', ...Object.keys(breakdown.dimensions)];
        for (const name of breakdown.metrics.keys()) setsOf.get(name)?.push(set);
      } else {
        apart.push(breakdown);
      }
    }
    // Names published under the same dimension sets go into one directive.
    const directives = new Map<string, Directive>();
    for (const [name, sets] of setsOf) {
      const key = JSON.stringify(sets);
      let directive = directives.get(key);
      if (!directive) {
        directive = { Namespace: this.namespace, Dimensions: sets, Metrics: [] };
        directives.set(key, directive);
      }
      directive.Metrics.push({ Name: name, Unit: totals.get(name)?.unit ?? 'Count' });
    }
    let lines = line(timestamp, [...directives.values()], document);
    for (const breakdown of apart) {
      const values: Record<string, unknown> = { service: this.serviceName, ...breakdown.dimensions };
      const metrics: Directive['Metrics'] = [];
      for (const [name, series] of breakdown.metrics) {
        values[name] = emfValue(series);
        metrics.push({ Name: name, Unit: series.unit });
      }
      const dimensions = [['service', ...Object.keys(breakdown.dimensions)]];
      lines += line(
        timestamp,
        [{ Namespace: this.namespace, Dimensions: dimensions, Metrics: metrics }],
        values,
      );
    }
    this.write(lines);
  }

  private add(
    name: MetricName,
    unit: Unit,
    value: number,
    dimensions?: Readonly<Record<string, string>>,
  ): void {
    const total = push(this.totals, name, unit, value);
    if (dimensions) {
      const keys = Object.keys(dimensions);
      if (keys.length > 0) {
        const id = keys.map((key) => `${key}=${dimensions[key]}`).join('&');
        let breakdown = this.breakdowns.get(id);
        if (!breakdown) {
          breakdown = { dimensions: { ...dimensions }, metrics: new Map() };
          this.breakdowns.set(id, breakdown);
        }
        push(breakdown.metrics, name, unit, value);
      }
    }
    // A long sweep records more values than one document may carry: write them as they fill.
    if (total.values.length >= MAX_VALUES) this.flush();
  }
}

function push(into: Map<MetricName, Series>, name: MetricName, unit: Unit, value: number): Series {
  let series = into.get(name);
  if (!series) {
    series = { unit, values: [] };
    into.set(name, series);
  }
  series.values.push(value);
  return series;
}

function emfValue(series: Series): number | number[] {
  return series.values.length === 1 ? (series.values[0] as number) : series.values;
}

/**
 * A breakdown shares the main document when each of its metrics got all its values through it
 * (its values are the total's, so one value serves both dimension sets) and its dimension names
 * clash with nothing already there.
 */
function canShare(
  breakdown: Breakdown,
  totals: ReadonlyMap<MetricName, Series>,
  document: Readonly<Record<string, unknown>>,
): boolean {
  for (const key of Object.keys(breakdown.dimensions)) if (key in document) return false;
  for (const [name, series] of breakdown.metrics) {
    if (totals.get(name)?.values.length !== series.values.length) return false;
  }
  return true;
}

function line(timestamp: number, directives: Directive[], values: Record<string, unknown>): string {
  return `${JSON.stringify({ _aws: { Timestamp: timestamp, CloudWatchMetrics: directives }, ...values })}\n`;
}
