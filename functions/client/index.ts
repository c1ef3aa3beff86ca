/** What a caller Lambda imports: `getAccessToken` and `getTokenStatus` over Lambda Invoke, and the typed errors they throw. */

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
export { GET_ACCESS_TOKEN_FUNCTION_ENV, STORE_TOKENS_FUNCTION_ENV, TOKEN_STATUS_FUNCTION_ENV } from './env';
export {
  type AccessToken,
  createTokenKeeperClient,
  defaultLambdaClientConfig,
  type GetAccessTokenRequest,
  getAccessToken,
  getTokenStatus,
  INVOKE_TIMEOUT_MS,
  type TokenKeeperClient,
  type TokenKeeperClientOptions,
} from './get-access-token';
export type { TokenStatus, TokenStatusRequest } from './token-status';
