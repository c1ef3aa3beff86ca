import type { BenchResults } from './bench';
import { type OperationCalls, operation } from './calls';
import { type CostLine, PRICES, rotationIntervalDays, STACK } from './cost';
import type { CpuShare } from './cpu-profile';
import { caseTimeoutSeconds, NO_RATE_LIMIT, type SweepCaseResult } from './sweep';

/** Renders the results as the markdown of bench/results.md. */
export function renderReport(r: BenchResults): string {
  const m = r.machine;
  const shared = r.sweep.cases.filter(
    (s) =>
      s.machineBusyPercent !== undefined &&
      s.oursBusyPercent !== undefined &&
      s.machineBusyPercent - s.oursBusyPercent > 20,
  );
  const caveat =
    (m.loadAverage[0] ?? 0) > m.cores || shared.length > 0
      ? [
          `> Other processes shared the machine during this run (load average ${m.loadAverage[0]} at the start` +
            (shared.length > 0
              ? `; more than a fifth of the CPU went to them during the sweep cases ${shared.map(caseName).join(', ')}`
              : '') +
            '), so some timings below are pessimistic. Call counts are not affected.',
          '',
        ]
      : [];
  return lines(
    '# token-keeper: measured near the limit',
    '',
    `Written by \`npm run bench${r.profile.name === 'smoke' ? ':smoke' : ''}\` (profile \`${r.profile.name}\`) ` +
      `on ${m.date.slice(0, 16).replace('T', ' ')} UTC in ${minutes(r.seconds.total ?? 0)}; reproduce with ` +
      '`npm ci && npm run bench` (Java 17+ for DynamoDB Local, no AWS account). Measured on this machine ' +
      'against DynamoDB Local and the Transmit emulator over HTTP; KMS and Secrets Manager are answered ' +
      'in process. Timings vary with the machine and its load.',
    '',
    '## Machine',
    '',
    table('cores | CPU | memory | Node.js | Java | load average (1, 5, 15 min) at start / end', [
      [
        String(m.cores),
        m.cpuModel,
        `${m.memoryGb} GB`,
        m.node,
        m.java,
        `${m.loadAverage.join(', ')} / ${r.loadAverageAtEnd.join(', ')}`,
      ],
    ]),
    '',
    ...caveat,
    '## Headline figures',
    '',
    headline(r),
    '',
    ...callsSection(r),
    ...latencySection(r),
    ...sweepSection(r),
    ...coldStartSection(r),
    ...costSection(r),
    ...capacitySection(r),
    '## Sections and their duration',
    '',
    table(
      'section | seconds',
      Object.entries(r.seconds).map(([name, value]) => [name, value.toFixed(1)]),
    ),
  );
}

