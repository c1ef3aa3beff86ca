import { nextDueAt, reauthSoonAt, shardOf } from './lifetimes';
import { errorName, logKey } from './log-fields';
import type { LifetimePolicy } from './model';
import type { RecordSchedule, ReindexPass, ScheduleChange, SweepState } from './ports';
import type { Budget, RotationDeps } from './rotation';

/** The lifetime settings that a stored record's `refreshExpiresAt`, `rotationDeadline` and `dueAt` follow. */
export interface LifetimeSettings {
  /** The policy of every resource not named in `resources`. */
  readonly defaults: LifetimePolicy;
  /** The effective policy of each resource named in RESOURCE_LIFETIMES. */
  readonly resources: Readonly<Record<string, LifetimePolicy>>;
  /** REAUTH_SOON_DAYS in seconds. */
  readonly reauthSoonSeconds: number;
}

/** Settings of the re-index that follows a lowered lifetime setting. */
export interface ReindexSettings {
  readonly lifetimes: LifetimeSettings;
  /**
   * Seconds between the first sweep that sees new settings and the start of the Scan: writers
   * still running on the old settings (a deployment's in-flight invocations) finish first.
   * @default 900 (the longest a Lambda invocation can run)
   */
  readonly settleSeconds?: number;
  /** Items read per Scan page. @default 500 */
  readonly pageSize?: number;
  /** Scan pages one sweep reads at most. @default 40 */
  readonly pagesPerSweep?: number;
  /** Reschedule writes in flight at once. @default 16 */
  readonly concurrency?: number;
}

const CONFLICT_ATTEMPTS = 3;

/** The canonical text of lifetime settings (sorted keys): what the sweep state remembers. */
export function lifetimeSettingsKey(settings: LifetimeSettings): string {
  const policy = (p: LifetimePolicy) => ({
    maxRotationSeconds: p.maxRotationSeconds,
    refreshAheadSeconds: p.refreshAheadSeconds,
    refreshTokenTtlSeconds: p.refreshTokenTtlSeconds,
  });
  const resources: Record<string, ReturnType<typeof policy>> = {};
  for (const name of Object.keys(settings.resources).sort())
    resources[name] = policy(settings.resources[name]!);
  return JSON.stringify({
    defaults: policy(settings.defaults),
    reauthSoonSeconds: settings.reauthSoonSeconds,
    resources,
  });
}

function parseLifetimeSettings(text: string): LifetimeSettings | undefined {
  try {
    const value = JSON.parse(text) as LifetimeSettings;
    if (typeof value?.defaults?.refreshTokenTtlSeconds !== 'number') return undefined;
    return value;
  } catch {
    return undefined;
  }
}

/**
 * True when `after` makes some record due earlier than `before` did, for some resource: a shorter
 * refresh TTL or maximum rotation, a longer refresh-ahead or reauth-soon window. Raising a
 * lifetime never needs a re-index: stored times are then early, never late.
 */
export function lowersAny(before: LifetimeSettings, after: LifetimeSettings): boolean {
  if (after.reauthSoonSeconds > before.reauthSoonSeconds) return true;
  const names = new Set([...Object.keys(before.resources), ...Object.keys(after.resources)]);
  const pairs: [LifetimePolicy, LifetimePolicy][] = [[before.defaults, after.defaults]];
  for (const name of names) {
    pairs.push([before.resources[name] ?? before.defaults, after.resources[name] ?? after.defaults]);
  }
  return pairs.some(
    ([b, a]) =>
      a.refreshTokenTtlSeconds < b.refreshTokenTtlSeconds ||
      a.maxRotationSeconds < b.maxRotationSeconds ||
      a.refreshAheadSeconds > b.refreshAheadSeconds,
  );
}

/**
 * The schedule a record must have under `policy`, when that is earlier than the stored one;
 * undefined when the stored one is fine. Never later than stored: a settings change only lowers
 * `refreshExpiresAt` (to `lastRotatedAt ?? authenticatedAt` + TTL), `rotationDeadline` (to
 * `authenticatedAt` + max rotation) and `dueAt`. It never ends a record at once either: a lifetime
 * the new settings say is already over is kept for `refreshAhead` from now (never beyond the
 * stored one) and the record is due now, so it gets its rotation (or its `Reauth Soon`) first.
 * A record in a shard at or above `dueShards` moves to its shard under `dueShards`.
 */
