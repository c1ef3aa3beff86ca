import {
  ConfigurationError,
  type ReauthReason,
  ReauthRequiredError,
  RefreshUnavailableError,
  TokenNotFoundError,
  ValidationError,
} from './errors';
import { publishSafely } from './events';
import { nextDueAt, reauthSoonAt, refreshExpiry, shardOf } from './lifetimes';
import { errorName, logKey } from './log-fields';
import type { RecordKey, TokenRecord } from './model';
import type { RecordView, TerminationOutcome } from './ports';
import { type Budget, Rotation, type RotationDeps } from './rotation';
import type { Secret } from './secret';
import type { GetAccessTokenInput, StoreTokensInput } from './validation';

/** A served access token. */
export interface ServedAccessToken {
  readonly accessToken: Secret;
  readonly tokenType: string;
  /** Epoch seconds. */
  readonly expiresAt: number;
  readonly source: 'cached' | 'refreshed' | 'stale';
}

/** What a disconnect did. */
export interface DisconnectResult {
  readonly userId: string;
  readonly resource: string;
  /** True when a record existed and this call deleted it. */
  readonly deleted: boolean;
  /**
   * True when a new sign-in replaced the record while its session was being logged out: the new
   * sign-in wins (its session is alive and was not logged out), so its record was left in place.
   */
  readonly superseded: boolean;
  /** What happened at the IdP: `failed` means the record was deleted locally all the same. */
  readonly idpLogout: TerminationOutcome | 'failed' | 'skipped';
}

/**
 * Where a user's offline access stands, without any token: what an app needs to show "offline
 * access until ..." or to ask the user to sign in again. Times are epoch seconds.
 */
export interface TokenStatus {
  readonly userId: string;
  readonly resource: string;
  /** `ACTIVE`: getAccessToken can serve; `REAUTH_REQUIRED`: only a new sign-in helps. */
  readonly status: 'ACTIVE' | 'REAUTH_REQUIRED';
  /** Why a new sign-in is needed (REAUTH_REQUIRED only). */
  readonly reason?: ReauthReason;
  /** No rotation extends access past this: the user signs in again by then at the latest. */
  readonly rotationDeadline: number;
  /** When the current refresh token expires unless it is rotated first. */
  readonly refreshTokenExpiresAt: number;
  /** The last successful rotation, if any since the sign-in. */
  readonly lastRotatedAt?: number;
  /** Failed rotation attempts since the last success. */
  readonly failures: number;
  /**
   * Until when the app has offline access without a new sign-in: the rotation deadline while
   * ACTIVE; when it ended (the verdict's time, else the refresh token's expiry) once REAUTH_REQUIRED.
   */
  readonly offlineAccessUntil: number;
}

/** Slack after a sibling's lease ends for its commit to become visible, before a waiter takes over. */
const LEASE_SLACK_MS = 250;
/** First and longest pause between two reads while waiting for a sibling's refresh. */
const FIRST_WAIT_MS = 50;
const MAX_WAIT_STEP_MS = 1000;
/** Clock skew tolerated on `authenticatedAt` in the future. */
const FUTURE_SKEW_SECONDS = 300;
const STORE_ATTEMPTS = 3;

/** storeTokens and getAccessToken: the domain behind two of the handlers. */
export class TokenService {
  private readonly rotation: Rotation;

  constructor(private readonly deps: RotationDeps) {
    this.rotation = new Rotation(deps);
  }

