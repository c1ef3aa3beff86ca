import { reauthSoonAt } from './lifetimes';
import { errorName, logKey } from './log-fields';
import type { Clock, DueEntry } from './ports';
import { IdpRateLimiter } from './rate-limiter';
import { Reindex, type ReindexSettings } from './reindex';
import { type Budget, Rotation, type RotationDeps } from './rotation';

/** What one sweep did. `backlog` counts due records it found but had no time to process. */
export interface SweepSummary {
  due: number;
  rotated: number;
  failed: number;
  reauthRequired: number;
  skipped: number;
  backlog: number;
  /** Records whose schedule a re-index lowered after a lifetime setting was lowered. */
  rescheduled: number;
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
  /**
   * The lifetime settings in force, and how to re-index stored records when they are lowered.
   * @default none: stored records are never re-indexed (tests of other behaviour only)
   */
  readonly reindex?: ReindexSettings;
}

/** Rotation attempts a sweep makes while the rejection breaker is open, to see whether the cause is gone. */
const BREAKER_PROBES = 3;

/** What one run has learnt so far, shared by its workers. */
interface RunState {
  readonly breakerOpen: boolean;
  probesLeft: number;
  rejectionsHeld: number;
  /** Set when the IdP refused the app's client: no more rotations this run. */
  halted: boolean;
}

type EntryResult = 'rotated' | 'failed' | 'reauthRequired' | 'skipped' | 'backlog';

/** The scheduled sweep (docs/architecture.md "The sweep"): rotates every record whose `dueAt` has come. */
export class Sweep {
  private readonly rotation: Rotation;
  private readonly reindex: Reindex | undefined;

  constructor(
    private readonly deps: RotationDeps,
    private readonly sweepSettings: SweepSettings,
  ) {
    this.rotation = new Rotation(deps);
    this.reindex = sweepSettings.reindex ? new Reindex(deps, sweepSettings.reindex) : undefined;
  }

  /**
   * Queries the due index shard by shard (never a Scan) and processes with bounded concurrency.
   * Every shard a writer ever used is queried, whatever `DUE_SHARDS` is now; then, with the time
   * left, a part of the re-index that follows a lowered lifetime setting.
   */
  async run(budget: Budget): Promise<SweepSummary> {
    const { store, settings, metrics, logger } = this.deps;
    const summary: SweepSummary = {
      due: 0,
      rotated: 0,
      failed: 0,
      reauthRequired: 0,
      skipped: 0,
      backlog: 0,
      rescheduled: 0,
    };
    const state = await store.readSweepState();
    const nowSeconds = Math.floor(this.deps.clock.nowMs() / 1000);
    const run: RunState = {
      breakerOpen: await this.rotation.breaker.isOpen(),
      probesLeft: BREAKER_PROBES,
      rejectionsHeld: 0,
      halted: false,
    };
    if (run.breakerOpen) {
      metrics.count('RotationCircuitOpen');
      logger.error('rejection circuit breaker is open: this sweep only probes', { probes: BREAKER_PROBES });
    }
    const cursors = new Map<number, string | undefined>();
    // A record written under a larger DUE_SHARDS stays in its shard until it is rotated (the
    // rotation moves it under the current count): keep querying every shard ever used.
    const shards = Math.max(settings.dueShards, ...state.shardsUsed);
    for (let shard = 0; shard < shards; shard++) cursors.set(shard, undefined);
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
      // One page per shard with work left, merged oldest first. Every shard's query is waited
      // for before a failure is thrown, so no request outlives the run that made it.
      const settled = await Promise.allSettled(
        [...cursors].map(async ([shard, cursor]) => {
          const page = await store.queryDue(shard, nowSeconds, this.sweepSettings.pageSize, cursor);
          if (page.cursor === undefined) cursors.delete(shard);
          else cursors.set(shard, page.cursor);
          return page.entries;
        }),
      );
      const batch: DueEntry[] = [];
      for (const outcome of settled) {
        if (outcome.status === 'rejected') throw outcome.reason;
        batch.push(...outcome.value);
      }
      batch.sort((a, b) => a.dueAt - b.dueAt);
      summary.due += batch.length;

      const results = await this.processAll(batch, budget, limiter, run);
      for (const result of results) summary[result]++;
      outOfTime = summary.backlog > 0;
    }

    if (this.reindex && !outOfTime) {
      try {
        summary.rescheduled = await this.reindex.step(state, budget);
      } catch (error) {
        // Resumable: the pass's cursor is in the sweep state, the next sweep goes on from there.
        logger.error('re-index after a settings change could not go on', { error: errorName(error) });
      }
    }

    // Rotations succeeded and nobody was rejected while open: the cause is gone, close the breaker.
    if (run.breakerOpen && summary.rotated > 0 && run.rejectionsHeld === 0)
      await this.rotation.breaker.close();
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
    run: RunState,
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
        results.push(await this.processEntry(entry, budget, limiter, run));
      }
    };
    // Twice as many workers as IdP slots: while one worker reads or commits (DynamoDB), another
    // holds the slot, so the IdP calls in flight stay at `concurrency` (the limiter caps them).
    const workers = Math.min(2 * this.sweepSettings.concurrency, entries.length);
    await Promise.all(Array.from({ length: workers }, worker));
    return results;
  }

  private async processEntry(
    entry: DueEntry,
    budget: Budget,
    limiter: IdpRateLimiter,
    run: RunState,
  ): Promise<EntryResult> {
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

      // The IdP refused the app's client: every rotation would fail the same way until it is fixed.
      if (run.halted) return 'skipped';
      if (run.breakerOpen) {
        if (run.probesLeft <= 0) return 'skipped';
        run.probesLeft--;
      }
      const outcome = await this.rotation.rotate(record, budget, limiter);
      switch (outcome.kind) {
        case 'rotated':
          return 'rotated';
        case 'reauth':
          return 'reauthRequired';
        case 'transient':
          if (outcome.held) run.rejectionsHeld++;
          return 'failed';
        case 'configuration':
          run.halted = true;
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
