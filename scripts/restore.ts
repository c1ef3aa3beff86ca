import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { canConnect, type DynamoDbLocal, startDynamoDbLocal } from '../local/dynamodb-local';
import { DEMO_LIFETIMES, LOCAL_DYNAMO_PORT, LOCAL_TABLE_NAME } from '../local/embedded';

const USAGE = `Restores quarantined (REAUTH_REQUIRED) records once the cause is fixed.

  npm run restore -- --from <time> --to <time> --reason <reason> [--reason ...] [--dry-run] [--local]
  npm run restore -- --close-breaker [--trust-minutes <n>] [--local]

  --from, --to    the window in which the records were marked (ISO 8601 or epoch seconds)
  --reason        refresh_rejected, unusable_answer, deadline, expired, corrupted (repeat or comma-separate)
  --dry-run       report what would be restored; write nothing
  --close-breaker close the rejection circuit breaker once its cause is fixed; with --trust-minutes,
                  rejections in the next n minutes are acted on without counting (a real mass revocation)
  --local         the data of \`npm start\` (.data/), through its DynamoDB Local or one started for the run
  --data-dir      with --local: the data folder (default .data)
  --dynamo-port   with --local: where \`npm start\`'s DynamoDB Local listens (default ${LOCAL_DYNAMO_PORT})

Without --local it uses the environment the functions read (TOKEN_TABLE_NAME, TOKEN_KEY_ARN, AWS
credentials and region, the lifetime settings), so run it with the deployed functions' settings.
`;

/** `npm run restore`: the operator's restore of quarantined records, against the configured table. */
async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      from: { type: 'string' },
      to: { type: 'string' },
      reason: { type: 'string', multiple: true },
      'dry-run': { type: 'boolean', default: false },
      local: { type: 'boolean', default: false },
      'data-dir': { type: 'string', default: '.data' },
      'dynamo-port': { type: 'string', default: String(LOCAL_DYNAMO_PORT) },
      'close-breaker': { type: 'boolean', default: false },
      'trust-minutes': { type: 'string', default: '0' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values['close-breaker'])
    return closeBreaker(values.local, values['data-dir'], values['dynamo-port'], values['trust-minutes']);
  if (values.help || !values.from || !values.to || !values.reason) {
    process.stdout.write(USAGE);
    return values.help ? 0 : 2;
  }
  const instant = (text: string) => (/^\d+$/.test(text) ? Number(text) : text);
  const event = {
    from: instant(values.from),
    to: instant(values.to),
    reasons: values.reason.flatMap((r) => r.split(',')).map((r) => r.trim()),
    dryRun: values['dry-run'],
  };

  let ownDynamo: DynamoDbLocal | undefined;
  try {
    if (values.local) ownDynamo = await useLocalData(values['data-dir'], Number(values['dynamo-port']));
    // Imported after the environment is set: the configuration is read once, on first use.
    const { configFromEnvironment } = await import('../functions/config');
    const { buildRuntime } = await import('../functions/adapters/runtime');
    const { parseRestoreEvent } = await import('../functions/core/restore');
    const request = parseRestoreEvent(event);
    const runtime = buildRuntime(configFromEnvironment());
    const report = await runtime.restore.run(request, { remainingMs: () => Number.POSITIVE_INFINITY });
    runtime.flush();
    process.stdout.write(`restore report:\n${JSON.stringify(report, null, 2)}\n`);
    return 0;
  } finally {
    await ownDynamo?.stop();
  }
}

/** Closes the rejection circuit breaker, printing its state before and after (no token is read). */
async function closeBreaker(
  local: boolean,
  dataDir: string,
  dynamoPort: string,
  trustMinutes: string,
): Promise<number> {
  if (!/^\d+$/.test(trustMinutes)) {
    process.stdout.write('--trust-minutes must be a whole number of minutes\n');
    return 2;
  }
  let ownDynamo: DynamoDbLocal | undefined;
  try {
    if (local) ownDynamo = await useLocalData(dataDir, Number(dynamoPort));
    const { configFromEnvironment } = await import('../functions/config');
    const { buildRuntime, rotationSettings } = await import('../functions/adapters/runtime');
    const { RejectionBreaker } = await import('../functions/core/rejection-breaker');
    const config = configFromEnvironment();
    const runtime = buildRuntime(config);
    const breaker = new RejectionBreaker({
      store: runtime.store,
      clock: runtime.clock,
      metrics: runtime.metrics,
      logger: runtime.logger,
      settings: rotationSettings(config).rejectionBreaker,
    });
    const before = await runtime.store.getBreaker();
    await breaker.close(Number(trustMinutes) * 60);
    const after = await runtime.store.getBreaker();
    process.stdout.write(`rejection breaker: ${JSON.stringify({ before, after })}\n`);
    return 0;
  } finally {
    await ownDynamo?.stop();
  }
}

/**
 * Points the functions' settings at `npm start`'s data: its table, its local key, its demo
 * lifetimes, and its DynamoDB Local (or one started on the same data folder when it is not running).
 */
async function useLocalData(dataDir: string, port: number): Promise<DynamoDbLocal | undefined> {
  const keyFile = resolve(dataDir, 'local-token-key');
  if (!existsSync(keyFile)) throw new Error(`no local data in ${resolve(dataDir)} (run npm start first)`);
  let started: DynamoDbLocal | undefined;
  let endpoint = `http://127.0.0.1:${port}`;
  if (!(await canConnect(port))) {
    started = await startDynamoDbLocal({ dataDir: resolve(dataDir, 'dynamodb') });
    endpoint = started.endpoint;
  }
  Object.assign(process.env, {
    AWS_REGION: process.env.AWS_REGION ?? 'local',
    AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'local',
    AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? 'local',
    AWS_ENDPOINT_URL_DYNAMODB: endpoint,
    TOKEN_TABLE_NAME: LOCAL_TABLE_NAME,
    LOCAL_TOKEN_KEY: readFileSync(keyFile, 'utf8').trim(),
    REFRESH_TOKEN_TTL_SECONDS: String(DEMO_LIFETIMES.refreshTokenTtlSeconds),
    REFRESH_AHEAD_SECONDS: String(DEMO_LIFETIMES.refreshAheadSeconds),
    MAX_ROTATION_SECONDS: String(DEMO_LIFETIMES.maxRotationSeconds),
  });
  return started;
}

// EMF metric records are for CloudWatch's log ingestion, not for an operator's terminal.
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(
      `restore failed: ${error instanceof Error ? `${error.name}: ${error.message}` : 'unknown error'}\n`,
    );
    process.exit(1);
  },
);