export function loweredSchedule(
  record: RecordSchedule,
  policy: LifetimePolicy,
  reauthSoonSeconds: number,
  dueShards: number,
  nowSeconds: number,
  random: () => number,
): ScheduleChange | undefined {
  if (record.status !== 'ACTIVE' || record.dueAt === undefined) return undefined;
  const floor = nowSeconds + policy.refreshAheadSeconds;
  const rotationDeadline = Math.min(
    record.rotationDeadline,
    Math.max(record.authenticatedAt + policy.maxRotationSeconds, floor),
  );
  const issuedAt = record.lastRotatedAt ?? record.authenticatedAt;
  const refreshExpiresAt = Math.min(
    record.refreshExpiresAt,
    rotationDeadline,
    Math.max(issuedAt + policy.refreshTokenTtlSeconds, floor),
  );
  const soonAt = reauthSoonAt(
    {
      authenticatedAt: record.authenticatedAt,
      rotationDeadline,
      reauthSoonNotifiedAt: record.reauthSoonNotifiedAt,
    },
    reauthSoonSeconds,
  );
  let dueAt = record.dueAt;
  if (record.failures > 0) {
    // In backoff after a failure: the stored time is the retry, which must stay (it bounds the
    // attempts per hour); it only has to stay ahead of a lowered expiry, as retries do.
    dueAt = Math.min(record.dueAt, Math.max(nowSeconds, refreshExpiresAt - 60));
  } else {
    // Compared without jitter (the latest due time the policy allows), so that a record scheduled
    // under the same settings is left alone; lowered, it gets its jitter as a new record would.
    const latestDue = nextDueAt(refreshExpiresAt, rotationDeadline, policy, nowSeconds, () => 0, soonAt);
    if (record.dueAt > latestDue) {
      dueAt = Math.min(
        record.dueAt,
        nextDueAt(refreshExpiresAt, rotationDeadline, policy, nowSeconds, random, soonAt),
      );
    }
  }
  const dueShard =
    record.dueShard !== undefined && record.dueShard < dueShards
      ? record.dueShard
      : shardOf(record.key, dueShards);
  if (
    refreshExpiresAt === record.refreshExpiresAt &&
    rotationDeadline === record.rotationDeadline &&
    dueAt === record.dueAt &&
    dueShard === record.dueShard
  ) {
    return undefined;
  }
  return {
    version: record.version + 1,
    refreshExpiresAt,
    expiresAt: Math.min(record.expiresAt, refreshExpiresAt),
    rotationDeadline,
    dueShard,
    dueAt,
  };
}

/**
 * Brings stored records under lowered lifetime settings: one paginated Scan per settings change,
 * resumable (its cursor is kept in the sweep state), a bounded part of it per sweep, with writes
 * fenced on each record's version and on no live lease, so it never clobbers a rotation.
 */
export class Reindex {
  private readonly current: string;

  constructor(
    private readonly deps: RotationDeps,
    private readonly settings: ReindexSettings,
  ) {
    this.current = lifetimeSettingsKey(settings.lifetimes);
  }

