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
    ...capacitySection(r),
  );
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
  const gatSize = r.coldStart.sizes.find((z) => z.name === 'getAccessToken');
  const measuredRatios = r.sweep.cases.filter((s) => s.cpuRatio !== undefined);
  const ratios = measuredRatios.map((s) => s.cpuRatio as number);
  const steady = measuredRatios.map((s) => s.steadyCpuMsPerRotation as number);
  const bare = measuredRatios.map((s) => s.baselineCpuMsPerRotation as number);
  const chain = r.sweep.chain;
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
      'at most 1.10 both',
      met(r.latency.ratioP50 <= 1.1 && r.latency.ratioP99 <= 1.1),
    ],
    [
      'service CPU per rotation / the same requests through bare SDK clients (3 DynamoDB + 1 IdP), same run',
      ratios.length > 0
        ? `${fmt(median(ratios), 2)} (median of ${ratios.length} cases, ${fmt(Math.min(...ratios), 2)} to ${fmt(Math.max(...ratios), 2)}; ` +
          `${fmt(median(steady), 2)} against ${fmt(median(bare), 2)} ms)`
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
        ? `${fmt(worst?.fraction ?? 0, 2)} to ${fmt(best?.fraction ?? 0, 2)} over ${fractions.length} cases (section 3); of min(that, machine ceiling ${fmt(ceiling, 1)}/s): ${attainable.length > 0 ? `${fmt(Math.min(...attainable), 2)} to ${fmt(Math.max(...attainable), 2)}` : '?'}`
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
          '**ratio** (target at most 1.10)',
          `**${fmt(l.ratioP50, 2)}**`,
          fmt(l.handler.p90 / l.getItem.p90, 2),
          `**${fmt(l.ratioP99, 2)}**`,
          fmt(l.handler.mean / l.getItem.mean, 2),
          fmt(l.handlerCpuMs / l.getItemCpuMs, 2),
        ],
      ],
    ),
    '',
    'CPU per call of each part, timed alone in the same process:',
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
          "the store's get: low-level GetItem, unmarshall, AES-GCM open, record mapping",
          fmt(l.storeGetCpuMs, 3),
          fmt(l.storeGetCpuMs - l.getItemCpuMs, 3),
        ],
        [
          'EMF metrics of one call: the count with its breakdown, one document to stdout',
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
    `Log and EMF bytes per call: ${fmt(l.logBytesPerCall, 0)}.`,
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
    table(
      [
        'case',
        'service CPU ms / rotation, warm',
        'bare clients CPU ms / rotation, warm',
        'ratio (target ≤ 1.3)',
        'service CPU ms / rotation, whole invocation',
      ],
      r.sweep.cases.map((s) => [
        `${s.latencyMs} ms × ${s.concurrency}`,
        s.steadyCpuMsPerRotation === undefined ? '' : fmt(s.steadyCpuMsPerRotation, 2),
        s.baselineCpuMsPerRotation === undefined ? '' : fmt(s.baselineCpuMsPerRotation, 2),
        s.cpuRatio === undefined ? '' : `**${fmt(s.cpuRatio, 2)}**`,
        fmt(s.serviceCpuMsPerRotation, 2),
      ]),
    ),
    '',
    'Bare clients: after each case, in the same process and at the same concurrency, ' +
      `${r.profile.sweep.baselineRotations ?? 0} rotations made of the same four requests with nothing around them ` +
      '(`bench/children/bare-rotations.ts`: GetItem, conditional UpdateItem, the IdP refresh POST, conditional ' +
      'PutItem of the item). Warm: the first rotations of each (connections, client token, data key, JIT) left out.',
    '',
    ...(r.sweep.chain
      ? [
          `A chain of sweeps (time-compressed: each link rotates ${sweepProfile.caseSeconds ?? 285} s instead of 285 s; ` +
            'each link a fresh process started when the last one ended with a backlog, as `functions/handlers/refresh-sweep.ts` decides):',
          '',
          table(
            [
              'links',
              'IdP latency ms × concurrency',
              'IDP_RATE_LIMIT_RPS',
              'rotated',
              'wall s (process starts included)',
              'sweeping s',
              'duty cycle',
              'rotations/hour',
              'of the rate limit (target ≥ 0.9)',
              'backlog at the end',
            ],
            [
              [
                String(r.sweep.chain.links),
                `${r.sweep.chain.latencyMs} × ${r.sweep.chain.concurrency}`,
                `${r.sweep.chain.idpRateLimit}/s`,
                r.sweep.chain.rotated.toLocaleString('en-US'),
                fmt(r.sweep.chain.wallSeconds, 1),
                fmt(r.sweep.chain.sweepingSeconds, 1),
                fmt(r.sweep.chain.dutyCycle, 3),
                fmt(r.sweep.chain.rotationsPerHour, 0),
                `**${fmt(r.sweep.chain.fractionOfRateLimit, 3)}**`,
                r.sweep.chain.backlogAtEnd.toLocaleString('en-US'),
              ],
            ],
          ),
          '',
        ]
      : []),
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
    `Share of fork to answer: import ${pct(importShare)}, first call ${pct(firstShare)}. AWS SDK and Smithy: ` +
      `${pct(median(sdkBytes))} of each bundle's bytes.` +
      (mapsCost === undefined
        ? ''
        : ` \`--enable-source-maps\` (set by the stack): +${fmt(mapsCost, 0)} ms of import at the median.`),
    '',
  ];
}

function costSection(r: BenchResults): string[] {
  const { scenarios, durations, assumptions } = r.cost;
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
    'Fixed costs above are per deployment; section 6 has what one deployment can carry.',
    '',
  ];
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

