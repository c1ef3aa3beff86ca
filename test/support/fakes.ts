import { IdpPermanentError, StoreUnavailableError } from '../../functions/core/errors';
import { shardOf } from '../../functions/core/lifetimes';
import {
  DEFAULT_RESOURCE,
  type LifetimePolicy,
  type RecordKey,
  type RefreshAnswer,
  type StoredTokens,
  type TokenRecord,
  type TokenSet,
} from '../../functions/core/model';
import type {
  BreakerState,
  Clock,
  DueEntry,
  Fence,
  IdentityProvider,
  RecordFilter,
  RecordSchedule,
  RecordView,
  ScheduleChange,
  SweepState,
  SweepStateChange,
  TokenStore,
  WriteOutcome,
} from '../../functions/core/ports';
import type { Budget, RotationDeps, RotationSettings } from '../../functions/core/rotation';
import { Secret } from '../../functions/core/secret';
import { InMemoryMetrics, MemoryLogger, RecordingEventPublisher } from './observability';

export const DAY = 86_400;

/** 2026-01-01T00:00:00Z: every test starts here unless it says otherwise. */
export const T0_MS = Date.UTC(2026, 0, 1);
/** {@link T0_MS} in epoch seconds. */
export const T0 = T0_MS / 1000;

interface Timer {
  readonly atMs: number;
  readonly seq: number;
  readonly wake: () => void;
}

/** Event-loop turns the clock lets pass before it moves time to the next timer. */
const IDLE_TURNS = 3;

/**
 * A clock that moves only when told to, or through {@link FakeClock.sleep}: a virtual timer queue.
 * Sleepers wake in the order of their wake times and time jumps to each wake time, so concurrent
 * sleeps overlap as real ones do (two 200 ms sleeps started together end at +200 ms, not +400 ms).
 * Time moves only after the work that is ready has had a few event-loop turns to run.
 */
export class FakeClock implements Clock {
  private readonly timers: Timer[] = [];
  private seq = 0;
  private pumping = false;

  constructor(private ms = T0_MS) {}

  nowMs(): number {
    return this.ms;
  }

  /** Epoch seconds, as the records store them. */
  nowSeconds(): number {
    return Math.floor(this.ms / 1000);
  }

  /** Jumps to an absolute time (epoch milliseconds). */
  set(ms: number): void {
    this.ms = ms;
  }

  /** Moves time forward now, waking no sleeper (they wake on their own turn). */
  advance(ms: number): void {
    this.ms += ms;
  }

  /** {@link FakeClock.advance} in seconds. */
  advanceSeconds(seconds: number): void {
    this.ms += seconds * 1000;
  }

  /** Resolves when virtual time reaches now + ms (at least 1 ms, like setTimeout). */
  sleep(ms: number): Promise<void> {
    return new Promise((wake) => {
      this.timers.push({ atMs: this.ms + Math.max(1, ms), seq: this.seq++, wake });
      if (!this.pumping) {
        this.pumping = true;
        void this.pump();
      }
    });
  }

  private async pump(): Promise<void> {
    while (this.timers.length > 0) {
      for (let turn = 0; turn < IDLE_TURNS; turn++) await tick();
      this.timers.sort((a, b) => a.atMs - b.atMs || a.seq - b.seq);
      const next = this.timers.shift()!;
      this.ms = Math.max(this.ms, next.atMs);
      next.wake();
    }
    this.pumping = false;
  }
}

/** A Lambda budget that shrinks as the fake clock moves. */
export function clockBudget(clock: Clock, remainingMs: number): Budget {
  const deadline = clock.nowMs() + remainingMs;
  return { remainingMs: () => deadline - clock.nowMs() };
}

/** A budget that never changes. */
export function fixedBudget(remainingMs: number): Budget {
  return { remainingMs: () => remainingMs };
}

/** Lets every pending promise callback and one round of timers run. */
export function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Turns the event loop until `predicate` holds; throws after `maxTurns` (a test bug, not a timing issue). */
export async function until(predicate: () => boolean, maxTurns = 1000): Promise<void> {
  for (let turn = 0; turn < maxTurns; turn++) {
    if (predicate()) return;
    await tick();
  }
  throw new Error('condition never became true');
}

/** The rejection of `promise`; fails when it resolves. */
export async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => error as Error,
  );
}

// ---------------------------------------------------------------------------------------------
// Token store

