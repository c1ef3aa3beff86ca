import { lambdaRuntime } from '../adapters/runtime';
import { parseGetAccessTokenEvent } from '../core/validation';
import { type HandlerBody, iso, lambdaHandler } from './lambda';

/**
 * `{ userId, resource?, minValiditySeconds? }` -> `{ accessToken, tokenType, expiresAt, stale }`.
 * `stale` is true when the token could not be refreshed now and is served as the best there is:
 * valid until `expiresAt`, possibly for less than `minValiditySeconds`.
 */
export const getAccessToken = (async ({ tokenService }, event, budget) => {
  const served = await tokenService.getAccessToken(parseGetAccessTokenEvent(event), budget);
  return {
    accessToken: served.accessToken.reveal(),
    tokenType: served.tokenType,
    expiresAt: iso(served.expiresAt),
    stale: served.source === 'stale',
  };
}) satisfies HandlerBody<unknown>;

export const handler = lambdaHandler(() => lambdaRuntime('getAccessToken'), getAccessToken);
