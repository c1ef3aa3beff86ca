import { StoreUnavailableError } from '../../../functions/core/errors';
import type { RecordKey, TokenRecord } from '../../../functions/core/model';
import type {
  BreakerState,
  DueEntry,
  Fence,
  RecordFilter,
  RecordSchedule,
  RecordView,
  ScheduleChange,
  SweepState,
  SweepStateChange,
  TokenStore,
  WriteOutcome,
} from '../../../functions/core/ports';
import { sha256Hex } from '../../../local/transmit/state';

/** The store operations the proofs watch and fault. */
export type StoreMethod = 'get' | 'put' | 'acquireLease' | 'delete' | 'queryDue' | 'markCorrupt';

/**
 * Where an injected store fault strikes. `before`: the request never reaches DynamoDB (throttled).
 * `after`: DynamoDB applied it, then the answer was lost (a timeout after the write landed).
 */
export type FaultMoment = 'before' | 'after';

/** One token set that a write committed, by hash (the proofs never keep raw tokens around). */
export interface Committed {
  readonly key: RecordKey;
  readonly version: number;
  readonly accessHash: string;
  readonly refreshHash: string;
}

/** Hooks a proof installs around every store call. */
export interface StoreHooks {
  /** Awaited before the call is sent: a scheduler decides when it goes. */
  before?(method: StoreMethod, label: string): Promise<void> | void;
  /** Called with the answer, before the caller sees it (a crash worker dies here). */
  after?(method: StoreMethod, label: string, outcome: unknown): void;
}

/** Runs real I/O; a clock may hold virtual time still while it is under way. */
export type Track = <T>(work: () => Promise<T>) => Promise<T>;

interface QueuedFault {
  remaining: number;
  readonly moment: FaultMoment;
}

/**
 * A TokenStore around the real DynamoDB one that lets a proof interleave (hooks), fault (queued
 * StoreUnavailableErrors before or after the real call) and audit (every committed token set) the
 * calls the service makes.
 */
export class ProofStore implements TokenStore {
  /** Token sets of every write that DynamoDB accepted, in order. */
  readonly committed: Committed[] = [];
  /** Faults thrown so far, by method. */
  readonly faultsInjected: Record<StoreMethod, number> = {
    get: 0,
    put: 0,
    acquireLease: 0,
    delete: 0,
    queryDue: 0,
    markCorrupt: 0,
  };
  hooks: StoreHooks = {};
  /**
   * Makes acquireLease answer 'ok' even when DynamoDB refused it: a lease that excludes nobody.
   * Only for showing that the proofs catch such a bug; never set in a proof of the service.
   */
  sabotageLease = false;
  readonly #faults = new Map<StoreMethod, QueuedFault[]>();

  constructor(
    /** The real store; tests read through it directly to see the table as it is. */
    readonly inner: TokenStore,
    private readonly track: Track = (work) => work(),
  ) {}

  /** Fails the next `count` calls of `method` with StoreUnavailableError at `moment`. */
  failNext(method: StoreMethod, count: number, moment: FaultMoment = 'before'): void {
    if (count <= 0) return;
    const queue = this.#faults.get(method) ?? [];
    queue.push({ remaining: count, moment });
    this.#faults.set(method, queue);
  }

  /** Drops every queued fault. */
  clearFaults(): void {
    this.#faults.clear();
  }

  /** Total faults thrown. */
  get totalFaults(): number {
    return Object.values(this.faultsInjected).reduce((sum, n) => sum + n, 0);
  }

  get(key: RecordKey): Promise<TokenRecord | undefined> {
    return this.#call('get', `get ${key.userId}`, () => this.inner.get(key));
  }

  /** Faulted and hooked as a `get`: the same read, with a projection. */
  currentVersion(key: RecordKey): Promise<number | undefined> {
    return this.#call('get', `get ${key.userId}`, () => this.inner.currentVersion(key));
  }

  readSchedule(key: RecordKey): Promise<RecordView | undefined> {
    return this.#call('get', `readSchedule ${key.userId}`, () => this.inner.readSchedule(key));
  }

