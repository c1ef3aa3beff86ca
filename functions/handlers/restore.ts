import { lambdaRuntime } from '../adapters/runtime';
import { parseRestoreEvent } from '../core/restore';
import { type HandlerBody, lambdaHandler } from './lambda';

/**
 * An operator's `{ from, to, reasons, dryRun?, cursor? }` -> `{ dryRun, matched, restorable,
 * restored, skipped, cursor }`: puts quarantined records back to ACTIVE (see the README).
 */
export const restore = (async ({ restore }, event, budget) =>
  restore.run(parseRestoreEvent(event), budget)) satisfies HandlerBody<unknown>;

export const handler = lambdaHandler(() => lambdaRuntime('restore'), restore);
