import {
  ConfigurationError,
  IdpConfigurationError,
  IdpPermanentError,
  IdpTransientError,
} from '../../core/errors';
import type { Clock } from '../../core/ports';

/**
 * HTTP plumbing shared by the IdP clients: one POST with a deadline, defensive body parsing,
 * and the classification of failed answers. Nothing here ever puts a request or response
 * body into an error: bodies carry tokens.
 */

/** The `fetch` signature the clients use; injectable so tests and callers can swap it. */
export type FetchFn = typeof fetch;

/** What the clients need from an HTTP answer. */
export interface HttpAnswer {
  readonly status: number;
  readonly headers: Headers;
  /**
   * The body when it is a JSON object; `undefined` for anything else (empty, HTML, array, larger
   * than the cap, or cut off before its end).
   */
  readonly json: Readonly<Record<string, unknown>> | undefined;
}

/** A larger body is not a token response; stop reading it. */
export const MAX_BODY_BYTES = 256 * 1024;
const MAX_RETRY_AFTER_SECONDS = 3600;
/**
 * An OAuth-style error code: short, lower case, underscores. Anything else may be free text, and
 * free text may quote a token, so it is never read (and never put into an error).
 */
export const ERROR_CODE = /^[a-z_]{1,64}$/;
const HTTP_DATE_START = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,?\s/;

/** The codes that prove a refresh token dead unless configured otherwise (RFC 6749 section 5.2). */
export const DEFAULT_DEAD_TOKEN_CODES: readonly string[] = ['invalid_grant'];

/**
 * Codes that describe the app's client or request, never the user's refresh token (RFC 6749
 * section 5.2, RFC 6750 section 3.1, RFC 7009 section 2.2.1): the IdP refused before the grant.
 */
export const CONFIGURATION_CODES: ReadonlySet<string> = new Set([
  'invalid_client',
  'unauthorized_client',
  'insufficient_scope',
  'unsupported_grant_type',
  'invalid_request',
  'invalid_scope',
  'unsupported_token_type',
]);

/** Codes by which the IdP says it did not process the request: the token may be sent again now. */
const NOT_PROCESSED_CODES: ReadonlySet<string> = new Set(['temporarily_unavailable', 'slow_down']);
/** Statuses by which the IdP (or its front door) says it did not process the request. */
const NOT_PROCESSED_STATUSES: ReadonlySet<number> = new Set([429, 503]);
/** Network error codes raised before a byte of the request left: nothing was sent. */
const NOTHING_SENT_CODES: ReadonlySet<string> = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN']);

/** How a client reads the refusals of one endpoint. */
export interface FailurePolicy {
  /** Codes that prove the presented refresh token dead (empty where no refresh token is presented). */
  readonly deadTokenCodes: ReadonlySet<string>;
}

/**
 * Sends one POST. A failure before any answer becomes IdpTransientError (`notConsumed` only when
 * the connection was refused, so nothing was sent). Once a status line arrived the answer is
 * returned whatever happens to its body: a 200 means the IdP processed the request, so a body
 * that is cut off, too large or late is an answer without JSON, not a network error.
 */
export async function post(
  fetchFn: FetchFn,
  url: string,
  init: { readonly headers: Record<string, string>; readonly body: string },
  signal: AbortSignal,
  what: string,
): Promise<HttpAnswer> {
  let response: Response;
  try {
    // Redirects are not followed: a 307/308 would resend the token to wherever it points.
    response = await fetchFn(url, {
      method: 'POST',
      headers: init.headers,
      body: init.body,
      signal,
      redirect: 'manual',
    });
  } catch (error) {
    if (signal.aborted) {
      throw new IdpTransientError(`${what} failed: timed out`, undefined, undefined, {
        cause: signal.reason,
      });
    }
    // Only when every error along the chain says the connection never opened.
    const codes = networkErrorCodes(error);
    const nothingSent = codes.length > 0 && codes.every((code) => NOTHING_SENT_CODES.has(code));
    throw new IdpTransientError(
      `${what} failed: ${nothingSent ? 'connection refused' : 'network error'}`,
      undefined,
      undefined,
      { cause: error, notConsumed: nothingSent },
    );
  }
  let text: string | undefined;
  try {
    text = await readCapped(response, MAX_BODY_BYTES);
  } catch {
    text = undefined;
  }
  return { status: response.status, headers: response.headers, json: parseJsonObject(text) };
}

/** The `code` fields along an error's cause chain (undici puts the socket error in `cause`). */
function networkErrorCodes(error: unknown): string[] {
  const codes: string[] = [];
  const seen = new Set<unknown>();
  const visit = (value: unknown): void => {
    if (typeof value !== 'object' || value === null || seen.has(value) || seen.size > 16) return;
    seen.add(value);
    const { code, cause, errors } = value as { code?: unknown; cause?: unknown; errors?: unknown };
    if (typeof code === 'string') codes.push(code);
    visit(cause);
    if (Array.isArray(errors)) for (const inner of errors) visit(inner);
  };
  visit(error);
  return codes;
}

