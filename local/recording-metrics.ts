import type { Clock, MetricName } from '../functions/core/ports';
import { InMemoryMetrics } from '../test/support/observability';
import type { SimulatedInvocation } from './simulation';

/** One CloudWatch datapoint, as the service (EMF) or Lambda would write it, at a virtual time. */
export interface RecordedDatapoint {
  readonly namespace: string;
  readonly metricName: string;
  readonly dimensions: Readonly<Record<string, string>>;
  readonly value: number;
  readonly atMs: number;
}

/**
 * InMemoryMetrics that also keeps every value as the CloudWatch datapoints it would become, with
 * the virtual time it was emitted at: the plain total (dimension `service`) and, for a value with
 * a breakdown, the breakdown too, as EmfMetrics writes them. `recordInvocation` adds what Lambda
 * itself counts for a call (AWS/Lambda Invocations, Errors, Duration by FunctionName).
 */
export class RecordingMetrics extends InMemoryMetrics {
  readonly datapoints: RecordedDatapoint[] = [];

  constructor(
    private readonly clock: Clock,
    private readonly options: { readonly namespace?: string; readonly serviceName?: string } = {},
  ) {
    super();
  }

  override count(name: MetricName, value = 1, dimensions: Readonly<Record<string, string>> = {}): void {
    super.count(name, value, dimensions);
    this.#emit(name, value, dimensions);
  }

  override milliseconds(name: MetricName, value: number): void {
    super.milliseconds(name, value);
    this.#emit(name, value, {});
  }

  /** What Lambda counts for one call of a function (throttles never happen in the simulation). */
  recordInvocation(call: SimulatedInvocation): void {
    const point = (metricName: string, value: number) =>
      this.datapoints.push({
        namespace: 'AWS/Lambda',
        metricName,
        dimensions: { FunctionName: call.functionName },
        value,
        atMs: call.atMs,
      });
    point('Invocations', 1);
    point('Errors', call.error ? 1 : 0);
    point('Duration', call.durationMs);
  }

  #emit(name: MetricName, value: number, breakdown: Readonly<Record<string, string>>): void {
    const namespace = this.options.namespace ?? 'TokenKeeper';
    const service = { service: this.options.serviceName ?? 'token-keeper' };
    const atMs = this.clock.nowMs();
    this.datapoints.push({ namespace, metricName: name, dimensions: service, value, atMs });
    if (Object.keys(breakdown).length > 0) {
      this.datapoints.push({
        namespace,
        metricName: name,
        dimensions: { ...service, ...breakdown },
        value,
        atMs,
      });
    }
  }
}
