/** Section 5: cost per million users per month, from the measured figures and published AWS prices. */

/**
 * Published on-demand prices, us-east-1, USD. Transcribed 2026-11-27 from the pages named in
 * `source`; `since` is when the price took effect where the page says so. Prices change: check
 * the pages before quoting a figure from this report.
 */
export const PRICES = {
  dynamoDb: {
    source: 'https://aws.amazon.com/dynamodb/pricing/on-demand/',
    since: '2024-11-01 (on-demand throughput price cut)',
    readRequestUnitsPerMillion: 0.125,
    writeRequestUnitsPerMillion: 0.625,
    storageGbMonth: 0.25,
    /** Continuous backups (the stack turns point-in-time recovery on). */
    pitrGbMonth: 0.2,
  },
  lambda: {
    source: 'https://aws.amazon.com/lambda/pricing/',
    since: '2021-09-29 (arm64), INIT billed for on-demand functions since 2025-08-01',
    arm64GbSecond: 0.0000133334,
    requestsPerMillion: 0.2,
  },
  kms: {
    source: 'https://aws.amazon.com/kms/pricing/',
    since: '2024-05 (key rotation pricing)',
    /** Per customer managed key; each automatic rotation adds $1/month for the first two rotations. */
    keyMonth: 1,
    requestsPer10k: 0.03,
  },
  secretsManager: {
    source: 'https://aws.amazon.com/secrets-manager/pricing/',
    since: 'unchanged since launch (2018)',
    secretMonth: 0.4,
    apiCallsPer10k: 0.05,
  },
  cloudWatch: {
    source: 'https://aws.amazon.com/cloudwatch/pricing/',
    since: 'first tier of each dimension',
    customMetricMonth: 0.3,
    standardAlarmMonth: 0.1,
    dashboardMonth: 3,
    logsIngestedGb: 0.5,
    logsStoredGbMonth: 0.03,
  },
  eventBridge: {
    source: 'https://aws.amazon.com/eventbridge/pricing/',
    since:
      'scheduled rules on the default bus carry no charge; Scheduler: 14 M invocations/month free, then $1/M',
    scheduledRuleInvocation: 0,
  },
} as const;

/** What the stack deploys that costs per month regardless of traffic (counted in lib/ when this was written). */
export const STACK = {
  kmsKeys: 2,
  secrets: 1,
  alarms: 23,
  dashboards: 1,
  sweepsPerHour: 4,
  sweepMemoryGb: 0.5,
  getAccessTokenMemoryGb: 0.25,
  sweepConcurrency: 8,
  /** IDP_RATE_LIMIT_RPS: IdP calls one sweep starts per second, at most. */
  idpRateLimitPerSecond: 20,
  dueShards: 4,
  logRetentionMonths: 3,
  refreshTokenTtlDays: 14,
  refreshAheadDays: 3,
  /** nextDueAt subtracts up to min(refreshAhead / 4, 6 h) of jitter: 3 h on average. */
  meanJitterDays: 3 / 24,
  accessTokenMinutes: 60,
} as const;

/** Lambda gives a full vCPU at 1,769 MB and a proportional share below it. */
export const MB_PER_VCPU = 1769;
const HOURS_PER_MONTH = 730;
const DAYS_PER_MONTH = HOURS_PER_MONTH / 24;

/** Assumptions of the model, each written into the report. */
export interface CostAssumptions {
  readonly users: number;
  /** Round trip of one DynamoDB request from Lambda, in region. */
  readonly dynamoLatencyMs: number;
  /** The IdP's refresh latency. */
  readonly idpLatencyMs: number;
  /** Platform log lines (START/END/REPORT) per invocation. */
  readonly platformLogBytesPerInvocation: number;
  /** Distinct custom metric streams in a steady month (names x dimension values). */
  readonly customMetrics: number;
  /** Access tokens each user's callers ask for per day. */
  readonly asksPerDay: readonly number[];
}

/** The defaults written into the report. */
export const DEFAULT_ASSUMPTIONS: CostAssumptions = {
  users: 1_000_000,
  dynamoLatencyMs: 5,
  idpLatencyMs: 200,
  platformLogBytesPerInvocation: 600,
  customMetrics: 20,
  asksPerDay: [0, 1, 10, 100],
};