/** The methods of the TokenStore port. */
export type StoreMethod =
  | 'get'
  | 'put'
  | 'acquireLease'
  | 'delete'
  | 'queryDue'
  | 'countRejection'
  | 'getBreaker'
  | 'openBreaker'
  | 'closeBreaker'
  | 'readSweepState'
  | 'writeSweepState'
  | 'scanRecords'
  | 'reschedule'
  | 'markCorrupt'
  | 'readSchedule';

/** One call made to the fake store (what an assertion needs, never token material). */
export interface StoreCall {
  readonly method: StoreMethod;
  readonly key?: RecordKey;
  readonly fence?: Fence;
  readonly version?: number;
  readonly shard?: number;
}

/** Runs before a store call executes: the place to interleave a sibling's work. */
export type StoreHook = (call: StoreCall) => void | Promise<void>;

interface Failure {
  readonly error: () => Error;
  /** Apply the write, then throw (an ambiguous write: the SDK timed out after DynamoDB applied it). */
  readonly afterApplying: boolean;
}

function copySecret(secret: Secret): Secret {
  return new Secret(secret.reveal());
}

function copyTokens(tokens: StoredTokens | undefined): StoredTokens | undefined {
  if (!tokens) return undefined;
  return {
    accessToken: copySecret(tokens.accessToken),
    refreshToken: copySecret(tokens.refreshToken),
    ...(tokens.idToken ? { idToken: copySecret(tokens.idToken) } : {}),
    ...(tokens.sessionId ? { sessionId: copySecret(tokens.sessionId) } : {}),
  };
}

/** A deep copy: callers and the store never share an object. */
export function copyRecord(record: TokenRecord): TokenRecord {
  return {
    ...record,
    key: { ...record.key },
    tokens: copyTokens(record.tokens),
    lease: record.lease ? { ...record.lease } : undefined,
  };
}

/** What a Scan reads of a record: the schedule fields the adapter projects, nothing else. */
function scheduleOf(record: TokenRecord): RecordSchedule {
  return {
    key: { ...record.key },
    status: record.status,
    version: record.version,
    lease: record.lease ? { ...record.lease } : undefined,
    authenticatedAt: record.authenticatedAt,
    lastRotatedAt: record.lastRotatedAt,
    refreshExpiresAt: record.refreshExpiresAt,
    rotationDeadline: record.rotationDeadline,
    expiresAt: record.expiresAt,
    dueShard: record.dueShard,
    dueAt: record.dueAt,
    failures: record.failures,
    reauthSoonNotifiedAt: record.reauthSoonNotifiedAt,
    reauthReason: record.reauthReason,
    reauthAt: record.reauthAt,
  };
}

function storageKey(key: RecordKey): string {
  return `u#${key.userId}\u0000r#${key.resource}`;
}

