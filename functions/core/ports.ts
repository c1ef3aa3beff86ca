import type { ReauthReason } from './errors';
import type { RecordKey, RefreshAnswer, StoredTokens, TokenRecord } from './model';
import type { Secret } from './secret';

/** Expected contention is a value, not an exception. */
export type WriteOutcome = 'ok' | 'conflict';

/** The fence of a write: the version read before it, and the lease held, if any. */
export interface Fence {
  /** The version the record must still have; `undefined` means "the record must not exist". */
  readonly version: number | undefined;
  /** When set, the record's lease must still be this one. */
  readonly leaseId?: string;
  /**
   * When set (the writer's clock, epoch ms), nobody may hold a live lease: a write that does not
   * rotate (a notice, parking, marking) must not slip in under a caller who is refreshing.
   */
  readonly noLiveLeaseAtMs?: number;
}

/** An entry of the due index. */
export interface DueEntry {
  readonly key: RecordKey;
  readonly dueAt: number;
}

/** The rejection circuit breaker's shared state (epoch seconds). */
export interface BreakerState {
  /** Set while the breaker is open. */
  readonly openedAt: number | undefined;
  /** Until then, an operator said rejections are real: they are acted on without counting. */
  readonly trustUntil: number | undefined;
}

/** Persistence of token records. Adapters encrypt token material and translate SDK errors. */
export interface TokenStore {
  /** Strongly consistent read. A record whose tokens cannot be decrypted comes back with `corrupt: true`. */
  get(key: RecordKey): Promise<TokenRecord | undefined>;
  /**
   * The record's version alone (a projection, strongly consistent): nothing is decrypted, so a
   * writer that replaces a record needs no right to open the tokens in it. Undefined when absent.
   */
  currentVersion(key: RecordKey): Promise<number | undefined>;
  /**
   * The record's schedule and whether it was marked corrupt (a projection, strongly consistent),
   * without its token material: nothing is decrypted, so a status reader needs no key. A record
   * whose tokens no longer decrypt but that nobody marked yet reads as it is.
   */
  readSchedule(key: RecordKey): Promise<RecordView | undefined>;
  /** Writes the whole record if the fence holds; the record carries its new version. */
  put(record: TokenRecord, fence: Fence): Promise<WriteOutcome>;
  /** Takes the lease if the version is unchanged and no live lease exists, or renews it for its holder. */
  acquireLease(
    key: RecordKey,
    version: number,
    leaseId: string,
    untilMs: number,
    nowMs: number,
  ): Promise<WriteOutcome>;
  /** Adds one rejection to the window that starts at `windowStart`; returns the window's count. */
  countRejection(windowStart: number, expiresAt: number): Promise<number>;
  /** The rejection breaker's state (closed when never written). */
  getBreaker(): Promise<BreakerState>;
  /** Opens the breaker; 'conflict' when it was open already (someone else opened it first). */
  openBreaker(openedAt: number): Promise<WriteOutcome>;
  /** Closes the breaker, trusting rejections until `trustUntil`. */
  closeBreaker(trustUntil: number): Promise<void>;
  /**
   * Marks a record whose tokens cannot be decrypted (`corruptAt`, version + 1) and takes it off the
   * due index, if the version holds; the sealed tokens stay as they are for the operator. 'ok' only
   * for the writer that marked it, so it is counted once per record.
   */
  markCorrupt(key: RecordKey, version: number, nowSeconds: number): Promise<WriteOutcome>;
  /**
   * Deletes the record (disconnect). With a fence, only while the record still has that version
   * ('conflict' otherwise, and when it is gone); without one, whatever it holds.
   */
  delete(key: RecordKey, fence?: { readonly version: number }): Promise<WriteOutcome>;
  /** Entries of one shard whose `dueAt <= nowSeconds`, oldest first. */
  queryDue(
    shard: number,
    nowSeconds: number,
    limit: number,
    cursor?: string,
  ): Promise<{ entries: DueEntry[]; cursor: string | undefined }>;
  /**
   * The sweep's own state, kept beside the records (never a token record, never in the due
   * index). A store registers, before it writes a record into shard `s` of the due index, that
   * shards below `s + 1` are in use, so the sweep finds every record whatever `DUE_SHARDS` was.
   */
  readSweepState(): Promise<SweepState>;
  /** Writes the lifetime part of the sweep state if its version is still `version`. */
  writeSweepState(state: SweepStateChange, version: number): Promise<WriteOutcome>;
  /**
   * One page of a Scan over the token records that match `filter`, without token material.
   * A Scan reads the whole table: only for operator tools and the one-off re-index after a
   * settings change, never on a request path. A page may be empty while `cursor` is set.
   */
  scanRecords(
    filter: RecordFilter,
    limit: number,
    cursor?: string,
  ): Promise<{ records: RecordSchedule[]; cursor: string | undefined }>;
  /**
   * Changes the lifetimes and due time of a record without touching its tokens, if the fence
   * holds and the record is still ACTIVE; the record's version becomes `change.version`.
   */
  reschedule(key: RecordKey, fence: Fence, change: ScheduleChange): Promise<WriteOutcome>;
}

