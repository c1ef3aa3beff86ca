import { jwksIdTokenVerifierFor } from '../adapters/idp/jwks-verifier';
import { lambdaRuntime } from '../adapters/runtime';
import { parseStoreTokensEvent } from '../core/validation';
import { type HandlerBody, iso, lambdaHandler } from './lambda';

/** The token response of a sign-in -> the stored record's version and lifetimes. */
export const storeTokens = (async ({ tokenService }, event) => {
  const record = await tokenService.storeTokens(parseStoreTokensEvent(event));
  return {
    userId: record.key.userId,
    resource: record.key.resource,
    version: record.version,
    accessTokenExpiresAt: iso(record.accessExpiresAt),
    refreshTokenExpiresAt: iso(record.refreshExpiresAt),
    rotationDeadline: iso(record.rotationDeadline),
  };
}) satisfies HandlerBody<unknown>;

export const handler = lambdaHandler(
  // The one function that verifies ID tokens: the others' bundles do not carry the verifier.
  () => lambdaRuntime('storeTokens', { idTokenVerifierFor: jwksIdTokenVerifierFor }),
  storeTokens,
);