function headline(r: BenchResults): string {
  const warm = operation(r.calls, 'getAccessToken, valid');
  const refresh = operation(r.calls, 'getAccessToken, refresh');
  const sweep = operation(r.calls, 'refreshSweep');
  const reads = r.calls.sweep;
  const l = r.latency;
  const bounded = r.sweep.cases.filter((s) => Number.isFinite(s.fraction));
  const fractions = bounded.map((s) => s.fraction);
  const ceiling = machineCeiling(r);
  const attainable =
    ceiling > 0 ? bounded.map((s) => s.rotationsPerSecond / Math.min(s.idealPerSecond, ceiling)) : [];
  const cold = r.coldStart.timings.find((t) => t.name === 'getAccessToken' && t.sourceMaps);
  const gatSize = r.coldStart.sizes.find((z) => z.name === 'getAccessToken');
  const measuredRatios = r.sweep.cases.filter((s) => s.cpuRatio !== undefined);
  const ratios = measuredRatios.map((s) => s.cpuRatio as number);
  const chain = r.sweep.chain;
  const cost = (asks: number) => r.cost.scenarios.find((s) => s.asksPerDay === asks);
  const [n0, n10] = [cost(0), cost(10)];
  const rows: string[][] = [
    [
      'getAccessToken, token valid: calls per call',
      callFigure(warm),
      '1.0 × minimum (1 read)',
      met(warm?.ratio === 1),
    ],
    [
      'refresh: calls per refresh',
      callFigure(refresh),
      '1.0 × minimum (read, lease, IdP, commit)',
      met(refresh?.ratio === 1),
    ],
    [
      'sweep: calls per due record',
      callFigure(sweep),
      '1.0 × minimum',
      met(sweep !== undefined && Math.abs(sweep.ratio - 1) < 1e-9),
    ],
    [
      'sweep: index entries and records read per due record',
      `${fmt(reads.indexEntriesPerDue, 3)} and ${fmt(reads.recordsReadPerDue, 3)} ` +
        `(${reads.notDue} records not due, 0 read; Scans: ${reads.scans})`,
      '1.0, no Scan',
      met(reads.indexEntriesPerDue === 1 && reads.recordsReadPerDue === 1 && reads.scans === 0),
    ],
    [
      `${r.calls.burst.callers} concurrent callers of one expired token: IdP refreshes`,
      String(r.calls.burst.idpRefreshes),
      '1',
      met(r.calls.burst.idpRefreshes === 1),
    ],
    [
      'warm getAccessToken / bare GetItem, p50 and p99',
      `${fmt(l.ratioP50, 2)} and ${fmt(l.ratioP99, 2)} ` +
        `(${fmt(l.handler.p50, 2)} / ${fmt(l.getItem.p50, 2)} ms, ${fmt(l.handler.p99, 2)} / ${fmt(l.getItem.p99, 2)} ms)`,
      'at most 1.10 both',
      met(l.ratioP50 <= 1.1 && l.ratioP99 <= 1.1),
    ],
    [
      'service CPU per rotation / the same requests through bare SDK clients (3 DynamoDB + 1 IdP), same run',
      ratios.length > 0
        ? `${fmt(median(ratios), 2)} (median of ${ratios.length} cases, ${range(ratios)}; ` +
          `${fmt(median(measuredRatios.map((s) => s.steadyCpuMsPerRotation as number)), 2)} against ` +
          `${fmt(median(measuredRatios.map((s) => s.baselineCpuMsPerRotation as number)), 2)} ms)`
        : 'not measured',
      'at most 1.3',
      met(ratios.length > 0 && median(ratios) <= 1.3),
    ],
    [
      'cold start of getAccessToken (fresh process to first answer, median)',
      cold
        ? `${fmt(cold.totalMs.p50, 0)} ms (Node.js start ${fmt(cold.nodeBootMs.p50, 0)}, import ${fmt(cold.importMs.p50, 0)} ms, first call ${fmt(cold.firstCallMs.p50, 0)} ms; bundle ${gatSize ? kb(gatSize.bundleBytes) : '?'})`
        : 'not run',
      'at most 250 ms',
      met(cold !== undefined && cold.totalMs.p50 <= 250),
    ],
    [
      'rotations sustained with a backlog, as a fraction of IDP_RATE_LIMIT_RPS × time (chain of sweeps)',
      chain
        ? `${fmt(chain.fractionOfRateLimit, 2)}: ${fmt(chain.rotationsPerHour, 0)} rotations/hour at ${chain.idpRateLimit}/s; duty cycle ${fmt(chain.dutyCycle, 2)} over ${chain.links} links`
        : 'not run',
      'at least 0.9',
      met(chain !== undefined && chain.fractionOfRateLimit >= 0.9),
    ],
    [
      'sweep rotations/s as a fraction of min(concurrency / latency, rate limit)',
      fractions.length > 0
        ? `${range(fractions)} over ${fractions.length} cases (section 3); of min(that, machine ceiling ${fmt(ceiling, 1)}/s): ${attainable.length > 0 ? range(attainable) : '?'}`
        : 'no case with latency > 0',
      'reported',
      '',
    ],
    [
      'cost per million users per month',
      `${n0 ? `$${fmt(n0.total, 2)} idle (sweep only)` : ''}${n10 ? `, $${fmt(n10.total, 2)} at 10 tokens asked per user per day` : ''}`,
      'reported',
      '',
    ],
  ];
  return table('figure | measured | target | met', rows);
}

