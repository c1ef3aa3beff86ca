/**
 * The bounds of every numeric deployment setting, in one place: lib/context.ts (context values),
 * lib/token-keeper-settings.ts (construct props, at synth) and functions/config.ts (the environment, at
 * start) all check against these, so a value that passes one cannot break another, or the deploy.
 * Plain data and arithmetic only: this module is bundled into the functions.
 */

/** An inclusive integer range. */
export interface IntegerBound {
  readonly min: number;
  readonly max: number;
}

const DAY_SECONDS = 86_400;

/** The integer settings and their inclusive ranges. */
export const SETTING_BOUNDS = {
  /** Shards of the due index (DUE_SHARDS). */
  dueShards: { min: 1, max: 64 },
  /** IdP calls one sweep has in flight (SWEEP_CONCURRENCY). */
  sweepConcurrency: { min: 1, max: 256 },
  /** IdP requests per second of one sweep (IDP_RATE_LIMIT_RPS). */
  idpRateLimitPerSecond: { min: 1, max: 10_000 },
  /** Days before the rotation deadline that `Reauth Soon` goes out (REAUTH_SOON_DAYS). */
  reauthSoonDays: { min: 0, max: 365 },
  /**
   * Minutes between sweeps. At most 6 hours: EventBridge keeps an undelivered event at most 6 hours
   * (the sweep's maximum event age is one interval), and the heartbeat and rotation alarms look
   * back over 2-3 intervals, which CloudWatch caps at one day (periods x evaluation periods).
   */
  sweepIntervalMinutes: { min: 1, max: 360 },
  /** Reserved concurrency of the sweep, when reserved (an account's default quota is 1,000). */
  sweepReservedConcurrency: { min: 1, max: 1000 },
  /** Timeout of one IdP call in ms (IDP_TIMEOUT_MS): with 10 s for the commit it fits the 30 s getAccessToken timeout. */
  idpTimeoutMs: { min: 100, max: 20_000 },
  /** Access-token lifetime assumed when a refresh answer has no `expires_in` (ACCESS_TOKEN_DEFAULT_SECONDS). */
  accessTokenDefaultSeconds: { min: 60, max: 7 * DAY_SECONDS },
} as const satisfies Record<string, IntegerBound>;

/** CloudWatch evaluates an alarm over at most one day: period x evaluation periods. */
export const ALARM_EVALUATION_RANGE_SECONDS = DAY_SECONDS;

/** The longest an EventBridge target may keep an event (its maximum event age). */
export const MAX_EVENT_AGE_SECONDS = 6 * 3600;

/** Consecutive sweeps with a backlog before the backlog alarm fires: 1 up to a day of sweeps. */
export function backlogAlarmPeriodsBound(sweepIntervalMinutes: number): IntegerBound {
  return {
    min: 1,
    max: Math.max(1, Math.floor(ALARM_EVALUATION_RANGE_SECONDS / (sweepIntervalMinutes * 60))),
  };
}

/** True when `value` is an integer inside `bound`. */
export function withinBound(value: number, bound: IntegerBound): boolean {
  return Number.isInteger(value) && value >= bound.min && value <= bound.max;
}

/** "name must be an integer from min to max": the same words everywhere. */
export function boundMessage(name: string, bound: IntegerBound): string {
  return `${name} must be an integer from ${bound.min} to ${bound.max}`;
}
