import { lambdaRuntime } from '../adapters/runtime';
import { parseKey } from '../core/validation';
import { type HandlerBody, iso, lambdaHandler } from './lambda';

/**
 * `{ userId, resource? }` -> `{ userId, resource, status, reason?, rotationDeadline,
 * refreshTokenExpiresAt, lastRotatedAt?, failures, offlineAccessUntil }` (times ISO 8601). No
 * token comes out, and nothing is decrypted: the function needs no key.
 */
export const tokenStatus = (async ({ tokenService }, event) => {
  const { lastRotatedAt, rotationDeadline, refreshTokenExpiresAt, offlineAccessUntil, ...rest } =
    await tokenService.status(parseKey(event));
  return {
    ...rest,
    rotationDeadline: iso(rotationDeadline),
    refreshTokenExpiresAt: iso(refreshTokenExpiresAt),
    ...(lastRotatedAt !== undefined ? { lastRotatedAt: iso(lastRotatedAt) } : {}),
    offlineAccessUntil: iso(offlineAccessUntil),
  };
}) satisfies HandlerBody<unknown>;

export const handler = lambdaHandler(() => lambdaRuntime('tokenStatus'), tokenStatus);