/** Index order of the due index: dueAt, then the table key (a stable order for ties). */
function compareDue(a: { dueAt: number; id: string }, b: { dueAt: number; id: string }): number {
  if (a.dueAt !== b.dueAt) return a.dueAt - b.dueAt;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/**
 * TokenStore in memory with the semantics of DynamoDbTokenStore: whole-record puts fenced on the
 * version (and the lease when given; `version: undefined` = must not exist), a lease that needs the
 * same version, ACTIVE status and no live lease (`leaseUntil < now`), a sparse due index queried
 * with `dueAt <= now`, oldest first, with an exclusive-start-key cursor. Expired items are returned
 * (DynamoDB deletes late). `corrupt` is never stored by a put (the adapter derives it on read); use
 * `seed` to plant a record that reads back corrupt.
 */
export class InMemoryTokenStore implements TokenStore {
  /** Every call, in order. */
  readonly calls: StoreCall[] = [];
  private readonly items = new Map<string, TokenRecord>();
  private readonly failures = new Map<StoreMethod, Failure[]>();
  private readonly hooks = new Map<StoreMethod, StoreHook[]>();
  /** Shard counts registered by writes into the due index (the adapter's `ADD shardsUsed`). */
  private readonly shardsUsed = new Set<number>();
  /** As the adapter: counts below this were registered by this instance already. */
  private registeredShards = 0;
  /** The adapter's `corruptAt` attribute: set by markCorrupt, gone when a put replaces the record. */
  private readonly corruptMarks = new Map<string, number>();
  private sweepState: Omit<SweepState, 'shardsUsed'> = {
    indexedSettings: undefined,
    reindex: undefined,
    version: 0,
  };

  /** The next `times` calls of `method` throw (StoreUnavailableError unless told otherwise). */
  failNext(
    method: StoreMethod,
    times = 1,
    options: { error?: () => Error; afterApplying?: boolean } = {},
  ): void {
    const queue = this.failures.get(method) ?? [];
    for (let i = 0; i < times; i++) {
      queue.push({
        error: options.error ?? (() => new StoreUnavailableError('injected: the token table is unavailable')),
        afterApplying: options.afterApplying ?? false,
      });
    }
    this.failures.set(method, queue);
  }

  /** Runs `hook` before the next `times` calls of `method` (each call consumes one run). */
  beforeNext(method: StoreMethod, hook: StoreHook, times = 1): void {
    const queue = this.hooks.get(method) ?? [];
    for (let i = 0; i < times; i++) queue.push(hook);
    this.hooks.set(method, queue);
  }

  /** Writes a record as is, with no fence and no hooks (test setup; may carry `corrupt`). */
  seed(record: TokenRecord): void {
    this.items.set(storageKey(record.key), copyRecord(record));
  }

  /** The stored record, without a call being recorded or hooks run. */
  peek(key: RecordKey): TokenRecord | undefined {
    const record = this.items.get(storageKey(key));
    return record ? copyRecord(record) : undefined;
  }

  /** Changes a stored record in place, with no fence (a sibling's write in an interleaving). */
  update(key: RecordKey, change: (record: TokenRecord) => TokenRecord): void {
    const record = this.items.get(storageKey(key));
    if (!record) throw new Error('no such record');
    this.items.set(storageKey(key), copyRecord(change(copyRecord(record))));
  }

  /** How many calls of `method` were made. */
  count(method: StoreMethod): number {
    return this.calls.filter((call) => call.method === method).length;
  }

  async get(key: RecordKey): Promise<TokenRecord | undefined> {
    await this.enter({ method: 'get', key: { ...key } });
    const record = this.items.get(storageKey(key));
    return record ? copyRecord(record) : undefined;
  }

  /** Counted, hooked and failed as a `get` (it is the same read, with a projection). */
  async currentVersion(key: RecordKey): Promise<number | undefined> {
    await this.enter({ method: 'get', key: { ...key } });
    return this.items.get(storageKey(key))?.version;
  }

  async readSchedule(key: RecordKey): Promise<RecordView | undefined> {
    await this.enter({ method: 'readSchedule', key: { ...key } });
    const id = storageKey(key);
    const record = this.items.get(id);
    return record ? { ...scheduleOf(record), corruptAt: this.corruptMarks.get(id) } : undefined;
  }

  async markCorrupt(key: RecordKey, version: number, nowSeconds: number): Promise<WriteOutcome> {
    const failure = await this.enter({ method: 'markCorrupt', key: { ...key }, version }, true);
    const id = storageKey(key);
    const current = this.items.get(id);
    const holds = current !== undefined && current.version === version;
    if (holds) {
      const { dueShard: _shard, dueAt: _due, ...rest } = current;
      this.items.set(id, { ...rest, version: version + 1, dueShard: undefined, dueAt: undefined });
      this.corruptMarks.set(id, nowSeconds);
    }
    if (failure) throw failure.error();
    return holds ? 'ok' : 'conflict';
  }

  async put(record: TokenRecord, fence: Fence): Promise<WriteOutcome> {
    const failure = await this.enter({ method: 'put', key: { ...record.key }, fence: { ...fence } }, true);
    const id = storageKey(record.key);
    const current = this.items.get(id);
    let holds: boolean;
    if (fence.version === undefined) {
      holds = current === undefined;
    } else {
      holds =
        current !== undefined &&
        current.version === fence.version &&
        (fence.leaseId === undefined || current.lease?.id === fence.leaseId) &&
        (fence.noLiveLeaseAtMs === undefined ||
          current.lease === undefined ||
          current.lease.untilMs < fence.noLiveLeaseAtMs);
    }
    // As the adapter: the shard is registered before the conditional write, whatever its outcome.
    this.registerShard(record.dueShard);
    if (holds) {
      const { corrupt: _derivedOnRead, ...stored } = copyRecord(record);
      this.items.set(id, stored);
      this.corruptMarks.delete(id);
    }
    if (failure) throw failure.error();
    return holds ? 'ok' : 'conflict';
  }

  async acquireLease(
    key: RecordKey,
    version: number,
    leaseId: string,
    untilMs: number,
    nowMs: number,
  ): Promise<WriteOutcome> {
    const failure = await this.enter({ method: 'acquireLease', key: { ...key }, version }, true);
    const id = storageKey(key);
    const current = this.items.get(id);
    const holds =
      current !== undefined &&
      current.version === version &&
      current.status === 'ACTIVE' &&
      (current.lease === undefined || current.lease.untilMs < nowMs || current.lease.id === leaseId);
    if (holds) this.items.set(id, { ...current, lease: { id: leaseId, untilMs } });
    if (failure) throw failure.error();
    return holds ? 'ok' : 'conflict';
  }

  /** The rejection breaker's state and window counts (see RejectionBreaker). */
  breaker: BreakerState = { openedAt: undefined, trustUntil: undefined };
  readonly rejectionWindows = new Map<number, number>();

  async countRejection(windowStart: number, _expiresAt: number): Promise<number> {
    const failure = await this.enter({ method: 'countRejection' }, true);
    if (failure) throw failure.error();
    const count = (this.rejectionWindows.get(windowStart) ?? 0) + 1;
    this.rejectionWindows.set(windowStart, count);
    return count;
  }

  async getBreaker(): Promise<BreakerState> {
    const failure = await this.enter({ method: 'getBreaker' }, true);
    if (failure) throw failure.error();
    return { ...this.breaker };
  }

  async openBreaker(openedAt: number): Promise<WriteOutcome> {
    await this.enter({ method: 'openBreaker' });
    if (this.breaker.openedAt !== undefined) return 'conflict';
    this.breaker = { openedAt, trustUntil: undefined };
    return 'ok';
  }

  async closeBreaker(trustUntil: number): Promise<void> {
    await this.enter({ method: 'closeBreaker' });
    this.breaker = { openedAt: undefined, trustUntil };
  }

  async delete(key: RecordKey, fence?: { readonly version: number }): Promise<WriteOutcome> {
    const failure = await this.enter(
      { method: 'delete', key: { ...key }, ...(fence ? { fence: { version: fence.version } } : {}) },
      true,
    );
    const current = this.items.get(storageKey(key));
    const holds = fence === undefined || (current !== undefined && current.version === fence.version);
    if (holds) {
      this.items.delete(storageKey(key));
      this.corruptMarks.delete(storageKey(key));
    }
    if (failure) throw failure.error();
    return holds ? 'ok' : 'conflict';
  }

  async readSweepState(): Promise<SweepState> {
    await this.enter({ method: 'readSweepState' });
    return {
      ...structuredClone(this.sweepState),
      shardsUsed: [...this.shardsUsed].sort((a, b) => a - b),
    };
  }

  async writeSweepState(state: SweepStateChange, version: number): Promise<WriteOutcome> {
    const failure = await this.enter({ method: 'writeSweepState', version }, true);
    const holds = this.sweepState.version === version;
    if (holds) {
      this.sweepState = {
        indexedSettings: state.indexedSettings,
        reindex: state.reindex ? { ...state.reindex } : undefined,
        version: version + 1,
      };
    }
    if (failure) throw failure.error();
    return holds ? 'ok' : 'conflict';
  }

  /** Pages in table-key order; the cursor is the last key read, as DynamoDB's is. */
  async scanRecords(
    filter: RecordFilter,
    limit: number,
    cursor?: string,
  ): Promise<{ records: RecordSchedule[]; cursor: string | undefined }> {
    await this.enter({ method: 'scanRecords' });
    const ids = [...this.items.keys()].sort().filter((id) => cursor === undefined || id > cursor);
    const page = ids.slice(0, limit);
    const records: RecordSchedule[] = [];
    for (const id of page) {
      const record = this.items.get(id)!;
      if (record.status !== filter.status) continue;
      if (
        filter.status === 'REAUTH_REQUIRED' &&
        (record.reauthAt === undefined ||
          record.reauthAt < filter.reauthFrom ||
          record.reauthAt > filter.reauthTo)
      ) {
        continue;
      }
      records.push(scheduleOf(record));
    }
    return { records, cursor: page.length === limit ? page.at(-1) : undefined };
  }

  async reschedule(key: RecordKey, fence: Fence, change: ScheduleChange): Promise<WriteOutcome> {
    const failure = await this.enter({ method: 'reschedule', key: { ...key }, fence: { ...fence } }, true);
    const id = storageKey(key);
    const current = this.items.get(id);
    const holds =
      current !== undefined &&
      current.status === 'ACTIVE' &&
      current.version === fence.version &&
      (fence.leaseId === undefined || current.lease?.id === fence.leaseId) &&
      (fence.noLiveLeaseAtMs === undefined ||
        current.lease === undefined ||
        current.lease.untilMs < fence.noLiveLeaseAtMs);
    this.registerShard(change.dueShard);
    if (holds) {
      this.items.set(id, { ...current, ...change });
    }
    if (failure) throw failure.error();
    return holds ? 'ok' : 'conflict';
  }

  async queryDue(
    shard: number,
    nowSeconds: number,
    limit: number,
    cursor?: string,
  ): Promise<{ entries: DueEntry[]; cursor: string | undefined }> {
    await this.enter({ method: 'queryDue', shard });
    const start = cursor === undefined ? undefined : (JSON.parse(cursor) as { dueAt: number; id: string });
    const matching = [...this.items.entries()]
      .filter(
        ([, record]) => record.dueShard === shard && record.dueAt !== undefined && record.dueAt <= nowSeconds,
      )
      .map(([id, record]) => ({ id, dueAt: record.dueAt as number, key: { ...record.key } }))
      .sort(compareDue)
      .filter((entry) => start === undefined || compareDue(entry, start) > 0);
    const page = matching.slice(0, limit);
    const last = page.at(-1);
    // DynamoDB returns LastEvaluatedKey whenever it stopped at Limit, even when nothing follows.
    const next =
      page.length === limit && last ? JSON.stringify({ dueAt: last.dueAt, id: last.id }) : undefined;
    return { entries: page.map(({ key, dueAt }) => ({ key, dueAt })), cursor: next };
  }

  /** The adapter's registration: once per instance and count, below which every shard may hold records. */
  private registerShard(shard: number | undefined): void {
    if (shard === undefined || shard < this.registeredShards) return;
    this.shardsUsed.add(shard + 1);
    this.registeredShards = shard + 1;
  }

  /** Records the call, runs its hook, and throws or returns the injected failure. */
  private async enter(call: StoreCall, deferFailure = false): Promise<Failure | undefined> {
    this.calls.push(call);
    const hook = this.hooks.get(call.method)?.shift();
    if (hook) await hook(call);
    const failure = this.failures.get(call.method)?.shift();
    if (!failure) return undefined;
    if (deferFailure && failure.afterApplying) return failure;
    throw failure.error();
  }
}

// ---------------------------------------------------------------------------------------------
// Identity provider

/** One scripted answer: a token set, an error to throw, or a function of the presented token. */
export type IdpResponse =
  | RefreshAnswer
  | Error
  | ((refreshToken: Secret) => RefreshAnswer | Error | Promise<RefreshAnswer | Error>);

/** A token set whose values carry `label` (`at-<label>`, `rt-<label>`, `id-<label>`). */
export function tokenSet(label: string, expiresIn = 3600): TokenSet {
  return {
    accessToken: new Secret(`at-${label}`),
    refreshToken: new Secret(`rt-${label}`),
    idToken: new Secret(`id-${label}`),
    tokenType: 'Bearer',
    expiresIn,
  };
}

/**
 * An IdP that answers from a queue. It records each refresh token presented (fingerprint and raw
 * value), counts calls in flight, can hold calls at a gate, and can take simulated time. It is as
 * strict as docs/architecture.md assumes (unless `strict: false`): a refresh token is good for one successful
 * refresh, and presenting a consumed one revokes its whole family (it and every token issued from
 * it answer `invalid_grant`), without using up a scripted answer. An unexpected call (empty queue,
 * no fallback) throws a plain Error, which the core treats as transient and a test sees as a call.
 */
export class ScriptedIdentityProvider implements IdentityProvider {
  /** Raw values of the refresh tokens presented, in call order. */
  readonly presented: string[] = [];
  /** Fingerprints of the refresh tokens presented, in call order. */
  readonly fingerprints: string[] = [];
  /** The timeout each call was given. */
  readonly timeouts: number[] = [];
  /** The fake time each call started at (when built with a clock). */
  readonly startedAtMs: number[] = [];
  /** Raw values of consumed refresh tokens that were presented again. */
  readonly reused: string[] = [];
  inFlight = 0;
  maxInFlight = 0;
  private readonly queue: IdpResponse[] = [];
  private fallback: IdpResponse | undefined;
  private gate: Promise<void> | undefined;
  private counter = 0;
  private readonly consumed = new Set<string>();
  private readonly familyOf = new Map<string, number>();
  private readonly revoked = new Set<number>();
  private families = 0;

  constructor(
    private readonly options: {
      /** Stamps each call's start with this clock; the call takes `latencyMs` of its virtual time. */
      readonly clock?: FakeClock;
      /** @default 0 */
      readonly latencyMs?: number;
      /** Single-use refresh tokens with reuse detection. @default true */
      readonly strict?: boolean;
    } = {},
  ) {}

  /** Number of refresh calls made. */
  get calls(): number {
    return this.presented.length;
  }

  /** Queues answers for the next calls, in order. */
  enqueue(...responses: IdpResponse[]): this {
    this.queue.push(...responses);
    return this;
  }

  /** Answers every call the queue does not cover with a fresh token set (`at-auto-N`, `rt-auto-N`). */
  rotateForever(expiresIn = 3600): this {
    this.fallback = () => tokenSet(`auto-${++this.counter}`, expiresIn);
    return this;
  }

  /** Holds every call until the returned function is called. */
  hold(): () => void {
    let release!: () => void;
    this.gate = new Promise((resolve) => {
      release = resolve;
    });
    return () => {
      this.gate = undefined;
      release();
    };
  }

  async refresh(refreshToken: Secret, options: { timeoutMs: number }): Promise<RefreshAnswer> {
    const value = refreshToken.reveal();
    this.presented.push(value);
    this.fingerprints.push(refreshToken.fingerprint());
    this.timeouts.push(options.timeoutMs);
    if (this.options.clock) this.startedAtMs.push(this.options.clock.nowMs());
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      const family = this.family(value);
      const strict = this.options.strict ?? true;
      const reuse = strict && this.consumed.has(value);
      if (reuse) {
        this.reused.push(value);
        this.revoked.add(family);
      }
      const rejected = strict && this.revoked.has(family);
      const response = rejected ? undefined : (this.queue.shift() ?? this.fallback);
      // A real call never answers synchronously: let other work interleave.
      await tick();
      if (this.gate) await this.gate;
      if (this.options.clock && this.options.latencyMs)
        await this.options.clock.sleep(this.options.latencyMs);
      if (rejected) {
        throw new IdpPermanentError(
          reuse ? 'refresh token reused' : 'refresh token revoked',
          400,
          'invalid_grant',
        );
      }
      if (response === undefined) throw new Error('unexpected IdP call: nothing scripted');
      const answer = typeof response === 'function' ? await response(refreshToken) : response;
      if (answer instanceof Error) throw answer;
      // A 200 without a refresh token leaves the presented one in use (a non-rotating server).
      if (answer.refreshToken) {
        this.consumed.add(value);
        this.familyOf.set(answer.refreshToken.reveal(), family);
      }
      return answer;
    } finally {
      this.inFlight--;
    }
  }

  private family(refreshToken: string): number {
    let family = this.familyOf.get(refreshToken);
    if (family === undefined) {
      family = ++this.families;
      this.familyOf.set(refreshToken, family);
    }
    return family;
  }
}

