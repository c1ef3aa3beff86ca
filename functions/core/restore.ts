import { type ReauthReason, ValidationError } from './errors';
import { shardOf } from './lifetimes';
import { logKey } from './log-fields';
import type { RecordSchedule } from './ports';
import type { Budget, RotationDeps } from './rotation';

/** The reasons a record can be quarantined for. */
export const REAUTH_REASONS: readonly ReauthReason[] = [
  'refresh_rejected',
  'unusable_answer',
  'deadline',
  'expired',
  'corrupted',
];

/** Which quarantined records to restore. */
export interface RestoreRequest {
  /** Marked REAUTH_REQUIRED at or after this instant (epoch seconds). */
  readonly from: number;
  /** ... and at or before this one (epoch seconds). */
  readonly to: number;
  /** For one of these reasons. */
  readonly reasons: readonly ReauthReason[];
  /** Report what would be restored, write nothing. */
  readonly dryRun: boolean;
  /** Resumes a restore that stopped for time (the `cursor` of its report). */
  readonly cursor?: string | undefined;
}

/** Why a selected record was left quarantined. */
export type RestoreSkipReason =
  /** Gone (disconnected, past its retention), signed in again or marked again since it was listed. */
  | 'changed'
  /** Quarantined before tokens were kept: nothing to restore. */
  | 'no_tokens'
  /** Its token material cannot be decrypted. */
  | 'corrupted'
  /** Its refresh token has expired (or the current settings say so). */
  | 'refresh_expired'
  /** Its rotation deadline has passed: no rotation can extend it. */
  | 'past_deadline'
  /** Another writer changed it while it was being restored. */
  | 'conflict';

/** What a restore did. */
export interface RestoreReport {
  readonly dryRun: boolean;
  /** Quarantined records in the window with a selected reason. */
  matched: number;
  /** Of those, the ones that can be restored (in a dry run: would be). */
  restorable: number;
  /** Records put back to ACTIVE (0 in a dry run). */
  restored: number;
  /** Records left quarantined, by reason. */
  skipped: Partial<Record<RestoreSkipReason, number>>;
  /** False when the restore stopped for time: run it again with `cursor` to go on. */
  complete: boolean;
  /** Where to go on from, when not complete (undefined: from the start). */
  cursor: string | undefined;
}

/** Items read per Scan page. */
const PAGE_SIZE = 200;
/** Time kept at the end of an invocation. */
const RESERVE_MS = 5000;

/**
 * The operator's undo of a wrong verdict: puts the records marked REAUTH_REQUIRED in a time window
 * for the given reasons back to ACTIVE, once the cause (say, a permission mistake that made the IdP
 * refuse everyone) is fixed. A record is restored only while its refresh token is within its
 * `refreshExpiresAt` and before its `rotationDeadline` (both under the current settings too); it
 * goes back into the due index due now, so the next sweep rotates it, with its failures cleared.
 * Each write is fenced on the version read. The records are found with a paginated Scan: an
 * operator tool, run once per incident, never on a request path.
 */
export class Restore {
  constructor(
    private readonly deps: Pick<RotationDeps, 'store' | 'clock' | 'metrics' | 'logger' | 'settings'>,
    private readonly options: { readonly pageSize?: number } = {},
  ) {}

  /** Runs the restore until done or out of time. */
  async run(request: RestoreRequest, budget: Budget): Promise<RestoreReport> {
    const { store, logger } = this.deps;
    const report: RestoreReport = {
      dryRun: request.dryRun,
      matched: 0,
      restorable: 0,
      restored: 0,
      skipped: {},
      complete: true,
      cursor: undefined,
    };
    let cursor = request.cursor;
    do {
      if (budget.remainingMs() < RESERVE_MS) {
        report.complete = false;
        report.cursor = cursor;
        break;
      }
      const page = await store.scanRecords(
        { status: 'REAUTH_REQUIRED', reauthFrom: request.from, reauthTo: request.to },
        this.options.pageSize ?? PAGE_SIZE,
        cursor,
      );
      for (const listed of page.records) {
        if (listed.reauthReason === undefined || !request.reasons.includes(listed.reauthReason)) continue;
        report.matched += 1;
        const outcome = await this.restoreOne(listed, request.dryRun);
        if (outcome === 'restored' || outcome === 'restorable') {
          report.restorable += 1;
          if (outcome === 'restored') report.restored += 1;
        } else {
          report.skipped[outcome] = (report.skipped[outcome] ?? 0) + 1;
        }
      }
      cursor = page.cursor;
    } while (cursor !== undefined);
    logger.info('restore of quarantined records finished', {
      dryRun: report.dryRun,
      matched: report.matched,
      restorable: report.restorable,
      restored: report.restored,
      skipped: Object.values(report.skipped).reduce((sum, n) => sum + n, 0),
      complete: report.complete,
    });
    return report;
  }

