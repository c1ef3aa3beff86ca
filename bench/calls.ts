import { type AttributeValue, type DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import type { Runtime } from '../functions/adapters/runtime';
import { shardOf } from '../functions/core/lifetimes';
import type { Budget } from '../functions/core/rotation';
import type { SweepSummary } from '../functions/core/sweep';
import { InMemoryMetrics, RecordingEventPublisher } from '../test/support/observability';
import { breakdown, type CallBreakdown, DUE_SHARDS, type ServiceInstance, serviceInstance } from './instance';
import { COUNTED, type Counts, countsSince, perOperation, silentLogger, Tally } from './instrument';
import { type BenchEnvironment, tokenSet, withBenchTable } from './seed';

const DAY_MS = 86_400_000;
/** Reads every sweep makes once: the rejection breaker's state and the sweep state. */
const SWEEP_STATE_READS = 2;

/** Due entries read per Query page: the sweep's default. */
const PAGE_SIZE = 100;
const ample: Budget = { remainingMs: () => 250_000 };

/** How much work the calls section does. */
export interface CallsProfile {
  /** Users stored, read warm, refreshed and swept. */
  readonly users: number;
  /** Warm reads per user. */
  readonly warmRounds: number;
  /** Concurrent getAccessToken callers on one expired token. */
  readonly burst: number;
}

/** One operation's calls, per operation, against the minimum. */
export interface OperationCalls {
  readonly operation: string;
  readonly ops: number;
  /** Mean calls per operation, by service (steady state: one-time calls of a fresh instance excluded). */
  readonly perOp: CallBreakdown;
  readonly minimum: number;
  /** perOp.total / minimum: the target is 1.0. */
  readonly ratio: number;
  /** What the minimum is made of. */
  readonly minimumIs: string;
  readonly readUnits: number;
  readonly writeUnitsTable: number;
  readonly writeUnitsIndex: number;
}

/** Calls a fresh instance makes once (caches filling), beyond its steady state. */
export interface OneTimeCalls {
  readonly when: string;
  readonly calls: Counts;
}

/** What the sweep read, against what was due. */
export interface SweepReads {
  readonly due: number;
  readonly notDue: number;
  readonly summary: SweepSummary;
  readonly queryRequests: number;
  readonly minimumQueryRequests: number;
  /** Index entries returned per due record (target 1.0: nothing that is not due is read). */
  readonly indexEntriesPerDue: number;
  /** Records read with GetItem per due record (target 1.0). */
  readonly recordsReadPerDue: number;
  readonly scans: number;
}

/** The result of the calls section. */
export interface CallsResult {
  readonly operations: OperationCalls[];
  readonly oneTime: OneTimeCalls[];
  readonly sweep: SweepReads;
  /** IdP refresh calls for `burst` concurrent callers of one expired token (minimum 1). */
  readonly burst: { readonly callers: number; readonly idpRefreshes: number; readonly servedSame: boolean };
  readonly reuseDetections: number;
  readonly meanItemBytes: number;
  /** Of which the sealed token set (the encrypted access, refresh and ID tokens and session id). */
  readonly sealedBytes: number;
}

/**
 * Section 1: counts every AWS and IdP call of each operation on separate "instances" (one per
 * function, as deployed), in steady state, with the one-time calls of a fresh instance apart.
 */
export function measureCalls(dynamoEndpoint: string, profile: CallsProfile): Promise<CallsResult> {
  return withBenchTable(dynamoEndpoint, 'calls', (environment) => countCalls(environment, profile));
}

/** The operation whose name starts with `prefix`. */
export function operation(calls: CallsResult, prefix: string): OperationCalls | undefined {
  return calls.operations.find((o) => o.operation.startsWith(prefix));
}

async function countCalls(
  { admin, clock, transmit, target }: BenchEnvironment,
  profile: CallsProfile,
): Promise<CallsResult> {
  const instances: ServiceInstance[] = [];
  const instance = (tally: Tally): Runtime => {
    const made = serviceInstance({
      target,
      clock,
      tally,
      capacity: true,
      overrides: {
        logger: silentLogger,
        metrics: new InMemoryMetrics(),
        events: new RecordingEventPublisher(silentLogger),
      },
    });
    instances.push(made);
    return made.runtime;
  };
  try {
    const users = Array.from({ length: profile.users }, (_, n) => `calls-user-${n}`);
    const burstUser = 'calls-burst';
    const storeTally = new Tally();
    const getTally = new Tally();
    const sweepTally = new Tally();
    const storeFn = instance(storeTally);
    const getFn = instance(getTally);
    const operations: OperationCalls[] = [];
    const oneTime: OneTimeCalls[] = [];

    const store = async (userId: string) =>
      storeFn.tokenService.storeTokens({
        key: { userId, resource: 'default' },
        authenticatedAt: undefined,
        tokens: tokenSet(await transmit.signIn(userId)),
      });
    const get = (userId: string) =>
      getFn.tokenService.getAccessToken(
        { key: { userId, resource: 'default' }, minValiditySeconds: 60 },
        ample,
      );

    // storeTokens: one read (the version fence) and one conditional write.
    const stored = await phase(storeTally, [...users, burstUser], store);
    operations.push(row('storeTokens', stored, 2, '1 read (version fence) + 1 conditional write'));
    oneTime.push({ when: 'first storeTokens of an instance', calls: stored.firstExtra });

    // getAccessToken with a valid stored token: one read, nothing else.
    const rounds = Array.from({ length: profile.warmRounds }, () => users).flat();
    const warm = await phase(getTally, rounds, async (userId) => {
      const served = await get(userId);
      if (served.source !== 'cached') throw new Error(`warm read was served ${served.source}`);
    });
    operations.push(row('getAccessToken, valid token stored', warm, 1, '1 read'));
    oneTime.push({
      when: 'first getAccessToken of an instance (per data key not yet seen)',
      calls: warm.firstExtra,
    });

    // getAccessToken when the access token is about to expire: read, lease, one IdP call, commit.
    clock.jumpTo(clock.nowMs() + 3_600_000 - 30_000);
    const refreshed = await phase(getTally, users, async (userId) => {
      const served = await get(userId);
      if (served.source !== 'refreshed') throw new Error(`refresh was served ${served.source}`);
    });
    operations.push(
      row('getAccessToken, refresh on demand', refreshed, 4, '1 read + lease + 1 IdP refresh + commit'),
    );
    oneTime.push({
      when: 'first refresh of an instance (secret, client token, data key)',
      calls: refreshed.firstExtra,
    });

    // N concurrent callers of one expired token: one IdP call, the others wait for its commit.
    transmit.faults.latencyMs = 50;
    const before = getTally.get(COUNTED.idpRefresh);
    const served = await Promise.all(Array.from({ length: profile.burst }, () => get(burstUser)));
    transmit.faults.latencyMs = 0;
    const burst = {
      callers: profile.burst,
      idpRefreshes: getTally.get(COUNTED.idpRefresh) - before,
      servedSame: new Set(served.map((s) => s.accessToken.reveal())).size === 1,
    };

    // The sweep: every record above is due 11 days later; records stored 5 days later are not.
    const dueBy = clock.nowMs() + 11 * DAY_MS + 60_000;
    clock.jumpTo(clock.nowMs() + 5 * DAY_MS);
    const later = Array.from({ length: Math.ceil(profile.users / 2) }, (_, n) => `calls-later-${n}`);
    for (const userId of later) await store(userId);
    clock.jumpTo(dueBy);
    const due = [...users, burstUser];
    const sweepFn = instance(sweepTally);
    const sweepBefore = sweepTally.snapshot();
    const summary = await sweepFn.sweep.run(ample);
    const sweepCalls = countsSince(sweepTally.snapshot(), sweepBefore);
    const perShard = new Array<number>(DUE_SHARDS).fill(0);
    for (const userId of due) perShard[shardOf({ userId, resource: 'default' }, DUE_SHARDS)]!++;
    const minimumQueryRequests = perShard.reduce((sum, n) => sum + Math.floor(n / PAGE_SIZE) + 1, 0);
    const sweep = sweepRow(sweepCalls, due.length, minimumQueryRequests);
    operations.push(sweep.row);
    oneTime.push({
      when: 'one sweep invocation (secret, client token, data keys)',
      calls: excess(sweepCalls, sweep.steady),
    });

    return {
      operations,
      oneTime,
      sweep: {
        due: due.length,
        notDue: later.length,
        summary,
        queryRequests: sweepCalls[COUNTED.dynamo('Query')] ?? 0,
        minimumQueryRequests,
        indexEntriesPerDue: (sweepCalls[COUNTED.queryItems] ?? 0) / due.length,
        // The breaker's state and the sweep state are read once per sweep, not per record.
        recordsReadPerDue: ((sweepCalls[COUNTED.dynamo('GetItem')] ?? 0) - SWEEP_STATE_READS) / due.length,
        scans: sweepCalls[COUNTED.dynamo('Scan')] ?? 0,
      },
      burst,
      reuseDetections: transmit.reuseDetections,
      ...(await measureItemBytes(admin, target.tableName, users[0]!)),
    };
  } finally {
    for (const made of instances) made.close();
  }
}

interface Phase {
  readonly ops: number;
  /** Counts of operations 2..n. */
  readonly steady: Counts;
  /** Calls of the first operation beyond a steady one. */
  readonly firstExtra: Counts;
}

/** Runs `op` for each input in sequence; separates the first operation (cold caches) from the rest. */
async function phase<T>(
  tally: Tally,
  inputs: readonly T[],
  op: (input: T) => Promise<unknown>,
): Promise<Phase> {
  const start = tally.snapshot();
  await op(inputs[0]!);
  const afterFirst = tally.snapshot();
  for (const input of inputs.slice(1)) await op(input);
  const steady = countsSince(tally.snapshot(), afterFirst);
  const first = countsSince(afterFirst, start);
  const perOp = perOperation(steady, inputs.length - 1);
  return { ops: inputs.length - 1, steady, firstExtra: excess(first, perOp) };
}

function row(operation: string, measured: Phase, minimum: number, minimumIs: string): OperationCalls {
  const perOpCounts = perOperation(measured.steady, measured.ops);
  const perOp = breakdown(perOpCounts);
  return {
    operation,
    ops: measured.ops,
    perOp,
    minimum,
    minimumIs,
    ratio: perOp.total / minimum,
    readUnits: perOpCounts[COUNTED.readUnits] ?? 0,
    writeUnitsTable: perOpCounts[COUNTED.writeUnitsTable] ?? 0,
    writeUnitsIndex: perOpCounts[COUNTED.writeUnitsIndex] ?? 0,
  };
}

/**
 * The sweep per due record. One-time calls of the invocation (secret, client token, data keys)
 * are left out of the steady state; the Query requests are spread over the due records.
 */
function sweepRow(
  calls: Counts,
  due: number,
  minimumQueryRequests: number,
): { row: OperationCalls; steady: Counts } {
  const perItem = [
    COUNTED.dynamo('GetItem'),
    COUNTED.dynamo('UpdateItem'),
    COUNTED.dynamo('PutItem'),
    COUNTED.dynamo('Query'),
    COUNTED.dynamo('Scan'),
    COUNTED.idpRefresh,
    COUNTED.readUnits,
    COUNTED.writeUnitsTable,
    COUNTED.writeUnitsIndex,
  ];
  const steady = Object.fromEntries(perItem.map((name) => [name, calls[name] ?? 0]));
  // Each due record is leased once here (no contention): UpdateItem calls beyond that are the
  // sweep's bookkeeping, written once per instance or settings change (the due shards in use, the
  // settings the records are indexed under), so they are one-time calls, not per record.
  const updates = COUNTED.dynamo('UpdateItem');
  steady[updates] = Math.min(steady[updates] ?? 0, due);
  const measured: Phase = { ops: due, steady, firstExtra: {} };
  // Per invocation, two reads: the rejection breaker's state and the sweep state.
  const minimum = 4 + (minimumQueryRequests + SWEEP_STATE_READS) / due;
  return {
    steady,
    row: row(
      'refreshSweep, per due record',
      measured,
      minimum,
      `1 read + lease + 1 IdP refresh + commit, + ${minimumQueryRequests} Query pages and ${SWEEP_STATE_READS} state reads (breaker, sweep state) over ${due} due`,
    ),
  };
}

/** What `first` made beyond `perOp`, for the call counters only (not capacity units). */
function excess(first: Counts, perOp: Counts): Counts {
  const result: Record<string, number> = {};
  for (const [name, value] of Object.entries(first)) {
    if (name.includes('request units') || name.endsWith('(total)') || name === COUNTED.queryItems) continue;
    const extra = Math.round(value - (perOp[name] ?? 0));
    if (extra > 0) result[name] = extra;
  }
  return result;
}

/** Size of a rotated record as stored (the adapter's key format: `u#<user>`, `r#<resource>`). */
async function measureItemBytes(
  client: DynamoDBClient,
  tableName: string,
  userId: string,
): Promise<{ meanItemBytes: number; sealedBytes: number }> {
  const result = await client.send(
    new GetItemCommand({ TableName: tableName, Key: { pk: { S: `u#${userId}` }, sk: { S: 'r#default' } } }),
  );
  return {
    meanItemBytes: result.Item ? itemBytes(result.Item) : 0,
    sealedBytes: Buffer.byteLength(result.Item?.sealed?.S ?? ''),
  };
}

/** Item size as DynamoDB bills it: attribute names plus values (numbers approximated). */
function itemBytes(item: Record<string, AttributeValue>): number {
  let size = 0;
  for (const [name, value] of Object.entries(item)) {
    size += Buffer.byteLength(name);
    if (value.S !== undefined) size += Buffer.byteLength(value.S);
    else if (value.N !== undefined) size += Math.ceil(value.N.replace(/^-|\.|^0+/g, '').length / 2) + 1;
    else size += 1;
  }
  return size;
}
