/**
 * Domain errors. Every error a handler can throw has a stable `name` that callers match on;
 * messages help the operator and never contain token material. The original error, when
 * there is one, is kept in `cause` (non-enumerable, so a JSON log of the error omits it).
 */

/**
 * Base class: keeps `cause` out of serialisation. Each subclass names itself with a string
 * literal, not its class name, because bundlers minify class names and callers match on `name`.
 */
export abstract class TokenKeeperError extends Error {
  /** True when the same request may succeed if retried later. */
  readonly retryable: boolean = false;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message);
    if (options?.cause !== undefined) {
      Object.defineProperty(this, 'cause', { value: options.cause, enumerable: false, writable: true });
    }
  }

  /** What a handler returns or logs: name and message only, never the cause. */
  toJSON(): { name: string; message: string } {
    return { name: this.name, message: this.message };
  }
}

/** The event or a field of it is malformed. Nothing was written. */
export class ValidationError extends TokenKeeperError {
  override readonly name = 'ValidationError';
}

/** No live token record exists for the user and resource. */
export class TokenNotFoundError extends TokenKeeperError {
  override readonly name = 'TokenNotFoundError';
}

/** Why a record needs the user to sign in again. */
export type ReauthReason =
  | 'refresh_rejected'
  | 'deadline'
  | 'expired'
  | 'corrupted'
  /** The IdP answered 200 (so it consumed the refresh token) with nothing usable in it. */
  | 'unusable_answer';

/** The refresh token is dead: the user must sign in again. No further IdP calls are made for it. */
export class ReauthRequiredError extends TokenKeeperError {
  override readonly name = 'ReauthRequiredError';
  constructor(
    message: string,
    readonly reason: ReauthReason,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A refresh could not be done right now (IdP down, contention, too little time); retry later. */
export class RefreshUnavailableError extends TokenKeeperError {
  override readonly name = 'RefreshUnavailableError';
  override readonly retryable = true;
}

/** A setting is missing or malformed. */
export class ConfigurationError extends TokenKeeperError {
  override readonly name = 'ConfigurationError';
}

/** The names of the errors that cross the handler boundary. */
export const PUBLIC_ERROR_NAMES = [
  'ValidationError',
  'TokenNotFoundError',
  'ReauthRequiredError',
  'RefreshUnavailableError',
  'ConfigurationError',
] as const;
export type PublicErrorName = (typeof PUBLIC_ERROR_NAMES)[number];

// ---- Errors that stay inside the service (adapters -> core) ----

/** An answer of the IdP that refused the request: its HTTP status and OAuth error code. */
export abstract class IdpRefusal extends TokenKeeperError {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * The refresh token is proven dead: the IdP answered `invalid_grant` (or a code configured as
 * meaning the same). Nothing else is proof: see IdpConfigurationError and IdpTransientError.
 */
export class IdpPermanentError extends IdpRefusal {
  override readonly name = 'IdpPermanentError';
}

/**
 * The IdP could not answer now (timeout, network, 408, 429, 5xx, `temporarily_unavailable`,
 * `server_error`, `slow_down`, an unrecognised refusal).
 */
export class IdpTransientError extends TokenKeeperError {
  override readonly name = 'IdpTransientError';
  override readonly retryable = true;
  /**
   * True only when the answer proves the IdP did not process the request, so the refresh token
   * was not consumed (503, 429, a connection refused before anything was sent, the client token
   * refused at the door): the same token may be presented again at once. False when the request
   * may have been processed (a timeout after sending, a reset, 502/504): never resent within the
   * same lease.
   */
  readonly notConsumed: boolean;
  constructor(
    message: string,
    readonly status: number | undefined,
    /** Seconds the IdP asked us to wait (Retry-After), when it said so. */
    readonly retryAfterSeconds: number | undefined,
    options?: { cause?: unknown; notConsumed?: boolean },
  ) {
    super(message, options);
    this.notConsumed = options?.notConsumed ?? false;
  }
}

/**
 * The IdP refused the app's client, not the user's token: `invalid_client`,
 * `unauthorized_client`, `insufficient_scope`, `unsupported_grant_type`, `invalid_request`, a
 * 403, or a 401 that survives a fresh client token. A deployment problem: no user is marked.
 * The request was refused before the refresh token was used, so it was not consumed.
 */
export class IdpConfigurationError extends IdpRefusal {
  override readonly name = 'IdpConfigurationError';
}

/** The token store failed in a way that may pass (throttling, 5xx, network). */
export class StoreUnavailableError extends TokenKeeperError {
  override readonly name = 'StoreUnavailableError';
  override readonly retryable = true;
}

/** A stored record could not be decrypted or parsed: it is not served. */
export class CorruptRecordError extends TokenKeeperError {
  override readonly name = 'CorruptRecordError';
}
