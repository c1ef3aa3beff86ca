import { getAccessToken, ReauthRequiredError, TokenNotFoundError } from '../../functions/client';

/** The example's event: whose token to use. */
interface ExampleEvent {
  readonly userId: string;
  readonly resource?: string;
}

/**
 * An example caller: gets the user's access token from token-keeper (the function name comes
 * from TOKEN_KEEPER_GET_ACCESS_TOKEN_FUNCTION, set by grantGetAccessToken) and, when API_URL is
 * set, calls that API with it. The token itself is never returned or logged.
 */
export const handler = async (event: ExampleEvent) => {
  try {
    const token = await getAccessToken({
      userId: event.userId,
      resource: event.resource,
      minValiditySeconds: 120,
    });
    const apiUrl = process.env.API_URL;
    if (!apiUrl) return { ok: true, tokenType: token.tokenType, expiresAt: token.expiresAt };
    const response = await fetch(apiUrl, {
      headers: { authorization: `${token.tokenType} ${token.accessToken.reveal()}` },
      signal: AbortSignal.timeout(10_000),
    });
    return { ok: response.ok, status: response.status, expiresAt: token.expiresAt };
  } catch (error) {
    // The user has to sign in again (or never did): tell the app, do not retry.
    if (error instanceof ReauthRequiredError || error instanceof TokenNotFoundError) {
      return { ok: false, signInRequired: true, error: error.name };
    }
    throw error;
  }
};
