import { lambdaRuntime } from '../adapters/runtime';
import { parseGetAccessTokenEvent } from '../core/validation';
import { type HandlerBody, iso, lambdaHandler } from './lambda';

/** `{ userId, resource?, minValiditySeconds? }` -> `{ accessToken, tokenType, expiresAt }`. */
export const getAccessToken = (async ({ tokenService }, event, budget) => {
  const served = await tokenService.getAccessToken(parseGetAccessTokenEvent(event), budget);
  return {
    accessToken: served.accessToken.reveal(),
    tokenType: served.tokenType,
    expiresAt: iso(served.expiresAt),
  };
}) satisfies HandlerBody<unknown>;

export const handler = lambdaHandler(() => lambdaRuntime('getAccessToken'), getAccessToken);
