import { lambdaRuntime } from '../adapters/runtime';
import { type HandlerBody, lambdaHandler } from './lambda';

/** The scheduled event (its content is not used) -> `{ due, rotated, failed, reauthRequired, skipped, backlog }`. */
export const refreshSweep = (async ({ sweep }, _event, budget) =>
  sweep.run(budget)) satisfies HandlerBody<unknown>;

export const handler = lambdaHandler(() => lambdaRuntime('refreshSweep'), refreshSweep);
