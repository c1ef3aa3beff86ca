import {
  IdpConfigurationError,
  IdpPermanentError,
  IdpTransientError,
  type ReauthReason,
  RefreshUnavailableError,
  StoreUnavailableError,
} from './errors';
import { publishSafely } from './events';
import { nextDueAt, reauthSoonAt, retryAt, shardOf } from './lifetimes';
import { errorName, logKey } from './log-fields';
import type { LifetimePolicy, RefreshAnswer, TokenRecord } from './model';
import type {
  AppEvent,
  Clock,
  EventPublisher,
  IdentityProvider,
  IdTokenVerifier,
  Logger,
  Metrics,
  SessionTerminator,
  TokenStore,
} from './ports';
import type { IdpRateLimiter } from './rate-limiter';
import { tokensFromAnswer } from './refresh-answer';
import { RejectionBreaker, type RejectionBreakerSettings } from './rejection-breaker';

/** How much time the current invocation has left (the Lambda context's, in real milliseconds). */
export interface Budget {
  remainingMs(): number;
}

/** Settings of the rotation algorithm. */
export interface RotationSettings {
  readonly idpTimeoutMs: number;
  readonly leaseMs: number;
  /** Time kept for the commit and its retries after the IdP answered. */
  readonly commitReserveMs: number;
  readonly dueShards: number;
  readonly retryBaseSeconds: number;
  readonly retryCapSeconds: number;
  /** How long a REAUTH_REQUIRED record is kept so callers get that answer, not "not found". */
  readonly reauthRetentionSeconds: number;
  /** How long before the rotation deadline the app gets a `Reauth Soon` event (0: never). */
  readonly reauthSoonSeconds: number;
  readonly rejectionBreaker: RejectionBreakerSettings;
  /** Access-token lifetime assumed when a refresh answer has no usable `expires_in`. */
  readonly defaultAccessTokenSeconds: number;
  lifetimesFor(resource: string): LifetimePolicy;
}

/** What the rotation needs from the outside world. */
export interface RotationDeps {
  readonly store: TokenStore;
  readonly idp: IdentityProvider;
  readonly clock: Clock;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly events: EventPublisher;
  readonly random: () => number;
  readonly newLeaseId: () => string;
  readonly sleep: (ms: number) => Promise<void>;
  readonly settings: RotationSettings;
  /** Ends access at the IdP on disconnect. @default none: disconnect only deletes the record */
  readonly sessions?: SessionTerminator;
  /** Verifies ID tokens on storeTokens. @default none: not verified */
  readonly idTokens?: IdTokenVerifier;
}

/** The result of one rotation attempt. Contention and IdP failures are values, not exceptions. */
export type RotationOutcome =
  | { readonly kind: 'rotated'; readonly record: TokenRecord }
  /** Someone else holds the lease or changed the record first: nothing was sent to the IdP. */
  | { readonly kind: 'contended' }
  /** The IdP rejected our token but a sibling had already rotated it: its record is current. */
  | { readonly kind: 'superseded'; readonly record: TokenRecord }
  | { readonly kind: 'reauth'; readonly reason: ReauthReason }
  /** `held`: the IdP rejected the token, but the rejection breaker is open, so it was kept. */
  | { readonly kind: 'transient'; readonly retryAt: number | undefined; readonly held?: boolean }
  /** The IdP refused the app's client: a deployment problem. Nothing was marked; retried later. */
  | { readonly kind: 'configuration'; readonly retryAt: number | undefined }
  /** Too little time left in this invocation to call the IdP and commit safely. */
  | { readonly kind: 'no-time' };

const COMMIT_ATTEMPTS = 6;
/** Immediate retries of an answer that proves the token was not consumed, within one lease. */
const IMMEDIATE_RETRIES = 1;
const IMMEDIATE_RETRY_BASE_MS = 200;
/** Time kept, at the end of a lease, for the last commit attempt to reach DynamoDB. */
const COMMIT_SAFETY_MS = 500;

/** The one rotation algorithm (docs/architecture.md "Rotation"), shared by getAccessToken and the sweep. */
export class Rotation {
  readonly breaker: RejectionBreaker;

  constructor(private readonly deps: RotationDeps) {
    this.breaker = new RejectionBreaker({ ...deps, settings: deps.settings.rejectionBreaker });
  }