/** What a Scan of the records selects. */
export type RecordFilter =
  | { readonly status: 'ACTIVE' }
  /** Quarantined records marked within [reauthFrom, reauthTo] (epoch seconds, inclusive). */
  | { readonly status: 'REAUTH_REQUIRED'; readonly reauthFrom: number; readonly reauthTo: number };

/** The schedule of a record: everything but its token material. */
export type RecordSchedule = Pick<
  TokenRecord,
  | 'key'
  | 'status'
  | 'version'
  | 'lease'
  | 'authenticatedAt'
  | 'lastRotatedAt'
  | 'refreshExpiresAt'
  | 'rotationDeadline'
  | 'expiresAt'
  | 'dueShard'
  | 'dueAt'
  | 'failures'
  | 'reauthSoonNotifiedAt'
  | 'reauthReason'
  | 'reauthAt'
>;

/** What {@link TokenStore.readSchedule} reads: the schedule, and when the record was marked corrupt. */
export type RecordView = RecordSchedule & {
  /** Epoch seconds, set by {@link TokenStore.markCorrupt}; undefined while unmarked. */
  readonly corruptAt: number | undefined;
};

/** New lifetimes and due time of a record (all epoch seconds), and its new version. */
export interface ScheduleChange {
  readonly version: number;
  readonly refreshExpiresAt: number;
  readonly expiresAt: number;
  readonly rotationDeadline: number;
  readonly dueShard: number;
  readonly dueAt: number;
}

/** A re-index of the stored records after the lifetime settings were lowered: one paginated Scan. */
export interface ReindexPass {
  /** The settings (canonical JSON, see lifetimeSettingsKey) the pass brings the records under. */
  readonly settings: string;
  /** Epoch seconds: the Scan starts no earlier, so that writers still on the old settings have finished. */
  readonly notBefore: number;
  /** Where the Scan resumes; undefined before its first page. */
  readonly cursor: string | undefined;
  readonly scanned: number;
  readonly lowered: number;
}

/** The sweep's state. */
export interface SweepState {
  /** Every shard count a writer used: a record may sit in any shard below the largest. */
  readonly shardsUsed: readonly number[];
  /** The lifetime settings every ACTIVE record is known to be scheduled under; undefined: unknown. */
  readonly indexedSettings: string | undefined;
  /** A re-index under way, if any. */
  readonly reindex: ReindexPass | undefined;
  /** The fence of {@link TokenStore.writeSweepState}; 0 when it was never written. */
  readonly version: number;
}

/** What {@link TokenStore.writeSweepState} writes: the shard registrations are the store's own. */
export type SweepStateChange = Pick<SweepState, 'indexedSettings' | 'reindex'>;

/** The identity provider's refresh grant. */
export interface IdentityProvider {
  /**
   * Exchanges a refresh token for a new token set. Any 200 answer resolves (with what was usable
   * in it); throws IdpPermanentError when the token is proven dead, IdpConfigurationError when the
   * app's client is refused, and IdpTransientError when the IdP could not answer now.
   */
  refresh(refreshToken: Secret, options: { timeoutMs: number }): Promise<RefreshAnswer>;
}

/** What ending a user's access at the IdP did. */
export type TerminationOutcome = 'logged_out' | 'revoked' | 'already_gone' | 'not_supported';