function callFigure(o: OperationCalls | undefined): string {
  return o ? `${fmt(o.perOp.total, 3)} / ${fmt(o.minimum, 3)} = ${fmt(o.ratio, 3)}` : 'not run';
}

function callsSection(r: BenchResults): string[] {
  const c = r.calls;
  return [
    '## 1. Calls per operation, against the minimum',
    '',
    'Every AWS and IdP request of the production clients is counted (a retried request counts twice); ' +
      `each function is its own instance. ${r.profile.calls.users} users, in steady state; the first ` +
      'operation of each instance is counted apart (below). Capacity units as DynamoDB Local reports them.',
    '',
    columns(c.operations, [
      ['operation', (o) => o.operation],
      ['ops', (o) => String(o.ops)],
      ['DynamoDB reads', (o) => fmt(o.perOp.dynamoReads, 3)],
      ['DynamoDB writes', (o) => fmt(o.perOp.dynamoWrites, 3)],
      ['Query', (o) => fmt(o.perOp.dynamoQueries, 3)],
      ['IdP', (o) => fmt(o.perOp.idp, 3)],
      ['KMS', (o) => fmt(o.perOp.kms, 3)],
      ['Secrets Manager', (o) => fmt(o.perOp.secretsManager, 3)],
      ['calls', (o) => fmt(o.perOp.total, 3)],
      ['minimum', (o) => `${fmt(o.minimum, 3)}: ${o.minimumIs}`],
      ['measured / minimum', (o) => `**${fmt(o.ratio, 3)}**`],
      ['RRU', (o) => fmt(o.readUnits, 3)],
      ['WRU (table + index)', (o) => `${fmt(o.writeUnitsTable, 2)} + ${fmt(o.writeUnitsIndex, 2)}`],
    ]),
    '',
    `Item size of a rotated record: ${fmt(c.meanItemBytes, 0)} bytes, ${fmt(c.sealedBytes, 0)} of them the ` +
      `sealed token set (${Math.ceil(c.meanItemBytes / 1024)} WRU per write of the whole item).`,
    '',
    '**One-time calls of a fresh instance**, beyond its steady state:',
    '',
    columns(c.oneTime, [
      ['when', (o) => o.when],
      [
        'calls',
        (o) =>
          Object.entries(o.calls)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ') || 'none',
      ],
    ]),
    '',
    `**The sweep's reads.** ${c.sweep.due} records due and ${c.sweep.notDue} not due: ${c.sweep.queryRequests} ` +
      `Query requests (minimum ${c.sweep.minimumQueryRequests}), ${fmt(c.sweep.indexEntriesPerDue, 3)} index ` +
      `entries and ${fmt(c.sweep.recordsReadPerDue, 3)} records read per due record, ${c.sweep.scans} Scans. ` +
      `Summary: ${JSON.stringify(c.sweep.summary)}.`,
    '',
    `**Concurrent callers.** ${c.burst.callers} getAccessToken calls at once on one expired token (IdP ` +
      `latency 50 ms): ${c.burst.idpRefreshes} IdP refresh, ${c.burst.servedSame ? 'all' : 'NOT all'} served ` +
      `the same new token. Reuse detections at the emulator over the section: ${c.reuseDetections}.`,
    '',
  ];
}