  /**
   * Rotates the refresh token of `record` (read with ConsistentRead by the caller): lease, one
   * IdP call, commit fenced on the version that was read. The refresh token in `record` is sent
   * to the IdP at most once, and only while this caller holds the lease.
   */
  async rotate(record: TokenRecord, budget: Budget, limiter?: IdpRateLimiter): Promise<RotationOutcome> {
    const { store, idp, clock, metrics, settings } = this.deps;
    if (!record.tokens || record.corrupt || record.status !== 'ACTIVE') return { kind: 'contended' };
    const needMs = settings.idpTimeoutMs + settings.commitReserveMs;
    if (budget.remainingMs() < needMs) return { kind: 'no-time' };

    // Wait for the IdP's pace before taking the lease, so waiting does not eat into the lease.
    const release = limiter ? await limiter.acquire(budget.remainingMs() - needMs) : () => {};
    if (!release || budget.remainingMs() < needMs) {
      release?.();
      return { kind: 'no-time' };
    }
    try {
      const leaseId = this.deps.newLeaseId();
      const leasedAtMs = clock.nowMs();
      const leaseUntilMs = leasedAtMs + settings.leaseMs;
      const leased = await store.acquireLease(record.key, record.version, leaseId, leaseUntilMs, leasedAtMs);
      if (leased === 'conflict') return { kind: 'contended' };
      // The lease's answer may come late (a slow or stalled store): what is left of the lease must
      // still cover the IdP call and the commit, or a caller who takes the lapsed lease would
      // present the same token. Not enough left: leave the lease to lapse and call nobody.
      if (this.leaseLeftMs(leaseUntilMs) < needMs || budget.remainingMs() < needMs) {
        metrics.count('RotationFailed', 1, { reason: 'lease_late' });
        this.deps.logger.warn('lease granted too late to refresh safely; not calling the IdP', {
          ...logKey(record.key),
          leaseLeftMs: this.leaseLeftMs(leaseUntilMs),
        });
        return { kind: 'contended' };
      }

      let answer: RefreshAnswer;
      for (let attempt = 1; ; attempt++) {
        const startedMs = clock.nowMs();
        try {
          answer = await idp.refresh(record.tokens.refreshToken, {
            timeoutMs: Math.min(
              settings.idpTimeoutMs,
              this.leaseLeftMs(leaseUntilMs) - settings.commitReserveMs,
            ),
          });
          metrics.milliseconds('IdpLatency', clock.nowMs() - startedMs);
          break;
        } catch (error) {
          metrics.milliseconds('IdpLatency', clock.nowMs() - startedMs);
          const retryInMs = this.immediateRetryDelay(error, attempt, leaseUntilMs, budget, limiter);
          if (retryInMs !== undefined) {
            metrics.count('IdpRetriedAtOnce');
            await this.deps.sleep(retryInMs);
            continue;
          }
          release();
          if (error instanceof IdpTransientError && error.status === 429)
            limiter?.onRateLimited(error.retryAfterSeconds);
          if (error instanceof IdpPermanentError)
            return await this.onPermanentFailure(record, leaseId, error);
          if (error instanceof IdpConfigurationError)
            return await this.onConfigurationFailure(record, leaseId, error);
          return await this.onTransientFailure(record, leaseId, error);
        }
      }
      release();
      limiter?.onSuccess();
      return await this.commit(record, leaseId, leaseUntilMs, answer, budget);
    } finally {
      release();
    }
  }

  /**
   * When the IdP's answer proves it did not consume the token (503, 429, refused connection), the
   * same token may go again at once, inside this lease: callers then see a failure only when the
   * IdP fails twice in a row. Returns the delay before the retry, or undefined when there is none:
   * ambiguous failures (a timeout after sending, a reset, 502/504) are never retried here.
   */
  private immediateRetryDelay(
    error: unknown,
    attempt: number,
    leaseUntilMs: number,
    budget: Budget,
    limiter: IdpRateLimiter | undefined,
  ): number | undefined {
    const { settings, random } = this.deps;
    if (!(error instanceof IdpTransientError) || !error.notConsumed) return undefined;
    if (attempt > IMMEDIATE_RETRIES) return undefined;
    // The sweep's limiter owns its pace toward a rate-limited IdP; it does not retry a 429 here.
    if (limiter && error.status === 429) return undefined;
    const jittered = IMMEDIATE_RETRY_BASE_MS * 2 ** (attempt - 1) * (0.5 + random() / 2);
    const delayMs = Math.max(jittered, (error.retryAfterSeconds ?? 0) * 1000);
    const needMs = delayMs + settings.idpTimeoutMs + settings.commitReserveMs;
    if (this.leaseLeftMs(leaseUntilMs) < needMs || budget.remainingMs() < needMs) return undefined;
    return delayMs;
  }

