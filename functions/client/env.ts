/**
 * Environment variable names shared by the CDK grants (which set them on a caller Lambda) and
 * the client (which reads them). Kept free of imports so the CDK code can use it too.
 */

/** Set by `grantGetAccessToken`: the name of the getAccessToken function. */
export const GET_ACCESS_TOKEN_FUNCTION_ENV = 'TOKEN_KEEPER_GET_ACCESS_TOKEN_FUNCTION';

/** Set by `grantStoreTokens`: the name of the storeTokens function. */
export const STORE_TOKENS_FUNCTION_ENV = 'TOKEN_KEEPER_STORE_TOKENS_FUNCTION';

/** Set by `grantTokenStatus`: the name of the tokenStatus function. */
export const TOKEN_STATUS_FUNCTION_ENV = 'TOKEN_KEEPER_TOKEN_STATUS_FUNCTION';

/** Set by `grantDisconnect`: the name of the disconnect function. */
export const DISCONNECT_FUNCTION_ENV = 'TOKEN_KEEPER_DISCONNECT_FUNCTION';