function latencySection(r: BenchResults): string[] {
  const l = r.latency;
  const row = (name: string, p: typeof l.handler, cpuMs: number) => [
    name,
    ...[p.p50, p.p90, p.p99, p.mean, cpuMs].map((v) => fmt(v, 3)),
  ];
  const part = (name: string, cpuMs: number) => [name, fmt(cpuMs, 3), fmt(cpuMs - l.getItemCpuMs, 3)];
  return [
    '## 2. getAccessToken latency, against a raw read',
    '',
    'The bundled getAccessToken handler and a bare consistent `GetItem` of the same item, on the same ' +
      `DynamoDB Local, in one fresh process: ${l.warmup} warm-up calls of each, then ${l.iterations} of ` +
      'each, alternating which goes first. CPU per call: blocks of ten calls of each part in turn.',
    '',
    table(' | p50 ms | p90 ms | p99 ms | mean ms | CPU ms per call', [
      row('getAccessToken handler', l.handler, l.handlerCpuMs),
      row('bare GetItem', l.getItem, l.getItemCpuMs),
      [
        '**ratio** (target at most 1.10)',
        `**${fmt(l.ratioP50, 2)}**`,
        fmt(l.handler.p90 / l.getItem.p90, 2),
        `**${fmt(l.ratioP99, 2)}**`,
        fmt(l.handler.mean / l.getItem.mean, 2),
        fmt(l.handlerCpuMs / l.getItemCpuMs, 2),
      ],
    ]),
    '',
    'CPU per call of each part, timed alone in the same process:',
    '',
    table('part | CPU ms per call | beyond the bare GetItem', [
      ['bare GetItem (low-level client)', fmt(l.getItemCpuMs, 3), ''],
      part('GetItem through the document client', l.documentGetCpuMs),
      part("the store's get (GetItem, unmarshall, decrypt, mapping)", l.storeGetCpuMs),
      ['EMF metrics of one call', fmt(l.metricsCpuMs, 3), fmt(l.metricsCpuMs, 3)],
      ['the rest (not in the parts above)', '', fmt(l.handlerCpuMs - l.storeGetCpuMs - l.metricsCpuMs, 3)],
      ['**the handler**', `**${fmt(l.handlerCpuMs, 3)}**`, `**${fmt(l.handlerCpuMs - l.getItemCpuMs, 3)}**`],
    ]),
    '',
    'Sampled CPU profile of a block of handler calls (built-ins charged to their caller):',
    '',
    profileTable(l.handlerProfile),
    '',
    `Log and EMF bytes per call: ${fmt(l.logBytesPerCall, 0)}.`,
    '',
  ];
}

