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
import type { ActiveRule, CallKind, FaultProxy } from '../../support/fault-proxy';

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

/** Store faults injected below the SDK, by a proxy between the service's client and DynamoDB Local. */
export interface WireFaults {
  /** The production store whose client goes through the proxy. */
  readonly store: TokenStore;
  readonly proxy: FaultProxy;
}

/** The proxy's name for the calls of each store method. */
const CALL_KIND: Readonly<Record<StoreMethod, CallKind>> = {
  get: 'read',
  put: 'commit',
  acquireLease: 'lease',
  delete: 'delete',
  queryDue: 'query',
  markCorrupt: 'other',
};

export class ProofStore implements TokenStore {
  /** Token sets of every write that DynamoDB accepted, in order. */
  readonly committed: Committed[] = [];
  readonly #thrown: Record<StoreMethod, number> = {
    get: 0,
    put: 0,
    acquireLease: 0,
    delete: 0,
    queryDue: 0,
    markCorrupt: 0,
  };
  /** On the wire: the proxy rules that fault each method's calls. */
  readonly #rules: {
    readonly method: StoreMethod;
    readonly rule: ActiveRule;
    readonly calls: Set<string>;
  }[] = [];
  readonly #service: TokenStore;
  readonly #wire: WireFaults | undefined;
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
    /** Fault on the wire: the service's calls go to this store, whose client talks to the proxy. */
    wire?: WireFaults,
  ) {
    this.#service = wire?.store ?? inner;
    this.#wire = wire;
  }

  /** Faults injected so far, by method: failed calls (on the wire, each call's attempts all faulted). */
  get faultsInjected(): Record<StoreMethod, number> {
    const counts = { ...this.#thrown };
    for (const { method, calls } of this.#rules) counts[method] += calls.size;
    return counts;
  }

  /**
   * Fails the next `count` calls of `method` at `moment`. Without a wire: a StoreUnavailableError
   * thrown around the real call. On the wire: `before`, DynamoDB answers a throttle; `after`,
   * DynamoDB applies the request and the answer is lost (the connection reset): on every SDK
   * attempt of the call, so the service's client gives up on it as it would in AWS.
   */
  failNext(method: StoreMethod, count: number, moment: FaultMoment = 'before'): void {
    if (count <= 0) return;
    if (this.#wire) {
      // The SDK sends one invocation id on every attempt of a call: the first `count` calls to
      // arrive are faulted on all their attempts, whatever else runs concurrently.
      const calls = new Set<string>();
      const rule = this.#wire.proxy.add({
        kind: CALL_KIND[method],
        action: moment === 'before' ? { kind: 'throttle' } : { kind: 'dropAnswer' },
        when: ({ invocationId }) => {
          if (invocationId === undefined) return false;
          if (!calls.has(invocationId) && calls.size < count) calls.add(invocationId);
          return calls.has(invocationId);
        },
      });
      this.#rules.push({ method, rule, calls });
      return;
    }
    const queue = this.#faults.get(method) ?? [];
    queue.push({ remaining: count, moment });
    this.#faults.set(method, queue);
  }

  /** Drops every queued fault. */
  clearFaults(): void {
    this.#faults.clear();
    for (const { rule } of this.#rules) rule.remove();
  }

  /** Total faults thrown. */
  get totalFaults(): number {
    return Object.values(this.faultsInjected).reduce((sum, n) => sum + n, 0);
  }

  get(key: RecordKey): Promise<TokenRecord | undefined> {
    return this.#call('get', `get ${key.userId}`, () => this.#service.get(key));
  }

  /** Faulted and hooked as a `get`: the same read, with a projection. */
  currentVersion(key: RecordKey): Promise<number | undefined> {
    return this.#call('get', `get ${key.userId}`, () => this.#service.currentVersion(key));
  }

  readSchedule(key: RecordKey): Promise<RecordView | undefined> {
    return this.#call('get', `readSchedule ${key.userId}`, () => this.inner.readSchedule(key));
  }

  markCorrupt(key: RecordKey, version: number, nowSeconds: number): Promise<WriteOutcome> {
    return this.#call('markCorrupt', `markCorrupt ${key.userId} v${version}`, () =>
      this.#service.markCorrupt(key, version, nowSeconds),
    );
  }

  async put(record: TokenRecord, fence: Fence): Promise<WriteOutcome> {
    const outcome = await this.#call('put', `put ${record.key.userId} v${record.version}`, async () => {
      let written: WriteOutcome;
      try {
        written = await this.#service.put(record, fence);
      } catch (error) {
        // On the wire the answer may be lost after DynamoDB applied the write: look at the table.
        if (this.#wire) await this.#auditLanded(record);
        throw error;
      }
      if (written === 'ok') this.#audit(record);
      return written;
    });
    return outcome;
  }

  #audit(record: TokenRecord): void {
    if (!record.tokens) return;
    this.committed.push({
      key: record.key,
      version: record.version,
      accessHash: sha256Hex(record.tokens.accessToken.reveal()),
      refreshHash: sha256Hex(record.tokens.refreshToken.reveal()),
    });
  }

  /** Records a write whose answer was lost when the table holds exactly what it wrote. */
  async #auditLanded(record: TokenRecord): Promise<void> {
    if (!record.tokens) return;
    const stored = await this.track(() => this.inner.get(record.key));
    const same =
      stored?.version === record.version &&
      stored.tokens !== undefined &&
      stored.tokens.refreshToken.reveal() === record.tokens.refreshToken.reveal();
    if (same) this.#audit(record);
  }

  acquireLease(
    key: RecordKey,
    version: number,
    leaseId: string,
    untilMs: number,
    nowMs: number,
  ): Promise<WriteOutcome> {
    return this.#call('acquireLease', `lease ${key.userId} v${version}`, async () => {
      const outcome = await this.#service.acquireLease(key, version, leaseId, untilMs, nowMs);
      return this.sabotageLease ? 'ok' : outcome;
    });
  }

  countRejection(windowStart: number, expiresAt: number): Promise<number> {
    return this.#service.countRejection(windowStart, expiresAt);
  }

  getBreaker(): Promise<BreakerState> {
    return this.#service.getBreaker();
  }

  openBreaker(openedAt: number): Promise<WriteOutcome> {
    return this.#service.openBreaker(openedAt);
  }

  closeBreaker(trustUntil: number): Promise<void> {
    return this.#service.closeBreaker(trustUntil);
  }

  delete(key: RecordKey, fence?: { readonly version: number }): Promise<WriteOutcome> {
    return this.#call('delete', `delete ${key.userId}`, () => this.#service.delete(key, fence));
  }

  // The sweep state and the Scans are passed through unwatched: the proofs fault the rotation path.
  readSweepState(): Promise<SweepState> {
    return this.track(() => this.#service.readSweepState());
  }

  writeSweepState(state: SweepStateChange, version: number): Promise<WriteOutcome> {
    return this.track(() => this.#service.writeSweepState(state, version));
  }

  scanRecords(
    filter: RecordFilter,
    limit: number,
    cursor?: string,
  ): Promise<{ records: RecordSchedule[]; cursor: string | undefined }> {
    return this.track(() => this.#service.scanRecords(filter, limit, cursor));
  }

  reschedule(key: RecordKey, fence: Fence, change: ScheduleChange): Promise<WriteOutcome> {
    return this.track(() => this.#service.reschedule(key, fence, change));
  }

  queryDue(
    shard: number,
    nowSeconds: number,
    limit: number,
    cursor?: string,
  ): Promise<{ entries: DueEntry[]; cursor: string | undefined }> {
    return this.#call('queryDue', `queryDue ${shard}`, () =>
      this.#service.queryDue(shard, nowSeconds, limit, cursor),
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
    this.#thrown[method]++;
    return new StoreUnavailableError(`injected: the token table throttled ${method}`);
  }
}
