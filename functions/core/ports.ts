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

/** Persistence of token records. Adapters encrypt token material and translate SDK errors. */
export interface TokenStore {
  /** Strongly consistent read. A record whose tokens cannot be decrypted comes back with `corrupt: true`. */
  get(key: RecordKey): Promise<TokenRecord | undefined>;
  /**
   * The record's version alone (a projection, strongly consistent): nothing is decrypted, so a
   * writer that replaces a record needs no right to open the tokens in it. Undefined when absent.
   */
  currentVersion(key: RecordKey): Promise<number | undefined>;
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
  /**
   * Marks a record whose tokens cannot be decrypted (`corruptAt`, version + 1) and takes it off the
   * due index, if the version holds; the sealed tokens stay as they are for the operator. 'ok' only
   * for the writer that marked it, so it is counted once per record.
   */
  markCorrupt(key: RecordKey, version: number, nowSeconds: number): Promise<WriteOutcome>;
  /** Deletes the record (disconnect). */
  delete(key: RecordKey): Promise<void>;
  /** Entries of one shard whose `dueAt <= nowSeconds`, oldest first. */
  queryDue(
    shard: number,
    nowSeconds: number,
    limit: number,
    cursor?: string,
  ): Promise<{ entries: DueEntry[]; cursor: string | undefined }>;
}

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

/** Metric names, as in DESIGN.md. */
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
  /** One per sweep run that finished: the heartbeat alarm watches it. */
  | 'SweepCompleted'
  /** A record whose tokens cannot be decrypted, counted once per record (when first found). */
  | 'CorruptRecordFound'
  /** A handler answered with a typed error (breakdown `error`: its public name); expected, not alarmed. */
  | 'ErrorAnswered'
  /** A handler failed with an error that is not a typed answer (breakdown `error`: its class name). */
  | 'UnexpectedError';

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
