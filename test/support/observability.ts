import { LogEventPublisher } from '../../functions/adapters/observability/events';
import type { AppEvent, LogFields, Logger, MetricName, Metrics } from '../../functions/core/ports';

/**
 * In-memory observability for tests, the simulation, the bench and the embedded runtime's stats
 * page: what a Lambda function would log, count and publish, kept where a test can read it.
 */

/** One captured log line. */
export interface LogLine {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly message: string;
  readonly fields: LogFields;
}

/** Keeps log lines in memory (tests, simulation); optionally forwards them. */
export class MemoryLogger implements Logger {
  readonly lines: LogLine[] = [];

  constructor(private readonly forward?: Logger) {}

  debug(message: string, fields: LogFields = {}): void {
    this.record('debug', message, fields);
  }
  info(message: string, fields: LogFields = {}): void {
    this.record('info', message, fields);
  }
  warn(message: string, fields: LogFields = {}): void {
    this.record('warn', message, fields);
  }
  error(message: string, fields: LogFields = {}): void {
    this.record('error', message, fields);
  }

  private record(level: LogLine['level'], message: string, fields: LogFields): void {
    this.lines.push({ level, message, fields });
    this.forward?.[level](message, fields);
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

/** The log publisher, plus the last 10,000 events in memory for a test to read. */
export class RecordingEventPublisher extends LogEventPublisher {
  readonly published: AppEvent[] = [];

  override async publish(event: AppEvent): Promise<void> {
    this.published.push(event);
    if (this.published.length > 10_000) this.published.shift();
    await super.publish(event);
  }
}
