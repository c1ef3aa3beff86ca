import { dirname, join } from 'node:path';
import { QueryCommand } from '@aws-sdk/client-dynamodb';
import { TOKEN_TABLE } from '../functions/adapters/dynamodb/table-schema';
import { nextLink } from '../functions/handlers/refresh-sweep';
import { runChild } from './bundle';
import type { BareRotationParams } from './children/bare-rotations';
import type { SweepChildResult, SweepParams } from './children/sweep-child';
import { type CpuShare, summarizeProfile } from './cpu-profile';
import { breakdown, type CallBreakdown, DUE_SHARDS, EMULATOR_CLIENT } from './instance';
import { COUNTED, type Counts, LOCAL_AWS, perOperation } from './instrument';
import { findDynamoDbLocalPid, machineCpuMs, processCpuMs } from './machine';
import { type BenchEnvironment, seedRecords, withBenchTable } from './seed';

/** The highest IDP_RATE_LIMIT_RPS the configuration accepts: no pacing in practice. */
export const NO_RATE_LIMIT = 10_000;
/** The stack's sweep timeout. */
const SWEEP_TIMEOUT_SECONDS = 300;
/** Added to `caseSeconds` for a case's timeout: about what the sweep keeps in reserve at the end. */
const CASE_RESERVE_SECONDS = 15;

/** One measured sweep invocation: IdP latency and concurrency. */
export interface SweepCase {
  readonly latencyMs: number;
  readonly concurrency: number;
  /**
   * IDP_RATE_LIMIT_RPS of the sweep. The stack's default (20/s) would pace every case; the cases
   * measure the engine, so they set the highest value unless they name one.
   * @default 10_000
   */
  readonly idpRateLimit?: number;
  /** Take a CPU profile of this case's sweep (costs a little CPU). @default false */
  readonly profileCpu?: boolean;
}

/** The sweep section's settings. */
export interface SweepProfile {
  /** Records due when the first case starts; more are added when the backlog runs low. */
  readonly dueRecords: number;
  /**
   * Time-boxes each case: its invocation's timeout is this plus 15 s. Without it, each case has
   * the stack's 300 s and rotates everything that is due.
   */
  readonly caseSeconds?: number;
  /** Due entries per Query page and shard. */
  readonly pageSize: number;
  /**
   * Bare rotations after each case, in the same process at the same concurrency: the baseline of
   * the CPU per rotation. @default 0 (none)
   */
  readonly baselineRotations?: number;
  readonly cases: readonly SweepCase[];
  /**
   * A chain of sweeps, time-compressed (each link with the timeout of the cases): as the handler
   * decides (`nextLink`), the next link starts while a backlog remains, up to `links` in a row;
   * each link is a fresh process, as a new invocation.
   */
  readonly chain?: {
    readonly links: number;
    readonly latencyMs: number;
    readonly concurrency: number;
    readonly idpRateLimit: number;
  };
}

/** The chain of sweeps: rotations per hour against the configured IdP rate limit, and the duty cycle. */
export interface ChainResult {
  readonly links: number;
  readonly latencyMs: number;
  readonly concurrency: number;
  readonly idpRateLimit: number;
  readonly rotated: number;
  /** From the first link's start to the last link's end, process starts and gaps included (s). */
  readonly wallSeconds: number;
  /** Time the links spent in the sweep itself (s). */
  readonly sweepingSeconds: number;
  readonly rotationsPerHour: number;
  /** rotationsPerHour / (idpRateLimit x 3600) (target at least 0.9). */
  readonly fractionOfRateLimit: number;
  /** sweepingSeconds / wallSeconds. */
  readonly dutyCycle: number;
  readonly backlogAtEnd: number;
  readonly problems: readonly string[];
}