  /**
   * Stores the tokens of a new sign-in, replacing any record of the same user and resource and
   * starting a new rotation deadline. The version keeps increasing across sign-ins, so a refresh
   * of the old tokens that is still in flight cannot overwrite the new ones.
   */
  async storeTokens(input: StoreTokensInput): Promise<TokenRecord> {
    const { store, settings, metrics, logger } = this.deps;
    const nowSeconds = this.nowSeconds();
    const policy = settings.lifetimesFor(input.key.resource);
    const authenticatedAt = input.authenticatedAt ?? nowSeconds;
    if (authenticatedAt > nowSeconds + FUTURE_SKEW_SECONDS) {
      throw new ValidationError('authenticatedAt is in the future');
    }
    const rotationDeadline = authenticatedAt + policy.maxRotationSeconds;
    // The refresh token was issued at sign-in: count its lifetime from then, conservatively.
    const refreshExpiresAt = refreshExpiry(authenticatedAt, rotationDeadline, policy);
    if (refreshExpiresAt <= nowSeconds) {
      throw new ValidationError('authenticatedAt is so old that the refresh token has already expired');
    }
    if (this.deps.idTokens) {
      // Binds the tokens to the user they are filed under: a caller cannot store Bob's tokens as Alice's.
      if (!input.tokens.idToken)
        throw new ValidationError('tokens.id_token is required (ID token verification is on)');
      await this.deps.idTokens.verify(input.tokens.idToken, input.key.userId);
    }

    for (let attempt = 1; ; attempt++) {
      // The version alone: storeTokens never opens the tokens it replaces (no kms:Decrypt).
      const existingVersion = await store.currentVersion(input.key);
      const record: TokenRecord = {
        key: input.key,
        status: 'ACTIVE',
        tokens: {
          accessToken: input.tokens.accessToken,
          refreshToken: input.tokens.refreshToken,
          ...(input.tokens.idToken ? { idToken: input.tokens.idToken } : {}),
          ...(input.tokens.sessionId ? { sessionId: input.tokens.sessionId } : {}),
        },
        tokenType: input.tokens.tokenType,
        // Issued at sign-in: a late store must not overstate how long the access token lives.
        accessExpiresAt: Math.min(nowSeconds, authenticatedAt) + input.tokens.expiresIn,
        refreshExpiresAt,
        expiresAt: refreshExpiresAt,
        authenticatedAt,
        rotationDeadline,
        // A brand-new record starts at its creation time in ms, not at 1: if the old record was
        // deleted (TTL, disconnect), a writer still holding its version cannot match the new one.
        version: existingVersion !== undefined ? existingVersion + 1 : this.deps.clock.nowMs(),
        lease: undefined,
        dueShard: shardOf(input.key, settings.dueShards),
        dueAt: nextDueAt(
          refreshExpiresAt,
          rotationDeadline,
          policy,
          nowSeconds,
          this.deps.random,
          reauthSoonAt(
            { authenticatedAt, rotationDeadline, reauthSoonNotifiedAt: undefined },
            settings.reauthSoonSeconds,
          ),
        ),
        failures: 0,
        lastError: undefined,
        lastRotatedAt: undefined,
        rotations: 0,
        reauthReason: undefined,
        reauthSoonNotifiedAt: undefined,
      };
      const written = await store.put(record, { version: existingVersion });
      if (written === 'ok') {
        metrics.count('TokensStored');
        logger.info('tokens stored', { ...logKey(input.key), version: record.version });
        return record;
      }
      if (attempt >= STORE_ATTEMPTS) {
        throw new RefreshUnavailableError('the record is being changed concurrently; try again');
      }
    }
  }

  /**
   * Returns an access token valid for at least `minValiditySeconds`, refreshing on demand.
   * Concurrent callers for one record cause one IdP call: the others wait for its result.
   */
  async getAccessToken(input: GetAccessTokenInput, budget: Budget): Promise<ServedAccessToken> {
    const { clock } = this.deps;
    // A sibling's lease bounds its refresh, so waiting for it is bounded by one lease; the caller's
    // own time bounds it too (one second is kept to answer).
    const waitUntilMs =
      clock.nowMs() +
      Math.min(this.deps.settings.leaseMs + LEASE_SLACK_MS, Math.max(0, budget.remainingMs() - 1000));
    let waitMs = FIRST_WAIT_MS;
    let record = await this.readLive(input.key);
    const first = record;

    for (;;) {
      const nowSeconds = this.nowSeconds();
      if (record.accessExpiresAt - nowSeconds >= input.minValiditySeconds) {
        return this.serve(record, 'cached');
      }
      // A sibling rotated while we waited: its token is as fresh as ours would be, even when the
      // IdP issues shorter-lived tokens than was asked for. Refreshing again would only burn a call.
      if (rotatedSince(first, record) && record.accessExpiresAt > nowSeconds) {
        return this.serve(record, 'refreshed');
      }
      const inBackoff = record.failures > 0 && record.dueAt !== undefined && record.dueAt > nowSeconds;
      const leased = record.lease !== undefined && record.lease.untilMs > clock.nowMs();
      if (!inBackoff && !leased) {
        const outcome = await this.rotation.rotate(record, budget);
        switch (outcome.kind) {
          case 'rotated':
            return this.serve(outcome.record, 'refreshed');
          case 'superseded':
            record = outcome.record;
            this.assertServable(record);
            continue;
          case 'reauth':
            throw new ReauthRequiredError(reauthMessage(outcome.reason), outcome.reason);
          case 'transient':
          case 'no-time':
            return this.serveStaleOrFail(record);
          case 'configuration':
            return this.serveStaleOrFail(record, 'configuration');
          case 'contended':
            break;
        }
      } else if (inBackoff) {
        return this.serveStaleOrFail(
          record,
          record.lastError === 'configuration' ? 'configuration' : undefined,
        );
      }

      // Someone else is refreshing: wait for the version to move, then serve what they stored. The
      // pauses grow (50 ms doubling to 1 s, jittered) so a crowd of waiters reads little, and never
      // run past the sibling's lease: once it lapses, this caller may take the lease itself.
      const leaseEndMs = record.lease ? record.lease.untilMs + LEASE_SLACK_MS : clock.nowMs() + waitMs;
      const pauseMs = Math.min(
        waitMs * (0.5 + this.deps.random() / 2),
        Math.max(1, leaseEndMs - clock.nowMs()),
      );
      if (clock.nowMs() + pauseMs > waitUntilMs) return this.serveStaleOrFail(record);
      await this.deps.sleep(pauseMs);
      waitMs = Math.min(waitMs * 2, MAX_WAIT_STEP_MS);
      record = await this.readLive(input.key);
    }
  }

