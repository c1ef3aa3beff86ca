import type { ReauthReason } from '../../../functions/core/errors';
import type { RecordKey } from '../../../functions/core/model';
import type { TokenStore } from '../../../functions/core/ports';
import { sha256Hex } from '../../../local/transmit/state';
import type { TransmitServer } from '../../../local/transmit-server';
import type { OidcServer } from '../../support/oidc-server';
import type { ProofIdp } from './proof-idp';
import type { Committed } from './proof-store';

/** What the IdP itself saw, from its own log: the source of truth for the invariants. */
export interface IdpLedger {
  /** Per refresh token hash, how often the IdP processed it (requests a fault turned away before the token was looked at excluded). */
  uses(): Map<string, number>;
  /** Reuse detections since the ledger was opened. */
  reuseDetections(): number;
  /** Refresh requests the IdP refused (invalid_grant and kin) since the ledger was opened. */
  refusals(): number;
  /** Hash of the newest refresh token of the family the given hash belongs to; undefined when revoked or unknown. */
  latestOf(stored: { hash: string; raw: string }): string | undefined;
}

/** The Transmit emulator's log, from the moment this ledger is opened. */
export function transmitLedger(transmit: TransmitServer): IdpLedger {
  const logStart = transmit.refreshLog.length;
  const reuseStart = transmit.reuseDetections;
  const entries = () => transmit.refreshLog.slice(logStart);
  return {
    uses: () => countBy(entries().filter((e) => e.outcome !== 'fault')),
    reuseDetections: () => transmit.reuseDetections - reuseStart,
    refusals: () =>
      entries().filter((e) => e.outcome !== 'fault' && e.outcome !== 'rotated' && e.outcome !== 'grace')
        .length,
    latestOf: ({ raw }) => {
      const latest = transmit.latestRefreshToken(raw);
      return latest === undefined ? undefined : sha256Hex(latest);
    },
  };
}

/**
 * oidc-provider's log (sha256 of each presented refresh token and the status answered), with the
 * lineage the proof IdP kept: oidc-provider has no "newest token of a grant" view of its own.
 */
export function oidcLedger(oidc: OidcServer, idp: ProofIdp): IdpLedger {
  const logStart = oidc.refreshLog.length;
  const entries = () => oidc.refreshLog.slice(logStart);
  return {
    uses: () => countBy(entries()),
    // oidc-provider answers a replay with invalid_grant: every refusal counts as a possible reuse.
    reuseDetections: () => entries().filter((e) => e.status === 400).length,
    refusals: () => entries().filter((e) => e.status !== 200).length,
    latestOf: ({ hash }) => idp.latestOfFamily(hash),
  };
}

function countBy(entries: readonly { tokenHash: string }[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const e of entries) counts.set(e.tokenHash, (counts.get(e.tokenHash) ?? 0) + 1);
  return counts;
}

/** One access token that getAccessToken handed out. */
export interface Served {
  readonly userId: string;
  readonly accessHash: string;
  readonly source: string;
  /** Seconds the token had left when it was handed out. */
  readonly validitySeconds: number;
  /** Seconds the caller asked for. */
  readonly minValiditySeconds: number;
}

/** What the invariants are checked against. */
export interface InvariantInput {
  readonly ledger: IdpLedger;
  /** The real store (reads go straight to the table). */
  readonly store: TokenStore;
  readonly keys: readonly RecordKey[];
  readonly committed: readonly Committed[];
  readonly served: readonly Served[];
  /** Uses allowed per refresh token: 1, or 2 where an IdP grace period lets a lost answer be retried. @default 1 */
  readonly maxUses?: number;
  /** Why a record may legitimately end REAUTH_REQUIRED in this scenario. @default none */
  readonly allowedReauth?: readonly ReauthReason[];
  /** Whether the IdP may have detected reuse (only where the scenario makes it unavoidable). @default false */
  readonly reuseAllowed?: boolean;
  /**
   * Lifetime of the access tokens the IdP issues. When given, every token handed out as cached or
   * refreshed must have had the validity asked for, or a fresh token's whole life when that is less.
   * @default not checked
   */
  readonly accessTokenTtlSeconds?: number;
}