// ---------------------------------------------------------------------------------------------
// Deps

/** A small seeded generator (mulberry32): deterministic, yet not a constant. */
export function seededRandom(seed = 42): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** The default lifetimes of the tests: 14 d refresh TTL, 365 d rotation, 3 d ahead. */
export const TEST_LIFETIMES: LifetimePolicy = {
  refreshTokenTtlSeconds: 14 * DAY,
  maxRotationSeconds: 365 * DAY,
  refreshAheadSeconds: 3 * DAY,
};

/** The default settings of the tests. */
export const TEST_SETTINGS: Omit<RotationSettings, 'lifetimesFor'> = {
  idpTimeoutMs: 5000,
  leaseMs: 30_000,
  commitReserveMs: 10_000,
  rejectionBreaker: { threshold: 10, windowSeconds: 600 },
  defaultAccessTokenSeconds: 3600,
  dueShards: 4,
  retryBaseSeconds: 30,
  retryCapSeconds: 900,
  reauthRetentionSeconds: 30 * DAY,
  // Off unless a test is about the notice: it would otherwise move dueAt of records near their deadline.
  reauthSoonSeconds: 0,
};

/** RotationDeps whose parts are the fakes, typed as such for assertions. */
export interface TestDeps extends RotationDeps {
  readonly store: InMemoryTokenStore;
  readonly idp: ScriptedIdentityProvider;
  readonly clock: FakeClock;
  readonly metrics: InMemoryMetrics;
  readonly logger: MemoryLogger;
  readonly events: RecordingEventPublisher;
  /** Every delay asked of `sleep`, in milliseconds. */
  readonly sleeps: number[];
}

