import { lambdaRuntime } from '../adapters/runtime';
import { parseKey } from '../core/validation';
import { type HandlerBody, lambdaHandler } from './lambda';

/** `{ userId, resource? }` -> `{ userId, resource, deleted, idpLogout }`; idempotent. */
export const disconnect = (async ({ tokenService }, event, budget) =>
  tokenService.disconnect(parseKey(event), budget)) satisfies HandlerBody<unknown>;

export const handler = lambdaHandler(() => lambdaRuntime('disconnect'), disconnect);
