import { errorName } from './log-fields';
import type { Clock, Logger, Metrics, TokenStore } from './ports';

/** Settings of the rejection circuit breaker. */
export interface RejectionBreakerSettings {
  /** Rejections (of any users) within one window that open the breaker. */
  readonly threshold: number;
  /** Length of a counting window, in seconds. */
  readonly windowSeconds: number;
}

/** How many of this instance's latest IdP answers the mostly-rejecting check looks at. */
const RECENT_ANSWERS = 8;
/** Fewer rejections than this among them never trip the breaker on their own. */
const MIN_RECENT_REJECTIONS = 4;

/** What to do with a refresh token the IdP rejected as dead. */
export type RejectionVerdict = 'mark' | 'hold';

/**
 * The rejection circuit breaker (docs/architecture.md, "Failure classes"). Many users rejected
 * as dead within a short window are far likelier a deployment mistake (a wrong tenant, region or
 * client) than a mass revocation, so past a threshold nobody more is marked REAUTH_REQUIRED: the
 * rejection is held as a transient failure, a metric and an alarm go out, and the breaker stays
 * open (shared through the store, across Lambda instances) until rotations succeed again or an
 * operator closes it. Any doubt (the store cannot be asked) also holds: a token is never destroyed
 * on ambiguous evidence.
 */
export class RejectionBreaker {
  /** This instance's latest IdP answers to refreshes: true for a dead-token rejection. */
  private readonly recent: boolean[] = [];

  constructor(
    private readonly deps: {
      readonly store: TokenStore;
      readonly clock: Clock;
      readonly metrics: Metrics;
      readonly logger: Logger;
      readonly settings: RejectionBreakerSettings;
    },
  ) {}

  /** Notes a refresh the IdP answered with tokens (the other side of the mostly-rejecting check). */
  noteRotated(): void {
    this.note(false);
  }

  /**
   * Counts one rejection and says whether the record may be marked. The breaker opens when the
   * rejections of any users in the shared window pass the threshold, or when at least half of this
   * instance's latest answers (and at least four) were rejections: an IdP that rejects everyone
   * trips it within a few records even when a sweep reaches only a few per window.
   */
  async admit(): Promise<RejectionVerdict> {
    const { store, metrics, logger, settings } = this.deps;
    const nowSeconds = this.nowSeconds();
    this.note(true);
    try {
      const state = await store.getBreaker();
      if (state.openedAt !== undefined) return 'hold';
      if (state.trustUntil !== undefined && nowSeconds < state.trustUntil) return 'mark';
      const windowStart = nowSeconds - (nowSeconds % settings.windowSeconds);
      const count = await store.countRejection(windowStart, windowStart + 2 * settings.windowSeconds);
      if (count <= settings.threshold && !this.mostlyRejecting()) return 'mark';
      if ((await store.openBreaker(nowSeconds)) === 'ok') {
        metrics.count('RotationCircuitOpen');
        logger.error(
          'rejection circuit breaker opened: too many refresh tokens rejected; nobody more is marked',
          {
            rejectionsInWindow: count,
            windowSeconds: settings.windowSeconds,
          },
        );
      }
      return 'hold';
    } catch (error) {
      logger.warn('rejection breaker state unavailable; holding the rejection', { error: errorName(error) });
      return 'hold';
    }
  }

  /** True while the breaker is open (the sweep then only probes). Unknown counts as closed. */
  async isOpen(): Promise<boolean> {
    try {
      return (await this.deps.store.getBreaker()).openedAt !== undefined;
    } catch (error) {
      this.deps.logger.warn('rejection breaker state unavailable', { error: errorName(error) });
      return false;
    }
  }

  /**
   * Closes the breaker (rotations succeeded again, or an operator says the cause is fixed).
   * Rejections during `trustSeconds` after that are acted on without counting, so an operator can
   * let a real mass revocation through.
   */
  async close(trustSeconds = 0): Promise<void> {
    await this.deps.store.closeBreaker(this.nowSeconds() + trustSeconds);
    this.deps.logger.warn('rejection circuit breaker closed', { trustSeconds });
  }

  private note(rejected: boolean): void {
    this.recent.push(rejected);
    if (this.recent.length > RECENT_ANSWERS) this.recent.shift();
  }

  private mostlyRejecting(): boolean {
    const rejections = this.recent.filter(Boolean).length;
    return rejections >= MIN_RECENT_REJECTIONS && rejections * 2 >= this.recent.length;
  }

  private nowSeconds(): number {
    return Math.floor(this.deps.clock.nowMs() / 1000);
  }
}
