import { lambdaRuntime } from '../adapters/runtime';
import { lambdaHandler } from './lambda';

/** The scheduled event (its content is not used) -> `{ due, rotated, failed, reauthRequired, skipped, backlog }`. */
export const handler = lambdaHandler(
  () => lambdaRuntime('refreshSweep'),
  async ({ sweep }, _event, budget) => sweep.run(budget),
);
