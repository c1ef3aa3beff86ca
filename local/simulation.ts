import { randomBytes } from 'node:crypto';
import { CreateTableCommand, DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { LocalTokenCipher } from '../functions/adapters/cipher/local-cipher';
import type { TokenCipher } from '../functions/adapters/cipher/token-cipher';
import { DynamoDbTokenStore, keyOf } from '../functions/adapters/dynamodb/dynamodb-token-store';
import { createTableInput } from '../functions/adapters/dynamodb/table-schema';
import { buildRuntime } from '../functions/adapters/runtime';
import { loadConfig } from '../functions/config';
import type { Clock, TokenStore } from '../functions/core/ports';
import { getAccessToken } from '../functions/handlers/get-access-token';
import { lambdaHandler } from '../functions/handlers/lambda';
import { refreshSweep } from '../functions/handlers/refresh-sweep';
import { storeTokens } from '../functions/handlers/store-tokens';
import { InMemoryMetrics, MemoryLogger, RecordingEventPublisher } from '../test/support/observability';
import { startDynamoDbLocal } from './dynamodb-local';
import { startTransmitServer, type TransmitServer } from './transmit-server';

const DAY = 86_400;

/** What to simulate. */
export interface SimulationOptions {
  /** @default 1000 */
  readonly users?: number;
  /** @default 400 */
  readonly days?: number;
  /** Users sign in spread over this many days from the start. @default 30 */
  readonly signInSpreadDays?: number;
  /** getAccessToken calls per user per day, on average. @default 0.1 */
  readonly callsPerUserDay?: number;
  /** Share of refresh requests the IdP fails (503, 429 with Retry-After, timeouts, resets). @default 0.02 */
  readonly faultRate?: number;
  /** How often the sweep runs, in virtual minutes. @default 60 */
  readonly sweepEveryMinutes?: number;
  /** @default 14 days */
  readonly refreshTokenTtlSeconds?: number;
  /** @default 365 days */
  readonly maxRotationSeconds?: number;
  /** @default 1 */
  readonly seed?: number;
  /** A DynamoDB Local to use; one is started when absent. */
  readonly dynamoEndpoint?: string;
  /** Progress lines (one per simulated month). */
  readonly onProgress?: (line: string) => void;
  /** Observation and fault hooks (alarm evaluation). */
  readonly hooks?: SimulationHooks;
  /** Incidents on top of the background fault rate, each in a window of virtual time. @default none */
  readonly incidents?: readonly SimulationIncident[];
  /** Due-index shards at the start. @default 4 */
  readonly dueShards?: number;
}

/** The handlers the simulation calls, named as their functions are in the stack. */
export type SimulatedFunction = 'StoreTokens' | 'GetAccessToken' | 'RefreshSweep';

/** One handler call, as Lambda would count it. */
export interface SimulatedInvocation {
  readonly functionName: SimulatedFunction;
  /** Virtual time of the call. */
  readonly atMs: number;
  /** Wall time it took. */
  readonly durationMs: number;
  /** The error it ended with (a Lambda function error), if any. */
  readonly error: Error | undefined;
}

/**
 * An incident during the run:
 * - `idpForbidden`: the IdP answers 403 to every refresh (a permission mistake at deploy time);
 * - `idpRejectsAll`: the IdP answers `invalid_grant` to every refresh without consuming anything
 *   (a wrong tenant or region): the rejection breaker must trip, and the users marked before it
 *   tripped are restored by the operator (`npm run restore`) once the incident is over;
 * - `storeStalls`: DynamoDB answers the lease and the commit late (`delaySeconds` of the lease each,
 *   in virtual time), for a share of the calls;
 * - `dueShardsChange`: the deployment changes `DUE_SHARDS` under the stored records.
 */
export type SimulationIncident =
  | { readonly kind: 'idpForbidden' | 'idpRejectsAll'; readonly startDay: number; readonly hours: number }
  | {
      readonly kind: 'storeStalls';
      readonly startDay: number;
      readonly hours: number;
      readonly share: number;
      readonly delaySeconds: number;
    }
  | { readonly kind: 'dueShardsChange'; readonly startDay: number; readonly dueShards: number };

/** What a step hook sees. */
export interface SimulationStep {
  readonly nowMs: number;
  readonly elapsedSeconds: number;
  readonly transmit: TransmitServer;
  /** Every item of the table, raw (for figures such as the earliest refresh expiry). */
  scanItems(): Promise<Record<string, { S?: string; N?: string }>[]>;
}

/** Hooks to observe a run and inject faults into it; all optional. */
export interface SimulationHooks {
  /** The metrics sink, given the virtual clock (so it can time-stamp what it records). */
  metrics?(clock: Clock): InMemoryMetrics;
  /** Sees each handler call. */
  onInvoke?(invocation: SimulatedInvocation): void;
  /** Wraps the token store (faults below the core, such as DynamoDB throttling). */
  wrapStore?(store: TokenStore): TokenStore;
  /** Wraps the token cipher (faults such as a disabled key). */
  wrapCipher?(cipher: TokenCipher): TokenCipher;
  /** Runs before each step's work; `{ sweep: false }` skips that step's sweep (a disabled schedule). */
  beforeStep?(
    step: SimulationStep,
  ): Promise<{ sweep?: boolean } | undefined> | { sweep?: boolean } | undefined;
}

/** The outcome, with the figures the README shows. */
export interface SimulationReport {
  readonly options: Required<Omit<SimulationOptions, 'dynamoEndpoint' | 'onProgress' | 'hooks'>>;
  /** getAccessToken calls that needed a refresh (served refreshed or stale, or failed retryably). */
  readonly onDemandRefreshes: number;
  /** Of those, the ones that failed (RefreshUnavailableError) outside an incident and the day after it. */
  readonly onDemandFailures: number;
  readonly incidentFigures: IncidentFigures;
  readonly signIns: number;
  readonly rotations: number;
  readonly idpRefreshCalls: number;
  readonly idpCallsPerRotation: number;
  readonly accessTokenCalls: number;
  readonly servedCached: number;
  readonly servedRefreshed: number;
  readonly servedStale: number;
  readonly callErrors: Readonly<Record<string, number>>;
  readonly failuresByKind: Readonly<Record<string, number>>;
  readonly faultsInjected: number;
  readonly reauthSoonEvents: number;
  readonly reauthRequiredEvents: Readonly<Record<string, number>>;
  /** Users whose access ended before their rotation deadline, or whose stored refresh token is not the IdP's latest. */
  readonly lostTokens: number;
  /** Refresh tokens presented to the IdP more than once. */
  readonly duplicateIdpUses: number;
  readonly reuseDetections: number;
  /** Users that reached REAUTH_REQUIRED (deadline) before their deadline: must be 0. */
  readonly endedEarly: number;
  /** Users past their deadline that are not REAUTH_REQUIRED (deadline): must be 0. */
  readonly notEndedAtDeadline: number;
  readonly sweeps: number;
  readonly wallSeconds: number;
}

/** What the incidents did. */
export interface IncidentFigures {
  /** Refreshes the IdP refused as a configuration problem (403): nobody was marked for them. */
  readonly configurationRejections: number;
  /** Times the rejection breaker opened. */
  readonly breakerTrips: number;
  /** Rejections the open breaker held (token kept, retried later). */
  readonly rejectionsHeld: number;
  /** Records the operator's restore put back after the rejection incident. */
  readonly restored: number;
  /** Lease or commit answers delayed by a stall. */
  readonly storeStalls: number;
  /** Records rotated while in a shard above the current DUE_SHARDS (moved down as they rotated). */
  readonly dueShardsChanges: number;
}

/** A small, seeded PRNG (mulberry32) so a run can be repeated. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A year (or more) in minutes: the real handler bodies and core on DynamoDB Local and the strict
 * Transmit emulator, with one virtual clock for both. Users sign in, callers ask for tokens at
 * random, the sweep runs on its schedule, the IdP fails at the given rate.
 */
export async function runSimulation(input: SimulationOptions = {}): Promise<SimulationReport> {
  const options = {
    users: input.users ?? 1000,
    days: input.days ?? 400,
    signInSpreadDays: input.signInSpreadDays ?? 30,
    callsPerUserDay: input.callsPerUserDay ?? 0.1,
    faultRate: input.faultRate ?? 0.02,
    sweepEveryMinutes: input.sweepEveryMinutes ?? 60,
    refreshTokenTtlSeconds: input.refreshTokenTtlSeconds ?? 14 * DAY,
    maxRotationSeconds: input.maxRotationSeconds ?? 365 * DAY,
    seed: input.seed ?? 1,
    incidents: input.incidents ?? [],
    dueShards: input.dueShards ?? 4,
  };
  const started = Date.now();
  const random = seeded(options.seed);
  let nowMs = Date.UTC(2026, 0, 1);
  const clock = { nowMs: () => nowMs };

  const ownDynamo = input.dynamoEndpoint ? undefined : await startDynamoDbLocal({ inMemory: true });
  const endpoint = input.dynamoEndpoint ?? ownDynamo!.endpoint;
  const dynamo = new DynamoDBClient({
    endpoint,
    region: 'local',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  const tableName = `simulation-${Date.now()}-${Math.floor(random() * 1e9)}`;
  await dynamo.send(new CreateTableCommand(createTableInput(tableName)));

  const transmit = await startTransmitServer({
    clock,
    refreshTokenTtlSeconds: options.refreshTokenTtlSeconds,
    maxRotationSeconds: options.maxRotationSeconds,
    random,
  });
  try {
    const keyBase64 = randomBytes(32).toString('base64');
    const environment = {
      TOKEN_TABLE_NAME: tableName,
      TRANSMIT_BASE_URL: transmit.baseUrl,
      CLIENT_ID: 'local-client',
      CLIENT_SECRET: 'local-secret',
      LOCAL_TOKEN_KEY: keyBase64,
      REFRESH_TOKEN_TTL_SECONDS: String(options.refreshTokenTtlSeconds),
      MAX_ROTATION_SECONDS: String(options.maxRotationSeconds),
      REFRESH_AHEAD_SECONDS: String(Math.floor(options.refreshTokenTtlSeconds * 0.2)),
      REAUTH_SOON_DAYS: String(Math.min(14, Math.floor(options.maxRotationSeconds / DAY / 4))),
      SWEEP_CONCURRENCY: '16',
      IDP_RATE_LIMIT_RPS: '1000',
    };
    let config = loadConfig({ ...environment, DUE_SHARDS: String(options.dueShards) });
    const hooks = input.hooks ?? {};
    const metrics = hooks.metrics?.(clock) ?? new InMemoryMetrics();
    const logger = new MemoryLogger();
    const events = new RecordingEventPublisher(logger);
    const figures = { storeStalls: 0, restored: 0 };
    const inIncident = (kind: SimulationIncident['kind'], nowSeconds: number) =>
      options.incidents.some(
        (incident) =>
          incident.kind === kind &&
          'hours' in incident &&
          nowSeconds >= start + incident.startDay * DAY &&
          nowSeconds < start + incident.startDay * DAY + incident.hours * 3600,
      );
    // Within an incident or the day after it (records still in backoff), failures are the incident's.
    const nearIncident = (nowSeconds: number) =>
      options.incidents.some(
        (incident) =>
          'hours' in incident &&
          nowSeconds >= start + incident.startDay * DAY &&
          nowSeconds < start + incident.startDay * DAY + incident.hours * 3600 + DAY,
      );
    // A stalled store: the lease or commit answer arrives late, in virtual time (the world waits).
    const stalling = (store: TokenStore): TokenStore => {
      const late = async <T>(answer: Promise<T>): Promise<T> => {
        const result = await answer;
        const stall = options.incidents.find(
          (incident) =>
            incident.kind === 'storeStalls' &&
            nowMs / 1000 >= start + incident.startDay * DAY &&
            nowMs / 1000 < start + incident.startDay * DAY + incident.hours * 3600,
        );
        if (stall?.kind === 'storeStalls' && random() < stall.share) {
          figures.storeStalls++;
          nowMs += stall.delaySeconds * 1000;
        }
        return result;
      };
      return new Proxy(store, {
        get(target, property, receiver) {
          const value = Reflect.get(target, property, receiver);
          if (property === 'acquireLease' || property === 'put') {
            return (...args: unknown[]) =>
              late((value as (...a: unknown[]) => Promise<unknown>).apply(target, args));
          }
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
    };
    const buildFor = (current: typeof config) =>
      buildRuntime(current, {
        clock,
        metrics,
        logger,
        events,
        random,
        // Waiting takes virtual time (a caller waiting out a lapsed lease must see it lapse).
        // Concurrent sleepers overlap as they would in real time: each moves the clock to its own end.
        sleep: async (ms) => {
          const until = nowMs + Math.ceil(ms);
          await new Promise((resolve) => setImmediate(resolve));
          nowMs = Math.max(nowMs, until);
        },
        store: stalling(
          wrap(
            hooks.wrapStore,
            new DynamoDbTokenStore({
              tableName,
              cipher: wrap(hooks.wrapCipher, LocalTokenCipher.fromBase64(keyBase64)),
              client: dynamo,
            }),
          ),
        ),
      });
    let runtime = buildFor(config);
    // Each call is timed and reported as Lambda would count it (invocation, error, duration).
    const observed =
      <E, R>(functionName: SimulatedFunction, handler: (event: E) => Promise<R>) =>
      async (event: E): Promise<R> => {
        const atMs = nowMs;
        const started = performance.now();
        try {
          const result = await handler(event);
          hooks.onInvoke?.({ functionName, atMs, durationMs: performance.now() - started, error: undefined });
          return result;
        } catch (error) {
          const failed = error instanceof Error ? error : new Error(String(error));
          hooks.onInvoke?.({ functionName, atMs, durationMs: performance.now() - started, error: failed });
          throw error;
        }
      };
    const run = {
      store: observed(
        'StoreTokens',
        lambdaHandler(() => runtime, storeTokens),
      ),
      get: observed(
        'GetAccessToken',
        lambdaHandler(() => runtime, getAccessToken),
      ),
      sweep: observed(
        'RefreshSweep',
        lambdaHandler(() => runtime, refreshSweep),
      ),
    };

    // Faults: the emulator fails this share of refresh requests, of assorted kinds; an incident
    // replaces them while it lasts.
    const background = () => {
      transmit.faults.reset();
      if (options.faultRate > 0) transmit.faults.failRate(options.faultRate, { kind: 'status', status: 503 });
    };
    background();
    let incidentNow: SimulationIncident['kind'] | undefined;
    let rejectionIncidentEnded = false;
    let onDemandFailures = 0;

    const signInAt = Array.from({ length: options.users }, () => random() * options.signInSpreadDays * DAY);
    const deadlineOf = new Map<string, number>();
    const endedAt = new Map<string, number>();
    const callErrors: Record<string, number> = {};
    const eventCounts: Record<string, number> = {};
    let signIns = 0;
    let accessTokenCalls = 0;
    let sweeps = 0;
    const stepSeconds = options.sweepEveryMinutes * 60;
    const start = nowMs / 1000;
    const callChancePerStep = (options.callsPerUserDay * stepSeconds) / DAY;
    let nextProgressDay = 30;

    for (let t = 0; t <= options.days * DAY; t += stepSeconds) {
      nowMs = (start + t) * 1000;
      const nowSeconds = start + t;
      const incident = (['idpForbidden', 'idpRejectsAll'] as const).find((kind) =>
        inIncident(kind, nowSeconds),
      );
      if (incident !== incidentNow) {
        if (incident === 'idpForbidden') transmit.faults.failRate(1, { kind: 'status', status: 403 });
        else if (incident === 'idpRejectsAll') transmit.faults.failRate(1, { kind: 'deadToken' });
        else background();
        if (incidentNow === 'idpRejectsAll') rejectionIncidentEnded = true;
        incidentNow = incident;
      }
      for (const change of options.incidents) {
        if (change.kind !== 'dueShardsChange') continue;
        const at = start + change.startDay * DAY;
        if (at > nowSeconds - stepSeconds && at <= nowSeconds) {
          config = loadConfig({ ...environment, DUE_SHARDS: String(change.dueShards) });
          runtime = buildFor(config);
        }
      }
      if (rejectionIncidentEnded) {
        // The operator, told by the breaker's alarm, fixed the cause: put back who was marked.
        rejectionIncidentEnded = false;
        for (const window of options.incidents) {
          if (window.kind !== 'idpRejectsAll') continue;
          const from = start + window.startDay * DAY;
          const report = await runtime.restore.run(
            {
              from,
              to: from + window.hours * 3600 + stepSeconds,
              reasons: ['refresh_rejected'],
              dryRun: false,
            },
            { remainingMs: () => Number.POSITIVE_INFINITY },
          );
          figures.restored += report.restored;
        }
        for (const userId of [...endedAt.keys()]) {
          const record = await runtime.store.get({ userId, resource: 'default' });
          if (record?.status === 'ACTIVE') endedAt.delete(userId);
        }
      }
      const step = await hooks.beforeStep?.({
        nowMs,
        elapsedSeconds: t,
        transmit,
        scanItems: () => scanAll(dynamo, tableName),
      });
      // Sign-ins that fall in this step.
      const signing: Promise<void>[] = [];
      for (let u = 0; u < options.users; u++) {
        const at = signInAt[u]!;
        if (at >= t && at < t + stepSeconds) {
          const userId = `user-${u}`;
          const tokens = await transmit.signIn(userId);
          signing.push(
            run.store({ userId, tokens, authenticatedAt: nowSeconds }).then(() => {
              signIns++;
              deadlineOf.set(userId, nowSeconds + options.maxRotationSeconds);
            }),
          );
        }
      }
      await Promise.all(signing);

      // Callers ask for access tokens at random.
      const calls: Promise<void>[] = [];
      for (const userId of deadlineOf.keys()) {
        if (endedAt.has(userId) || random() >= callChancePerStep) continue;
        accessTokenCalls++;
        const minValiditySeconds = random() < 0.3 ? 3000 : 60;
        calls.push(
          run.get({ userId, minValiditySeconds }).then(
            () => undefined,
            (error: Error) => {
              callErrors[error.name] = (callErrors[error.name] ?? 0) + 1;
              if (error.name === 'RefreshUnavailableError' && !nearIncident(nowSeconds)) onDemandFailures++;
              if (error.name === 'ReauthRequiredError' && !endedAt.has(userId))
                endedAt.set(userId, nowSeconds);
            },
          ),
        );
      }
      await Promise.all(calls);

      if (step?.sweep !== false) {
        // A failed sweep is a function error (counted by onInvoke); the next one takes over, as in AWS.
        await run.sweep({ source: 'simulation' }).catch(() => undefined);
        sweeps++;
      }
      for (const event of events.published.splice(0)) {
        if (event.type === 'Reauth Required' && !endedAt.has(event.key.userId))
          endedAt.set(event.key.userId, event.at);
        tally(
          eventCounts,
          event.type === 'Reauth Required' ? `Reauth Required (${event.reason})` : event.type,
        );
      }
      if (t >= nextProgressDay * DAY) {
        input.onProgress?.(
          `day ${nextProgressDay}: ${signIns} signed in, ${metrics.total('RotationSucceeded')} rotations, ${endedAt.size} ended`,
        );
        nextProgressDay += 30;
      }
    }

    // Judge the end state from the table and the IdP's own records.
    const items = await scanAll(dynamo, tableName);
    let lostTokens = 0;
    let endedEarly = 0;
    let notEndedAtDeadline = 0;
    const endNow = nowMs / 1000;
    for (const item of items) {
      // The service's own items (sweep state, breaker) are not users.
      if (!String(item.pk?.S).startsWith('u#')) continue;
      const key = keyOf(String(item.pk?.S), String(item.sk?.S));
      const status = item.status?.S;
      const deadline = Number(item.rotationDeadline?.N);
      const reason = item.reauthReason?.S;
      if (status === 'REAUTH_REQUIRED') {
        if (reason !== 'deadline') lostTokens++;
        else if ((endedAt.get(key.userId) ?? endNow) < deadline) endedEarly++;
      } else if (endNow >= deadline) {
        notEndedAtDeadline++;
      } else {
        const record = await runtime.store.get(key);
        const stored = record?.tokens?.refreshToken.reveal();
        if (!stored || transmit.latestRefreshToken(stored) !== stored) lostTokens++;
      }
    }
    lostTokens += metrics.total('TokensExpired');

    const rotations = metrics.total('RotationSucceeded');
    const idpRefreshCalls = transmit.refreshLog.length;
    // A request the IdP refused at the door (an injected fault) did not use the token up.
    const presented = new Map<string, number>();
    for (const entry of transmit.refreshLog) {
      if (entry.outcome !== 'fault')
        presented.set(entry.tokenHash, (presented.get(entry.tokenHash) ?? 0) + 1);
    }
    const failuresByKind: Record<string, number> = {};
    for (const point of metrics.points) {
      if (point.name === 'RotationFailed' && point.dimensions.reason) {
        tally(failuresByKind, point.dimensions.reason, point.value);
      }
    }
    const reauthRequiredEvents: Record<string, number> = {};
    for (const [name, count] of Object.entries(eventCounts)) {
      const match = /^Reauth Required \((.+)\)$/.exec(name);
      if (match) reauthRequiredEvents[match[1]!] = count;
    }
    const onDemandRefreshes =
      metrics.total('AccessTokenServed', { source: 'refreshed' }) +
      metrics.total('AccessTokenServed', { source: 'stale' }) +
      (callErrors.RefreshUnavailableError ?? 0);
    return {
      options,
      onDemandRefreshes,
      onDemandFailures,
      incidentFigures: {
        configurationRejections: metrics.total('IdpConfigurationRejected'),
        breakerTrips: logger.lines.filter((line) =>
          line.message.startsWith('rejection circuit breaker opened'),
        ).length,
        rejectionsHeld: metrics.total('RotationFailed', { reason: 'rejected_held' }),
        restored: figures.restored,
        storeStalls: figures.storeStalls,
        dueShardsChanges: options.incidents.filter((i) => i.kind === 'dueShardsChange').length,
      },
      signIns,
      rotations,
      idpRefreshCalls,
      idpCallsPerRotation: rotations === 0 ? 0 : idpRefreshCalls / rotations,
      accessTokenCalls,
      servedCached: metrics.total('AccessTokenServed', { source: 'cached' }),
      servedRefreshed: metrics.total('AccessTokenServed', { source: 'refreshed' }),
      servedStale: metrics.total('AccessTokenServed', { source: 'stale' }),
      callErrors,
      failuresByKind,
      faultsInjected: transmit.refreshLog.filter((e) => e.outcome === 'fault').length,
      reauthSoonEvents: eventCounts['Reauth Soon'] ?? 0,
      reauthRequiredEvents,
      lostTokens,
      duplicateIdpUses: [...presented.values()].filter((n) => n > 1).length,
      reuseDetections: transmit.reuseDetections,
      endedEarly,
      notEndedAtDeadline,
      sweeps,
      wallSeconds: Math.round((Date.now() - started) / 100) / 10,
    };
  } finally {
    await transmit.close();
    dynamo.destroy();
    await ownDynamo?.stop();
  }
}

function wrap<T>(wrapper: ((value: T) => T) | undefined, value: T): T {
  return wrapper ? wrapper(value) : value;
}

function tally(counts: Record<string, number>, key: string, by = 1): void {
  counts[key] = (counts[key] ?? 0) + by;
}

async function scanAll(dynamo: DynamoDBClient, tableName: string) {
  const items: Record<string, { S?: string; N?: string }>[] = [];
  let start: Record<string, never> | undefined;
  do {
    const page = await dynamo.send(new ScanCommand({ TableName: tableName, ExclusiveStartKey: start }));
    items.push(...((page.Items ?? []) as Record<string, { S?: string; N?: string }>[]));
    start = page.LastEvaluatedKey as Record<string, never> | undefined;
  } while (start);
  // Token records only: the sweep keeps its own state item (`#meta`) in the table too.
  return items.filter((item) => item.pk?.S?.startsWith('u#'));
}

/** The report as a markdown table. */
export function formatReport(report: SimulationReport): string {
  const o = report.options;
  const rows: [string, string | number][] = [
    ['users / days / sweep every', `${o.users} / ${o.days} / ${o.sweepEveryMinutes} min`],
    [
      'refresh token TTL / max rotation',
      `${o.refreshTokenTtlSeconds / DAY} d / ${o.maxRotationSeconds / DAY} d`,
    ],
    ['IdP fault rate (503 on refresh)', `${(o.faultRate * 100).toFixed(1)} %`],
    ['sign-ins', report.signIns],
    ['sweeps', report.sweeps],
    ['rotations', report.rotations],
    ['IdP refresh calls', report.idpRefreshCalls],
    ['IdP calls per rotation (faults included)', report.idpCallsPerRotation.toFixed(3)],
    ['faults injected', report.faultsInjected],
    ['rotation failures by kind', formatCounts(report.failuresByKind)],
    ['getAccessToken calls', report.accessTokenCalls],
    ['  served from cache', report.servedCached],
    ['  refreshed on demand', report.servedRefreshed],
    ['  stale (IdP down, token still valid)', report.servedStale],
    ['  errors', formatCounts(report.callErrors)],
    ['Reauth Soon events', report.reauthSoonEvents],
    ['Reauth Required events', formatCounts(report.reauthRequiredEvents)],
    ['ended before their deadline', report.endedEarly],
    ['not ended at their deadline', report.notEndedAtDeadline],
    ['refresh tokens presented twice', report.duplicateIdpUses],
    ['reuse detections at the IdP', report.reuseDetections],
    [
      'on-demand refreshes failed (outside incidents and the day after)',
      `${report.onDemandFailures} of ${report.onDemandRefreshes} (${report.onDemandRefreshes === 0 ? 0 : ((100 * report.onDemandFailures) / report.onDemandRefreshes).toFixed(3)} %)`,
    ],
    ...incidentRows(report),
    ['**lost tokens**', `**${report.lostTokens}**`],
    ['wall time', `${report.wallSeconds} s`],
  ];
  return ['| figure | value |', '|---|---|', ...rows.map(([k, v]) => `| ${k} | ${v} |`)].join('\n');
}

function incidentRows(report: SimulationReport): [string, string | number][] {
  const incidents = report.options.incidents;
  if (incidents.length === 0) return [];
  const f = report.incidentFigures;
  const describe = (incident: SimulationIncident): string => {
    switch (incident.kind) {
      case 'idpForbidden':
        return `day ${incident.startDay}: IdP answers 403 to every refresh for ${incident.hours} h`;
      case 'idpRejectsAll':
        return `day ${incident.startDay}: IdP answers invalid_grant to every refresh for ${incident.hours} h`;
      case 'storeStalls':
        return `day ${incident.startDay}: ${Math.round(incident.share * 100)} % of lease and commit answers ${incident.delaySeconds} s late for ${incident.hours} h`;
      case 'dueShardsChange':
        return `day ${incident.startDay}: DUE_SHARDS changed to ${incident.dueShards}`;
    }
  };
  return [
    ['incidents', incidents.map(describe).join('; ')],
    ['  refreshes refused as configuration (nobody marked)', f.configurationRejections],
    ['  rejection breaker trips / rejections held', `${f.breakerTrips} / ${f.rejectionsHeld}`],
    ['  records restored by the operator after the incident', f.restored],
    ['  store answers stalled', f.storeStalls],
  ];
}

function formatCounts(counts: Readonly<Record<string, number>>): string {
  const entries = Object.entries(counts);
  return entries.length === 0 ? '0' : entries.map(([k, v]) => `${k}: ${v}`).join(', ');
}
