import { describe, expect, it } from 'vitest';
import { bucketWidthMs, type RunChart, renderRunChart } from '../../support/alarm-chart';
import { type AlarmTimeline, type ChartedRun, chartOfDrill } from '../../support/alarm-drill';
import { type AlarmDefinition, DatapointIndex, evaluateAlarm } from '../../support/cloudwatch-alarms';
import { xmlProblems } from '../../support/well-formed-xml';

const HOUR = 3_600_000;
const START = Date.UTC(2026, 0, 1);
const service = { service: 'token-keeper' };

/** RotationFailing as the stack defines it: failed share above 50 % in 3 of 3 hourly periods. */
const rotationFailing: AlarmDefinition = {
  name: 'TokenKeeperTest-token-keeper-RotationFailing',
  description: '[critical] rotations keep failing',
  metric: {
    kind: 'expression',
    expression: '100 * failed / (failed + FILL(succeeded, 0))',
    periodSeconds: 3600,
    metrics: {
      failed: {
        namespace: 'TokenKeeper',
        metricName: 'RotationFailed',
        dimensions: service,
        stat: 'Sum',
        periodSeconds: 3600,
      },
      succeeded: {
        namespace: 'TokenKeeper',
        metricName: 'RotationSucceeded',
        dimensions: service,
        stat: 'Sum',
        periodSeconds: 3600,
      },
    },
  },
  evaluationPeriods: 3,
  datapointsToAlarm: 3,
  threshold: 50,
  comparison: 'GreaterThanThreshold',
  treatMissingData: 'notBreaching',
};

/**
 * Two days of hourly sweeps: 4 rotations an hour, the IdP down (every rotation failing) for the
 * 6 hours from hour 24, as in the idp-down-6h drill.
 */
function idpDownRun(): ChartedRun {
  const recorded: ChartedRun['recorded'][number][] = [];
  const idpFaultsAtMs: number[] = [];
  const point = (metricName: string, value: number, atMs: number) =>
    recorded.push({ namespace: 'TokenKeeper', metricName, dimensions: service, value, atMs });
  for (let hour = 0; hour < 48; hour++) {
    const atMs = START + hour * HOUR;
    const down = hour >= 24 && hour < 30;
    point(down ? 'RotationFailed' : 'RotationSucceeded', 4, atMs);
    if (down) for (let i = 0; i < 12; i++) idpFaultsAtMs.push(atMs + i);
    point('SweepDue', 4, atMs);
    point('SweepBacklog', 0, atMs);
    point('SweepCompleted', 1, atMs);
  }
  const endMs = START + 48 * HOUR;
  const index = new DatapointIndex(recorded);
  const timelines: AlarmTimeline[] = [
    {
      id: 'RotationFailing',
      severity: 'critical',
      transitions: evaluateAlarm(rotationFailing, index, START, endMs),
      hadData: true,
    },
    { id: 'PersistFailed', severity: 'critical', transitions: [], hadData: false },
  ];
  return {
    scenario: 'idp-down-6h',
    startMs: START,
    endMs,
    faultAtMs: START + 24 * HOUR,
    recorded,
    idpFaultsAtMs,
    timelines,
    report: { options: { users: 40, days: 2, sweepEveryMinutes: 60, faultRate: 0.02 } },
  };
}