  private leaseLeftMs(leaseUntilMs: number): number {
    return leaseUntilMs - this.deps.clock.nowMs();
  }

  /** Marks a record REAUTH_REQUIRED without calling the IdP (deadline reached, token expired). */
  async markReauthRequired(record: TokenRecord, reason: ReauthReason, leaseId?: string): Promise<boolean> {
    const nowSeconds = this.nowSeconds();
    const next: TokenRecord = {
      ...record,
      status: 'REAUTH_REQUIRED',
      // Quarantined, not destroyed: a wrong verdict can be undone by an operator's restore.
      version: record.version + 1,
      lease: undefined,
      dueShard: undefined,
      dueAt: undefined,
      reauthReason: reason,
      reauthAt: nowSeconds,
      expiresAt: nowSeconds + this.deps.settings.reauthRetentionSeconds,
      lastError: reason,
    };
    const written = await this.deps.store.put(
      next,
      leaseId
        ? { version: record.version, leaseId }
        : { version: record.version, noLiveLeaseAtMs: this.deps.clock.nowMs() },
    );
    if (written === 'conflict') return false;
    this.deps.metrics.count('ReauthRequired', 1, { reason });
    this.deps.logger.warn('record needs the user to sign in again', { ...logKey(record.key), reason });
    await this.publish({ type: 'Reauth Required', key: record.key, reason, at: nowSeconds });
    return true;
  }

  /**
   * Sends the `Reauth Soon` notice once and records that it was sent; the record's next due time
   * is then its rotation again. Returns the updated record, or undefined when it moved meanwhile.
   */
  async notifyReauthSoon(record: TokenRecord): Promise<TokenRecord | undefined> {
    const nowSeconds = this.nowSeconds();
    const policy = this.deps.settings.lifetimesFor(record.key.resource);
    const next: TokenRecord = {
      ...record,
      version: record.version + 1,
      reauthSoonNotifiedAt: nowSeconds,
      dueAt:
        record.failures > 0 && record.dueAt !== undefined
          ? record.dueAt
          : nextDueAt(record.refreshExpiresAt, record.rotationDeadline, policy, nowSeconds, this.deps.random),
    };
    const fence = { version: record.version, noLiveLeaseAtMs: this.deps.clock.nowMs() };
    if ((await this.deps.store.put(next, fence)) === 'conflict') return undefined;
    this.deps.metrics.count('ReauthSoon');
    this.deps.logger.info('user must sign in again before the rotation deadline', {
      ...logKey(record.key),
      rotationDeadline: record.rotationDeadline,
    });
    await this.publish({
      type: 'Reauth Soon',
      key: record.key,
      rotationDeadline: record.rotationDeadline,
      at: nowSeconds,
    });
    return next;
  }

