import { parseArgs } from 'node:util';
import { formatReport, runSimulation } from './simulation';

/** `npm run simulate -- --users 1000 --days 400 --fault-rate 0.02`: a year in minutes. */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      users: { type: 'string', default: '1000' },
      days: { type: 'string', default: '400' },
      'fault-rate': { type: 'string', default: '0.02' },
      'calls-per-user-day': { type: 'string', default: '0.1' },
      'sweep-every-minutes': { type: 'string', default: '60' },
      seed: { type: 'string', default: '1' },
      'no-incidents': { type: 'boolean', default: false },
    },
  });
  const number = (name: keyof typeof values) => {
    const value = Number(values[name]);
    if (!Number.isFinite(value) || value < 0) throw new Error(`--${name} must be a non-negative number`);
    return value;
  };
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const report = await runSimulation({
    users: number('users'),
    days: number('days'),
    faultRate: number('fault-rate'),
    callsPerUserDay: number('calls-per-user-day'),
    sweepEveryMinutes: number('sweep-every-minutes'),
    seed: number('seed'),
    dueShards: 8,
    // The edges, spread over the run: a permission mistake (403 to every refresh), a wrong tenant
    // (invalid_grant to every refresh: the breaker trips, the operator restores), a stalling table
    // (lease and commit answers 28 s late), and DUE_SHARDS lowered under the stored records.
    incidents: values['no-incidents']
      ? []
      : [
          { kind: 'idpForbidden', startDay: Math.floor(number('days') * 0.15), hours: 6 },
          { kind: 'idpRejectsAll', startDay: Math.floor(number('days') * 0.3), hours: 6 },
          {
            kind: 'storeStalls',
            startDay: Math.floor(number('days') * 0.45),
            hours: 24,
            share: 0.1,
            delaySeconds: 28,
          },
          { kind: 'dueShardsChange', startDay: Math.floor(number('days') * 0.6), dueShards: 2 },
        ],
    onProgress: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(`${formatReport(report)}\n`);
  const ok =
    report.lostTokens === 0 &&
    report.duplicateIdpUses === 0 &&
    report.endedEarly === 0 &&
    report.notEndedAtDeadline === 0;
  if (!ok) {
    process.stderr.write('FAILED: tokens were lost or a deadline was not kept\n');
    process.exit(1);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`simulation failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
