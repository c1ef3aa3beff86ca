import type { TokenSet } from '../../core/model';
import { Secret } from '../../core/secret';
import type { HttpAnswer } from './http';

/**
 * Validates a refresh answer into a TokenSet, or `undefined` when any field is off. Numeric
 * strings for `expires_in` are refused on purpose: a sloppy answer is not trusted.
 */
export function parseTokenSet(json: HttpAnswer['json']): TokenSet | undefined {
  if (!json) return undefined;
  const { access_token: access, refresh_token: refresh, expires_in: expiresIn, token_type: type } = json;
  const idToken = json.id_token;
  if (!nonEmptyString(access) || !nonEmptyString(refresh)) return undefined;
  if (typeof expiresIn !== 'number' || !Number.isFinite(expiresIn) || expiresIn <= 0) return undefined;
  if (type !== undefined && !nonEmptyString(type)) return undefined;
  if (idToken !== undefined && idToken !== null && !nonEmptyString(idToken)) return undefined;
  return {
    accessToken: new Secret(access),
    refreshToken: new Secret(refresh),
    tokenType: type ?? 'Bearer',
    expiresIn,
    ...(nonEmptyString(idToken) ? { idToken: new Secret(idToken) } : {}),
  };
}

function nonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0;
}
