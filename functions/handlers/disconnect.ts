import { lambdaRuntime } from '../adapters/runtime';
import { parseKey } from '../core/validation';
import { lambdaHandler } from './lambda';

/** `{ userId, resource? }` -> `{ userId, resource, deleted, idpLogout }`; idempotent. */
export const handler = lambdaHandler(
  () => lambdaRuntime('disconnect'),
  async ({ tokenService }, event, budget) => tokenService.disconnect(parseKey(event), budget),
);
