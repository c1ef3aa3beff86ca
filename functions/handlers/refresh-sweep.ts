import { invokeAsync } from '../adapters/lambda/self-invoke';
import { lambdaRuntime } from '../adapters/runtime';
import type { SweepSummary } from '../core/sweep';
import { type HandlerBody, lambdaHandler } from './lambda';

/** The `source` of the event one sweep sends to start the next. */
export const CONTINUATION_SOURCE = 'token-keeper.sweep';

/**
 * Which link of a chain of sweeps this event starts: 0 for the schedule (or anything else), n for
 * the n-th continuation.
 */
export function chainDepth(event: unknown): number {
  if (typeof event !== 'object' || event === null) return 0;
  const { source, continuation } = event as { source?: unknown; continuation?: unknown };
  return source === CONTINUATION_SOURCE && Number.isSafeInteger(continuation) && (continuation as number) > 0
    ? (continuation as number)
    : 0;
}

/**
 * The depth of the sweep to start at once, or undefined to wait for the schedule: a sweep that
 * ran out of time with due records left continues while the chain is shorter than `chainMax`.
 * One sweep runs at a time (the function's reserved concurrency is 1), so a chain keeps the IdP
 * at the sweep's rate limit without ever doubling it.
 */
export function nextLink(depth: number, summary: SweepSummary, chainMax: number): number | undefined {
  return summary.backlog > 0 && depth < chainMax ? depth + 1 : undefined;
}

/** The sweep, continued by a new invocation of the same function while a backlog remains. */
export function sweepWithContinuation(
  invoke: (functionName: string, payload: Readonly<Record<string, unknown>>) => Promise<void>,
): HandlerBody<SweepSummary> {
  return async ({ sweep, config, logger }, event, budget) => {
    const summary = await sweep.run(budget);
    const depth = chainDepth(event);
    const next = config.functionName ? nextLink(depth, summary, config.sweepChainMax) : undefined;
    if (next !== undefined && config.functionName) {
      try {
        await invoke(config.functionName, { source: CONTINUATION_SOURCE, continuation: next });
        logger.info('sweep continues', { backlog: summary.backlog, continuation: next });
      } catch (error) {
        // The schedule picks the backlog up; nothing is lost but time.
        logger.warn('sweep could not continue itself', {
          error: error instanceof Error ? error.name : typeof error,
        });
      }
    }
    return summary;
  };
}

/** The scheduled event or a continuation -> `{ due, rotated, failed, reauthRequired, skipped, backlog }`. */
export const refreshSweep = ((runtime, event, budget) =>
  // The continuation's Invoke is bounded by the configured AWS call limits, like every AWS call.
  sweepWithContinuation((functionName, payload) => invokeAsync(functionName, payload, runtime.config.aws))(
    runtime,
    event,
    budget,
  )) satisfies HandlerBody<unknown>;

export const handler = lambdaHandler(() => lambdaRuntime('refreshSweep'), refreshSweep);
