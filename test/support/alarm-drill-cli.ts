import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { renderRunChart } from './alarm-chart';
import {
  chartOfDrill,
  EXPECTED_ALARM,
  type FaultScenario,
  minutesToAlarm,
  runAlarmDrill,
} from './alarm-drill';

const DAY = 86_400;

/**
 * `npm run simulate:alarms -- [--healthy-days 400] [--users 1000] [--only <scenario,...>] [--chart <file>]`:
 * the alarm figures of the README. A healthy run (2 % IdP faults) must raise no alarm, lose no
 * token and end every user at the deadline; each fault scenario must raise its alarm before the
 * first token would be lost. Prints a markdown table and writes an SVG chart of each run (with
 * several runs, the scenario's name goes before the extension); exits 1 when a check fails.
 */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'healthy-days': { type: 'string', default: '400' },
      users: { type: 'string', default: '1000' },
      'scenario-users': { type: 'string', default: '100' },
      only: { type: 'string' },
      chart: { type: 'string', default: 'simulation-chart.svg' },
    },
  });
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const rows: string[] = [];
  let ok = true;
  const scenarios = (values.only?.split(',') ?? [
    'healthy',
    ...Object.keys(EXPECTED_ALARM),
  ]) as FaultScenario[];
  const chartFile = (scenario: FaultScenario) =>
    scenarios.length === 1 ? values.chart : values.chart.replace(/(\.svg)?$/, `-${scenario}.svg`);
  for (const scenario of scenarios) {
    const started = Date.now();
    let progressAt = performance.now();
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
            onProgress: (line) => {
              // One line per 30 simulated days: 720 hourly sweeps.
              const now = performance.now();
              process.stderr.write(
                `${line} (${Math.round((now - progressAt) / 720)} ms of wall time per sweep)\n`,
              );
              progressAt = now;
            },
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
    writeFileSync(chartFile(scenario), renderRunChart(chartOfDrill(result)));
    process.stderr.write(`chart of the run: ${chartFile(scenario)}\n`);
    const raised = result.raised.map((r) => `${r.id} (${r.severity})`).join(', ') || 'none';
    if (healthy) {
      const r = result.report;
      const endedAtDeadline = r.reauthRequiredEvents.deadline ?? 0;
      const withData = result.timelines.filter((t) => t.hadData);
      ok &&=
        result.raised.length === 0 &&
        r.lostTokens === 0 &&
        r.endedEarly === 0 &&
        r.notEndedAtDeadline === 0 &&
        r.duplicateIdpUses === 0;
      rows.push(
        `| healthy: ${r.options.users} users, ${r.options.days} days, sweeps every ${r.options.sweepEveryMinutes} min (${r.sweeps}), ${Math.round(r.options.faultRate * 100)} % IdP faults, ${result.datapoints} datapoints, ${r.rotations} rotations | none | ${raised} | - | - | ` +
          `${r.faultsInjected} IdP faults; ${endedAtDeadline} of ${r.signIns} users ended at their deadline (${r.endedEarly} early, ${r.notEndedAtDeadline} not at it); lost tokens: ${r.lostTokens}; ` +
          `alarms whose metrics had data: ${withData.length} of ${result.timelines.length} (none: ${result.timelines
            .filter((t) => !t.hadData)
            .map((t) => t.id)
            .join(
              ', ',
            )}); ${wall} s (${Math.round((r.wallSeconds * 1000) / Math.max(1, r.sweeps))} ms per sweep) |`,
      );
      process.stderr.write(`${rows.at(-1)}\n`);
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