describe('Module: alarm-chart (the chart of a simulated run)', () => {
  describe('Function: chartOfDrill + renderRunChart', () => {
    it('draws every key series and the band of the alarm that fired, in a well-formed SVG', () => {
      // Prepare
      const run = idpDownRun();

      // Act
      const chart = chartOfDrill(run);
      const svg = renderRunChart(chart);

      // Assess
      expect(xmlProblems(svg)).toEqual([]);
      expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
      for (const series of [
        'rotated',
        'rotation failed',
        'IdP faults (injected)',
        'unexpected errors',
        'due',
        'backlog',
        'sweeps completed',
      ]) {
        expect(svg).toContain(`data-series="${series}"`);
      }
      expect(svg).toContain('rotation failed: 24');
      expect(svg).toContain('IdP faults (injected): 72');
      // RotationFailing: in ALARM from the end of the third failing hour to the end of the first
      // hour whose window is no longer all failing.
      expect(chart.alarms).toEqual([
        {
          alarm: 'RotationFailing',
          severity: 'critical',
          intervals: [{ fromMs: START + 27 * HOUR, toMs: START + 31 * HOUR }],
        },
      ]);
      const band = /<g class="alarm" data-alarm="RotationFailing">([\s\S]*?)<\/g>/.exec(svg);
      expect(band).not.toBeNull();
      const inAlarm =
        /<rect class="in-alarm" x="([\d.]+)" y="[\d.]+" width="([\d.]+)"[^>]*fill="#c0392b"/.exec(band![1]!);
      expect(inAlarm).not.toBeNull();
      // 70 px left margin, 660 px across two days: hour 27 at 441.25 px, 4 hours wide.
      expect(Number(inAlarm![1])).toBeCloseTo(70 + (660 * 27) / 48, 0);
      expect(Number(inAlarm![2])).toBeCloseTo((660 * 4) / 48, 0);
      expect(svg).toContain('1 other alarms never in ALARM');
      expect(svg).toContain('class="marker"');
    });

    it('says that no alarm was raised when none left OK', () => {
      // Prepare
      const run = { ...idpDownRun(), timelines: [], faultAtMs: undefined, scenario: 'healthy' as const };

      // Act
      const svg = renderRunChart(chartOfDrill(run));

      // Assess
      expect(xmlProblems(svg)).toEqual([]);
      expect(svg).not.toContain('class="alarm"');
      expect(svg).not.toContain('class="marker"');
      expect(svg).toContain('no alarm raised');
    });
  });

  describe('Function: renderRunChart', () => {
    it('escapes labels, so a name with markup characters keeps the document well-formed', () => {
      // Prepare
      const chart: RunChart = {
        title: 'a <b> & "c"',
        startMs: 0,
        endMs: 2 * HOUR,
        bucketMs: HOUR,
        panels: [{ title: 'x & y', series: [{ label: '<z>', colour: '#000', values: [1, 2] }] }],
        alarms: [{ alarm: 'A&B', severity: 'warning', intervals: [{ fromMs: HOUR, toMs: 2 * HOUR }] }],
        alarmsQuiet: 0,
        markers: [{ atMs: HOUR, label: "it's <here>" }],
      };

      // Act
      const svg = renderRunChart(chart);

      // Assess
      expect(xmlProblems(svg)).toEqual([]);
      expect(svg).toContain('data-series="&lt;z&gt;"');
      expect(svg).toContain('data-alarm="A&amp;B"');
    });
  });

  describe('Function: bucketWidthMs', () => {
    it('keeps a short run at the sweep interval and a year within 480 buckets', () => {
      expect(bucketWidthMs(4 * 24 * HOUR, HOUR)).toBe(HOUR);
      expect(bucketWidthMs(400 * 24 * HOUR, HOUR)).toBe(24 * HOUR);
      expect(bucketWidthMs(2 * HOUR, 2 * HOUR)).toBe(2 * HOUR);
    });
  });
});

describe('Module: well-formed-xml (the check the chart tests rely on)', () => {
  it.each([
    ['an unclosed element', '<svg><g></svg>'],
    ['a bare ampersand', '<svg><text>a & b</text></svg>'],
    ['an unquoted attribute', '<svg width=10></svg>'],
    ['two roots', '<svg/><svg/>'],
    ['a repeated attribute', '<svg a="1" a="2"/>'],
  ])('finds %s', (_what, document) => {
    expect(xmlProblems(document)).not.toEqual([]);
  });

  it('accepts a plain document', () => {
    expect(xmlProblems('<svg a="1"><text x="2">a &amp; b &#38;</text><g/></svg>\n')).toEqual([]);
  });
});