function sweepSection(r: BenchResults): string[] {
  const { cases, chain } = r.sweep;
  const sweepProfile = r.profile.sweep;
  const ceiling = machineCeiling(r);
  const rateLimit = (limit: number) => (limit >= NO_RATE_LIMIT ? 'off' : `${limit}/s`);
  const profiled = cases.find((s) => s.cpuProfile !== undefined);
  const timeBox =
    sweepProfile.caseSeconds === undefined
      ? 'run until nothing was due'
      : `with a timeout of ${caseTimeoutSeconds(sweepProfile)} s`;
  return [
    "## 3. Sweep throughput, against the IdP's capacity",
    '',
    `${count(r.sweep.seeded)} records written due before and between the cases (${fmt(r.sweep.seedSeconds, 0)} s ` +
      `of writing). Each case is one sweep invocation of a fresh instance in its own process (the stack's ` +
      `configuration, Query pages of ${sweepProfile.pageSize}), ${timeBox}; IDP_RATE_LIMIT_RPS off unless the ` +
      'table names it.',
    '',
    columns(cases, [
      ['IdP latency ms', (s) => String(s.latencyMs)],
      ['concurrency', (s) => String(s.concurrency)],
      ['IDP_RATE_LIMIT_RPS', (s) => rateLimit(s.idpRateLimit)],
      ['rotated', (s) => `${count(s.rotated)} of ${count(s.due)} due, in ${fmt(s.wallSeconds, 1)} s`],
      ['rotations/s', (s) => `**${fmt(s.rotationsPerSecond, 1)}**`],
      [
        'ideal: min(concurrency / latency, rate limit)',
        (s) => (Number.isFinite(s.idealPerSecond) ? fmt(s.idealPerSecond, 0) : '∞'),
      ],
      ['fraction (target ≥ 0.9)', (s) => (Number.isFinite(s.fraction) ? `**${fmt(s.fraction, 2)}**` : '')],
      [
        'fraction of min(ideal, machine ceiling)',
        (s) =>
          Number.isFinite(s.fraction)
            ? fmt(s.rotationsPerSecond / Math.min(s.idealPerSecond, ceiling), 2)
            : '',
      ],
      ['IdP calls in flight (mean)', (s) => fmt(s.idpInFlightMean, 1)],
    ]),
    '',
    '![Sweep rotations/s against concurrency, one line per IdP latency](results-sweep.svg)',
    '',
    columns(cases, [
      ['case', caseName],
      ['service CPU ms / rotation', (s) => fmt(s.serviceCpuMsPerRotation, 2)],
      ['DynamoDB Local CPU ms / rotation', (s) => optional(s.dynamoCpuMsPerRotation, 2, '?')],
      ['emulator CPU ms / rotation', (s) => fmt(s.emulatorCpuMsPerRotation, 2)],
      [
        'machine CPU busy % (ours)',
        (s) =>
          s.machineBusyPercent === undefined
            ? '?'
            : `${fmt(s.machineBusyPercent, 0)} (${optional(s.oursBusyPercent, 0, '?')})`,
      ],
      [
        'mean ms of a DynamoDB request / of an IdP call',
        (s) => `${fmt(s.dynamoRequestMs, 1)} / ${fmt(s.idpCallMs, 1)}`,
      ],
      ['peak RSS MB (at start)', (s) => `${fmt(s.peakRssMb, 0)} (${fmt(s.rssStartMb, 0)})`],
      ['log bytes / rotation', (s) => fmt(s.logBytesPerRotation, 0)],
      [
        'calls / rotation: reads + writes + Query + IdP + KMS/SM',
        ({ callsPerRotation: c }) =>
          [c.dynamoReads, c.dynamoWrites, c.dynamoQueries, c.idp, c.kms + c.secretsManager]
            .map((v) => fmt(v, 3))
            .join(' + '),
      ],
      ['problems', (s) => s.problems.join('; ') || 'none'],
    ]),
    '',
    ...(profiled?.cpuProfile
      ? [
          `Sampled CPU profile of the ${caseName(profiled)} case (built-ins charged to their caller):`,
          '',
          profileTable(profiled.cpuProfile),
          '',
        ]
      : []),
    `Bare clients: after each case, in the same process at the same concurrency, ${sweepProfile.baselineRotations ?? 0} ` +
      'rotations of the same four requests with nothing around them (GetItem, conditional UpdateItem, IdP ' +
      'refresh, conditional PutItem). Warm: the first rotations of each left out.',
    '',
    columns(cases, [
      ['case', caseName],
      ['service CPU ms / rotation, warm', (s) => optional(s.steadyCpuMsPerRotation, 2)],
      ['bare clients CPU ms / rotation, warm', (s) => optional(s.baselineCpuMsPerRotation, 2)],
      ['ratio (target ≤ 1.3)', (s) => (s.cpuRatio === undefined ? '' : `**${fmt(s.cpuRatio, 2)}**`)],
      ['service CPU ms / rotation, whole invocation', (s) => fmt(s.serviceCpuMsPerRotation, 2)],
    ]),
    '',
    ...(chain
      ? [
          'A chain of sweeps, time-compressed: links with the timeout of the cases, each a fresh process ' +
            'started when the last ended with a backlog.',
          '',
          columns(
            [chain],
            [
              ['links', (h) => String(h.links)],
              ['IdP latency ms × concurrency', (h) => `${h.latencyMs} × ${h.concurrency}`],
              ['IDP_RATE_LIMIT_RPS', (h) => rateLimit(h.idpRateLimit)],
              ['rotated', (h) => count(h.rotated)],
              ['wall s (process starts included)', (h) => fmt(h.wallSeconds, 1)],
              ['sweeping s', (h) => fmt(h.sweepingSeconds, 1)],
              ['duty cycle', (h) => fmt(h.dutyCycle, 3)],
              ['rotations/hour', (h) => fmt(h.rotationsPerHour, 0)],
              ['of the rate limit (target ≥ 0.9)', (h) => `**${fmt(h.fractionOfRateLimit, 3)}**`],
              ['backlog at the end', (h) => count(h.backlogAtEnd)],
            ],
          ),
          '',
        ]
      : []),
    `Peak memory of one sweep invocation: ${fmt(Math.max(...cases.map((s) => s.peakRssMb), 0), 0)} MB RSS ` +
      `(the stack gives it at least 512 MB); ${fmt(median(cases.map((s) => s.logBytesPerRotation)), 0)} bytes of ` +
      'log and metrics per rotation.',
    '',
  ];
}

