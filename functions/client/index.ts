/** What a caller Lambda imports: `getAccessToken` over Lambda Invoke, and the typed errors it throws. */

export type { ReauthReason } from '../core/errors';
export {
  ConfigurationError,
  ReauthRequiredError,
  RefreshUnavailableError,
  TokenKeeperError,
  TokenNotFoundError,
  ValidationError,
} from '../core/errors';
export { Secret } from '../core/secret';
export { GET_ACCESS_TOKEN_FUNCTION_ENV, STORE_TOKENS_FUNCTION_ENV } from './env';
export {
  type AccessToken,
  createTokenKeeperClient,
  type GetAccessTokenRequest,
  getAccessToken,
  type TokenKeeperClient,
  type TokenKeeperClientOptions,
} from './get-access-token';