/** Reads the body as text, or `undefined` when it exceeds `maxBytes` (a hostile or broken peer). */
export async function readCapped(response: Response, maxBytes: number): Promise<string | undefined> {
  if (!response.body) return '';
  const declared = Number(response.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) {
    await response.body.cancel().catch(() => undefined);
    return undefined;
  }
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => undefined);
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseJsonObject(text: string | undefined): Record<string, unknown> | undefined {
  if (!text) return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** The OAuth `error` (or CIS `error_code`) field when it is a short code, else `undefined`. */
export function errorCode(json: HttpAnswer['json']): string | undefined {
  for (const field of ['error', 'error_code'] as const) {
    const value = json?.[field];
    if (typeof value === 'string' && ERROR_CODE.test(value)) return value;
  }
  return undefined;
}

/**
 * Sends a request as the app's client and, when the IdP refuses the client itself (checked before
 * a grant is processed, so nothing the request carried was consumed), renews what identified the
 * client (credentials re-read, a fresh client token) and sends it once more. What a second refusal
 * means is the caller's to say. `credential(retry)` gives what to send with; `renew` drops the one
 * that was refused.
 */
export async function sendRenewingClientOnce<C>(
  credential: (retry: boolean) => Promise<C>,
  send: (credential: C) => Promise<HttpAnswer>,
  refused: (answer: HttpAnswer) => boolean,
  renew: (refusedCredential: C) => void,
): Promise<HttpAnswer> {
  const first = await credential(false);
  const answer = await send(first);
  if (!refused(answer)) return answer;
  renew(first);
  return send(await credential(true));
}

/** True for a 2xx: the IdP processed the request (a refresh consumed the token). */
export function isSuccess(status: number): boolean {
  return status >= 200 && status < 300;
}

/**
 * Classifies a failed answer, by the OAuth error code first and the status second, so that a
 * token is destroyed only on proof:
 * - a 403, or a configuration code on a 4xx: IdpConfigurationError (the app's client is refused);
 * - a dead-token code on a 400 or 401: IdpPermanentError (the only proof a refresh token is dead);
 * - `temporarily_unavailable`, `slow_down`, 429, 503: IdpTransientError, not consumed;
 * - any other 401: IdpConfigurationError (every caller has already retried its client's
 *   credentials: Transmit with a fresh client token, OAuth 2.0 with the credentials re-read);
 * - anything else (`server_error`, 5xx, 408, 3xx, an unknown or missing code): IdpTransientError
 *   that may have consumed the token, so it is never resent at once.
 */
export function classifyFailure(
  answer: HttpAnswer,
  what: string,
  clock: Clock,
  policy: FailurePolicy,
): IdpPermanentError | IdpTransientError | IdpConfigurationError {
  const { status } = answer;
  const code = errorCode(answer.json);
  const detail = `HTTP ${status}${code ? ` (${code})` : ''}`;
  const refused = () => new IdpConfigurationError(`${what} refused for this client: ${detail}`, status, code);
  const clientError = status >= 400 && status < 500 && status !== 429;
  if (status === 403 || (clientError && code !== undefined && CONFIGURATION_CODES.has(code)))
    return refused();
  if ((status === 400 || status === 401) && code !== undefined && policy.deadTokenCodes.has(code)) {
    return new IdpPermanentError(`${what} rejected: ${detail}`, status, code);
  }
  if (status === 401) return refused();
  const retryAfter = parseRetryAfter(answer.headers.get('retry-after'), clock.nowMs());
  const notConsumed =
    code !== 'server_error' &&
    ((code !== undefined && NOT_PROCESSED_CODES.has(code)) || NOT_PROCESSED_STATUSES.has(status));
  const suffix = clientError && !answer.json ? ' with a non-JSON body' : '';
  return new IdpTransientError(`${what} failed: ${detail}${suffix}`, status, retryAfter, { notConsumed });
}

/** `Retry-After` as seconds (delta-seconds or HTTP date), capped at one hour; `undefined` when absent or invalid. */
export function parseRetryAfter(value: string | null, nowMs: number): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Math.min(Number(text), MAX_RETRY_AFTER_SECONDS);
  // Every HTTP-date form (IMF-fixdate, RFC 850, asctime) starts with the day name; Date.parse
  // alone would also take "-5" or "2026" as dates.
  if (!HTTP_DATE_START.test(text)) return undefined;
  const dateMs = Date.parse(text);
  if (Number.isNaN(dateMs)) return undefined;
  return Math.min(Math.max(0, Math.ceil((dateMs - nowMs) / 1000)), MAX_RETRY_AFTER_SECONDS);
}

/** Validates an endpoint setting; throws ConfigurationError naming the option. */
export function endpointUrl(value: string, option: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigurationError(`${option} is not a valid URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ConfigurationError(`${option} must be an http(s) URL`);
  }
  return url.toString();
}

/** The body of an `application/x-www-form-urlencoded` request. */
export function formBody(fields: Readonly<Record<string, string>>): string {
  return new URLSearchParams(fields).toString();
}

/** application/x-www-form-urlencoded encoding of one value (RFC 6749 appendix B). */
export function formEncode(value: string): string {
  return new URLSearchParams([['', value]]).toString().slice(1);
}
