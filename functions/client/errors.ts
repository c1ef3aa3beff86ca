import {
  ConfigurationError,
  type ReauthReason,
  ReauthRequiredError,
  RefreshUnavailableError,
  type TokenKeeperError,
  TokenNotFoundError,
  ValidationError,
} from '../core/errors';

const REAUTH_REASONS: readonly ReauthReason[] = [
  'refresh_rejected',
  'deadline',
  'expired',
  'corrupted',
  'unusable_answer',
];

/**
 * How the service words each reason today (functions/core/token-service.ts). Used only when
 * the message carries no explicit `reason: <code>` marker.
 */
const REAUTH_PHRASES: ReadonlyArray<readonly [string, ReauthReason]> = [
  ['rejected the refresh token', 'refresh_rejected'],
  ['maximum rotation period', 'deadline'],
  ['expired before it could be rotated', 'expired'],
  ['cannot be decrypted', 'corrupted'],
];

/** Longest function error message passed on; the service's own messages are far shorter. */
const MAX_MESSAGE_LENGTH = 500;

/** SDK errors that mean "this caller is not set up to invoke that function": retrying will not help. */
const SETUP_ERRORS = new Set([
  'AccessDeniedException',
  'ResourceNotFoundException',
  'InvalidParameterValueException',
  'UnrecognizedClientException',
  'ExpiredTokenException',
]);

/**
 * Maps the error payload of a failed invocation (`{"errorType","errorMessage","trace"}`) to the
 * service's typed errors. Only the messages of the service's public errors are passed on (they are
 * written to be safe); for anything else only the error type is named, never its message or trace.
 */
export function errorFromFunctionError(payload: string, functionLabel = 'getAccessToken'): TokenKeeperError {
  const { errorType, errorMessage } = parseErrorPayload(payload);
  const message = errorMessage.slice(0, MAX_MESSAGE_LENGTH);
  switch (errorType) {
    case 'ValidationError':
      return new ValidationError(message);
    case 'TokenNotFoundError':
      return new TokenNotFoundError(message);
    case 'ReauthRequiredError':
      return new ReauthRequiredError(message, reauthReasonOf(message));
    case 'RefreshUnavailableError':
      return new RefreshUnavailableError(message);
    case 'ConfigurationError':
      return new ConfigurationError(message);
    default:
      // A timeout, a crash or an internal error: the caller can only retry later; the function's
      // own Errors alarm tells the operator.
      return new RefreshUnavailableError(
        `the ${functionLabel} function failed (${safeName(errorType)}); retry later`,
      );
  }
}

/** Maps a failed Invoke call (the SDK threw) to a typed error, keeping the SDK error as `cause`. */
export function errorFromInvokeFailure(
  error: unknown,
  functionName: string,
  functionLabel = 'getAccessToken',
): TokenKeeperError {
  const name = error instanceof Error ? error.name : 'UnknownError';
  if (SETUP_ERRORS.has(name)) {
    const grant = `grant${functionLabel.charAt(0).toUpperCase()}${functionLabel.slice(1)}`;
    return new ConfigurationError(
      `cannot invoke the ${functionLabel} function "${functionName}" (${name}): grant the caller with ` +
        `${grant} and check the function name`,
      { cause: error },
    );
  }
  return new RefreshUnavailableError(
    `invoking the ${functionLabel} function failed (${safeName(name)}); retry later`,
    {
      cause: error,
    },
  );
}

/** The reason of a re-authentication: an explicit `reason: <code>` marker, else the known wording. */
export function reauthReasonOf(message: string): ReauthReason {
  const marked = /\breason[:=]\s*([a-z_]+)/.exec(message)?.[1];
  if (marked !== undefined && (REAUTH_REASONS as readonly string[]).includes(marked)) {
    return marked as ReauthReason;
  }
  for (const [phrase, reason] of REAUTH_PHRASES) {
    if (message.includes(phrase)) return reason;
  }
  // Unknown wording: the refresh token is unusable, which is what every reason amounts to.
  return 'refresh_rejected';
}

function parseErrorPayload(payload: string): { errorType: string; errorMessage: string } {
  try {
    const parsed: unknown = JSON.parse(payload);
    if (typeof parsed === 'object' && parsed !== null) {
      const { errorType, errorMessage } = parsed as Record<string, unknown>;
      return {
        errorType: typeof errorType === 'string' ? errorType : 'UnknownError',
        errorMessage: typeof errorMessage === 'string' ? errorMessage : '',
      };
    }
  } catch {
    // Not JSON: fall through to an unknown error.
  }
  return { errorType: 'UnknownError', errorMessage: '' };
}

/** An error type is echoed only when it looks like a type name, never free text. */
function safeName(name: string): string {
  return /^[A-Za-z][A-Za-z0-9_.]{0,63}$/.test(name) ? name : 'UnknownError';
}