function coldStartSection(r: BenchResults): string[] {
  const c = r.coldStart;
  return [
    '## 4. Cold start and size',
    '',
    'Each function bundled as the stack bundles it (`lib/function-defaults.ts`); zipped: both files deflated.',
    '',
    columns(c.sizes, [
      ['function', (s) => s.name],
      ['memory', (s) => `${s.memoryMb} MB`],
      ['index.mjs', (s) => kb(s.bundleBytes)],
      ['index.mjs.map', (s) => kb(s.sourceMapBytes)],
      ['zipped', (s) => kb(s.zippedBytes)],
      ['largest parts of index.mjs', (s) => s.topPackages.map((p) => `${p.name} ${kb(p.bytes)}`).join(', ')],
    ]),
    '',
    `Fresh Node.js ${r.machine.node} processes with the stack's environment and local adapters import the ` +
      'bundle and call the handler twice (getAccessToken serves a stored token, storeTokens stores a ' +
      'sign-in, refreshSweep rotates one due record). Medians, ms:',
    '',
    columns(c.timings, [
      ['function', (t) => t.name],
      ['--enable-source-maps', (t) => (t.sourceMaps ? 'yes (as deployed)' : 'no')],
      ['runs', (t) => String(t.runs)],
      ['Node.js start', (t) => fmt(t.nodeBootMs.p50, 0)],
      ['import', (t) => fmt(t.importMs.p50, 0)],
      ['first call', (t) => fmt(t.firstCallMs.p50, 0)],
      ['second call', (t) => fmt(t.secondCallMs.p50, 1)],
      ['fork to answer', (t) => `**${fmt(t.totalMs.p50, 0)}**`],
      ['RSS MB', (t) => fmt(t.rssMb, 0)],
      ['errors', (t) => t.failures.join(', ') || 'none'],
    ]),
    '',
  ];
}