/** What a test may replace in {@link makeDeps}. */
export interface DepsOverrides {
  readonly clock?: FakeClock;
  readonly store?: InMemoryTokenStore;
  readonly idp?: ScriptedIdentityProvider;
  readonly random?: () => number;
  readonly newLeaseId?: () => string;
  readonly settings?: Partial<Omit<RotationSettings, 'lifetimesFor'>>;
  /** Lifetimes for every resource not named in `resourceLifetimes`. */
  readonly lifetimes?: Partial<LifetimePolicy>;
  readonly resourceLifetimes?: Readonly<Record<string, Partial<LifetimePolicy>>>;
}

/** Deps for the core with fakes everywhere: sleep waits in the fake clock's virtual time, never in real time. */
export function makeDeps(overrides: DepsOverrides = {}): TestDeps {
  const clock = overrides.clock ?? new FakeClock();
  const logger = new MemoryLogger();
  const sleeps: number[] = [];
  let leases = 0;
  const lifetimes = { ...TEST_LIFETIMES, ...overrides.lifetimes };
  const perResource = overrides.resourceLifetimes ?? {};
  return {
    store: overrides.store ?? new InMemoryTokenStore(),
    idp: overrides.idp ?? new ScriptedIdentityProvider({ clock }),
    clock,
    metrics: new InMemoryMetrics(),
    logger,
    events: new RecordingEventPublisher(logger),
    random: overrides.random ?? seededRandom(),
    newLeaseId: overrides.newLeaseId ?? (() => `lease-${++leases}`),
    sleep: (ms: number) => {
      sleeps.push(ms);
      return clock.sleep(ms);
    },
    sleeps,
    settings: {
      ...TEST_SETTINGS,
      ...overrides.settings,
      lifetimesFor: (resource: string): LifetimePolicy => ({
        ...lifetimes,
        ...(Object.hasOwn(perResource, resource) ? perResource[resource] : {}),
      }),
    },
  };
}

