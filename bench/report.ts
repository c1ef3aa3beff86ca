import type { BenchResults } from './bench';
import type { OperationCalls } from './calls';
import { type CostLine, PRICES, rotationIntervalDays, STACK } from './cost';
import type { CpuShare } from './cpu-profile';
import type { SweepCaseResult } from './sweep';

/** Shards of the due index the bench configures (the stack's default). */
const SHARDS = 4;

/** The command that reproduces a report. */
export const REPRODUCE = 'npm ci && npm run bench';

/** Renders the results as the markdown of bench/results.md. */
export function renderReport(r: BenchResults): string {
  const out: string[] = [];
  const push = (...lines: string[]) => out.push(...lines);
  push(
    '# token-keeper: measured near the limit',
    '',
    `Written by \`npm run bench${r.profile.name === 'smoke' ? ':smoke' : ''}\` (\`bench/run.ts\`, profile \`${r.profile.name}\`) ` +
      `on ${r.machine.date.slice(0, 16).replace('T', ' ')} UTC in ${minutes(r.seconds.total ?? 0)}. ` +
      `Reproduce: \`${REPRODUCE}\` (needs Java 17+ for DynamoDB Local; nothing else, no AWS account). ` +
      'Everything runs on this machine against the real local components: DynamoDB Local (Java) ' +
      'and the Transmit emulator (`local/transmit-server.ts`) over HTTP, with the production handlers, ' +
      'runtime, KMS envelope cipher and Secrets Manager credentials. KMS and Secrets Manager have no ' +
      'local implementation: their SDK clients are real but answered in process by a middleware, which ' +
      'also counts every call. These are benchmarks, not tests: timings vary with the machine and its load.',
    '',
    '## Machine',
    '',
    table(
      ['cores', 'CPU', 'memory', 'Node.js', 'Java', 'load average (1, 5, 15 min) at start / end'],
      [
        [
          String(r.machine.cores),
          r.machine.cpuModel,
          `${r.machine.memoryGb} GB`,
          r.machine.node,
          r.machine.java,
          `${r.machine.loadAverage.join(', ')} / ${r.loadAverageAtEnd.join(', ')}`,
        ],
      ],
    ),
    '',
  );
  const shared = r.sweep.cases.filter(
    (s) =>
      s.machineBusyPercent !== undefined &&
      s.oursBusyPercent !== undefined &&
      s.machineBusyPercent - s.oursBusyPercent > 20,
  );
  if ((r.machine.loadAverage[0] ?? 0) > r.machine.cores || shared.length > 0) {
    push(
      '> Other processes shared the machine during this run ' +
        `(load average ${r.machine.loadAverage[0]} at the start` +
        (shared.length > 0
          ? `; more than a fifth of the CPU went to them during the sweep cases ${shared.map((s) => `${s.latencyMs} ms × ${s.concurrency}`).join(', ')}`
          : '') +
        '), so some timings below are pessimistic. Call counts are not affected.',
      '',
    );
  }

  push('## Headline figures', '', headline(r), '');
  push(
    ...callsSection(r),
    ...latencySection(r),
    ...sweepSection(r),
    ...coldStartSection(r),
    ...costSection(r),
  );
  push(...missesSection(r));
  push(
    '## Sections and their duration',
    '',
    table(
      ['section', 'seconds'],
      Object.entries(r.seconds).map(([name, value]) => [name, value.toFixed(1)]),
    ),
    '',
  );
  return `${out.join('\n')}\n`;
}

function headline(r: BenchResults): string {
  const op = (prefix: string) => r.calls.operations.find((o) => o.operation.startsWith(prefix));
  const warm = op('getAccessToken, valid');
  const refresh = op('getAccessToken, refresh');
  const sweep = op('refreshSweep');
  const fractions = r.sweep.cases.filter((s) => Number.isFinite(s.fraction));
  const best = maxBy(fractions, (s) => s.fraction);
  const worst = minBy(fractions, (s) => s.fraction);
  const ceiling = machineCeiling(r);
  const attainable =
    ceiling > 0 ? fractions.map((s) => s.rotationsPerSecond / Math.min(s.idealPerSecond, ceiling)) : [];
  const cold = r.coldStart.timings.find((t) => t.name === 'getAccessToken' && t.sourceMaps);
  const n10 = r.cost.scenarios.find((s) => s.asksPerDay === 10);
  const n0 = r.cost.scenarios.find((s) => s.asksPerDay === 0);
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
      `${fmt(r.calls.sweep.indexEntriesPerDue, 3)} and ${fmt(r.calls.sweep.recordsReadPerDue, 3)} ` +
        `(${r.calls.sweep.notDue} records not due, 0 read; Scans: ${r.calls.sweep.scans})`,
      '1.0, no Scan',
      met(
        r.calls.sweep.indexEntriesPerDue === 1 &&
          r.calls.sweep.recordsReadPerDue === 1 &&
          r.calls.sweep.scans === 0,
      ),
    ],
    [
      `${r.calls.burst.callers} concurrent callers of one expired token: IdP refreshes`,
      String(r.calls.burst.idpRefreshes),
      '1',
      met(r.calls.burst.idpRefreshes === 1),
    ],
    [
      'warm getAccessToken / bare GetItem, p50 and p99',
      `${fmt(r.latency.ratioP50, 2)} and ${fmt(r.latency.ratioP99, 2)} ` +
        `(${fmt(r.latency.handler.p50, 2)} / ${fmt(r.latency.getItem.p50, 2)} ms, ${fmt(r.latency.handler.p99, 2)} / ${fmt(r.latency.getItem.p99, 2)} ms)`,
      'at most 1.2',
      met(r.latency.ratioP50 <= 1.2 && r.latency.ratioP99 <= 1.2),
    ],
    [
      'sweep rotations/s as a fraction of concurrency / latency',
      fractions.length > 0
        ? `${fmt(worst?.fraction ?? 0, 2)} to ${fmt(best?.fraction ?? 0, 2)} over ${fractions.length} cases (section 3)`
        : 'no case with latency > 0',
      'at least 0.9',
      met(fractions.length > 0 && fractions.every((s) => s.fraction >= 0.9)),
    ],
    [
      'sweep rotations/s as a fraction of what this machine allows: min(concurrency / latency, rate limit, machine ceiling)',
      attainable.length > 0
        ? `${fmt(Math.min(...attainable), 2)} to ${fmt(Math.max(...attainable), 2)}; ceiling ${fmt(ceiling, 1)} rotations/s; ` +
          `service CPU ${fmt(median(r.sweep.cases.map((s) => s.serviceCpuMsPerRotation)), 2)} ms per rotation, ` +
          `peak RSS ${fmt(Math.max(...r.sweep.cases.map((s) => s.peakRssMb)), 0)} MB`
        : 'no ceiling case',
      'reported',
      '',
    ],
    [
      'cold start of getAccessToken (fresh process to first answer, median)',
      cold
        ? `${fmt(cold.totalMs.p50, 0)} ms (import ${fmt(cold.importMs.p50, 0)} ms, first call ${fmt(cold.firstCallMs.p50, 0)} ms)`
        : 'not run',
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
  return table(['figure', 'measured', 'target', 'met'], rows);
}