function costSection(r: BenchResults): string[] {
  const { scenarios, durations, assumptions } = r.cost;
  const costLines = Object.keys(scenarios[0]?.lines ?? {}) as CostLine[];
  const costRows = costLines.map((line) => [line, ...scenarios.map((s) => `$${fmt(s.lines[line], 2)}`)]);
  costRows.push(
    ['**total per month**', ...scenarios.map((s) => `**$${fmt(s.total, 2)}**`)],
    ['per user per month', ...scenarios.map((s) => `$${s.perUserMonth.toExponential(2)}`)],
    [
      'refreshes / rotations per user per month',
      ...scenarios.map((s) => `${fmt(s.refreshesPerUserMonth, 1)} / ${fmt(s.sweepRotationsPerUserMonth, 2)}`),
    ],
  );
  const p = PRICES;
  const prices: [string, string, { source: string; since: string }][] = [
    [
      'DynamoDB on-demand',
      `$${p.dynamoDb.readRequestUnitsPerMillion} / M RRU, $${p.dynamoDb.writeRequestUnitsPerMillion} / M WRU, ` +
        `$${p.dynamoDb.storageGbMonth} / GB-month, PITR $${p.dynamoDb.pitrGbMonth} / GB-month`,
      p.dynamoDb,
    ],
    [
      'Lambda arm64',
      `$${p.lambda.arm64GbSecond} / GB-s, $${p.lambda.requestsPerMillion} / M requests`,
      p.lambda,
    ],
    ['KMS', `$${p.kms.keyMonth} / key-month, $${p.kms.requestsPer10k} / 10k requests`, p.kms],
    [
      'Secrets Manager',
      `$${p.secretsManager.secretMonth} / secret-month, $${p.secretsManager.apiCallsPer10k} / 10k calls`,
      p.secretsManager,
    ],
    [
      'CloudWatch',
      `$${p.cloudWatch.customMetricMonth} / metric-month, $${p.cloudWatch.standardAlarmMonth} / alarm-month, ` +
        `$${p.cloudWatch.dashboardMonth} / dashboard-month, logs $${p.cloudWatch.logsIngestedGb} / GB ingested ` +
        `+ $${p.cloudWatch.logsStoredGbMonth} / GB-month`,
      p.cloudWatch,
    ],
    ['EventBridge', 'scheduled rule: no charge', p.eventBridge],
  ];
  const users = count(assumptions.users);
  return [
    `## 5. Cost per ${users} users per month`,
    '',
    '**Assumptions** (the model is `bench/cost.ts`):',
    '',
    table('assumption | value', [
      ['users', `${users}, one resource each (one record per user)`],
      [
        'rotation of an idle user',
        `every ${fmt(rotationIntervalDays(), 3)} days: refresh token 14 days, rotated 3 days ahead, minus ` +
          `3 h mean jitter (${fmt(30.417 / rotationIntervalDays(), 2)} rotations a month)`,
      ],
      [
        'access tokens asked per user per day (N)',
        `${assumptions.asksPerDay.join(', ')}; asks arrive at random, a token serves asks for 59 minutes, the ` +
          'next ask refreshes (refreshes a day = 24 / (59/60 + 24/N)); any refresh pushes the sweep 11 days on, ' +
          'so only idle users are rotated by the sweep',
      ],
      ['DynamoDB request from Lambda', `${assumptions.dynamoLatencyMs} ms`],
      ['IdP refresh latency', `${assumptions.idpLatencyMs} ms`],
      [
        'Lambda duration',
        `waiting time + measured CPU time / CPU share (memory / 1,769 MB of a vCPU): warm getAccessToken ` +
          `${fmt(durations.warmMs, 1)} ms, refresh ${fmt(durations.refreshMs, 1)} ms (256 MB), sweep ` +
          `${fmt(durations.rotationWallMs, 1)} ms of a 512 MB invocation per rotation at concurrency ` +
          `${STACK.sweepConcurrency}; every sweep invocation is a cold start (INIT is billed)`,
      ],
      [
        'KMS requests',
        "a data key per writing instance per 5 min, unwrapped once by each instance (instances by Little's " +
          'law from the request rate and duration), plus about 3 per sweep',
      ],
      ['Secrets Manager reads', 'one per instance per 5 min, one per sweep'],
      [
        'CloudWatch',
        `${assumptions.customMetrics} custom metric streams, ${STACK.alarms} alarms, ${STACK.dashboards} ` +
          `dashboard; logs: measured bytes per call and rotation + ${assumptions.platformLogBytesPerInvocation} ` +
          `bytes of platform lines per invocation, kept ${STACK.logRetentionMonths} months`,
      ],
      [
        'not counted',
        "the IdP (Transmit bills separately), the callers' own Lambda invocations, data transfer, free tiers",
      ],
    ]),
    '',
    '**Prices** (us-east-1, on-demand; constants with their source in `bench/cost.ts`):',
    '',
    table(
      'service | price | source | since',
      prices.map(([service, price, page]) => [service, price, page.source, page.since]),
    ),
    '',
    table(['per month', ...scenarios.map((s) => `N = ${s.asksPerDay}`)].join(' | '), costRows),
    '',
  ];
}

