import { MetricUnit, Metrics as PowertoolsMetrics } from '@aws-lambda-powertools/metrics';
import type { MetricName, Metrics } from '../../core/ports';

/** Options of {@link EmfMetrics}. */
export interface EmfMetricsOptions {
  /** @default 'TokenKeeper' */
  readonly namespace?: string;
  /** Becomes the `service` dimension of every metric. @default 'token-keeper' */
  readonly serviceName?: string;
}

/**
 * CloudWatch embedded metric format through Powertools: every value goes into the plain total
 * (dimension `service`), buffered and written by `flush()` at the end of an invocation; a value
 * with a breakdown (such as `reason`) is also written at once as its own record.
 */
export class EmfMetrics implements Metrics {
  private readonly metrics: PowertoolsMetrics;

  constructor(options: EmfMetricsOptions = {}) {
    this.metrics = new PowertoolsMetrics({
      namespace: options.namespace ?? 'TokenKeeper',
      serviceName: options.serviceName ?? 'token-keeper',
    });
  }

  count(name: MetricName, value = 1, dimensions?: Readonly<Record<string, string>>): void {
    this.add(name, MetricUnit.Count, value, dimensions);
  }

  milliseconds(name: MetricName, value: number): void {
    this.add(name, MetricUnit.Milliseconds, value);
  }

  /** Writes the buffered metrics (call once per invocation). */
  flush(): void {
    // Powertools flushes by itself at 100 values; asking again on an empty buffer only warns.
    if (!this.metrics.hasStoredMetrics()) return;
    this.metrics.publishStoredMetrics();
  }

  private add(
    name: MetricName,
    unit: (typeof MetricUnit)[keyof typeof MetricUnit],
    value: number,
    dimensions?: Readonly<Record<string, string>>,
  ): void {
    if (dimensions && Object.keys(dimensions).length > 0) {
      const single = this.metrics.singleMetric();
      for (const [key, dimension] of Object.entries(dimensions)) single.addDimension(key, dimension);
      single.addMetric(name, unit, value);
    }
    // The plain total (dimension `service` only) is what the alarms watch.
    this.metrics.addMetric(name, unit, value);
  }
}

/** One recorded data point. */
export interface MetricPoint {
  readonly name: MetricName;
  readonly value: number;
  readonly dimensions: Readonly<Record<string, string>>;
}

/** Metrics kept in memory: for the embedded runtime's stats page, tests and the simulation. */
export class InMemoryMetrics implements Metrics {
  readonly points: MetricPoint[] = [];

  count(name: MetricName, value = 1, dimensions: Readonly<Record<string, string>> = {}): void {
    this.points.push({ name, value, dimensions });
  }

  milliseconds(name: MetricName, value: number): void {
    this.points.push({ name, value, dimensions: {} });
  }

  /** Sum of a metric's values: the plain total, or the breakdown that matches `dimensions`. */
  total(name: MetricName, dimensions?: Readonly<Record<string, string>>): number {
    return this.points
      .filter((p) => p.name === name && matches(p.dimensions, dimensions))
      .reduce((sum, p) => sum + p.value, 0);
  }

  /** Plain totals of all counts, by name. */
  totals(): Record<string, number> {
    const result: Record<string, number> = {};
    for (const p of this.points) {
      if (p.name !== 'IdpLatency') {
        result[p.name] = (result[p.name] ?? 0) + p.value;
      }
    }
    return result;
  }
}

function matches(
  actual: Readonly<Record<string, string>>,
  wanted?: Readonly<Record<string, string>>,
): boolean {
  if (!wanted) return true;
  return Object.entries(wanted).every(([k, v]) => actual[k] === v);
}