/** The result of one sweep case. */
export interface SweepCaseResult extends SweepCase {
  readonly idpRateLimit: number;
  /** Records due when the invocation started. */
  readonly due: number;
  readonly rotated: number;
  readonly failed: number;
  readonly backlog: number;
  readonly wallSeconds: number;
  readonly rotationsPerSecond: number;
  /** min(concurrency / latency, rate limit) in rotations/s; Infinity at 0 ms without a limit. */
  readonly idealPerSecond: number;
  /** rotationsPerSecond / idealPerSecond (target at least 0.9). */
  readonly fraction: number;
  readonly serviceCpuMsPerRotation: number;
  /** Service CPU per rotation once the instance is warm (its first rotations left out). */
  readonly steadyCpuMsPerRotation: number | undefined;
  /** CPU of the same four requests through bare clients, per rotation (same process, same concurrency, warm). */
  readonly baselineCpuMsPerRotation: number | undefined;
  /** steadyCpuMsPerRotation / baselineCpuMsPerRotation (target at most 1.3). */
  readonly cpuRatio: number | undefined;
  readonly dynamoCpuMsPerRotation: number | undefined;
  readonly emulatorCpuMsPerRotation: number;
  /** Share of the machine's CPU that was busy (all processes, ours and others). */
  readonly machineBusyPercent: number | undefined;
  /** Share of the machine's CPU that our three processes used. */
  readonly oursBusyPercent: number | undefined;
  readonly peakRssMb: number;
  readonly rssStartMb: number;
  readonly idpInFlightMean: number;
  /** Mean wall time of one DynamoDB request and of one IdP refresh call, as the service saw them. */
  readonly dynamoRequestMs: number;
  readonly idpCallMs: number;
  readonly callsPerRotation: CallBreakdown;
  /** Every call of the invocation, counted by name. */
  readonly calls: Counts;
  readonly logBytesPerRotation: number;
  /** Where the service's CPU went, when the case was profiled. */
  readonly cpuProfile?: CpuShare[];
  /** Anything that went wrong (failed rotations, reuse detections, records left). */
  readonly problems: readonly string[];
  /** Fork of the child to its answer: the sweep plus a process start (s). */
  readonly forkToAnswerSeconds: number;
}

/** The result of the sweep section. */
export interface SweepResult {
  readonly cases: SweepCaseResult[];
  readonly chain?: ChainResult;
  /** Due records written, and how long writing them took. */
  readonly seeded: number;
  readonly seedSeconds: number;
}

/** The timeout of each case's invocation (s). */
export function caseTimeoutSeconds(profile: SweepProfile): number {
  return profile.caseSeconds === undefined
    ? SWEEP_TIMEOUT_SECONDS
    : profile.caseSeconds + CASE_RESERVE_SECONDS;
}

/**
 * Section 3: one table of records that are all due now (signed in 12 days ago), then each case
 * as one sweep invocation of a fresh instance in its own process, against what is still due.
 * The Transmit emulator runs here with the case's latency; DynamoDB Local's and the emulator's
 * CPU time are read from /proc around each case.
 */