function capacitySection(r: BenchResults): string[] {
  const { rows, simulation: sim } = r.capacity;
  return [
    '## 6. Capacity of one deployment',
    '',
    'rotations/s = min(R, k / (L + 3 d + c × 1769 / M), 1000 × M / (1769 × c), DynamoDB); users = rotations/s × ' +
      '86,400 × duty cycle × I. R: IDP_RATE_LIMIT_RPS; k: SWEEP_CONCURRENCY; L: IdP latency (200 ms); d: a ' +
      "DynamoDB request (5 ms); c: the service CPU per rotation (section 3, warm, median); M: the sweep's " +
      'memory (MB); DynamoDB: 40,000 WRU/s per table and 1,000 WRU/s per due shard; I: days between two ' +
      `rotations of an idle user (${fmt(rows[0] ? rows[0].users / rows[0].rotationsPerDay : 0, 3)}).`,
    '',
    columns(rows, [
      ['scenario', (row) => row.name],
      ['IdP rate /s', (row) => fmt(row.idpBound, 0)],
      ['concurrency / latency /s', (row) => fmt(row.concurrencyBound, 0)],
      ['CPU /s', (row) => fmt(row.cpuBound, 0)],
      ['DynamoDB /s', (row) => fmt(row.dynamoBound, 0)],
      ['gives out first', (row) => `**${row.limitedBy}**`],
      ['duty cycle', (row) => fmt(row.dutyCycle, 2)],
      ['rotations/day', (row) => count(Math.round(row.rotationsPerDay))],
      ['users kept alive', (row) => `**${fmt(row.users / 1e6, 2)} M**`],
    ]),
    '',
    'Check of the model, a time-compressed simulation (the real core on an in-memory store, an instant IdP, a ' +
      `virtual clock, a sweep every 15 minutes): ${count(sim.users)} idle users over ${sim.days} days, ` +
      `${fmt(sim.measuredPerDay, 1)} rotations/day measured against ${fmt(sim.modelPerDay, 1)} from the model ` +
      `(${fmt(100 * sim.error, 2)} %; target within 5 %), in ${fmt(sim.wallSeconds, 1)} s.`,
    '',
  ];
}

function profileTable(shares: readonly CpuShare[]): string {
  const rows = shares.slice(0, 8).map((share) => [share.part, pct(share.share)]);
  const rest = shares.slice(8).reduce((sum, share) => sum + share.share, 0);
  if (rest > 0) rows.push(['everything else', pct(rest)]);
  return table('part of the program | share of CPU', rows);
}

/** A markdown table; `header` is its column names, ` | ` between them. */
function table(header: string, rows: readonly (readonly string[])[]): string {
  const cellText = (cell: string) => cell.replace(/\|/g, '\\|');
  return [
    `| ${header} |`,
    `|${header
      .split(' | ')
      .map(() => '---')
      .join('|')}|`,
    ...rows.map((row) => `| ${row.map(cellText).join(' | ')} |`),
  ].join('\n');
}

/** A markdown table of `items`, one row each: every column is its name and how to write its cell. */
function columns<T>(items: readonly T[], spec: readonly (readonly [string, (item: T) => string])[]): string {
  return table(
    spec.map(([name]) => name).join(' | '),
    items.map((item) => spec.map(([, cell]) => cell(item))),
  );
}

/** A number, or `missing` when it was not measured. */
function optional(value: number | undefined, digits: number, missing = ''): string {
  return value === undefined ? missing : fmt(value, digits);
}

function lines(...all: string[]): string {
  return `${all.join('\n')}\n`;
}

/** The case's name in the tables: `<IdP latency> ms × <concurrency>`. */
function caseName(s: SweepCaseResult): string {
  return `${s.latencyMs} ms × ${s.concurrency}`;
}

/** The most rotations per second any case reached: what this machine allows (the 0 ms case is there to find it). */
function machineCeiling(r: BenchResults): number {
  return Math.max(0, ...r.sweep.cases.map((s) => s.rotationsPerSecond));
}

function fmt(value: number, digits: number): string {
  if (!Number.isFinite(value)) return String(value);
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function count(value: number): string {
  return value.toLocaleString('en-US');
}

function range(values: readonly number[]): string {
  return `${fmt(Math.min(...values), 2)} to ${fmt(Math.max(...values), 2)}`;
}

function kb(bytes: number): string {
  return `${fmt(bytes / 1024, 0)} KB`;
}

function pct(share: number): string {
  return `${fmt(share * 100, 0)} %`;
}

function minutes(seconds: number): string {
  return seconds >= 90 ? `${fmt(seconds / 60, 1)} min` : `${fmt(seconds, 0)} s`;
}

function met(ok: boolean): string {
  return ok ? 'yes' : '**no**';
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? 0 : (sorted[Math.floor((sorted.length - 1) / 2)] ?? 0);
}