  private async restoreOne(
    listed: RecordSchedule,
    dryRun: boolean,
  ): Promise<'restored' | 'restorable' | RestoreSkipReason> {
    const { store, clock, settings } = this.deps;
    const record = await store.get(listed.key);
    const nowMs = clock.nowMs();
    const nowSeconds = Math.floor(nowMs / 1000);
    let outcome: 'restored' | 'restorable' | RestoreSkipReason;
    if (
      record?.status !== 'REAUTH_REQUIRED' ||
      record.reauthAt !== listed.reauthAt ||
      record.expiresAt <= nowSeconds
    ) {
      outcome = 'changed';
    } else if (record.corrupt) {
      outcome = 'corrupted';
    } else if (!record.tokens) {
      outcome = 'no_tokens';
    } else {
      const policy = settings.lifetimesFor(record.key.resource);
      const rotationDeadline = Math.min(
        record.rotationDeadline,
        record.authenticatedAt + policy.maxRotationSeconds,
      );
      const refreshExpiresAt = Math.min(
        record.refreshExpiresAt,
        (record.lastRotatedAt ?? record.authenticatedAt) + policy.refreshTokenTtlSeconds,
        rotationDeadline,
      );
      if (rotationDeadline <= nowSeconds) outcome = 'past_deadline';
      else if (refreshExpiresAt <= nowSeconds) outcome = 'refresh_expired';
      else if (dryRun) outcome = 'restorable';
      else {
        const written = await store.put(
          {
            ...record,
            status: 'ACTIVE',
            version: record.version + 1,
            lease: undefined,
            refreshExpiresAt,
            rotationDeadline,
            expiresAt: refreshExpiresAt,
            dueShard: shardOf(record.key, settings.dueShards),
            dueAt: nowSeconds,
            failures: 0,
            lastError: undefined,
            reauthReason: undefined,
            reauthAt: undefined,
          },
          { version: record.version, noLiveLeaseAtMs: nowMs },
        );
        outcome = written === 'ok' ? 'restored' : 'conflict';
      }
    }
    this.report(listed, outcome, dryRun);
    return outcome;
  }

  /** One log line per record (key and reasons only, never tokens), and its metric unless a dry run. */
  private report(listed: RecordSchedule, outcome: string, dryRun: boolean): void {
    const { logger, metrics } = this.deps;
    const fields = { ...logKey(listed.key), quarantinedFor: listed.reauthReason, outcome, dryRun };
    if (outcome === 'restored' || outcome === 'restorable') {
      logger.info(dryRun ? 'quarantined record would be restored' : 'quarantined record restored', fields);
      if (!dryRun) metrics.count('RecordRestored');
    } else {
      logger.info('quarantined record left as it is', fields);
      if (!dryRun) metrics.count('RestoreSkipped', 1, { reason: outcome });
    }
  }
}

/** Longest cursor accepted back from a caller (it is the store's own, base64url of a key). */
const MAX_CURSOR_LENGTH = 4096;

/**
 * Validates a restore event: `{ from, to, reasons | reason, dryRun?, cursor? }`, `from` and `to`
 * as ISO 8601 or epoch seconds. Messages name the field, never its value.
 */
export function parseRestoreEvent(event: unknown): RestoreRequest {
  if (typeof event !== 'object' || event === null || Array.isArray(event)) {
    throw new ValidationError('event must be an object');
  }
  const body = event as Record<string, unknown>;
  const own = (name: string) => (Object.hasOwn(body, name) ? body[name] : undefined);
  const from = instant(own('from'), 'from');
  const to = instant(own('to'), 'to');
  if (to < from) throw new ValidationError('to must not be before from');
  const raw = own('reasons') ?? own('reason');
  const list = typeof raw === 'string' ? [raw] : raw;
  if (!Array.isArray(list) || list.length === 0) {
    throw new ValidationError(`reasons must be a non-empty list of: ${REAUTH_REASONS.join(', ')}`);
  }
  const reasons = list.map((reason) => {
    if (!REAUTH_REASONS.includes(reason as ReauthReason)) {
      throw new ValidationError(`reasons must be among: ${REAUTH_REASONS.join(', ')}`);
    }
    return reason as ReauthReason;
  });
  const dryRun = own('dryRun') ?? false;
  if (typeof dryRun !== 'boolean') throw new ValidationError('dryRun must be a boolean');
  const cursor = own('cursor') ?? undefined;
  if (
    cursor !== undefined &&
    (typeof cursor !== 'string' || cursor.length > MAX_CURSOR_LENGTH || !/^[A-Za-z0-9_-]+$/.test(cursor))
  ) {
    throw new ValidationError('cursor must be the cursor of an earlier restore report');
  }
  return { from, to, reasons: [...new Set(reasons)], dryRun, ...(cursor ? { cursor } : {}) };
}

function instant(value: unknown, name: string): number {
  if (typeof value === 'number' && Number.isFinite(value) && value > 0 && value < 1e11)
    return Math.floor(value);
  if (typeof value === 'string' && value.length <= 40 && /^\d{4}-\d{2}-\d{2}T/.test(value)) {
    const ms = Date.parse(value);
    if (Number.isFinite(ms) && ms > 0) return Math.floor(ms / 1000);
  }
  throw new ValidationError(`${name} must be epoch seconds or an ISO 8601 time`);
}
