import { ValidationError } from './errors';
import { DEFAULT_RESOURCE, type RecordKey, type TokenSet } from './model';
import { Secret } from './secret';

const MAX_ID_LENGTH = 256;
/** The sort key is `r#` + resource, and DynamoDB caps a sort key at 1024 bytes of UTF-8. */
const MAX_RESOURCE_BYTES = 1000;
const MAX_TOKEN_LENGTH = 16 * 1024;
/** Longest access-token lifetime accepted from an IdP: 7 days. */
export const MAX_EXPIRES_IN_SECONDS = 7 * 86_400;
/** Longest validity a caller may ask for. */
export const MAX_MIN_VALIDITY_SECONDS = 86_400;
/** Validity a caller gets when it asks for none. */
export const DEFAULT_MIN_VALIDITY_SECONDS = 60;

/** What storeTokens accepts, validated. */
export interface StoreTokensInput {
  readonly key: RecordKey;
  /** Epoch seconds, when given. */
  readonly authenticatedAt: number | undefined;
  readonly tokens: TokenSet;
}

/** What getAccessToken accepts, validated. */
export interface GetAccessTokenInput {
  readonly key: RecordKey;
  readonly minValiditySeconds: number;
}

/** Validates a storeTokens event. Messages name the field, never its value. */
export function parseStoreTokensEvent(event: unknown): StoreTokensInput {
  const body = object(event, 'event');
  const tokens = object(field(body, 'tokens'), 'tokens');
  const sessionId = optionalString(tokens, 'session_id', 'tokens.session_id', 1024);
  const idToken = optionalString(tokens, 'id_token', 'tokens.id_token', MAX_TOKEN_LENGTH);
  return {
    key: parseKey(body),
    authenticatedAt: parseInstant(field(body, 'authenticatedAt')),
    tokens: {
      accessToken: new Secret(string(field(tokens, 'access_token'), 'tokens.access_token', MAX_TOKEN_LENGTH)),
      refreshToken: new Secret(
        string(field(tokens, 'refresh_token'), 'tokens.refresh_token', MAX_TOKEN_LENGTH),
      ),
      ...(idToken === undefined ? {} : { idToken: new Secret(idToken) }),
      ...(sessionId === undefined ? {} : { sessionId: new Secret(sessionId) }),
      tokenType: tokenType(field(tokens, 'token_type')),
      expiresIn: integer(field(tokens, 'expires_in'), 'tokens.expires_in', 1, MAX_EXPIRES_IN_SECONDS),
    },
  };
}

/** Validates a getAccessToken event. */
export function parseGetAccessTokenEvent(event: unknown): GetAccessTokenInput {
  const body = object(event, 'event');
  const min = field(body, 'minValiditySeconds');
  return {
    key: parseKey(body),
    minValiditySeconds:
      min === undefined
        ? DEFAULT_MIN_VALIDITY_SECONDS
        : integer(min, 'minValiditySeconds', 0, MAX_MIN_VALIDITY_SECONDS),
  };
}

/** Longest correlation id a caller may send (a UUID is 36). */
export const MAX_CORRELATION_ID_LENGTH = 128;

/**
 * The caller's optional `correlationId` (any event), which every log line of the call carries:
 * letters, digits and `._:-`, at most 128 characters. Anything else is refused, since it would go
 * into the log as it came.
 */
export function parseCorrelationId(event: unknown): string | undefined {
  if (typeof event !== 'object' || event === null || Array.isArray(event)) return undefined;
  const value = field(event as Record<string, unknown>, 'correlationId');
  if (value === undefined) return undefined;
  if (
    typeof value !== 'string' ||
    !/^[A-Za-z0-9._:-]+$/.test(value) ||
    value.length > MAX_CORRELATION_ID_LENGTH
  ) {
    throw new ValidationError(
      `correlationId must be 1 to ${MAX_CORRELATION_ID_LENGTH} letters, digits or the characters . _ : -`,
    );
  }
  return value;
}

/** Validates `{ userId, resource? }` (disconnect and the key part of the other events). */
export function parseKey(body: unknown): RecordKey {
  const record = object(body, 'event');
  const userId = string(field(record, 'userId'), 'userId', MAX_ID_LENGTH);
  const resource = optionalString(record, 'resource', 'resource', MAX_RESOURCE_BYTES) ?? DEFAULT_RESOURCE;
  if (Buffer.byteLength(resource, 'utf8') > MAX_RESOURCE_BYTES) {
    throw new ValidationError(`resource must be at most ${MAX_RESOURCE_BYTES} bytes of UTF-8`);
  }
  return { userId, resource };
}

/** Own property only: `__proto__` and friends from JSON never reach a prototype. */
function field(record: Record<string, unknown>, name: string): unknown {
  return Object.hasOwn(record, name) ? record[name] : undefined;
}

function object(value: unknown, name: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ValidationError(`${name} must be an object`);
  }
  return value as Record<string, unknown>;
}

function string(value: unknown, name: string, maxLength: number): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new ValidationError(`${name} must be a non-empty string`);
  }
  if (value.length > maxLength) throw new ValidationError(`${name} must be at most ${maxLength} characters`);
  // Control characters (C0, DEL, C1) have no place in ids or tokens, and would corrupt key syntax and logs.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: that is the point of the check
  if (/[\u0000-\u001f\u007f-\u009f]/.test(value))
    throw new ValidationError(`${name} must not contain control characters`);
  if (value.trim() !== value) throw new ValidationError(`${name} must not start or end with whitespace`);
  // A lone surrogate has no UTF-8 form: two different ids would become the same key and the same AAD.
  if (/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(value)) {
    throw new ValidationError(`${name} must be well-formed Unicode`);
  }
  return value;
}

function optionalString(
  record: Record<string, unknown>,
  key: string,
  name: string,
  maxLength: number,
): string | undefined {
  const value = field(record, key);
  return value === undefined || value === null ? undefined : string(value, name, maxLength);
}

function integer(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new ValidationError(`${name} must be an integer between ${min} and ${max}`);
  }
  return value;
}

function tokenType(value: unknown): string {
  const type = string(value, 'tokens.token_type', 32);
  if (!/^[A-Za-z][A-Za-z0-9_-]*$/.test(type)) throw new ValidationError('tokens.token_type must be a word');
  return type;
}

/** ISO 8601 string or epoch seconds (a number that looks like milliseconds is refused, not guessed). */
function parseInstant(value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value <= 0 || value >= 1e11) {
      throw new ValidationError('authenticatedAt must be epoch seconds or an ISO 8601 string');
    }
    return Math.floor(value);
  }
  if (typeof value === 'string' && value.length <= 40 && /^\d{4}-\d{2}-\d{2}T/.test(value)) {
    const ms = Date.parse(value);
    if (Number.isFinite(ms) && ms > 0) return Math.floor(ms / 1000);
  }
  throw new ValidationError('authenticatedAt must be epoch seconds or an ISO 8601 string');
}
