import { lambdaRuntime } from '../adapters/runtime';
import { parseGetAccessTokenEvent } from '../core/validation';
import { iso, lambdaHandler } from './lambda';

/** `{ userId, resource?, minValiditySeconds? }` -> `{ accessToken, tokenType, expiresAt }`. */
export const handler = lambdaHandler(
  () => lambdaRuntime('getAccessToken'),
  async ({ tokenService }, event, budget) => {
    const served = await tokenService.getAccessToken(parseGetAccessTokenEvent(event), budget);
    return {
      accessToken: served.accessToken.reveal(),
      tokenType: served.tokenType,
      expiresAt: iso(served.expiresAt),
    };
  },
);
