import type { RefreshAnswer, StoredTokens } from './model';
import { MAX_EXPIRES_IN_SECONDS } from './validation';

/**
 * How a 200 refresh answer becomes stored tokens (docs/architecture.md, "A 200 consumed the
 * token"). The IdP consumed the old refresh token when it answered 200, so nothing here throws
 * for a sloppy answer: what is usable is kept, numbers are clamped, and only an answer with
 * nothing usable at all is reported as such.
 */

/** The lifetime bounds every access-token answer is held to (the same as storeTokens'). */
export const ACCESS_LIFETIME_BOUNDS = { minSeconds: 1, maxSeconds: MAX_EXPIRES_IN_SECONDS } as const;

/** The answer made usable, or why it cannot be. */
export type AnsweredTokens =
  | {
      readonly kind: 'usable';
      readonly tokens: StoredTokens;
      readonly tokenType: string;
      /** Epoch seconds. */
      readonly accessExpiresAt: number;
      /** False when the IdP sent no new refresh token (a non-rotating server): the current one stays. */
      readonly rotated: boolean;
      /** Short codes of what had to be mended, for logs and metrics (never values). */
      readonly mended: readonly string[];
    }
  | { readonly kind: 'unusable' };

/**
 * Merges a 200 answer into the current tokens. `defaultAccessSeconds` stands in for a missing or
 * non-finite `expires_in`; a present one is clamped to {@link ACCESS_LIFETIME_BOUNDS}, and never
 * beyond the access token's own `exp` when it is a JWT that says so.
 */
export function tokensFromAnswer(
  answer: RefreshAnswer,
  current: StoredTokens,
  currentAccess: { readonly tokenType: string; readonly accessExpiresAt: number },
  nowSeconds: number,
  defaultAccessSeconds: number,
): AnsweredTokens {
  const mended: string[] = [];
  if (!answer.accessToken && !answer.refreshToken) return { kind: 'unusable' };
  const rotated = answer.refreshToken !== undefined;
  if (!rotated) mended.push('no_refresh_token');

  let accessToken = current.accessToken;
  let tokenType = currentAccess.tokenType;
  let accessExpiresAt = currentAccess.accessExpiresAt;
  if (answer.accessToken) {
    accessToken = answer.accessToken;
    tokenType = answer.tokenType ?? 'Bearer';
    let lifetime = answer.expiresIn;
    if (lifetime === undefined || !Number.isFinite(lifetime)) {
      mended.push('no_expires_in');
      lifetime = defaultAccessSeconds;
    }
    const clamped = Math.min(
      ACCESS_LIFETIME_BOUNDS.maxSeconds,
      Math.max(ACCESS_LIFETIME_BOUNDS.minSeconds, Math.floor(lifetime)),
    );
    if (clamped !== lifetime) mended.push('expires_in_clamped');
    accessExpiresAt = nowSeconds + clamped;
    const exp = jwtExpiry(answer.accessToken.reveal());
    if (exp !== undefined && exp < accessExpiresAt) {
      accessExpiresAt = Math.max(nowSeconds, exp);
      mended.push('expires_in_beyond_exp');
    }
  } else {
    mended.push('no_access_token');
  }

  return {
    kind: 'usable',
    tokens: {
      accessToken,
      refreshToken: answer.refreshToken ?? current.refreshToken,
      ...((answer.idToken ?? current.idToken) ? { idToken: answer.idToken ?? current.idToken } : {}),
      ...(current.sessionId ? { sessionId: current.sessionId } : {}),
    },
    tokenType,
    accessExpiresAt,
    rotated,
    mended,
  };
}

/** The `exp` claim of a JWT (not verified: used only to shorten a lifetime), or undefined. */
function jwtExpiry(token: string): number | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || !parts[1]) return undefined;
  try {
    const claims: unknown = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    if (typeof claims !== 'object' || claims === null) return undefined;
    const exp = (claims as { exp?: unknown }).exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? Math.floor(exp) : undefined;
  } catch {
    return undefined;
  }
}
