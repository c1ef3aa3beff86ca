import { parseArgs } from 'node:util';
import { EXPECTED_ALARM, type FaultScenario, minutesToAlarm, runAlarmDrill } from './alarm-drill';

const DAY = 86_400;

/**
 * `npm run simulate:alarms -- [--healthy-days 400] [--users 1000]`: the alarm figures of the README.
 * A healthy run (2 % IdP faults) must raise no alarm; each fault scenario must raise its alarm
 * before the first token would be lost. Prints a markdown table; exits 1 when a check fails.
 */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'healthy-days': { type: 'string', default: '400' },
      users: { type: 'string', default: '1000' },
      'scenario-users': { type: 'string', default: '100' },
      only: { type: 'string' },
    },
  });
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const rows: string[] = [];
  let ok = true;
  const scenarios = (values.only?.split(',') ?? [
    'healthy',
    ...Object.keys(EXPECTED_ALARM),
  ]) as FaultScenario[];
  for (const scenario of scenarios) {
    const started = Date.now();
    const healthy = scenario === 'healthy';
    const result = await runAlarmDrill({
      scenario,
      faultAtDay: 3,
      simulation: healthy
        ? {
            users: Number(values.users),
            days: Number(values['healthy-days']),
            sweepEveryMinutes: 60,
            faultRate: 0.02,
            seed: 1,
            onProgress: (line) => process.stderr.write(`${line}\n`),
          }
        : {
            users: Number(values['scenario-users']),
            days: 4,
            signInSpreadDays: 1,
            refreshTokenTtlSeconds: 2 * DAY,
            maxRotationSeconds: 30 * DAY,
            sweepEveryMinutes: 60,
            callsPerUserDay: 4,
            faultRate: 0.02,
            seed: 5,
          },
    });
    const wall = Math.round((Date.now() - started) / 1000);
    const raised = result.raised.map((r) => `${r.id} (${r.severity})`).join(', ') || 'none';
    if (healthy) {
      ok &&= result.raised.length === 0;
      rows.push(
        `| healthy, ${result.report.options.users} users, ${result.report.options.days} days, 2 % IdP faults | none | ${raised} | - | - | ${result.datapoints} datapoints, ${result.report.rotations} rotations, ${wall} s |`,
      );
      continue;
    }
    const expected = EXPECTED_ALARM[scenario];
    const minutes = minutesToAlarm(result, expected);
    const lossMinutes =
      result.firstLossAtMs !== undefined && result.faultAtMs !== undefined
        ? Math.round((result.firstLossAtMs - result.faultAtMs) / 60_000)
        : undefined;
    const inTime = minutes !== undefined && (lossMinutes === undefined || minutes < lossMinutes);
    ok &&= inTime;
    rows.push(
      `| ${scenario} | ${expected} | ${raised} | ${minutes ?? 'NOT RAISED'} | ${lossMinutes ?? '-'} | lost tokens: ${result.report.lostTokens}, ${wall} s |`,
    );
    process.stderr.write(`${rows.at(-1)}\n`);
  }
  const table = [
    '| run | expected alarm | alarms raised (first first) | minutes fault -> alarm | minutes fault -> first token lost | notes |',
    '|---|---|---|---|---|---|',
    ...rows,
  ];
  process.stdout.write(`${table.join('\n')}\n`);
  if (!ok) process.exit(1);
}

main().catch((error: unknown) => {
  process.stderr.write(`alarm drill failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