export function measureSweeps(
  dynamoEndpoint: string,
  childFile: string,
  profile: SweepProfile,
  onCase?: (result: SweepCaseResult) => void,
): Promise<SweepResult> {
  return withBenchTable(dynamoEndpoint, 'sweep', async (environment) => {
    const dynamoPid = findDynamoDbLocalPid(Number(new URL(dynamoEndpoint).port));
    const cases: SweepCaseResult[] = [];
    let seeded = 0;
    let seedSeconds = 0;
    const seed = async (count: number) => {
      const written = await seedRecords({
        ...environment,
        count,
        userPrefix: `sweep-${seeded}-`,
        authenticatedOffsetSeconds: -12 * 86_400,
      });
      seeded += written.count;
      seedSeconds += written.seconds;
    };
    const context = { ...environment, childFile, profile, dynamoPid };
    await seed(profile.dueRecords);
    for (const spec of profile.cases) {
      const idpRateLimit = spec.idpRateLimit ?? NO_RATE_LIMIT;
      const ideal = Math.min(
        spec.latencyMs > 0 ? (spec.concurrency * 1000) / spec.latencyMs : Number.POSITIVE_INFINITY,
        idpRateLimit === NO_RATE_LIMIT ? Number.POSITIVE_INFINITY : idpRateLimit,
      );
      if (profile.caseSeconds !== undefined) {
        // Keep more due than the case can rotate: the fastest rate seen so far, or the ideal.
        const fastest = Math.max(0, ...cases.map((c) => c.rotationsPerSecond));
        const expected = Math.min(ideal, fastest > 0 ? 1.5 * fastest : ideal);
        const needed =
          Math.ceil((Number.isFinite(expected) ? expected : 200) * profile.caseSeconds * 1.3) + 100;
        const due = await countDue(environment);
        if (due < needed) await seed(needed - due);
      }
      const result = await runCase(spec, { ...context, idpRateLimit, ideal, index: cases.length });
      cases.push(result);
      onCase?.(result);
    }
    const chain = profile.chain
      ? await runChain(profile.chain, { ...context, seed, casesRun: cases.length })
      : undefined;
    return { cases, seeded, seedSeconds, ...(chain ? { chain } : {}) };
  });
}

interface CaseContext extends BenchEnvironment {
  readonly childFile: string;
  readonly profile: SweepProfile;
  readonly dynamoPid: number | undefined;
  readonly idpRateLimit: number;
  readonly ideal: number;
  readonly index: number;
}

async function runCase(spec: SweepCase, ctx: CaseContext): Promise<SweepCaseResult> {
  const { transmit, profile } = ctx;
  const due = await countDue(ctx);
  transmit.faults.latencyMs = spec.latencyMs;
  const refreshesBefore = transmit.refreshLog.length;
  const reuseBefore = transmit.reuseDetections;
  const profileFile = spec.profileCpu
    ? join(dirname(ctx.childFile), `sweep-${ctx.index}.cpuprofile`)
    : undefined;
  const baseline = await prepareBaseline(ctx, profile.baselineRotations ?? 0);
  const params: SweepParams = {
    ...(baseline ? { baseline } : {}),
    target: ctx.target,
    offsetMs: ctx.clock.offsetMs,
    concurrency: spec.concurrency,
    idpRateLimit: ctx.idpRateLimit,
    pageSize: profile.pageSize,
    timeoutMs: caseTimeoutSeconds(profile) * 1000,
    ...(profileFile ? { profileFile } : {}),
  };
  const before = { main: process.cpuUsage(), dynamo: pidCpu(ctx.dynamoPid), machine: machineCpuMs() };
  const run = await runChild<SweepChildResult>(ctx.childFile, params, {
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  });
  const main = process.cpuUsage(before.main);
  const dynamoCpu = difference(pidCpu(ctx.dynamoPid), before.dynamo);
  const machineAfter = machineCpuMs();
  transmit.faults.latencyMs = 0;

  const child = run.result;
  const { rotated, failed, backlog } = child.summary;
  const per = (value: number) => value / Math.max(1, rotated);
  const wallSeconds = child.wallMs / 1000;
  const rotationsPerSecond = rotated / wallSeconds;
  const emulatorCpuMs = (main.user + main.system) / 1000;
  const machine =
    before.machine && machineAfter
      ? { busy: machineAfter.busy - before.machine.busy, total: machineAfter.total - before.machine.total }
      : undefined;
  const problems: string[] = [];
  const refreshes = transmit.refreshLog.length - refreshesBefore - (child.baseline?.made ?? 0);
  if (profile.caseSeconds === undefined && rotated !== due) problems.push(`rotated ${rotated} of ${due} due`);
  if (failed > 0) problems.push(`${failed} rotations failed`);
  if (child.summary.reauthRequired > 0)
    problems.push(`${child.summary.reauthRequired} records need re-authentication`);
  if (refreshes !== rotated) problems.push(`${refreshes} IdP refreshes for ${rotated} rotations`);
  if (transmit.reuseDetections !== reuseBefore) problems.push('the IdP saw a refresh token reused');
  return {
    ...spec,
    idpRateLimit: ctx.idpRateLimit,
    due,
    rotated,
    failed,
    backlog,
    wallSeconds,
    rotationsPerSecond,
    idealPerSecond: ctx.ideal,
    fraction: Number.isFinite(ctx.ideal) ? rotationsPerSecond / ctx.ideal : Number.NaN,
    serviceCpuMsPerRotation: per(child.cpuMs),
    baselineCpuMsPerRotation: child.baseline ? child.baseline.cpuMs / child.baseline.rotations : undefined,
    steadyCpuMsPerRotation: child.steadyCpuMsPerRotation,
    cpuRatio:
      child.baseline && child.steadyCpuMsPerRotation !== undefined
        ? child.steadyCpuMsPerRotation / (child.baseline.cpuMs / child.baseline.rotations)
        : undefined,
    dynamoCpuMsPerRotation: dynamoCpu === undefined ? undefined : per(dynamoCpu),
    emulatorCpuMsPerRotation: per(emulatorCpuMs),
    machineBusyPercent: machine ? (100 * machine.busy) / machine.total : undefined,
    oursBusyPercent:
      machine && dynamoCpu !== undefined
        ? (100 * (child.cpuMs + dynamoCpu + emulatorCpuMs)) / machine.total
        : undefined,
    peakRssMb: child.peakRssMb,
    rssStartMb: child.rssStartMb,
    idpInFlightMean: child.idpInFlightMean,
    dynamoRequestMs: meanOf(child.calls, COUNTED.dynamoMs, DYNAMO_REQUESTS),
    idpCallMs: meanOf(child.calls, COUNTED.idpRefreshMs, [COUNTED.idpRefresh]),
    callsPerRotation: breakdown(perOperation(child.calls, rotated)),
    calls: child.calls,
    logBytesPerRotation: per(run.stdoutBytes),
    ...(profileFile ? { cpuProfile: summarizeProfile(profileFile, ctx.childFile) } : {}),
    problems,
    forkToAnswerSeconds: run.wallMs / 1000,
  };
}