/** The outcome of one check: figures for the closing note, and every violation found. */
export interface InvariantReport {
  /** Distinct refresh tokens the IdP processed. */
  readonly tokensUsed: number;
  /** Refresh tokens processed more often than allowed. */
  readonly duplicateUses: number;
  readonly reuseDetections: number;
  readonly refusals: number;
  /** Records that lost their refresh token: not the family's newest, revoked, or REAUTH_REQUIRED for a reason the scenario does not allow. */
  readonly lostTokens: number;
  /** Access tokens handed out whose token set was never committed. */
  readonly servedUncommitted: number;
  /** Access tokens handed out (not as stale) with less validity than asked and than a fresh token has. */
  readonly servedShort: number;
  readonly active: number;
  readonly reauthRequired: number;
  readonly missing: number;
  /** Human-readable violations (user ids and 8-character hash prefixes only, never a token). */
  readonly problems: string[];
}

/**
 * Checks the four invariants of the proofs, from the IdP's own log and the table:
 * 1. every refresh token reaches the IdP at most once (or `maxUses`);
 * 2. every ACTIVE record holds the newest refresh token the IdP issued for its family;
 * 3. no reuse detection fired (unless allowed);
 * 4. every access token handed out belongs to a committed token set (and, when the access token
 *    lifetime is given, had the validity the caller asked for).
 */
export async function checkInvariants(input: InvariantInput): Promise<InvariantReport> {
  const problems: string[] = [];
  const maxUses = input.maxUses ?? 1;
  const uses = input.ledger.uses();
  let duplicateUses = 0;
  for (const [hash, count] of uses) {
    if (count > maxUses) {
      duplicateUses++;
      problems.push(`refresh token ${hash.slice(0, 8)} reached the IdP ${count} times`);
    }
  }

  const reuseDetections = input.ledger.reuseDetections();
  if (reuseDetections > 0 && !input.reuseAllowed) {
    problems.push(`the IdP detected reuse ${reuseDetections} time(s)`);
  }

  let lostTokens = 0;
  let active = 0;
  let reauthRequired = 0;
  let missing = 0;
  for (const key of input.keys) {
    const record = await input.store.get(key);
    if (!record) {
      missing++;
      continue;
    }
    if (record.status === 'REAUTH_REQUIRED') {
      reauthRequired++;
      const reason = record.reauthReason ?? 'refresh_rejected';
      if (!(input.allowedReauth ?? []).includes(reason)) {
        lostTokens++;
        problems.push(`${key.userId} ended REAUTH_REQUIRED (${reason})`);
      }
      continue;
    }
    active++;
    if (!record.tokens) {
      lostTokens++;
      problems.push(`${key.userId} is ACTIVE without tokens`);
      continue;
    }
    const raw = record.tokens.refreshToken.reveal();
    const hash = sha256Hex(raw);
    const latest = input.ledger.latestOf({ hash, raw });
    if (latest !== hash) {
      lostTokens++;
      problems.push(
        latest === undefined
          ? `${key.userId} holds ${hash.slice(0, 8)}, whose family the IdP revoked or never issued`
          : `${key.userId} holds ${hash.slice(0, 8)} but the IdP's newest is ${latest.slice(0, 8)}`,
      );
    }
  }

  const committedAccess = new Set(input.committed.map((c) => c.accessHash));
  let servedUncommitted = 0;
  for (const served of input.served) {
    if (!committedAccess.has(served.accessHash)) {
      servedUncommitted++;
      problems.push(
        `${served.userId} was handed access token ${served.accessHash.slice(0, 8)} (${served.source}) that was never stored`,
      );
    }
  }

  let servedShort = 0;
  if (input.accessTokenTtlSeconds !== undefined) {
    for (const served of input.served) {
      const owed = Math.min(served.minValiditySeconds, input.accessTokenTtlSeconds);
      if (served.source !== 'stale' && served.validitySeconds < owed) {
        servedShort++;
        problems.push(
          `${served.userId} asked for ${served.minValiditySeconds} s and was handed a token (${served.source}) valid ${served.validitySeconds} s`,
        );
      }
    }
  }

  return {
    tokensUsed: uses.size,
    duplicateUses,
    reuseDetections,
    refusals: input.ledger.refusals(),
    lostTokens,
    servedUncommitted,
    servedShort,
    active,
    reauthRequired,
    missing,
    problems,
  };
}
