import type { ReauthReason } from './errors';
import type { Secret } from './secret';

/** The resource name used when the caller names none. */
export const DEFAULT_RESOURCE = 'default';

/** Identifies one token record: one per user and resource. */
export interface RecordKey {
  readonly userId: string;
  /** The resource URI the tokens were issued for, or `default`. */
  readonly resource: string;
}

/** A token set as an IdP returns it (authentication or refresh), already parsed and validated. */
export interface TokenSet {
  readonly accessToken: Secret;
  readonly idToken?: Secret;
  readonly refreshToken: Secret;
  readonly tokenType: string;
  /** Access token lifetime in seconds. */
  readonly expiresIn: number;
  /** Only authentication returns a session id; refresh does not. */
  readonly sessionId?: Secret;
}

/**
 * What a 200 refresh answer carried, as the IdP sent it: a 200 means the IdP consumed the refresh
 * token, so the core uses whatever is usable here and never presents the old token again. A field
 * that is absent or malformed is `undefined`; `expiresIn` is the raw number (the core clamps it).
 */
export interface RefreshAnswer {
  readonly accessToken: Secret | undefined;
  /** Absent: the IdP did not rotate, and the current refresh token stays in use. */
  readonly refreshToken: Secret | undefined;
  readonly idToken?: Secret | undefined;
  readonly tokenType: string | undefined;
  /** Seconds as sent (may be negative, huge or fractional); `undefined` when absent or not a number. */
  readonly expiresIn: number | undefined;
}

/** The token material of a record: stored encrypted, held in memory as Secrets. */
export interface StoredTokens {
  readonly accessToken: Secret;
  readonly idToken?: Secret;
  readonly refreshToken: Secret;
  /** The session id can mint tokens (session authenticate), so it is token material too. */
  readonly sessionId?: Secret;
}

export type RecordStatus = 'ACTIVE' | 'REAUTH_REQUIRED';

/** Who is refreshing a record right now, and until when. */
export interface Lease {
  readonly id: string;
  /** Epoch milliseconds. */
  readonly untilMs: number;
}

/**
 * One stored token record. All `...At` and `...Deadline` times are epoch seconds (the unit of
 * DynamoDB TTL), except the lease which is in milliseconds.
 */
export interface TokenRecord {
  readonly key: RecordKey;
  readonly status: RecordStatus;
  /**
   * The token material. A REAUTH_REQUIRED record keeps it sealed (quarantined: never served,
   * never rotated) until its retention ends, so an operator can undo a wrong verdict.
   */
  readonly tokens: StoredTokens | undefined;
  readonly tokenType: string;
  readonly accessExpiresAt: number;
  /** min(last issue + refresh TTL, rotationDeadline). */
  readonly refreshExpiresAt: number;
  /** DynamoDB TTL attribute: readers treat a passed `expiresAt` as gone. */
  readonly expiresAt: number;
  readonly authenticatedAt: number;
  /** authenticatedAt + max rotation: no rotation extends access past it. */
  readonly rotationDeadline: number;
  /** +1 on every committed change: the fence of every write. */
  readonly version: number;
  readonly lease: Lease | undefined;
  /** Shard of the due index; present with `dueAt` only while the record is in the index. */
  readonly dueShard: number | undefined;
  /** When the sweep should next look at this record (epoch seconds); absent when not due ever. */
  readonly dueAt: number | undefined;
  /** Consecutive failed rotation attempts since the last success. */
  readonly failures: number;
  /** A short code of the last failure (never token material). */
  readonly lastError: string | undefined;
  readonly lastRotatedAt: number | undefined;
  readonly rotations: number;
  readonly reauthReason: ReauthReason | undefined;
  /** When the record became REAUTH_REQUIRED (epoch seconds); what an operator's restore selects on. */
  readonly reauthAt?: number | undefined;
  /** Set once the app was told that the rotation deadline is near. */
  readonly reauthSoonNotifiedAt: number | undefined;
  /**
   * True when the stored token material could not be decrypted (wrong key, tampering, a
   * ciphertext copied from another record). Such a record is never served and never rotated.
   */
  readonly corrupt?: boolean;
}

/** Lifetimes that apply to a resource (Transmit lets each resource set its own). */
export interface LifetimePolicy {
  /** A refresh token dies this long after it was issued unless rotated. */
  readonly refreshTokenTtlSeconds: number;
  /** No rotation extends access beyond authentication + this. */
  readonly maxRotationSeconds: number;
  /** Rotate this long before the refresh token would expire. */
  readonly refreshAheadSeconds: number;
}