interface ChainContext extends Omit<CaseContext, 'idpRateLimit' | 'ideal' | 'index'> {
  readonly seed: (count: number) => Promise<void>;
  /** Cases run before the chain (the links' CPU profiles and bare records are named after them). */
  readonly casesRun: number;
}

/** Runs the links of a chain back to back, each continuing the last as the handler decides. */
async function runChain(spec: NonNullable<SweepProfile['chain']>, ctx: ChainContext): Promise<ChainResult> {
  const caseSeconds = ctx.profile.caseSeconds ?? 30;
  // Enough due for every link at the rate limit, and a backlog after the last.
  const needed = Math.ceil(spec.idpRateLimit * caseSeconds * (spec.links + 1) * 1.2);
  const due = await countDue(ctx);
  if (due < needed) await ctx.seed(needed - due);
  const linkProfile: SweepProfile = { ...ctx.profile, baselineRotations: 0 };
  let depth = 0;
  let rotated = 0;
  let wallSeconds = 0;
  let sweepingSeconds = 0;
  let backlogAtEnd = 0;
  let links = 0;
  const problems: string[] = [];
  for (;;) {
    const link = await runCase(
      { latencyMs: spec.latencyMs, concurrency: spec.concurrency, idpRateLimit: spec.idpRateLimit },
      {
        ...ctx,
        profile: linkProfile,
        idpRateLimit: spec.idpRateLimit,
        ideal: spec.idpRateLimit,
        index: ctx.casesRun + 100 + links,
      },
    );
    links++;
    rotated += link.rotated;
    wallSeconds += link.forkToAnswerSeconds;
    sweepingSeconds += link.wallSeconds;
    backlogAtEnd = link.backlog;
    problems.push(...link.problems);
    const next = nextLink(
      depth,
      {
        due: link.due,
        rotated: link.rotated,
        failed: link.failed,
        reauthRequired: 0,
        skipped: 0,
        backlog: link.backlog,
        rescheduled: 0,
      },
      spec.links - 1,
    );
    if (next === undefined) break;
    depth = next;
  }
  const rotationsPerHour = (rotated / wallSeconds) * 3600;
  return {
    links,
    latencyMs: spec.latencyMs,
    concurrency: spec.concurrency,
    idpRateLimit: spec.idpRateLimit,
    rotated,
    wallSeconds,
    sweepingSeconds,
    rotationsPerHour,
    fractionOfRateLimit: rotationsPerHour / (spec.idpRateLimit * 3600),
    dutyCycle: sweepingSeconds / wallSeconds,
    backlogAtEnd,
    problems,
  };
}