/** Measured inputs of the model. */
export interface MeasuredInputs {
  /** Per operation, from the calls section. */
  readonly warm: { readonly readUnits: number; readonly calls: number };
  readonly refresh: { readonly readUnits: number; readonly writeUnits: number };
  /** Per sweep rotation; `indexWriteUnits` is the part written to the due index. */
  readonly rotation: {
    readonly readUnits: number;
    readonly writeUnits: number;
    readonly indexWriteUnits: number;
  };
  /** CPU time per warm getAccessToken call (ms) and per sweep rotation (ms), on the bench machine. */
  readonly warmCpuMs: number;
  readonly rotationCpuMs: number;
  readonly warmLogBytes: number;
  readonly rotationLogBytes: number;
  readonly itemBytes: number;
  /** Cold start of the sweep function (import + first call, ms). */
  readonly sweepColdStartMs: number;
}

/** One column of the cost table: one value of asks per user per day. */
export interface CostScenario {
  readonly asksPerDay: number;
  readonly refreshesPerUserMonth: number;
  readonly sweepRotationsPerUserMonth: number;
  readonly lines: Readonly<Record<CostLine, number>>;
  readonly total: number;
  readonly perUserMonth: number;
}

/** Lines of the cost table. */
export type CostLine =
  | 'DynamoDB requests'
  | 'DynamoDB storage + PITR'
  | 'Lambda requests + GB-s'
  | 'KMS keys + requests'
  | 'Secrets Manager'
  | 'CloudWatch metrics, alarms, dashboard'
  | 'CloudWatch Logs'
  | 'EventBridge schedule';

/** Mean days between two rotations of an idle record: TTL minus refresh-ahead minus mean jitter. */
export function rotationIntervalDays(): number {
  return STACK.refreshTokenTtlDays - STACK.refreshAheadDays - STACK.meanJitterDays;
}

/**
 * Refreshes per user per day when `asks` requests arrive at random over the day: after a
 * refresh the token serves asks for its lifetime less the 60 s minimum validity, and the next
 * ask after that refreshes (a renewal process: 24 / (59/60 h + 24/asks h)).
 */
export function refreshesPerDay(asks: number): number {
  if (asks <= 0) return 0;
  const servedHours = (STACK.accessTokenMinutes - 1) / 60;
  return 24 / (servedHours + 24 / asks);
}