  /** Runs the part of the re-index this sweep has time for; returns the records it rescheduled. */
  async step(state: SweepState, budget: Budget): Promise<number> {
    const { store, logger, metrics } = this.deps;
    if (state.indexedSettings === this.current && state.reindex === undefined) return 0;
    const nowSeconds = this.nowSeconds();
    let version = state.version;
    let pass = state.reindex;

    if (pass?.settings !== this.current) {
      const before = state.indexedSettings ? parseLifetimeSettings(state.indexedSettings) : undefined;
      if (before && !lowersAny(before, this.settings.lifetimes)) {
        // Every stored time is at most as late as these settings want: nothing to scan for.
        await store.writeSweepState({ indexedSettings: this.current, reindex: undefined }, version);
        logger.info('lifetime settings changed; no stored record can be late, no re-index needed');
        return 0;
      }
      pass = {
        settings: this.current,
        notBefore: nowSeconds + (this.settings.settleSeconds ?? 900),
        cursor: undefined,
        scanned: 0,
        lowered: 0,
      };
      const started = await store.writeSweepState(
        { indexedSettings: state.indexedSettings, reindex: pass },
        version,
      );
      if (started === 'conflict') return 0;
      version += 1;
      logger.warn('lifetime settings lowered (or unknown): stored records will be re-indexed', {
        notBefore: pass.notBefore,
      });
    }
    if (nowSeconds < pass.notBefore) return 0;

    const { idpTimeoutMs, commitReserveMs } = this.deps.settings;
    let rescheduled = 0;
    for (let pages = 0; pages < (this.settings.pagesPerSweep ?? 40); pages++) {
      if (budget.remainingMs() < idpTimeoutMs + commitReserveMs) break;
      const page = await store.scanRecords({ status: 'ACTIVE' }, this.settings.pageSize ?? 500, pass.cursor);
      const lowered = await this.lowerAll(page.records, budget);
      rescheduled += lowered;
      const next: ReindexPass = {
        ...pass,
        cursor: page.cursor,
        scanned: pass.scanned + page.records.length,
        lowered: pass.lowered + lowered,
      };
      if (page.cursor === undefined) {
        const done = await store.writeSweepState(
          { indexedSettings: this.current, reindex: undefined },
          version,
        );
        if (done === 'ok') {
          logger.info('re-index after a settings change finished', {
            scanned: next.scanned,
            lowered: next.lowered,
          });
        }
        break;
      }
      // Another sweep that moved the pass on wins; this one stops (its writes were fenced).
      if (
        (await store.writeSweepState({ indexedSettings: state.indexedSettings, reindex: next }, version)) ===
        'conflict'
      )
        break;
      version += 1;
      pass = next;
    }
    if (rescheduled > 0) metrics.count('RecordsRescheduled', rescheduled);
    return rescheduled;
  }

  private async lowerAll(records: readonly RecordSchedule[], budget: Budget): Promise<number> {
    let next = 0;
    let lowered = 0;
    const worker = async () => {
      while (next < records.length) {
        const record = records[next++]!;
        try {
          if (await this.lowerOne(record, budget)) lowered += 1;
        } catch (error) {
          // The pass goes on; the record is still swept at its stored time, which the next change may fix.
          this.deps.logger.error('could not reschedule a record after a settings change', {
            ...logKey(record.key),
            error: errorName(error),
          });
        }
      }
    };
    const workers = Math.min(this.settings.concurrency ?? 16, records.length);
    await Promise.all(Array.from({ length: workers }, worker));
    return lowered;
  }

  /** Lowers one record; on a conflict re-reads it (waiting out a rotation under way) and tries again. */
  private async lowerOne(first: RecordSchedule, budget: Budget): Promise<boolean> {
    const { store, settings, clock } = this.deps;
    let record: RecordSchedule | undefined = first;
    for (let attempt = 1; record; attempt++) {
      const policy = settings.lifetimesFor(record.key.resource);
      const change = loweredSchedule(
        record,
        policy,
        settings.reauthSoonSeconds,
        settings.dueShards,
        this.nowSeconds(),
        this.deps.random,
      );
      if (!change) return false;
      const nowMs = clock.nowMs();
      const written = await store.reschedule(
        record.key,
        { version: record.version, noLiveLeaseAtMs: nowMs },
        change,
      );
      if (written === 'ok') return true;
      if (attempt >= CONFLICT_ATTEMPTS) break;
      // A rotation under way keeps the stored rotation deadline: let it commit, then lower the result.
      const waitMs = record.lease ? record.lease.untilMs - nowMs : 0;
      if (waitMs > 0 && waitMs <= Math.min(settings.leaseMs, budget.remainingMs() - settings.idpTimeoutMs)) {
        await this.deps.sleep(waitMs + 1);
      }
      record = await store.get(record.key);
    }
    if (record) {
      this.deps.logger.warn(
        'record changed during the re-index; left at its stored schedule',
        logKey(record.key),
      );
    }
    return false;
  }

  private nowSeconds(): number {
    return Math.floor(this.deps.clock.nowMs() / 1000);
  }
}
