import { removedRecords } from '../adapters/dynamodb/stream';
import { lambdaRuntime } from '../adapters/runtime';
import { type HandlerBody, lambdaHandler } from './lambda';

/** The token table's stream (TTL removals) -> `{ tokensExpired, deadlineReached, ignored }`. */
export const expiryStream = (async ({ expiryWatch }, event) =>
  expiryWatch.onRemoved(removedRecords(event))) satisfies HandlerBody<unknown>;

export const handler = lambdaHandler(() => lambdaRuntime('expiryStream'), expiryStream);