function callFigure(o: OperationCalls | undefined): string {
  if (!o) return 'not run';
  return `${fmt(o.perOp.total, 3)} / ${fmt(o.minimum, 3)} = ${fmt(o.ratio, 3)}`;
}

function callsSection(r: BenchResults): string[] {
  const c = r.calls;
  const rows = c.operations.map((o) => [
    o.operation,
    String(o.ops),
    fmt(o.perOp.dynamoReads, 3),
    fmt(o.perOp.dynamoWrites, 3),
    fmt(o.perOp.dynamoQueries, 3),
    fmt(o.perOp.idp, 3),
    fmt(o.perOp.kms, 3),
    fmt(o.perOp.secretsManager, 3),
    fmt(o.perOp.total, 3),
    `${fmt(o.minimum, 3)}: ${o.minimumIs}`,
    `**${fmt(o.ratio, 3)}**`,
    fmt(o.readUnits, 3),
    `${fmt(o.writeUnitsTable, 2)} + ${fmt(o.writeUnitsIndex, 2)}`,
  ]);
  return [
    '## 1. Calls per operation, against the minimum',
    '',
    'Every AWS SDK request is counted by a middleware on the clients the production adapters use ' +
      '(inside the retry loop: a retried request counts twice, as AWS bills it); every IdP request by ' +
      'the `fetch` the IdP client is given. Each function is its own instance with its own caches, as ' +
      `in Lambda. ${r.profile.calls.users} users; the first operation of each instance (cold caches) is ` +
      'counted apart, below, and the rest is the steady state. Capacity units are what DynamoDB Local ' +
      'reports with `ReturnConsumedCapacity: INDEXES`.',
    '',
    table(
      [
        'operation',
        'ops',
        'DynamoDB reads',
        'DynamoDB writes',
        'Query',
        'IdP',
        'KMS',
        'Secrets Manager',
        'calls',
        'minimum',
        'measured / minimum',
        'RRU',
        'WRU (table + index)',
      ],
      rows,
    ),
    '',
    `Item size of a rotated record: ${fmt(c.meanItemBytes, 0)} bytes, ${fmt(c.sealedBytes, 0)} of them the ` +
      "sealed token set (the emulator's RS256 access and ID tokens, refresh token and session id, AES-GCM, " +
      'base64url), so every write of the whole item costs ' +
      `${Math.ceil(c.meanItemBytes / 1024)} WRU: the lease (an UpdateItem of two attributes) is billed ` +
      'on the full item size like the commit.',
    '',
    '**One-time calls of a fresh instance** (caches filling), beyond its steady state:',
    '',
    table(
      ['when', 'calls'],
      c.oneTime.map((o) => [
        o.when,
        Object.entries(o.calls)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ') || 'none',
      ]),
    ),
    '',
    'Secrets Manager is read once per instance per 5 minutes, the client token once per instance per ' +
      'hour, a KMS data key is made once per instance per 5 minutes or 1,000 seals, and a data key is ' +
      'unwrapped once per instance (LRU of 1,000 keys). In steady state no KMS or Secrets Manager call ' +
      'is on the path of a request.',
    '',
    `**The sweep's reads.** ${c.sweep.due} records due and ${c.sweep.notDue} stored but not due: ` +
      `${c.sweep.queryRequests} Query requests (minimum ${c.sweep.minimumQueryRequests}: one page of up to ` +
      `100 per shard, ${SHARDS} shards, plus the short last page), ${fmt(c.sweep.indexEntriesPerDue, 3)} index ` +
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
  const overhead = l.handler.p50 - l.getItem.p50;
  return [
    '## 2. getAccessToken latency, against a raw read',
    '',
    `The real getAccessToken handler (bundled like the stack bundles it, configured from the environment, ` +
      `with its Powertools logger and EMF metrics writing to a pipe) and a bare consistent \`GetItem\` of the ` +
      `same item on its own client, on the same DynamoDB Local, in one fresh process: ${l.warmup} warm-up ` +
      `calls of each, then ${l.iterations} of each, alternating which goes first. CPU time per call is ` +
      'measured in short blocks of ten calls of each part in turn.',
    '',
    table(
      ['', 'p50 ms', 'p90 ms', 'p99 ms', 'mean ms', 'CPU ms per call'],
      [
        [
          'getAccessToken handler',
          fmt(l.handler.p50, 3),
          fmt(l.handler.p90, 3),
          fmt(l.handler.p99, 3),
          fmt(l.handler.mean, 3),
          fmt(l.handlerCpuMs, 3),
        ],
        [
          'bare GetItem',
          fmt(l.getItem.p50, 3),
          fmt(l.getItem.p90, 3),
          fmt(l.getItem.p99, 3),
          fmt(l.getItem.mean, 3),
          fmt(l.getItemCpuMs, 3),
        ],
        [
          '**ratio** (target at most 1.2)',
          `**${fmt(l.ratioP50, 2)}**`,
          fmt(l.handler.p90 / l.getItem.p90, 2),
          `**${fmt(l.ratioP99, 2)}**`,
          fmt(l.handler.mean / l.getItem.mean, 2),
          fmt(l.handlerCpuMs / l.getItemCpuMs, 2),
        ],
      ],
    ),
    '',
    `The handler adds ${fmt(overhead, 3)} ms at the median and ${fmt(l.handlerCpuMs - l.getItemCpuMs, 3)} ms ` +
      'of CPU per call to the read it is built on. Where that CPU goes, each part timed alone in the same ' +
      'process:',
    '',
    table(
      ['part', 'CPU ms per call', 'beyond the bare GetItem'],
      [
        ['bare GetItem (low-level client)', fmt(l.getItemCpuMs, 3), ''],
        [
          'GetItem through the document client (marshalling)',
          fmt(l.documentGetCpuMs, 3),
          fmt(l.documentGetCpuMs - l.getItemCpuMs, 3),
        ],
        [
          "the store's get: document client, AES-GCM open, record mapping",
          fmt(l.storeGetCpuMs, 3),
          fmt(l.storeGetCpuMs - l.getItemCpuMs, 3),
        ],
        [
          'EMF metrics of one call: two counts and the flush to stdout',
          fmt(l.metricsCpuMs, 3),
          fmt(l.metricsCpuMs, 3),
        ],
        [
          'the rest, not accounted for by the parts above (wrapper, validation, TokenService, SDK client)',
          '',
          fmt(l.handlerCpuMs - l.storeGetCpuMs - l.metricsCpuMs, 3),
        ],
        [
          '**the handler**',
          `**${fmt(l.handlerCpuMs, 3)}**`,
          `**${fmt(l.handlerCpuMs - l.getItemCpuMs, 3)}**`,
        ],
      ],
    ),
    '',
    'A sampled CPU profile of a block of handler calls, by part of the program (built-ins charged to their caller):',
    '',
    profileTable(l.handlerProfile),
    '',
    `The EMF metrics are ${fmt(l.logBytesPerCall, 0)} bytes of log per call. DynamoDB Local answers in ` +
      `${fmt(l.getItem.p50, 2)} ms here; in AWS a GetItem from Lambda takes a few milliseconds, and the ` +
      `ratio there is (GetItem + ${fmt(overhead, 2)} ms) / GetItem, with the CPU part stretched by the ` +
      'Lambda CPU share at 256 MB (a seventh of a vCPU).',
    '',
  ];
}

function sweepSection(r: BenchResults): string[] {
  const ceiling = machineCeiling(r);
  const batch = r.profile.sweep.pageSize * SHARDS;
  const rows = r.sweep.cases.map((s) => {
    const attainable = Math.min(s.idealPerSecond, ceiling);
    return [
      String(s.latencyMs),
      String(s.concurrency),
      s.idpRateLimit >= 10_000 ? 'off' : `${s.idpRateLimit}/s`,
      `${s.rotated.toLocaleString('en-US')} of ${s.due.toLocaleString('en-US')} due, in ${fmt(s.wallSeconds, 1)} s`,
      `**${fmt(s.rotationsPerSecond, 1)}**`,
      Number.isFinite(s.idealPerSecond) ? fmt(s.idealPerSecond, 0) : '∞',
      Number.isFinite(s.fraction) ? `**${fmt(s.fraction, 2)}**` : '',
      Number.isFinite(s.fraction) ? fmt(s.rotationsPerSecond / attainable, 2) : '',
      fmt(barrierCeiling(batch, s.concurrency), 2),
      fmt(s.idpInFlightMean, 1),
      s.idpRateLimit < 10_000 ? '' : fmt(besidesIdpMs(s), 1),
    ];
  });
  const resourceRows = r.sweep.cases.map((s) => [
    `${s.latencyMs} ms × ${s.concurrency}`,
    fmt(s.serviceCpuMsPerRotation, 2),
    s.dynamoCpuMsPerRotation === undefined ? '?' : fmt(s.dynamoCpuMsPerRotation, 2),
    fmt(s.emulatorCpuMsPerRotation, 2),
    s.machineBusyPercent === undefined
      ? '?'
      : `${fmt(s.machineBusyPercent, 0)} (${s.oursBusyPercent === undefined ? '?' : fmt(s.oursBusyPercent, 0)})`,
    `${fmt(s.dynamoRequestMs, 1)} / ${fmt(s.idpCallMs, 1)}`,
    `${fmt(s.peakRssMb, 0)} (${fmt(s.rssStartMb, 0)})`,
    fmt(s.logBytesPerRotation, 0),
    `${fmt(s.callsPerRotation.dynamoReads, 3)} + ${fmt(s.callsPerRotation.dynamoWrites, 3)} + ${fmt(s.callsPerRotation.dynamoQueries, 3)} + ${fmt(s.callsPerRotation.idp, 3)} + ${fmt(s.callsPerRotation.kms + s.callsPerRotation.secretsManager, 3)}`,
    s.problems.join('; ') || 'none',
  ]);
  const profiled = r.sweep.cases.find((s) => s.cpuProfile !== undefined);
  const sweepProfile = r.profile.sweep;
  const ran =
    `${r.sweep.seeded.toLocaleString('en-US')} records written due (${sweepProfile.dueRecords.toLocaleString('en-US')} ` +
    `at first, the rest added when the backlog ran low; ${fmt(r.sweep.seedSeconds, 0)} s of writing), then ` +
    r.sweep.cases
      .map(
        (c) =>
          `${c.latencyMs} ms × ${c.concurrency}${c.idpRateLimit < 10_000 ? ` (rate limit ${c.idpRateLimit}/s)` : ''}`,
      )
      .join(', ') +
    (sweepProfile.caseSeconds === undefined
      ? ', each until nothing was due'
      : `, each an invocation whose timeout left ${sweepProfile.caseSeconds} s of rotating (the sweep stops starting ` +
        'rotations 15 s before its timeout and reports the rest as backlog)');
  const cpuPerRotation = median(r.sweep.cases.map((s) => s.serviceCpuMsPerRotation));
  const dynamoPerRotation = median(
    r.sweep.cases.flatMap((s) => (s.dynamoCpuMsPerRotation === undefined ? [] : [s.dynamoCpuMsPerRotation])),
  );
  const emulatorPerRotation = median(r.sweep.cases.map((s) => s.emulatorCpuMsPerRotation));
  const totalCpu = cpuPerRotation + dynamoPerRotation + emulatorPerRotation;
  // Lambda gives 1,769 MB a full vCPU and a proportional share below it.
  const lambdaCpuMs = cpuPerRotation / (512 / 1769);
  const busy = medianOrUndefined(r.sweep.cases.map((s) => s.machineBusyPercent));
  const unlimited = r.sweep.cases.filter((s) => s.idpRateLimit >= 10_000 && s.latencyMs > 0);
  const slow = maxBy(unlimited, (s) => s.latencyMs / s.concurrency);
  const limited = r.sweep.cases.find((s) => s.idpRateLimit < 10_000);
  const ours = medianOrUndefined(r.sweep.cases.map((s) => s.oursBusyPercent));
  return [
    "## 3. Sweep throughput, against the IdP's capacity",
    '',
    `**What ran:** ${ran}. Each case is one sweep invocation of a fresh instance in its own process ` +
      `(production runtime, logger and metrics; the stack's configuration: ${SHARDS} due shards, Query pages ` +
      `of ${sweepProfile.pageSize}) against the records still due, oldest first. IDP_RATE_LIMIT_RPS is set to ` +
      "its maximum (off) except where the table says otherwise: the stack's default of 20/s would pace every " +
      'case. Time-boxed rather than run to the last of 10,000 records: DynamoDB Local, not the sweep, sets the ' +
      'pace here (below), and the whole run has to stay under about 10 minutes on 2 cores.',
    '',
    table(
      [
        'IdP latency ms',
        'concurrency',
        'IDP_RATE_LIMIT_RPS',
        'rotated',
        'rotations/s',
        'ideal: min(concurrency / latency, rate limit)',
        'fraction (target ≥ 0.9)',
        'fraction of min(ideal, machine ceiling)',
        `batch-barrier bound (pages of ${batch})`,
        'IdP calls in flight (mean)',
        'ms per rotation besides the IdP: concurrency / rate - latency',
      ],
      rows,
    ),
    '',
    table(
      [
        'case',
        'service CPU ms / rotation',
        'DynamoDB Local CPU ms / rotation',
        'emulator CPU ms / rotation',
        'machine CPU busy % (ours)',
        'mean ms of a DynamoDB request / of an IdP call',
        'peak RSS MB (at start)',
        'log bytes / rotation',
        'calls / rotation: reads + writes + Query + IdP + KMS/SM',
        'problems',
      ],
      resourceRows,
    ),
    '',
    ...(profiled?.cpuProfile
      ? [
          `Where the service's CPU goes in a sweep (sampled profile of the ${profiled.latencyMs} ms × ` +
            `${profiled.concurrency} case, built-ins charged to their caller):`,
          '',
          profileTable(profiled.cpuProfile),
          '',
        ]
      : []),
    `**What limits it here.** Per rotation the three processes use ${fmt(cpuPerRotation, 2)} ms (the service: ` +
      `SDK requests, the IdP call, AES-GCM, a log line), ${fmt(dynamoPerRotation, 2)} ms (DynamoDB Local: a ` +
      `Query page share, a GetItem, the conditional lease and commit on a ${fmt(r.calls.meanItemBytes / 1024, 1)} KB ` +
      `item with its index) and ${fmt(emulatorPerRotation, 2)} ms (the emulator: two RS256 signatures) of CPU: ` +
      `${fmt(totalCpu, 2)} ms (medians over the cases; lowest where the sweep runs fastest, since the fixed ` +
      'costs of each wake-up, system calls and timers, are shared by more rotations), so ' +
      `${r.machine.cores} cores cannot rotate more than ` +
      `${fmt((r.machine.cores * 1000) / Math.max(0.001, totalCpu), 0)} records per second whatever the ` +
      `concurrency; the fastest case reached ${fmt(ceiling, 1)}/s, the machine ceiling used in the table. ` +
      (busy !== undefined && ours !== undefined && busy >= 90 && ours < 0.75 * busy
        ? `While the cases ran the machine's CPU was ${fmt(busy, 0)} % busy and our three processes used ` +
          `${fmt(ours, 0)} %: other work on the machine took the rest, so these rates are below what this ` +
          'machine gives when it is otherwise idle, and the CPU times per rotation are inflated by the contention. '
        : '') +
      'Where min(concurrency / latency, rate limit) is above the ceiling, the fraction cannot reach 0.9 here: ' +
      'the local components set the pace, not the sweep. In AWS, DynamoDB is a fleet rather than one Java ' +
      "process on the same two cores, and what remains is the sweep's own CPU (section 5, capacity).",
    '',
    `**What limits it anywhere.** Two things in the sweep itself keep the fraction below 1 even when ` +
      'DynamoDB and the CPU are not the limit. (1) Each worker does its read, lease and commit in sequence ' +
      'with its IdP call, so a worker spends latency + t per rotation, where t is its DynamoDB round trips ' +
      `and CPU: the last column above${slow ? ` (${fmt(besidesIdpMs(slow), 0)} ms at ${slow.latencyMs} ms × ${slow.concurrency}, where a DynamoDB Local request took ${fmt(slow.dynamoRequestMs, 1)} ms on average and the IdP call ${fmt(slow.idpCallMs, 0)} ms)` : ''}; ` +
      'the fraction is then at most latency / (latency + t). In AWS, with three DynamoDB requests of about ' +
      `5 ms and the ${fmt(cpuPerRotation, 1)} ms of CPU per rotation measured here stretched by the CPU share of a ` +
      `512 MB function (${fmt(lambdaCpuMs, 0)} ms), t is about ${fmt(15 + lambdaCpuMs, 0)} ms: at most ` +
      `${fmt(200 / (215 + lambdaCpuMs), 2)} at 200 ms and ${fmt(50 / (65 + lambdaCpuMs), 2)} at 50 ms. ` +
      '(2) The sweep queries one page per shard, ' +
      `then rotates that batch of up to ${batch} records and waits for the whole batch before it queries the ` +
      'next pages; workers idle while the last rotations of a batch finish and while the next pages are read, ' +
      'so with equal rotation times the fraction is at most batch / (concurrency × ⌈batch / concurrency⌉): ' +
      `${[8, 32, 64].map((c) => `${fmt(barrierCeiling(batch, c), 2)} at ${c}`).join(', ')} (the batch-barrier column), ` +
      'less with uneven IdP latency. Both are ours (`functions/core/sweep.ts`); see the last section.' +
      (limited
        ? ` With IDP_RATE_LIMIT_RPS at ${limited.idpRateLimit}/s (the stack's default) the sweep is paced by the ` +
          `rate limit: ${fmt(limited.rotationsPerSecond, 1)} rotations/s, ${fmt(limited.fraction, 2)} of it.`
        : ''),
    '',
    `Peak memory of one sweep invocation: ${fmt(Math.max(...r.sweep.cases.map((s) => s.peakRssMb), 0), 0)} MB RSS ` +
      `(the stack gives it 512 MB); ${fmt(median(r.sweep.cases.map((s) => s.logBytesPerRotation)), 0)} bytes of ` +
      'log and metrics per rotation.',
    '',
  ];
}

/**
 * Milliseconds each worker spends per rotation besides waiting for the IdP (its DynamoDB requests,
 * CPU, queueing): concurrency / rate - latency. Meaningful where the pool stayed full.
 */
function besidesIdpMs(s: SweepCaseResult): number {
  return (s.concurrency * 1000) / Math.max(0.001, s.rotationsPerSecond) - s.latencyMs;
}

/** The most rotations per second any case reached: what this machine allows (the 0 ms case is there to find it). */
function machineCeiling(r: BenchResults): number {
  return Math.max(0, ...r.sweep.cases.map((s) => s.rotationsPerSecond));
}

/** The best fraction a batch-at-a-time pool can reach with equal rotation times. */
export function barrierCeiling(batch: number, concurrency: number): number {
  return batch / (concurrency * Math.ceil(batch / concurrency));
}

function coldStartSection(r: BenchResults): string[] {
  const c = r.coldStart;
  const sizeRows = c.sizes.map((s) => [
    s.name,
    `${s.memoryMb} MB`,
    kb(s.bundleBytes),
    kb(s.sourceMapBytes),
    kb(s.zippedBytes),
    s.topPackages.map((p) => `${p.name} ${kb(p.bytes)}`).join(', '),
  ]);
  const timingRows = c.timings.map((t) => [
    t.name,
    t.sourceMaps ? 'yes (as deployed)' : 'no',
    String(t.runs),
    fmt(t.nodeBootMs.p50, 0),
    fmt(t.importMs.p50, 0),
    fmt(t.firstCallMs.p50, 0),
    fmt(t.secondCallMs.p50, 1),
    `**${fmt(t.totalMs.p50, 0)}**`,
    fmt(t.rssMb, 0),
    t.failures.join(', ') || 'none',
  ]);
  const deployed = c.timings.filter((t) => t.sourceMaps);
  const importShare = median(deployed.map((t) => t.importMs.p50 / Math.max(1, t.totalMs.p50)));
  const firstShare = median(deployed.map((t) => t.firstCallMs.p50 / Math.max(1, t.totalMs.p50)));
  const sdkBytes = c.sizes.map((s) => {
    const sdk = s.topPackages.filter((p) => p.name.startsWith('@aws-sdk') || p.name.startsWith('@smithy'));
    return sdk.reduce((sum, p) => sum + p.bytes, 0) / Math.max(1, s.bundleBytes);
  });
  const withMaps = c.timings.filter((t) => t.sourceMaps);
  const withoutMaps = c.timings.filter((t) => !t.sourceMaps);
  const mapsCost =
    withoutMaps.length > 0
      ? median(
          withoutMaps.map((t) => {
            const same = withMaps.find((w) => w.name === t.name);
            return same ? same.importMs.p50 - t.importMs.p50 : 0;
          }),
        )
      : undefined;
  return [
    '## 4. Cold start and size',
    '',
    'Each function bundled with esbuild exactly as the stack bundles it (`lib/function-defaults.ts`: ESM, ' +
      'target node24, minified, external source map without sources, the AWS SDK bundled, a `require` ' +
      'shim banner). Zipped: both files deflated, about what the stack uploads.',
    '',
    table(
      ['function', 'memory', 'index.mjs', 'index.mjs.map', 'zipped', 'largest parts of index.mjs'],
      sizeRows,
    ),
    '',
    `Then, per function and mode, fresh Node.js ${r.machine.node} processes (no TypeScript loader) with the ` +
      'environment of the stack and local adapters (DynamoDB Local, the emulator, `LOCAL_TOKEN_KEY`, ' +
      '`CLIENT_ID`/`CLIENT_SECRET`) import the bundle and call the handler twice: getAccessToken serves a ' +
      'stored token, storeTokens stores a sign-in, refreshSweep rotates one due record. Medians, ms:',
    '',
    table(
      [
        'function',
        '--enable-source-maps',
        'runs',
        'Node.js start',
        'import',
        'first call',
        'second call',
        'fork to answer',
        'RSS MB',
        'errors',
      ],
      timingRows,
    ),
    '',
    `**What dominates.** Loading the module is ${pct(importShare)} of the time from fork to answer and the ` +
      `first call ${pct(firstShare)} (building the runtime and SDK clients, resolving credentials and ` +
      'endpoints, the first TCP connections, and for the sweep the IdP client token). The AWS SDK and ' +
      `Smithy are ${pct(median(sdkBytes))} of each bundle's bytes: parsing and compiling them is the import. ` +
      (mapsCost === undefined
        ? ''
        : `\`--enable-source-maps\` (set by the stack) costs ${fmt(mapsCost, 0)} ms of import at the median: ` +
          'Node.js reads the source map of the module at load time. ') +
      'The Lambda service adds its own start of the execution environment, which cannot be measured here.',
    '',
  ];
}

function costSection(r: BenchResults): string[] {
  const { scenarios, capacity, durations, assumptions } = r.cost;
  const lines = Object.keys(scenarios[0]?.lines ?? {}) as CostLine[];
  const costRows = lines.map((line) => [line, ...scenarios.map((s) => `$${fmt(s.lines[line], 2)}`)]);
  costRows.push(['**total per month**', ...scenarios.map((s) => `**$${fmt(s.total, 2)}**`)]);
  costRows.push(['per user per month', ...scenarios.map((s) => `$${s.perUserMonth.toExponential(2)}`)]);
  costRows.push([
    'refreshes / rotations per user per month',
    ...scenarios.map((s) => `${fmt(s.refreshesPerUserMonth, 1)} / ${fmt(s.sweepRotationsPerUserMonth, 2)}`),
  ]);
  const p = PRICES;
  return [
    `## 5. Cost per ${assumptions.users.toLocaleString('en-US')} users per month`,
    '',
    '**Assumptions** (the model is `bench/cost.ts`):',
    '',
    table(
      ['assumption', 'value'],
      [
        ['users', `${assumptions.users.toLocaleString('en-US')}, one resource each (one record per user)`],
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
      ],
    ),
    '',
    '**Prices** (us-east-1, on-demand; written as constants with their source in `bench/cost.ts`):',
    '',
    table(
      ['service', 'price', 'source', 'since'],
      [
        [
          'DynamoDB on-demand',
          `$${p.dynamoDb.readRequestUnitsPerMillion} / M RRU, $${p.dynamoDb.writeRequestUnitsPerMillion} / M WRU, ` +
            `$${p.dynamoDb.storageGbMonth} / GB-month, PITR $${p.dynamoDb.pitrGbMonth} / GB-month`,
          p.dynamoDb.source,
          p.dynamoDb.since,
        ],
        [
          'Lambda arm64',
          `$${p.lambda.arm64GbSecond} / GB-s, $${p.lambda.requestsPerMillion} / M requests`,
          p.lambda.source,
          p.lambda.since,
        ],
        [
          'KMS',
          `$${p.kms.keyMonth} / key-month, $${p.kms.requestsPer10k} / 10k requests`,
          p.kms.source,
          p.kms.since,
        ],
        [
          'Secrets Manager',
          `$${p.secretsManager.secretMonth} / secret-month, $${p.secretsManager.apiCallsPer10k} / 10k calls`,
          p.secretsManager.source,
          p.secretsManager.since,
        ],
        [
          'CloudWatch',
          `$${p.cloudWatch.customMetricMonth} / metric-month, $${p.cloudWatch.standardAlarmMonth} / alarm-month, ` +
            `$${p.cloudWatch.dashboardMonth} / dashboard-month, logs $${p.cloudWatch.logsIngestedGb} / GB ingested ` +
            `+ $${p.cloudWatch.logsStoredGbMonth} / GB-month`,
          p.cloudWatch.source,
          p.cloudWatch.since,
        ],
        ['EventBridge', 'scheduled rule: no charge', p.eventBridge.source, p.eventBridge.since],
      ],
    ),
    '',
    table(['per month', ...scenarios.map((s) => `N = ${s.asksPerDay}`)], costRows),
    '',
    'Fixed part, whatever the traffic: two KMS keys ($2, $1 more per key for each of its first two ' +
      `automatic rotations), the secret, alarms, dashboard and metrics (about $${fmt(2 + 0.4 + STACK.alarms * 0.1 + 3 + assumptions.customMetrics * 0.3, 2)}). ` +
      'With callers asking, Lambda duration and the DynamoDB writes of the refreshes dominate: each on-demand ' +
      'refresh writes the whole item twice (lease and commit).',
    '',
    '**Capacity on paper** (stack defaults: 4 sweeps an hour, concurrency 8, 512 MB, 300 s):',
    '',
    table(
      ['figure', 'value'],
      [
        [
          'tokens stored',
          `${assumptions.users.toLocaleString('en-US')} records ≈ ${fmt(capacity.storedGb, 2)} GB with the index; DynamoDB has no item limit`,
        ],
        ['rotations needed per hour (all users idle)', fmt(capacity.idleRotationsPerHour, 0)],
        [
          'one sweep invocation',
          `min(concurrency / (IdP + 3 DynamoDB round trips) = ${fmt(capacity.sweepIoBoundPerSecond, 1)}/s, ` +
            `CPU share / CPU per rotation = ${fmt(capacity.sweepCpuBoundPerSecond, 1)}/s, ` +
            `IDP_RATE_LIMIT_RPS = ${fmt(capacity.sweepRateLimitPerSecond, 0)}/s) = ` +
            `${fmt(capacity.sweepPerSecond, 1)} rotations/s × 285 s = ${fmt(capacity.rotationsPerInvocation, 0)} per invocation`,
        ],
        [
          'one deployment, one sweep at a time',
          `${fmt(capacity.rotationsPerHour, 0)} rotations/hour ≈ ${fmt(capacity.idleUsersPerDeployment / 1e6, 1)} M idle users`,
        ],
        [
          'due index',
          `each rotation writes ${fmt(capacity.indexShardWriteUnitsPerRotation, 0)} WRU to one of ${STACK.dueShards} ` +
            `index partitions (1,000 WRU/s each): about ${fmt(capacity.rotationsPerSecondBeforeIndexThrottles, 0)} ` +
            "rotations and refreshes per second before the index throttles the table's writes",
        ],
        [
          'when to fan out',
          "when the due records of one interval exceed one invocation's ceiling (the SweepBacklog alarm says so): " +
            "first raise concurrency (bounded by the IdP's rate limit, unconfirmed for Transmit) or memory (the " +
            'CPU bound scales with it), then run one invocation per group of due shards; raise DUE_SHARDS before ' +
            'rotations and refreshes approach the index bound',
        ],
      ],
    ),
    '',
  ];
}

function missesSection(r: BenchResults): string[] {
  const notes: string[] = [];
  const l = r.latency;
  if (l.ratioP50 > 1.2 || l.ratioP99 > 1.2) {
    const parts = [
      ['the document client', l.documentGetCpuMs - l.getItemCpuMs],
      ['the AES-GCM open and record mapping', l.storeGetCpuMs - l.documentGetCpuMs],
      ['the EMF metrics written on every call (two lines)', l.metricsCpuMs],
      [
        'the rest (wrapper, validation, TokenService, SDK client)',
        l.handlerCpuMs - l.storeGetCpuMs - l.metricsCpuMs,
      ],
    ] as const;
    notes.push(
      `- **Warm latency ratio ${fmt(l.ratioP50, 2)} (p50) / ${fmt(l.ratioP99, 2)} (p99), target 1.2.** The handler ` +
        `adds ${fmt(l.handler.p50 - l.getItem.p50, 2)} ms at the median to a read that DynamoDB Local answers in ` +
        `${fmt(l.getItem.p50, 2)} ms, and spends ${fmt(l.handlerCpuMs - l.getItemCpuMs, 2)} ms more CPU per call ` +
        `than the bare read (${fmt(l.handlerCpuMs, 2)} against ${fmt(l.getItemCpuMs, 2)} ms): ` +
        parts.map(([name, ms]) => `${name} ${fmt(ms, 2)} ms`).join(', ') +
        ` (section 2). In the CPU profile of the handler, the Powertools metrics and their writes to stdout ` +
        `take ${pct(shareOf(l.handlerProfile, (part) => part.startsWith('Powertools') || part.includes('stdout')))} ` +
        `and our own code (functions/) ${pct(shareOf(l.handlerProfile, (part) => part.startsWith('token-keeper')))}; ` +
        'the AWS SDK and the HTTP stack are the rest, as for the bare read. The cause that is ours is the EMF ' +
        'metrics written on every call: two lines, one of them for a breakdown by source. Against a GetItem ' +
        'of about 4.5 ms from ' +
        `Lambda the same ${fmt(l.handler.p50 - l.getItem.p50, 2)} ms would give ` +
        `${fmt((4.5 + l.handler.p50 - l.getItem.p50) / 4.5, 2)}, before the Lambda CPU share stretches it.`,
    );
  }
  const fractions = r.sweep.cases.filter((s) => Number.isFinite(s.fraction) && s.fraction < 0.9);
  if (fractions.length > 0) {
    const ceiling = machineCeiling(r);
    const machineBound = fractions.filter((s) => s.idealPerSecond > ceiling);
    const ours = fractions.filter((s) => s.idealPerSecond <= ceiling);
    notes.push(
      `- **Sweep fraction below 0.9 in ${fractions.length} of ${r.sweep.cases.filter((s) => Number.isFinite(s.fraction)).length} cases.** ` +
        (machineBound.length > 0
          ? `${machineBound.map((s) => `${s.latencyMs} ms × ${s.concurrency}`).join(', ')}: concurrency / latency is ` +
            `above what this machine rotates at all (${fmt(ceiling, 1)}/s, the fastest case); DynamoDB Local, the ` +
            'emulator and the service share two cores (section 3). Not a property of the sweep. '
          : '') +
        (ours.length > 0
          ? `${ours.map((s) => `${s.latencyMs} ms × ${s.concurrency} (${fmt(s.fraction, 2)}; ${fmt(besidesIdpMs(s), 0)} ms per rotation besides the IdP, DynamoDB Local requests of ${fmt(s.dynamoRequestMs, 1)} ms)`).join(', ')}: ` +
            "the sweep's workers wait for their DynamoDB requests in sequence with the IdP call. "
          : '') +
        'Two causes are ours, in `functions/core/sweep.ts`: each worker holds the IdP slot only for the lease ' +
        'and the call but does its read and commit in sequence with them, and the pool drains before the next ' +
        'Query pages are read (the batch barrier, at most 0.89 at concurrency 64 with pages of 100).',
    );
  }
  for (const o of r.calls.operations) {
    if (Math.abs(o.ratio - 1) > 1e-9) notes.push(`- **${o.operation}: ${fmt(o.ratio, 3)} × the minimum.**`);
  }
  const problems = r.sweep.cases.filter((s) => s.problems.length > 0);
  for (const s of problems) {
    notes.push(`- **Sweep ${s.latencyMs} ms × ${s.concurrency}:** ${s.problems.join('; ')}.`);
  }
  return [
    '## Where a figure misses its target',
    '',
    ...(notes.length > 0 ? notes : ['Every figure with a target met it.']),
    '',
  ];
}

function shareOf(shares: readonly CpuShare[], matches: (part: string) => boolean): number {
  return shares.filter((share) => matches(share.part)).reduce((sum, share) => sum + share.share, 0);
}

function profileTable(shares: readonly CpuShare[]): string {
  const top = shares.slice(0, 8);
  const rest = shares.slice(8).reduce((sum, share) => sum + share.share, 0);
  const rows = top.map((share) => [share.part, pct(share.share)]);
  if (rest > 0) rows.push(['everything else', pct(rest)]);
  return table(['part of the program', 'share of CPU'], rows);
}

/** A markdown table. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const cellText = (cell: string) => cell.replace(/\|/g, '\\|');
  return [
    `| ${headers.map(cellText).join(' | ')} |`,
    `|${headers.map(() => '---').join('|')}|`,
    ...rows.map((row) => `| ${row.map(cellText).join(' | ')} |`),
  ].join('\n');
}

function fmt(value: number, digits: number): string {
  if (!Number.isFinite(value)) return String(value);
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
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

function medianOrUndefined(values: readonly (number | undefined)[]): number | undefined {
  const known = values.filter((value): value is number => value !== undefined);
  return known.length === 0 ? undefined : median(known);
}

function maxBy<T>(items: readonly T[], key: (item: T) => number): T | undefined {
  return items.reduce<T | undefined>(
    (best, item) => (best === undefined || key(item) > key(best) ? item : best),
    undefined,
  );
}

function minBy<T>(items: readonly T[], key: (item: T) => number): T | undefined {
  return items.reduce<T | undefined>(
    (best, item) => (best === undefined || key(item) < key(best) ? item : best),
    undefined,
  );
}

/** Re-exported for the smoke test. */
export type { SweepCaseResult };