  private async commit(
    record: TokenRecord,
    leaseId: string,
    leaseUntilMs: number,
    answer: RefreshAnswer,
    budget: Budget,
  ): Promise<RotationOutcome> {
    const { store, metrics, logger, settings } = this.deps;
    const nowSeconds = this.nowSeconds();
    const policy = settings.lifetimesFor(record.key.resource);
    const current = record.tokens!;
    const answered = tokensFromAnswer(
      answer,
      current,
      record,
      nowSeconds,
      settings.defaultAccessTokenSeconds,
    );
    if (answered.kind === 'unusable') {
      // The IdP consumed the token (it answered 200) and gave nothing back: never present it again.
      metrics.count('RotationFailed', 1, { reason: 'unusable_answer' });
      logger.error('IdP answered 200 without usable tokens', logKey(record.key));
      const marked = await this.markReauthRequired(record, 'unusable_answer', leaseId);
      if (!marked) return { kind: 'contended' };
      return { kind: 'reauth', reason: 'unusable_answer' };
    }
    if (answered.mended.length > 0) {
      logger.warn('IdP answer mended before it was stored', {
        ...logKey(record.key),
        mended: answered.mended.join(','),
      });
    }
    const refreshExpiresAt = Math.min(nowSeconds + policy.refreshTokenTtlSeconds, record.rotationDeadline);
    const next: TokenRecord = {
      ...record,
      // Refresh returns no session id: the session is unchanged, so the stored one stays.
      tokens: answered.tokens,
      tokenType: answered.tokenType,
      accessExpiresAt: answered.accessExpiresAt,
      refreshExpiresAt,
      expiresAt: refreshExpiresAt,
      version: record.version + 1,
      lease: undefined,
      dueShard: shardOf(record.key, settings.dueShards),
      dueAt: nextDueAt(
        refreshExpiresAt,
        record.rotationDeadline,
        policy,
        nowSeconds,
        this.deps.random,
        reauthSoonAt(record, settings.reauthSoonSeconds),
      ),
      failures: 0,
      lastError: undefined,
      lastRotatedAt: nowSeconds,
      rotations: record.rotations + 1,
    };

    // The new refresh token is the only valid one in existence: retry the write while time allows.
    for (let attempt = 1; ; attempt++) {
      try {
        const written = await store.put(next, { version: record.version, leaseId });
        // An earlier attempt whose answer was lost may have been applied: then this is our own write.
        if (written === 'conflict' && attempt > 1 && (await this.isOurCommit(next))) break;
        if (written === 'conflict') {
          // A new sign-in replaced the record, or our lease was taken over: the record moved on.
          metrics.count('RotationFailed', 1, { reason: 'commit_conflict' });
          logger.warn(
            'rotation result not stored: the record changed during the refresh',
            logKey(record.key),
          );
          return { kind: 'contended' };
        }
        break;
      } catch (error) {
        const retryable = error instanceof StoreUnavailableError;
        let delayMs = Math.min(2000, 50 * 2 ** attempt) * (0.5 + this.deps.random() / 2);
        // Past the lease a waiting caller may take over and present the token the IdP just
        // consumed: renew the lease when it would not cover the retry (the wait and one whole
        // commit, which may take up to its bound before it fails), and never start one without.
        const attemptMs = settings.commitReserveMs + COMMIT_SAFETY_MS;
        if (retryable && leaseUntilMs - this.deps.clock.nowMs() < delayMs + attemptMs) {
          leaseUntilMs = await this.renewLease(record, leaseId);
        }
        delayMs = Math.min(delayMs, leaseUntilMs - this.deps.clock.nowMs() - attemptMs);
        const tooLate = delayMs < 0 || budget.remainingMs() < delayMs + 1000;
        if (!retryable || attempt >= COMMIT_ATTEMPTS || tooLate) {
          metrics.count('PersistFailed');
          logger.error('rotated refresh token could not be stored', {
            ...logKey(record.key),
            version: record.version,
            attempts: attempt,
            error: errorName(error),
          });
          throw new RefreshUnavailableError('the refreshed tokens could not be stored; try again later', {
            cause: error,
          });
        }
        await this.deps.sleep(delayMs);
      }
    }

    this.breaker.noteRotated();
    metrics.count('RotationSucceeded');
    logger.info('refresh token rotated', {
      ...logKey(record.key),
      version: next.version,
      rotations: next.rotations,
    });
    if (record.failures > 0) {
      metrics.count('RotationRecovered');
      await this.publish({
        type: 'Rotation Recovered',
        key: record.key,
        failures: record.failures,
        at: nowSeconds,
      });
    }
    return { kind: 'rotated', record: next };
  }

  /** True when the stored record is `next` as this rotation wrote it (its answer was lost on the way). */
  private async isOurCommit(next: TokenRecord): Promise<boolean> {
    try {
      const stored = await this.deps.store.get(next.key);
      return (
        stored !== undefined &&
        stored.version === next.version &&
        stored.rotations === next.rotations &&
        stored.lastRotatedAt === next.lastRotatedAt &&
        stored.tokens?.refreshToken.reveal() === next.tokens?.refreshToken.reveal()
      );
    } catch {
      return false;
    }
  }

  /** Renews our lease for the commit's retries; returns the new end, or 0 when it could not. */
  private async renewLease(record: TokenRecord, leaseId: string): Promise<number> {
    const nowMs = this.deps.clock.nowMs();
    const untilMs = nowMs + this.deps.settings.leaseMs;
    try {
      const renewed = await this.deps.store.acquireLease(record.key, record.version, leaseId, untilMs, nowMs);
      return renewed === 'ok' ? untilMs : 0;
    } catch {
      return 0;
    }
  }