/** The key the tests use unless they need several. */
export const KEY: RecordKey = { userId: 'user-1', resource: DEFAULT_RESOURCE };

/**
 * A healthy ACTIVE record as the service would have written it at `nowSeconds` (version 1, signed
 * in 10 days ago, refresh token `rt-0` expiring in 4 days, access token `at-0` valid 30 minutes),
 * with `overrides` applied.
 */
export function activeRecord(nowSeconds: number, overrides: Partial<TokenRecord> = {}): TokenRecord {
  const authenticatedAt = nowSeconds - 10 * DAY;
  const refreshExpiresAt = nowSeconds + 4 * DAY;
  const key = overrides.key ?? KEY;
  return {
    key,
    status: 'ACTIVE',
    tokens: {
      accessToken: new Secret('at-0'),
      refreshToken: new Secret('rt-0'),
      idToken: new Secret('id-0'),
      sessionId: new Secret('sess-0'),
    },
    tokenType: 'Bearer',
    accessExpiresAt: nowSeconds + 1800,
    refreshExpiresAt,
    expiresAt: refreshExpiresAt,
    authenticatedAt,
    rotationDeadline: authenticatedAt + 365 * DAY,
    version: 1,
    lease: undefined,
    dueShard: shardOf(key, TEST_SETTINGS.dueShards),
    dueAt: refreshExpiresAt - 3 * DAY,
    failures: 0,
    lastError: undefined,
    lastRotatedAt: undefined,
    rotations: 0,
    reauthReason: undefined,
    reauthSoonNotifiedAt: undefined,
    ...overrides,
  };
}
