import type { RefreshAnswer } from '../../core/model';
import { Secret } from '../../core/secret';
import type { HttpAnswer } from './http';

/** A number as JSON or as a decimal string (some servers quote it): `"3600"`, `"-1"`, `"1.5"`. */
const NUMERIC_STRING = /^\s*-?\d{1,20}(\.\d{1,20})?\s*$/;

/**
 * Reads a 200 refresh answer leniently: the IdP consumed the refresh token when it answered, so
 * this never throws and never refuses the whole answer over one field. A field that is absent or
 * malformed is `undefined` (a body that was not a JSON object leaves every field undefined);
 * `expires_in` is passed on as sent, for the core to clamp.
 */
export function parseRefreshAnswer(json: HttpAnswer['json']): RefreshAnswer {
  return {
    accessToken: secretField(json?.access_token),
    refreshToken: secretField(json?.refresh_token),
    idToken: secretField(json?.id_token),
    tokenType: nonEmptyString(json?.token_type) ? json.token_type : undefined,
    expiresIn: seconds(json?.expires_in),
  };
}

function seconds(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'string' && NUMERIC_STRING.test(value)) {
    const parsed = Number(value);
    return Number.isFinite(parsed) ? parsed : undefined;
  }
  return undefined;
}

function secretField(value: unknown): Secret | undefined {
  return nonEmptyString(value) ? new Secret(value) : undefined;
}

function nonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0;
}
