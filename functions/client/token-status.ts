import type { LambdaClient } from '@aws-sdk/client-lambda';
import { type ReauthReason, ValidationError } from '../core/errors';
import { DEFAULT_RESOURCE } from '../core/model';
import { parseCorrelationId } from '../core/validation';
import { invokeForObject, malformedAnswer } from './invoke';

/** Whose status a caller asks for. */
export interface TokenStatusRequest {
  readonly userId: string;
  /**
   * The resource URI the tokens were issued for.
   * @default 'default'
   */
  readonly resource?: string;
  /**
   * Carried into every log line of the call at token-keeper (letters, digits and `._:-`, at most 128 characters).
   * @default - none
   */
  readonly correlationId?: string;
}

/** Where a user's offline access stands; no token. Times are ISO 8601. */
export interface TokenStatus {
  readonly userId: string;
  readonly resource: string;
  /** `ACTIVE`: getAccessToken can serve; `REAUTH_REQUIRED`: ask the user to sign in again. */
  readonly status: 'ACTIVE' | 'REAUTH_REQUIRED';
  /** Why a new sign-in is needed (REAUTH_REQUIRED only). */
  readonly reason?: ReauthReason;
  /** The user signs in again by then at the latest: no rotation extends access past it. */
  readonly rotationDeadline: string;
  /** When the current refresh token expires unless it is rotated first. */
  readonly refreshTokenExpiresAt: string;
  /** The last successful rotation, when there was one since the sign-in. */
  readonly lastRotatedAt?: string;
  /** Failed rotation attempts since the last success. */
  readonly failures: number;
  /** What to show as "offline access until ...". */
  readonly offlineAccessUntil: string;
}

const REASONS: readonly string[] = [
  'refresh_rejected',
  'deadline',
  'expired',
  'corrupted',
  'unusable_answer',
];

/** Invokes the tokenStatus function and parses its answer; failures become the typed errors. */
export async function invokeTokenStatus(
  client: LambdaClient,
  functionName: string,
  request: TokenStatusRequest,
): Promise<TokenStatus> {
  const normalized = normalize(request);
  return parseTokenStatus(await invokeForObject(client, functionName, 'tokenStatus', normalized));
}

function normalize(request: TokenStatusRequest): TokenStatusRequest & { readonly resource: string } {
  if (typeof request?.userId !== 'string' || request.userId === '') {
    throw new ValidationError('userId must be a non-empty string');
  }
  if (request.resource !== undefined && (typeof request.resource !== 'string' || request.resource === '')) {
    throw new ValidationError('resource must be a non-empty string when given');
  }
  const correlationId = parseCorrelationId(request);
  return {
    userId: request.userId,
    resource: request.resource ?? DEFAULT_RESOURCE,
    ...(correlationId === undefined ? {} : { correlationId }),
  };
}

/** Reads the function's answer; never echoes it in an error. */
function parseTokenStatus(answer: Record<string, unknown>): TokenStatus {
  const malformed = () => malformedAnswer('tokenStatus');
  const time = (name: string, required: boolean): string | undefined => {
    const value = answer[name];
    if (value === undefined && !required) return undefined;
    if (typeof value !== 'string' || !Number.isFinite(Date.parse(value))) throw malformed();
    return value;
  };
  const { userId, resource, status, reason, failures } = answer;
  if (typeof userId !== 'string' || typeof resource !== 'string') throw malformed();
  if (status !== 'ACTIVE' && status !== 'REAUTH_REQUIRED') throw malformed();
  if (typeof failures !== 'number' || !Number.isInteger(failures) || failures < 0) throw malformed();
  if (reason !== undefined && (typeof reason !== 'string' || !REASONS.includes(reason))) throw malformed();
  const lastRotatedAt = time('lastRotatedAt', false);
  return {
    userId,
    resource,
    status,
    ...(status === 'REAUTH_REQUIRED'
      ? { reason: (reason as ReauthReason | undefined) ?? 'refresh_rejected' }
      : {}),
    rotationDeadline: time('rotationDeadline', true) as string,
    refreshTokenExpiresAt: time('refreshTokenExpiresAt', true) as string,
    ...(lastRotatedAt !== undefined ? { lastRotatedAt } : {}),
    failures,
    offlineAccessUntil: time('offlineAccessUntil', true) as string,
  };
}
