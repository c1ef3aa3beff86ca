import type { Clock } from './ports';

/** Settings of {@link IdpRateLimiter}. */
export interface RateLimitSettings {
  /** Calls started per second, at most. */
  readonly requestsPerSecond: number;
  /** Calls in flight at once, at most. */
  readonly maxConcurrent: number;
  /** The rate never drops below this after rate limiting. @default requestsPerSecond / 16 */
  readonly minRequestsPerSecond?: number;
}

/** A slot of the limiter: give it back when the call is over. */
export type Release = () => void;

/**
 * Paces the calls toward the IdP that the sweep's workers make: a token bucket for the rate and a
 * count for concurrency. A 429 halves the rate (and honours Retry-After for everyone); each
 * success then adds back a little (additive increase, multiplicative decrease), so the sweep
 * slows down when the IdP asks it to and speeds up again when it stops.
 */
export class IdpRateLimiter {
  private rate: number;
  private readonly maxRate: number;
  private readonly minRate: number;
  private tokens: number;
  private refilledAtMs: number;
  private inFlight = 0;
  private pausedUntilMs = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(
    private readonly settings: RateLimitSettings,
    private readonly clock: Clock,
    private readonly sleep: (ms: number) => Promise<void>,
  ) {
    this.maxRate = settings.requestsPerSecond;
    this.rate = settings.requestsPerSecond;
    this.minRate = settings.minRequestsPerSecond ?? settings.requestsPerSecond / 16;
    this.tokens = Math.min(1, settings.requestsPerSecond);
    this.refilledAtMs = clock.nowMs();
  }

  /** Waits for a slot, or returns undefined when none comes within `maxWaitMs`. */
  async acquire(maxWaitMs: number): Promise<Release | undefined> {
    const deadlineMs = this.clock.nowMs() + maxWaitMs;
    while (this.inFlight >= this.settings.maxConcurrent) {
      if (this.clock.nowMs() >= deadlineMs) return undefined;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    this.inFlight++;
    for (;;) {
      const nowMs = this.clock.nowMs();
      this.refill(nowMs);
      const waitMs = Math.max(
        this.pausedUntilMs - nowMs,
        this.tokens >= 1 ? 0 : ((1 - this.tokens) / this.rate) * 1000,
      );
      if (waitMs <= 0) {
        this.tokens -= 1;
        return this.releaser();
      }
      if (nowMs + waitMs > deadlineMs) {
        this.releaser()();
        return undefined;
      }
      await this.sleep(waitMs);
    }
  }

  /** The IdP said 429: halve the rate and pause everyone for Retry-After. */
  onRateLimited(retryAfterSeconds: number | undefined): void {
    this.rate = Math.max(this.minRate, this.rate / 2);
    if (retryAfterSeconds !== undefined) {
      this.pausedUntilMs = Math.max(this.pausedUntilMs, this.clock.nowMs() + retryAfterSeconds * 1000);
    }
  }

  /** A call succeeded: creep back toward the configured rate. */
  onSuccess(): void {
    this.rate = Math.min(this.maxRate, this.rate + this.maxRate / 32);
  }

  private refill(nowMs: number): void {
    const elapsed = Math.max(0, nowMs - this.refilledAtMs) / 1000;
    // Burst of at most one second's worth, so a sweep does not start with a spike.
    this.tokens = Math.min(Math.max(1, this.rate), this.tokens + elapsed * this.rate);
    this.refilledAtMs = nowMs;
  }

  private releaser(): Release {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inFlight--;
      this.waiters.shift()?.();
    };
  }
}