  /**
   * Cuts a user off: ends the session at the IdP (so no copy of its refresh tokens works), then
   * deletes the record, fenced on the version read. Idempotent; the record is deleted even when
   * the IdP cannot be reached. A new sign-in stored while the IdP logout was under way wins: its
   * session was not logged out, so its record stays and the answer says `superseded`. A rotation
   * of the same sign-in meanwhile does not (its tokens died with the session): it is deleted too.
   */
  async disconnect(key: RecordKey, budget: Budget): Promise<DisconnectResult> {
    const { store, sessions, metrics, logger, settings } = this.deps;
    const record = await store.get(key);
    const result = { userId: key.userId, resource: key.resource };
    if (!record) return { ...result, deleted: false, superseded: false, idpLogout: 'skipped' };

    let idpLogout: DisconnectResult['idpLogout'] = 'skipped';
    if (record.tokens && sessions && budget.remainingMs() > settings.idpTimeoutMs + 1000) {
      try {
        idpLogout = await sessions.terminate(record.tokens, { timeoutMs: settings.idpTimeoutMs });
      } catch (error) {
        idpLogout = 'failed';
        metrics.count('DisconnectIdpFailed');
        logger.warn('IdP logout failed; deleting the record anyway', {
          ...logKey(key),
          error: errorName(error),
        });
      }
    }

    let current: TokenRecord | undefined = record;
    for (let attempt = 1; ; attempt++) {
      if ((await store.delete(key, { version: current.version })) === 'ok') break;
      current = await store.get(key);
      if (!current) {
        // Deleted meanwhile (a concurrent disconnect): the user is cut off, but not by this call.
        return { ...result, deleted: false, superseded: false, idpLogout };
      }
      if (!sameSignIn(record, current)) {
        metrics.count('DisconnectSuperseded');
        logger.warn('a new sign-in was stored during the disconnect; it stays', {
          ...logKey(key),
          idpLogout,
          version: current.version,
        });
        return { ...result, deleted: false, superseded: true, idpLogout };
      }
      if (attempt >= STORE_ATTEMPTS) {
        throw new RefreshUnavailableError(
          'the record is being changed concurrently; try the disconnect again',
        );
      }
    }
    metrics.count('Disconnected');
    logger.info('disconnected', { ...logKey(key), idpLogout });
    await publishSafely(this.deps.events, logger, {
      type: 'Disconnected',
      key,
      idpLogout,
      at: this.nowSeconds(),
    });
    return { ...result, deleted: true, superseded: false, idpLogout };
  }

  /**
   * The record's status, read without its tokens (nothing is decrypted): the same verdict
   * getAccessToken would reach without calling the IdP. A quarantined record's tokens never come
   * out. Throws TokenNotFoundError when there is no live record.
   */
  async status(key: RecordKey): Promise<TokenStatus> {
    const view = await this.deps.store.readSchedule(key);
    if (!view) throw notFound(key);
    const verdict = verdictOf(view, view.corruptAt !== undefined, this.nowSeconds());
    if (verdict === 'gone') throw notFound(key);
    const common = {
      userId: key.userId,
      resource: key.resource,
      rotationDeadline: view.rotationDeadline,
      refreshTokenExpiresAt: view.refreshExpiresAt,
      ...(view.lastRotatedAt !== undefined ? { lastRotatedAt: view.lastRotatedAt } : {}),
      failures: view.failures,
    };
    if (verdict === 'servable') {
      return { ...common, status: 'ACTIVE', offlineAccessUntil: view.rotationDeadline };
    }
    return {
      ...common,
      status: 'REAUTH_REQUIRED',
      reason: verdict,
      offlineAccessUntil: Math.min(view.reauthAt ?? view.refreshExpiresAt, view.rotationDeadline),
    };
  }

