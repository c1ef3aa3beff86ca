import type { LifetimePolicy, RecordKey, TokenRecord } from './model';

/** Tuning of the schedule: how far ahead to rotate, and how to back off after failures. */
export interface ScheduleSettings {
  readonly dueShards: number;
  /** First retry delay after a transient failure, doubled per consecutive failure. */
  readonly retryBaseSeconds: number;
  /** Longest retry delay. Bounds attempts per hour from below (3600 / cap). */
  readonly retryCapSeconds: number;
}

/** Defaults for {@link ScheduleSettings}. */
export const DEFAULT_SCHEDULE: Omit<ScheduleSettings, 'dueShards'> = {
  retryBaseSeconds: 30,
  retryCapSeconds: 15 * 60,
};

/** When the refresh token of a token set issued at `issuedAt` expires under the policy. */
export function refreshExpiry(issuedAt: number, rotationDeadline: number, policy: LifetimePolicy): number {
  return Math.min(issuedAt + policy.refreshTokenTtlSeconds, rotationDeadline);
}

/**
 * When the sweep should next look at a healthy record: `refreshAhead` (minus up to a quarter
 * of it, at random, to spread load) before the refresh token expires. A record whose refresh
 * expiry already equals its rotation deadline gains nothing from a rotation: it is due only at
 * the deadline, when it becomes REAUTH_REQUIRED.
 */
export function nextDueAt(
  refreshExpiresAt: number,
  rotationDeadline: number,
  policy: LifetimePolicy,
  nowSeconds: number,
  random: () => number,
  reauthSoonAt?: number,
): number {
  let due: number;
  if (refreshExpiresAt >= rotationDeadline) {
    due = rotationDeadline;
  } else {
    const jitterWindow = Math.floor(Math.min(policy.refreshAheadSeconds / 4, 6 * 3600));
    due = refreshExpiresAt - policy.refreshAheadSeconds - Math.floor(random() * jitterWindow);
  }
  // The "Reauth Soon" notice is due work too: the record must come up when it is time to send it.
  if (reauthSoonAt !== undefined && reauthSoonAt < due) due = reauthSoonAt;
  return Math.max(nowSeconds, due);
}

/**
 * When the app should hear that the user must sign in again soon: `window` before the rotation
 * deadline, but never earlier than halfway to it (a short max rotation would otherwise warn at
 * sign-in). Undefined when the notice is switched off (window 0) or already sent.
 */
export function reauthSoonAt(
  record: Pick<TokenRecord, 'authenticatedAt' | 'rotationDeadline' | 'reauthSoonNotifiedAt'>,
  windowSeconds: number,
): number | undefined {
  if (windowSeconds <= 0 || record.reauthSoonNotifiedAt !== undefined) return undefined;
  const halfway = record.authenticatedAt + Math.floor((record.rotationDeadline - record.authenticatedAt) / 2);
  return Math.max(halfway, record.rotationDeadline - windowSeconds);
}

/**
 * When to retry after the `failures`-th consecutive transient failure: exponential backoff with
 * equal jitter, never sooner than the IdP's Retry-After, and early enough to retry before the
 * refresh token expires.
 */
export function retryAt(
  record: Pick<TokenRecord, 'refreshExpiresAt'>,
  failures: number,
  retryAfterSeconds: number | undefined,
  nowSeconds: number,
  settings: Pick<ScheduleSettings, 'retryBaseSeconds' | 'retryCapSeconds'>,
  random: () => number,
): number {
  const ceiling = Math.min(
    settings.retryCapSeconds,
    settings.retryBaseSeconds * 2 ** Math.min(failures - 1, 20),
  );
  // Equal jitter (half fixed, half random): spread like full jitter, but with a floor, so callers
  // asking every minute cannot retry a failing record more than about 3600 / (cap / 2) times an hour.
  const delay = Math.max(retryAfterSeconds ?? 0, Math.ceil(ceiling / 2 + (random() * ceiling) / 2), 1);
  const latestUseful = Math.max(nowSeconds + 1, record.refreshExpiresAt - 60);
  return Math.min(nowSeconds + delay, latestUseful);
}

/** The due-index shard of a record: a stable hash of its key, so one record stays in one shard. */
export function shardOf(key: RecordKey, shards: number): number {
  let hash = 2166136261;
  const text = `${key.userId}\u0000${key.resource}`;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 16777619);
  }
  return (hash >>> 0) % shards;
}
