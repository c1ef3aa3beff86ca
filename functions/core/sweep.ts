import { reauthSoonAt } from './lifetimes';
import type { Clock, DueEntry } from './ports';
import { IdpRateLimiter } from './rate-limiter';
import { type Budget, errorName, logKey, Rotation, type RotationDeps } from './rotation';

/** What one sweep did. `backlog` counts due records it found but had no time to process. */
export interface SweepSummary {
  due: number;
  rotated: number;
  failed: number;
  reauthRequired: number;
  skipped: number;
  backlog: number;
}

/** Settings of the sweep. */
export interface SweepSettings {
  /** Rotations in flight at once. */
  readonly concurrency: number;
  /** Due entries read per query page and shard. */
  readonly pageSize: number;
  /** IdP calls started per second by one sweep, at most (halved on each 429, then recovering). @default 20 */
  readonly idpRequestsPerSecond?: number;
  /** Real time for the rate limiter (the domain clock may be virtual). @default performance.now */
  readonly pacingClock?: Clock;
}

type EntryResult = 'rotated' | 'failed' | 'reauthRequired' | 'skipped' | 'backlog';

/** The scheduled sweep (DESIGN.md "The sweep"): rotates every record whose `dueAt` has come. */
export class Sweep {
  private readonly rotation: Rotation;

  constructor(
    private readonly deps: RotationDeps,
    private readonly sweepSettings: SweepSettings,
  ) {
    this.rotation = new Rotation(deps);
  }

  /** Queries the due index shard by shard (never a Scan) and processes with bounded concurrency. */
  async run(budget: Budget): Promise<SweepSummary> {
    const { store, settings, metrics, logger } = this.deps;
    const summary: SweepSummary = {
      due: 0,
      rotated: 0,
      failed: 0,
      reauthRequired: 0,
      skipped: 0,
      backlog: 0,
    };
    const nowSeconds = Math.floor(this.deps.clock.nowMs() / 1000);
    const cursors = new Map<number, string | undefined>();
    for (let shard = 0; shard < settings.dueShards; shard++) cursors.set(shard, undefined);
    let outOfTime = false;
    const limiter = new IdpRateLimiter(
      {
        requestsPerSecond: this.sweepSettings.idpRequestsPerSecond ?? 20,
        maxConcurrent: this.sweepSettings.concurrency,
      },
      this.sweepSettings.pacingClock ?? { nowMs: () => performance.now() },
      this.deps.sleep,
    );

    while (cursors.size > 0 && !outOfTime) {
      // One page per shard with work left, merged oldest first.
      const pages = await Promise.all(
        [...cursors].map(async ([shard, cursor]) => {
          const page = await store.queryDue(shard, nowSeconds, this.sweepSettings.pageSize, cursor);
          if (page.cursor === undefined) cursors.delete(shard);
          else cursors.set(shard, page.cursor);
          return page.entries;
        }),
      );
      const batch = pages.flat().sort((a, b) => a.dueAt - b.dueAt);
      summary.due += batch.length;

      const results = await this.processAll(batch, budget, limiter);
      for (const result of results) summary[result]++;
      outOfTime = summary.backlog > 0;
    }

    metrics.count('SweepDue', summary.due);
    metrics.count('SweepBacklog', summary.backlog);
    // The heartbeat: its absence over two intervals means the sweep stopped running.
    metrics.count('SweepCompleted');
    logger.info('sweep finished', { ...summary, moreShardsPending: cursors.size > 0 });
    return summary;
  }

  /** Runs `entries` through a pool of `concurrency` workers that stop starting work when time is short. */
  private async processAll(
    entries: DueEntry[],
    budget: Budget,
    limiter: IdpRateLimiter,
  ): Promise<EntryResult[]> {
    const results: EntryResult[] = [];
    let next = 0;
    const { idpTimeoutMs, commitReserveMs } = this.deps.settings;
    const worker = async () => {
      while (next < entries.length) {
        const entry = entries[next++]!;
        if (budget.remainingMs() < idpTimeoutMs + commitReserveMs) {
          results.push('backlog');
          continue;
        }
        results.push(await this.processEntry(entry, budget, limiter));
      }
    };
    // Twice as many workers as IdP slots: while one worker reads or commits (DynamoDB), another
    // holds the slot, so the IdP calls in flight stay at `concurrency` (the limiter caps them).
    const workers = Math.min(2 * this.sweepSettings.concurrency, entries.length);
    await Promise.all(Array.from({ length: workers }, worker));
    return results;
  }

  private async processEntry(entry: DueEntry, budget: Budget, limiter: IdpRateLimiter): Promise<EntryResult> {
    const { store, metrics, logger } = this.deps;
    try {
      let record = await store.get(entry.key);
      const nowMs = this.deps.clock.nowMs();
      const nowSeconds = Math.floor(nowMs / 1000);
      // The index is eventually consistent: the record itself says whether it is still due.
      if (record?.status !== 'ACTIVE' || record.dueAt === undefined || record.dueAt > nowSeconds) {
        return 'skipped';
      }
      if (record.corrupt || !record.tokens) {
        // Counted once per record: the mark takes it off the due index, so no later sweep sees it.
        if ((await store.markCorrupt(record.key, record.version, nowSeconds)) === 'ok') {
          metrics.count('CorruptRecordFound');
          logger.error(
            'stored tokens cannot be decrypted; record taken off the due index, tokens left for the operator',
            logKey(record.key),
          );
        }
        return 'failed';
      }
      if (record.lease && record.lease.untilMs > nowMs) return 'skipped';

      if (record.refreshExpiresAt <= nowSeconds) {
        const atDeadline = record.refreshExpiresAt >= record.rotationDeadline;
        if (!atDeadline) {
          // The service let a refresh token die: that is our failure, not the user's.
          metrics.count('TokensExpired');
          logger.error('refresh token expired before it was rotated', logKey(record.key));
        }
        const marked = await this.rotation.markReauthRequired(record, atDeadline ? 'deadline' : 'expired');
        return marked ? 'reauthRequired' : 'skipped';
      }

      const soonAt = reauthSoonAt(record, this.deps.settings.reauthSoonSeconds);
      if (soonAt !== undefined && nowSeconds >= soonAt) {
        const notified = await this.rotation.notifyReauthSoon(record);
        if (!notified) return 'skipped';
        record = notified;
        if (record.dueAt === undefined || record.dueAt > nowSeconds) return 'skipped';
      }

      if (record.refreshExpiresAt >= record.rotationDeadline) {
        // Rotating cannot extend access past the deadline: no IdP call, just wait for the deadline.
        // Nothing is left to retry either: clear the failures so callers are not held in backoff.
        const parked = {
          ...record,
          version: record.version + 1,
          dueAt: record.rotationDeadline,
          failures: 0,
        };
        await store.put(parked, { version: record.version, noLiveLeaseAtMs: nowMs });
        return 'skipped';
      }

      const outcome = await this.rotation.rotate(record, budget, limiter);
      switch (outcome.kind) {
        case 'rotated':
          return 'rotated';
        case 'reauth':
          return 'reauthRequired';
        case 'transient':
          return 'failed';
        case 'no-time':
          return 'backlog';
        default:
          return 'skipped';
      }
    } catch (error) {
      metrics.count('RotationFailed', 1, { reason: 'error' });
      logger.error('sweep could not process a record', { ...logKey(entry.key), error: errorName(error) });
      return 'failed';
    }
  }
}