/**
 * Ends a user's access at the IdP: Transmit logs the session out (which revokes its refresh
 * tokens); an OAuth 2.0 server revokes the refresh token (RFC 7009) where it has an endpoint.
 */
export interface SessionTerminator {
  terminate(tokens: StoredTokens, options: { timeoutMs: number }): Promise<TerminationOutcome>;
}

/** Time, injectable so tests control it. */
export interface Clock {
  nowMs(): number;
}

/** Metric names, as docs/architecture.md "Observability" lists them. */
export type MetricName =
  | 'RotationSucceeded'
  | 'RotationFailed'
  | 'ReauthRequired'
  | 'PersistFailed'
  | 'AccessTokenServed'
  | 'SweepDue'
  | 'SweepBacklog'
  | 'IdpLatency'
  | 'TokensExpired'
  | 'TokensStored'
  | 'ReauthSoon'
  | 'RotationRecovered'
  | 'Disconnected'
  | 'DisconnectIdpFailed'
  /** The IdP refused the app's client (IdpConfigurationError): a deployment problem, never a user's. */
  | 'IdpConfigurationRejected'
  /** The rejection circuit breaker opened: rotations stopped, nobody more is marked. */
  | 'RotationCircuitOpen'
  /** An answer that proved the token unconsumed (503, 429, refused) was retried within the lease. */
  | 'IdpRetriedAtOnce'
  /** A disconnect found a new sign-in in place of the session it logged out, and left it. */
  | 'DisconnectSuperseded'
  /** Records whose lifetimes or due time a re-index lowered after a settings change. */
  | 'RecordsRescheduled'
  /** Quarantined records an operator's restore put back to ACTIVE. */
  | 'RecordRestored'
  /** Quarantined records a restore left as they were (by reason). */
  | 'RestoreSkipped'
  /** One per sweep run that finished: the heartbeat alarm watches it. */
  | 'SweepCompleted'
  /** A record whose tokens cannot be decrypted, counted once per record (when first found). */
  | 'CorruptRecordFound'
  /** A handler answered with a typed error (breakdown `error`: its public name); expected, not alarmed. */
  | 'ErrorAnswered'
  /** A handler failed with an error that is not a typed answer (breakdown `error`: its class name). */
  | 'UnexpectedError'
  /** The first invocation of a Lambda instance. */
  | 'ColdStart';

/** Metrics sink (CloudWatch EMF in AWS). Dimensions are low-cardinality: never user ids. */
export interface Metrics {
  /**
   * Counts `value` of `name`. With `dimensions` (a breakdown such as `reason`), the value counts
   * both in the breakdown and in the plain total that alarms watch.
   */
  count(name: MetricName, value?: number, dimensions?: Readonly<Record<string, string>>): void;
  milliseconds(name: MetricName, value: number): void;
}

/** Log fields are plain values only: a Secret does not type-check here. */
export type LogFields = Readonly<Record<string, string | number | boolean | undefined | null>>;

/** Structured logger. */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

/** Events for the app (EventBridge in AWS). Never carry token material. */
export type AppEvent =
  | {
      readonly type: 'Reauth Required';
      readonly key: RecordKey;
      readonly reason: ReauthReason;
      readonly at: number;
    }
  | {
      readonly type: 'Reauth Soon';
      readonly key: RecordKey;
      readonly rotationDeadline: number;
      readonly at: number;
    }
  | {
      readonly type: 'Rotation Recovered';
      readonly key: RecordKey;
      readonly failures: number;
      readonly at: number;
    }
  | { readonly type: 'Tokens Expired'; readonly key: RecordKey; readonly at: number }
  | {
      readonly type: 'Disconnected';
      readonly key: RecordKey;
      readonly idpLogout: string;
      readonly at: number;
    };

/** Publishes events for the app. Failing to publish never fails a rotation. */
export interface EventPublisher {
  publish(event: AppEvent): Promise<void>;
}

/**
 * Checks that an ID token was issued by the IdP for this app and this user (signature, issuer,
 * audience, expiry, `sub`), so tokens cannot be filed under the wrong user. Throws
 * ValidationError when the token fails, RefreshUnavailableError when the keys cannot be had now.
 */
export interface IdTokenVerifier {
  verify(idToken: Secret, expectedSubject: string): Promise<void>;
}