  /** Reads the record and rejects what cannot be served. */
  private async readLive(key: RecordKey): Promise<TokenRecord> {
    const record = await this.deps.store.get(key);
    if (!record) throw notFound(key);
    this.assertServable(record);
    return record;
  }

  private assertServable(record: TokenRecord): void {
    const corrupt = record.corrupt === true || !record.tokens;
    const verdict = verdictOf(record, corrupt, this.nowSeconds());
    if (verdict === 'gone') throw notFound(record.key);
    if (verdict === 'servable') return;
    if (verdict === 'corrupted' && record.status === 'ACTIVE') {
      this.deps.logger.error('stored tokens cannot be decrypted; not served', logKey(record.key));
    }
    throw new ReauthRequiredError(reauthMessage(verdict), verdict);
  }

  /**
   * While the IdP cannot refresh (or a sibling's refresh did not finish within the caller's time),
   * an access token that has not expired is better than none: it is served marked `stale`, with
   * its true expiry, even when it has less validity left than was asked for.
   */
  private serveStaleOrFail(record: TokenRecord, why?: 'configuration'): ServedAccessToken {
    if (record.accessExpiresAt > this.nowSeconds() && record.tokens) return this.serve(record, 'stale');
    if (why === 'configuration') {
      throw new ConfigurationError(
        "the identity provider refused the app's client (credentials, permissions or region); no valid access token right now",
      );
    }
    throw new RefreshUnavailableError(
      `no valid access token for user "${record.key.userId}" right now (the refresh could not be done); retry later`,
    );
  }

  private serve(record: TokenRecord, source: ServedAccessToken['source']): ServedAccessToken {
    if (!record.tokens) throw new ReauthRequiredError(reauthMessage('corrupted'), 'corrupted');
    this.deps.metrics.count('AccessTokenServed', 1, { source });
    return {
      accessToken: record.tokens.accessToken,
      tokenType: record.tokenType,
      expiresAt: record.accessExpiresAt,
      source,
    };
  }

  private nowSeconds(): number {
    return Math.floor(this.deps.clock.nowMs() / 1000);
  }
}

/**
 * True when `now` is still the sign-in `before` was (rotated, leased or marked since), not a new
 * one: a new sign-in has its own authentication time and session id, and starts its rotations anew.
 */
function sameSignIn(before: TokenRecord, now: TokenRecord): boolean {
  return (
    now.authenticatedAt === before.authenticatedAt &&
    now.rotations >= before.rotations &&
    now.tokens?.sessionId?.reveal() === before.tokens?.sessionId?.reveal()
  );
}

/** True when `now` holds tokens newer than `before`: a rotation or a new sign-in, not just a version step. */
function rotatedSince(before: TokenRecord, now: TokenRecord): boolean {
  return now.rotations !== before.rotations || now.authenticatedAt !== before.authenticatedAt;
}

/**
 * What can be done with a record now, from its schedule alone: `gone` (absent for callers),
 * the reason a new sign-in is needed, or `servable`. One verdict for getAccessToken and status.
 */
function verdictOf(
  record: Pick<RecordView, 'status' | 'expiresAt' | 'refreshExpiresAt' | 'rotationDeadline' | 'reauthReason'>,
  corrupt: boolean,
  nowSeconds: number,
): 'gone' | 'servable' | ReauthReason {
  if (record.expiresAt <= nowSeconds) {
    // DynamoDB deletes expired items late. One that ran out at its rotation deadline says why.
    return record.status === 'ACTIVE' && record.refreshExpiresAt >= record.rotationDeadline
      ? 'deadline'
      : 'gone';
  }
  if (record.status === 'REAUTH_REQUIRED') return record.reauthReason ?? 'refresh_rejected';
  if (corrupt) return 'corrupted';
  if (record.refreshExpiresAt <= nowSeconds) {
    return record.refreshExpiresAt >= record.rotationDeadline ? 'deadline' : 'expired';
  }
  return 'servable';
}

function notFound(key: RecordKey): TokenNotFoundError {
  return new TokenNotFoundError(
    `no live tokens for user "${key.userId}" and resource "${key.resource}"; store tokens after a sign-in first`,
  );
}

function reauthMessage(reason: string): string {
  const why: Record<string, string> = {
    refresh_rejected: 'the identity provider rejected the refresh token',
    deadline: 'the maximum rotation period has passed',
    expired: 'the refresh token expired before it could be rotated',
    corrupted: 'the stored tokens cannot be decrypted',
  };
  return `the user must sign in again (reason: ${reason}): ${why[reason] ?? reason}`;
}