/** The cost model. */
export function costModel(measured: MeasuredInputs, assumptions: CostAssumptions = DEFAULT_ASSUMPTIONS) {
  const p = PRICES;
  const users = assumptions.users;
  const share = (memoryGb: number) => (memoryGb * 1024) / MB_PER_VCPU;
  const gbSeconds = (memoryGb: number, ms: number) => memoryGb * (Math.ceil(ms) / 1000);

  // Durations: waiting on DynamoDB and the IdP, plus CPU time stretched by the Lambda CPU share.
  const warmMs = assumptions.dynamoLatencyMs + measured.warmCpuMs / share(STACK.getAccessTokenMemoryGb);
  const refreshMs =
    3 * assumptions.dynamoLatencyMs +
    assumptions.idpLatencyMs +
    measured.rotationCpuMs / share(STACK.getAccessTokenMemoryGb);
  // The sweep overlaps `concurrency` rotations: it is billed for wall time, shared among them.
  const rotationWallMs = Math.max(
    (3 * assumptions.dynamoLatencyMs + assumptions.idpLatencyMs) / STACK.sweepConcurrency,
    measured.rotationCpuMs / share(STACK.sweepMemoryGb),
    1000 / STACK.idpRateLimitPerSecond,
  );
  const sweepsPerMonth = STACK.sweepsPerHour * HOURS_PER_MONTH;

  const scenarios: CostScenario[] = assumptions.asksPerDay.map((asks) => {
    const refreshesPerUserMonth = refreshesPerDay(asks) * DAYS_PER_MONTH;
    // Any refresh moves the record's due date 11 days on: only idle users are rotated by the sweep.
    const sweepRotationsPerUserMonth = asks > 0 ? 0 : DAYS_PER_MONTH / rotationIntervalDays();
    const asksPerMonth = users * asks * DAYS_PER_MONTH;
    const refreshes = users * refreshesPerUserMonth;
    const warm = asksPerMonth - refreshes;
    const rotations = users * sweepRotationsPerUserMonth;

    const readUnits =
      warm * measured.warm.readUnits +
      refreshes * measured.refresh.readUnits +
      rotations * measured.rotation.readUnits;
    const writeUnits = refreshes * measured.refresh.writeUnits + rotations * measured.rotation.writeUnits;
    const dynamoRequests =
      (readUnits / 1e6) * p.dynamoDb.readRequestUnitsPerMillion +
      (writeUnits / 1e6) * p.dynamoDb.writeRequestUnitsPerMillion;
    // Item, index entry (keys) and the 100-byte overhead DynamoDB adds to each.
    const storedGb = (users * (measured.itemBytes + 100 + 60 + 100)) / 2 ** 30;
    const storage = storedGb * (p.dynamoDb.storageGbMonth + p.dynamoDb.pitrGbMonth);

    const invocations = asksPerMonth + sweepsPerMonth;
    const lambdaGbSeconds =
      warm * gbSeconds(STACK.getAccessTokenMemoryGb, warmMs) +
      refreshes * gbSeconds(STACK.getAccessTokenMemoryGb, refreshMs) +
      rotations * STACK.sweepMemoryGb * (rotationWallMs / 1000) +
      sweepsPerMonth *
        gbSeconds(STACK.sweepMemoryGb, measured.sweepColdStartMs + 4 * assumptions.dynamoLatencyMs);
    const lambda =
      (invocations / 1e6) * p.lambda.requestsPerMillion + lambdaGbSeconds * p.lambda.arm64GbSecond;

    // Concurrent instances (Little's law) bound how many data keys and secret reads there are:
    // each writing instance makes a data key every 5 minutes, each instance meets each key once,
    // and each instance reads the secret every 5 minutes.
    const secondsPerMonth = HOURS_PER_MONTH * 3600;
    const getInstances = Math.max(1, (warm * warmMs + refreshes * refreshMs) / 1000 / secondsPerMonth);
    const writers = refreshes > 0 ? getInstances : 0;
    const keysPerMonth = writers * 12 * HOURS_PER_MONTH + sweepsPerMonth;
    const kmsRequests = keysPerMonth * (1 + getInstances) + sweepsPerMonth * 2;
    const kms = STACK.kmsKeys * p.kms.keyMonth + (kmsRequests / 1e4) * p.kms.requestsPer10k;
    const secretReads = (refreshes > 0 ? getInstances * 12 * HOURS_PER_MONTH : 0) + sweepsPerMonth;
    const secrets =
      STACK.secrets * p.secretsManager.secretMonth + (secretReads / 1e4) * p.secretsManager.apiCallsPer10k;

    const metrics =
      assumptions.customMetrics * p.cloudWatch.customMetricMonth +
      STACK.alarms * p.cloudWatch.standardAlarmMonth +
      STACK.dashboards * p.cloudWatch.dashboardMonth;
    const logBytes =
      invocations * assumptions.platformLogBytesPerInvocation +
      warm * measured.warmLogBytes +
      (refreshes + rotations) * (measured.rotationLogBytes + measured.warmLogBytes);
    const logGb = logBytes / 2 ** 30;
    const logs =
      logGb * (p.cloudWatch.logsIngestedGb + STACK.logRetentionMonths * p.cloudWatch.logsStoredGbMonth);

    const lines: Record<CostLine, number> = {
      'DynamoDB requests': dynamoRequests,
      'DynamoDB storage + PITR': storage,
      'Lambda requests + GB-s': lambda,
      'KMS keys + requests': kms,
      'Secrets Manager': secrets,
      'CloudWatch metrics, alarms, dashboard': metrics,
      'CloudWatch Logs': logs,
      'EventBridge schedule': sweepsPerMonth * p.eventBridge.scheduledRuleInvocation,
    };
    const total = Object.values(lines).reduce((sum, value) => sum + value, 0);
    return {
      asksPerDay: asks,
      refreshesPerUserMonth,
      sweepRotationsPerUserMonth,
      lines,
      total,
      perUserMonth: total / users,
    };
  });

  return {
    scenarios,
    durations: { warmMs, refreshMs, rotationWallMs },
    assumptions,
  };
}

/** The model's output. */
export type CostResult = ReturnType<typeof costModel>;