  markCorrupt(key: RecordKey, version: number, nowSeconds: number): Promise<WriteOutcome> {
    return this.#call('markCorrupt', `markCorrupt ${key.userId} v${version}`, () =>
      this.inner.markCorrupt(key, version, nowSeconds),
    );
  }

  async put(record: TokenRecord, fence: Fence): Promise<WriteOutcome> {
    const outcome = await this.#call('put', `put ${record.key.userId} v${record.version}`, async () => {
      const written = await this.inner.put(record, fence);
      if (written === 'ok' && record.tokens) {
        this.committed.push({
          key: record.key,
          version: record.version,
          accessHash: sha256Hex(record.tokens.accessToken.reveal()),
          refreshHash: sha256Hex(record.tokens.refreshToken.reveal()),
        });
      }
      return written;
    });
    return outcome;
  }

  acquireLease(
    key: RecordKey,
    version: number,
    leaseId: string,
    untilMs: number,
    nowMs: number,
  ): Promise<WriteOutcome> {
    return this.#call('acquireLease', `lease ${key.userId} v${version}`, async () => {
      const outcome = await this.inner.acquireLease(key, version, leaseId, untilMs, nowMs);
      return this.sabotageLease ? 'ok' : outcome;
    });
  }

  countRejection(windowStart: number, expiresAt: number): Promise<number> {
    return this.inner.countRejection(windowStart, expiresAt);
  }

  getBreaker(): Promise<BreakerState> {
    return this.inner.getBreaker();
  }

  openBreaker(openedAt: number): Promise<WriteOutcome> {
    return this.inner.openBreaker(openedAt);
  }

  closeBreaker(trustUntil: number): Promise<void> {
    return this.inner.closeBreaker(trustUntil);
  }

  delete(key: RecordKey, fence?: { readonly version: number }): Promise<WriteOutcome> {
    return this.#call('delete', `delete ${key.userId}`, () => this.inner.delete(key, fence));
  }

  // The sweep state and the Scans are passed through unwatched: the proofs fault the rotation path.
  readSweepState(): Promise<SweepState> {
    return this.track(() => this.inner.readSweepState());
  }

  writeSweepState(state: SweepStateChange, version: number): Promise<WriteOutcome> {
    return this.track(() => this.inner.writeSweepState(state, version));
  }

  scanRecords(
    filter: RecordFilter,
    limit: number,
    cursor?: string,
  ): Promise<{ records: RecordSchedule[]; cursor: string | undefined }> {
    return this.track(() => this.inner.scanRecords(filter, limit, cursor));
  }

  reschedule(key: RecordKey, fence: Fence, change: ScheduleChange): Promise<WriteOutcome> {
    return this.track(() => this.inner.reschedule(key, fence, change));
  }

  queryDue(
    shard: number,
    nowSeconds: number,
    limit: number,
    cursor?: string,
  ): Promise<{ entries: DueEntry[]; cursor: string | undefined }> {
    return this.#call('queryDue', `queryDue ${shard}`, () =>
      this.inner.queryDue(shard, nowSeconds, limit, cursor),
    );
  }

  async #call<T>(method: StoreMethod, label: string, real: () => Promise<T>): Promise<T> {
    await this.hooks.before?.(method, label);
    const fault = this.#take(method);
    if (fault === 'before') throw this.#fault(method);
    const outcome = await this.track(real);
    if (fault === 'after') throw this.#fault(method);
    this.hooks.after?.(method, label, outcome);
    return outcome;
  }

  #take(method: StoreMethod): FaultMoment | undefined {
    const queue = this.#faults.get(method);
    const head = queue?.[0];
    if (!queue || !head) return undefined;
    head.remaining--;
    if (head.remaining <= 0) queue.shift();
    return head.moment;
  }

  #fault(method: StoreMethod): StoreUnavailableError {
    this.faultsInjected[method]++;
    return new StoreUnavailableError(`injected: the token table throttled ${method}`);
  }
}