  private async onPermanentFailure(
    record: TokenRecord,
    leaseId: string,
    error: IdpPermanentError,
  ): Promise<RotationOutcome> {
    const { store, metrics, logger } = this.deps;
    // A sibling that rotated first makes our (now consumed) token look dead: that is not a failure.
    const current = await store.get(record.key);
    if (current && current.version !== record.version) return { kind: 'superseded', record: current };
    logger.warn('IdP rejected the refresh token', {
      ...logKey(record.key),
      status: error.status,
      code: error.code,
    });
    if ((await this.breaker.admit()) === 'hold') {
      // Too many users rejected at once: likelier our mistake than theirs. Keep the token, retry later.
      const held = await this.onTransientFailure(record, leaseId, error, 'rejected_held');
      return held.kind === 'transient' ? { ...held, held: true } : held;
    }
    metrics.count('RotationFailed', 1, { reason: 'rejected' });
    const marked = await this.markReauthRequired(record, 'refresh_rejected', leaseId);
    if (!marked) {
      const latest = await store.get(record.key);
      return latest ? { kind: 'superseded', record: latest } : { kind: 'contended' };
    }
    return { kind: 'reauth', reason: 'refresh_rejected' };
  }

  /**
   * The IdP refused the app's client (a permission, client or region mistake): nobody's token is
   * at fault and none is marked. The record backs off like a transient failure; the metric alarms.
   */
  private async onConfigurationFailure(
    record: TokenRecord,
    leaseId: string,
    error: IdpConfigurationError,
  ): Promise<RotationOutcome> {
    this.deps.metrics.count('IdpConfigurationRejected');
    this.deps.logger.error("IdP refused the app's client; check its credentials and permissions", {
      ...logKey(record.key),
      status: error.status,
      code: error.code,
    });
    const outcome = await this.onTransientFailure(record, leaseId, error, 'configuration');
    return outcome.kind === 'transient' ? { kind: 'configuration', retryAt: outcome.retryAt } : outcome;
  }

  private async onTransientFailure(
    record: TokenRecord,
    leaseId: string,
    error: unknown,
    reasonOverride?: string,
  ): Promise<RotationOutcome> {
    const { store, metrics, logger, settings } = this.deps;
    const failures = record.failures + 1;
    const reason = reasonOverride ?? (error instanceof IdpTransientError ? transientReason(error) : 'error');
    metrics.count('RotationFailed', 1, { reason });
    const nowSeconds = this.nowSeconds();
    const dueAt = retryAt(
      record,
      failures,
      error instanceof IdpTransientError ? error.retryAfterSeconds : undefined,
      nowSeconds,
      settings,
      this.deps.random,
    );
    // An IdP that could not answer is expected now and then; anything else is our problem.
    const expected = error instanceof IdpTransientError || error instanceof IdpPermanentError;
    const log = expected ? logger.warn.bind(logger) : logger.error.bind(logger);
    log('refresh failed; will retry', {
      ...logKey(record.key),
      failures,
      reason,
      retryAt: dueAt,
      error: errorName(error),
    });
    const next: TokenRecord = {
      ...record,
      version: record.version + 1,
      lease: undefined,
      failures,
      lastError: reason,
      dueShard: shardOf(record.key, settings.dueShards),
      dueAt,
    };
    try {
      await store.put(next, { version: record.version, leaseId });
    } catch (storeError) {
      // The lease expires on its own; the record stays due, so the sweep retries it.
      logger.warn('could not record the failed refresh', {
        ...logKey(record.key),
        error: errorName(storeError),
      });
    }
    return { kind: 'transient', retryAt: dueAt };
  }

  /** Publishes an app event; a failure to publish is logged, never thrown. */
  publish(event: AppEvent): Promise<void> {
    return publishSafely(this.deps.events, this.deps.logger, event);
  }

  private nowSeconds(): number {
    return Math.floor(this.deps.clock.nowMs() / 1000);
  }
}

function transientReason(error: IdpTransientError): string {
  if (error.status === 429) return 'rate_limited';
  if (error.status !== undefined) return `http_${error.status}`;
  return 'network';
}
