import { ConfigurationError, IdpPermanentError, IdpTransientError } from '../../core/errors';
import type { Clock } from '../../core/ports';

/**
 * HTTP plumbing shared by the IdP clients: one POST with a deadline, defensive body parsing,
 * and the status classification of DESIGN.md. Nothing here ever puts a request or response
 * body into an error: bodies carry tokens.
 */

/** The `fetch` signature the clients use; injectable so tests and callers can swap it. */
export type FetchFn = typeof fetch;

/** What the clients need from an HTTP answer. */
export interface HttpAnswer {
  readonly status: number;
  readonly headers: Headers;
  /** The body when it is a JSON object; `undefined` for anything else (empty, HTML, array, too large). */
  readonly json: Readonly<Record<string, unknown>> | undefined;
}

/** A larger body is not a token response; stop reading it. */
const MAX_BODY_BYTES = 256 * 1024;
const MAX_RETRY_AFTER_SECONDS = 3600;
/** An OAuth-style error code: short, lower case, underscores (anything else may be free text). */
const ERROR_CODE = /^[a-z_]{1,64}$/;
const HTTP_DATE_START = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,?\s/;

/** The system clock. */
export { systemClock } from '../system-clock';

/** Sends one POST; network failures and the deadline become IdpTransientError. */
export async function post(
  fetchFn: FetchFn,
  url: string,
  init: { readonly headers: Record<string, string>; readonly body: string },
  signal: AbortSignal,
  what: string,
): Promise<HttpAnswer> {
  try {
    // Redirects are not followed: a 307/308 would resend the token to wherever it points.
    const response = await fetchFn(url, {
      method: 'POST',
      headers: init.headers,
      body: init.body,
      signal,
      redirect: 'manual',
    });
    const text = await readCapped(response, MAX_BODY_BYTES);
    return { status: response.status, headers: response.headers, json: parseJsonObject(text) };
  } catch (error) {
    if (signal.aborted) {
      throw new IdpTransientError(`${what} failed: timed out`, undefined, undefined, {
        cause: signal.reason,
      });
    }
    throw new IdpTransientError(`${what} failed: network error`, undefined, undefined, { cause: error });
  }
}

/** Reads the body as text, or `undefined` when it exceeds `maxBytes` (a hostile or broken peer). */
export async function readCapped(response: Response, maxBytes: number): Promise<string | undefined> {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
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
 * Classifies a non-success answer. 400/401/403 with a JSON body are the IdP's own refusal:
 * permanent. Everything else (408, 429, 5xx, unexpected statuses, a 4xx page from a proxy
 * that is not JSON) leaves us unsure the IdP even saw the request: transient.
 */
export function classifyFailure(
  answer: HttpAnswer,
  what: string,
  clock: Clock,
): IdpPermanentError | IdpTransientError {
  const { status } = answer;
  const code = errorCode(answer.json);
  const detail = `HTTP ${status}${code ? ` (${code})` : ''}`;
  if ((status === 400 || status === 401 || status === 403) && answer.json) {
    return new IdpPermanentError(`${what} rejected: ${detail}`, status, code);
  }
  const retryAfter = parseRetryAfter(answer.headers.get('retry-after'), clock.nowMs());
  const suffix = status >= 400 && status < 500 && !answer.json ? ' with a non-JSON body' : '';
  return new IdpTransientError(`${what} failed: ${detail}${suffix}`, status, retryAfter);
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