function capacitySection(r: BenchResults): string[] {
  const { rows, simulation } = r.capacity;
  const sim = simulation;
  return [
    '## 6. Capacity of one deployment',
    '',
    'rotations/s = min(R, k / (L + 3 d + c × 1769 / M), 1000 × M / (1769 × c), DynamoDB); users = rotations/s × 86,400 × ' +
      'duty cycle × I. R: IDP_RATE_LIMIT_RPS; k: SWEEP_CONCURRENCY; L: IdP latency (200 ms); d: a DynamoDB request ' +
      "(5 ms); c: the service CPU per rotation measured in section 3 (warm, median); M: the sweep's memory (MB; " +
      '1,769 MB is one vCPU); DynamoDB: 40,000 WRU/s per table and 1,000 WRU/s per due shard; I: days between two ' +
      `rotations of an idle user (${fmt(rows[0] ? rows[0].users / rows[0].rotationsPerDay : 0, 3)}).`,
    '',
    table(
      [
        'scenario',
        'IdP rate /s',
        'concurrency / latency /s',
        'CPU /s',
        'DynamoDB /s',
        'gives out first',
        'duty cycle',
        'rotations/day',
        'users kept alive',
      ],
      rows.map((row) => [
        row.name,
        fmt(row.idpBound, 0),
        fmt(row.concurrencyBound, 0),
        fmt(row.cpuBound, 0),
        fmt(row.dynamoBound, 0),
        `**${row.limitedBy}**`,
        fmt(row.dutyCycle, 2),
        Math.round(row.rotationsPerDay).toLocaleString('en-US'),
        `**${fmt(row.users / 1e6, 2)} M**`,
      ]),
    ),
    '',
    `Time-compressed simulation (\`bench/capacity.ts\`: the real core on an in-memory store, an instant IdP, a ` +
      `virtual clock, a sweep every 15 minutes): ${sim.users.toLocaleString('en-US')} idle users over ${sim.days} days, ` +
      `${fmt(sim.measuredPerDay, 1)} rotations/day measured against ${fmt(sim.modelPerDay, 1)} from the model ` +
      `(${fmt(100 * sim.error, 2)} %; target within 5 %), in ${fmt(sim.wallSeconds, 1)} s.`,
    '',
  ];
}

/** The sweep cases as an SVG chart: rotations/s against concurrency, one series per IdP latency. */
export function renderSweepChart(r: BenchResults): string {
  const cases = r.sweep.cases.filter((c) => c.idpRateLimit >= 10_000);
  const width = 640;
  const height = 360;
  const left = 60;
  const bottom = 40;
  const top = 40;
  const right = 150;
  const maxConcurrency = Math.max(8, ...cases.map((c) => c.concurrency));
  const maxRate = Math.max(10, ...cases.map((c) => c.rotationsPerSecond)) * 1.15;
  const x = (concurrency: number) =>
    left + ((width - left - right) * Math.log2(concurrency)) / Math.log2(maxConcurrency);
  const y = (rate: number) => height - bottom - ((height - top - bottom) * Math.min(rate, maxRate)) / maxRate;
  const colours = ['#1b9e77', '#d95f02', '#7570b3', '#e7298a'];
  const latencies = [...new Set(cases.map((c) => c.latencyMs))].sort((a, b) => a - b);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12" role="img">`,
    '<title>Sweep rotations per second against concurrency, one line per IdP latency</title>',
    `<text x="${left}" y="20" font-size="14">Sweep rotations/s against concurrency (solid) and concurrency / latency (dashed)</text>`,
    `<line x1="${left}" y1="${height - bottom}" x2="${width - right}" y2="${height - bottom}" stroke="#333"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${height - bottom}" stroke="#333"/>`,
    `<text x="${(left + width - right) / 2}" y="${height - 8}" text-anchor="middle">concurrency (log scale)</text>`,
    `<text x="14" y="${(top + height - bottom) / 2}" transform="rotate(-90 14 ${(top + height - bottom) / 2})" text-anchor="middle">rotations/s</text>`,
  ];
  for (const concurrency of [...new Set(cases.map((c) => c.concurrency))]) {
    parts.push(
      `<text x="${x(concurrency)}" y="${height - bottom + 16}" text-anchor="middle">${concurrency}</text>`,
    );
  }
  for (let tick = 0; tick <= 4; tick++) {
    const rate = (maxRate * tick) / 4;
    parts.push(`<text x="${left - 6}" y="${y(rate) + 4}" text-anchor="end">${Math.round(rate)}</text>`);
  }
  latencies.forEach((latency, i) => {
    const colour = colours[i % colours.length];
    const series = cases.filter((c) => c.latencyMs === latency).sort((a, b) => a.concurrency - b.concurrency);
    const points = series
      .map((c) => `${x(c.concurrency).toFixed(1)},${y(c.rotationsPerSecond).toFixed(1)}`)
      .join(' ');
    parts.push(`<polyline points="${points}" fill="none" stroke="${colour}" stroke-width="2"/>`);
    for (const c of series) {
      parts.push(
        `<circle cx="${x(c.concurrency).toFixed(1)}" cy="${y(c.rotationsPerSecond).toFixed(1)}" r="3" fill="${colour}"/>`,
      );
    }
    if (latency > 0) {
      const ideal = series
        .map((c) => `${x(c.concurrency).toFixed(1)},${y((c.concurrency * 1000) / latency).toFixed(1)}`)
        .join(' ');
      parts.push(`<polyline points="${ideal}" fill="none" stroke="${colour}" stroke-dasharray="4 3"/>`);
    }
    parts.push(
      `<text x="${width - right + 10}" y="${top + 16 * i + 10}" fill="${colour}">IdP ${latency} ms</text>`,
    );
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