/** Records for the bare rotations (not due, so the sweep leaves them) and refresh tokens the emulator accepts. */
async function prepareBaseline(ctx: CaseContext, count: number): Promise<BareRotationParams | undefined> {
  if (count <= 0) return undefined;
  const prefix = `bare-${ctx.index}-`;
  await seedRecords({
    target: ctx.target,
    transmit: ctx.transmit,
    clock: ctx.clock,
    count,
    userPrefix: prefix,
  });
  const userIds = Array.from({ length: count }, (_, n) => `${prefix}${n}`);
  return {
    dynamoEndpoint: ctx.target.dynamoEndpoint,
    tableName: ctx.target.tableName,
    transmitBaseUrl: ctx.target.transmitBaseUrl,
    clientId: EMULATOR_CLIENT.clientId,
    clientSecret: EMULATOR_CLIENT.clientSecret,
    region: LOCAL_AWS.region,
    credentials: LOCAL_AWS.credentials,
    userIds,
    refreshTokens: await Promise.all(
      userIds.map(async (userId) => (await ctx.transmit.signIn(`${userId}-idp`)).refresh_token),
    ),
  };
}

/** Due index entries with `dueAt <= now`, over every shard (Select COUNT reads keys only). */
async function countDue({ admin, target, clock }: BenchEnvironment): Promise<number> {
  const { dueIndex } = TOKEN_TABLE;
  const now = Math.floor(clock.nowMs() / 1000);
  let total = 0;
  for (let shard = 0; shard < DUE_SHARDS; shard++) {
    let start: Record<string, never> | undefined;
    do {
      const page = await admin.send(
        new QueryCommand({
          TableName: target.tableName,
          IndexName: dueIndex.name,
          KeyConditionExpression: '#shard = :shard AND #due <= :now',
          ExpressionAttributeNames: { '#shard': dueIndex.partitionKey.name, '#due': dueIndex.sortKey.name },
          ExpressionAttributeValues: { ':shard': { N: String(shard) }, ':now': { N: String(now) } },
          Select: 'COUNT',
          ExclusiveStartKey: start,
        }),
      );
      total += page.Count ?? 0;
      start = page.LastEvaluatedKey as Record<string, never> | undefined;
    } while (start);
  }
  return total;
}

const DYNAMO_REQUESTS = ['GetItem', 'UpdateItem', 'PutItem', 'Query', 'DeleteItem'].map(COUNTED.dynamo);

/** Mean of a summed duration over the count of the named calls. */
function meanOf(calls: Counts, total: string, names: readonly string[]): number {
  const count = names.reduce((sum, name) => sum + (calls[name] ?? 0), 0);
  return count > 0 ? (calls[total] ?? 0) / count : 0;
}

function pidCpu(pid: number | undefined): number | undefined {
  return pid === undefined ? undefined : processCpuMs(pid);
}

function difference(after: number | undefined, before: number | undefined): number | undefined {
  return after === undefined || before === undefined ? undefined : after - before;
}
