/**
 * A chart of one simulated run, for people who would rather look than read: the key metrics per
 * time bucket (rotations and their failures, the IdP's injected faults, unexpected errors, the
 * sweep's due records, backlog and completed runs) and, below them, every alarm that left OK as a
 * band over the time it was in ALARM. Drawn with local/svg.ts.
 */

import { escapeXml, niceCeiling, polylinePoints, svgDocument, svgElement, svgText } from '../../local/svg';

/** One line of a panel: a value per bucket. */
export interface ChartSeries {
  readonly label: string;
  readonly colour: string;
  readonly values: readonly number[];
}

/** A panel of lines sharing one y scale. */
export interface ChartPanel {
  readonly title: string;
  readonly series: readonly ChartSeries[];
}

/** An alarm that was in ALARM at some time, with those times. */
export interface AlarmBand {
  readonly alarm: string;
  readonly severity: 'critical' | 'warning';
  readonly intervals: readonly { readonly fromMs: number; readonly toMs: number }[];
}

/** Everything a chart shows. */
export interface RunChart {
  readonly title: string;
  readonly startMs: number;
  readonly endMs: number;
  /** Width of one bucket of every series. */
  readonly bucketMs: number;
  readonly panels: readonly ChartPanel[];
  readonly alarms: readonly AlarmBand[];
  /** Alarms that were never in ALARM (OK, or without data, throughout). */
  readonly alarmsQuiet: number;
  /** Vertical markers, such as the start of a fault. */
  readonly markers: readonly { readonly atMs: number; readonly label: string }[];
}

/** A metric value at a time, as the simulation records it. */
export interface TimedValue {
  readonly metricName: string;
  readonly dimensions: Readonly<Record<string, string>>;
  readonly value: number;
  readonly atMs: number;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/** At most this many buckets across the chart. */
const MAX_BUCKETS = 480;

/** The smallest of a few round widths that keeps the run within {@link MAX_BUCKETS} buckets. */
export function bucketWidthMs(durationMs: number, atLeastMs: number): number {
  const widths = [1, 2, 3, 6, 12, 24, 48, 168].map((hours) => hours * HOUR_MS);
  return widths.find((w) => w >= atLeastMs && durationMs / w <= MAX_BUCKETS) ?? 28 * DAY_MS;
}

/** Sums the plain totals (dimension `service` only) of one metric into buckets. */
export function bucketSums(
  points: readonly TimedValue[],
  metricName: string,
  startMs: number,
  endMs: number,
  bucketMs: number,
): number[] {
  const sums = new Array<number>(Math.max(1, Math.ceil((endMs - startMs) / bucketMs))).fill(0);
  for (const point of points) {
    if (point.metricName !== metricName || Object.keys(point.dimensions).length !== 1) continue;
    if (point.dimensions.service === undefined) continue;
    const bucket = Math.floor((point.atMs - startMs) / bucketMs);
    if (bucket >= 0 && bucket < sums.length) sums[bucket]! += point.value;
  }
  return sums;
}

/** Counts times into buckets. */
export function bucketCounts(
  timesMs: readonly number[],
  startMs: number,
  endMs: number,
  bucketMs: number,
): number[] {
  const counts = new Array<number>(Math.max(1, Math.ceil((endMs - startMs) / bucketMs))).fill(0);
  for (const atMs of timesMs) {
    const bucket = Math.floor((atMs - startMs) / bucketMs);
    if (bucket >= 0 && bucket < counts.length) counts[bucket]! += 1;
  }
  return counts;
}

const WIDTH = 960;
const LEFT = 70;
const RIGHT = 230;
const PANEL_HEIGHT = 110;
const PANEL_GAP = 34;
const BAND_HEIGHT = 18;
const CRITICAL = '#c0392b';
const WARNING = '#e69f00';

/** The chart as a standalone SVG document. */
export function renderRunChart(chart: RunChart): string {
  const plotWidth = WIDTH - LEFT - RIGHT;
  const span = Math.max(1, chart.endMs - chart.startMs);
  const x = (atMs: number) =>
    LEFT + (plotWidth * (Math.min(Math.max(atMs, chart.startMs), chart.endMs) - chart.startMs)) / span;
  const top = 50;
  const bandsTop = top + chart.panels.length * (PANEL_HEIGHT + PANEL_GAP);
  const bandRows = Math.max(1, chart.alarms.length) + 1;
  const axisY = bandsTop + 22 + bandRows * (BAND_HEIGHT + 4);
  const height = axisY + 46;
  const line = (x1: number | string, y1: number, x2: number | string, y2: number, stroke: string) =>
    svgElement('line', { x1, y1, x2, y2, stroke });
  const parts: string[] = [
    svgText({ x: LEFT, y: 24, 'font-size': 15, 'font-weight': 'bold' }, chart.title),
    svgText(
      { x: LEFT, y: 40, fill: '#555' },
      `per ${durationLabel(chart.bucketMs)}; alarms as bands while in ALARM`,
    ),
  ];

  chart.panels.forEach((panel, i) => {
    const panelTop = top + i * (PANEL_HEIGHT + PANEL_GAP) + 18;
    const panelBottom = panelTop + PANEL_HEIGHT - 18;
    const max = niceCeiling(Math.max(1, ...panel.series.flatMap((s) => s.values)));
    const y = (value: number) => panelBottom - ((panelBottom - panelTop) * value) / max;
    parts.push(
      `<g class="panel" data-panel="${escapeXml(panel.title)}">`,
      svgText({ x: LEFT, y: panelTop - 6, 'font-weight': 'bold' }, panel.title),
      line(LEFT, panelBottom, LEFT + plotWidth, panelBottom, '#999'),
      line(LEFT, panelTop, LEFT, panelBottom, '#999'),
      svgText({ x: LEFT - 6, y: panelTop + 4, 'text-anchor': 'end', fill: '#555' }, formatNumber(max)),
      svgText({ x: LEFT - 6, y: panelBottom + 4, 'text-anchor': 'end', fill: '#555' }, '0'),
    );
    panel.series.forEach((series, j) => {
      const points = series.values.flatMap((value, bucket): [number, number][] => {
        const from = chart.startMs + bucket * chart.bucketMs;
        return [
          [x(from), y(value)],
          [x(from + chart.bucketMs), y(value)],
        ];
      });
      const total = series.values.reduce((a, b) => a + b, 0);
      parts.push(
        svgElement('polyline', {
          class: 'series',
          'data-series': series.label,
          points: polylinePoints(points),
          fill: 'none',
          stroke: series.colour,
          'stroke-width': 1.5,
        }),
        svgText(
          { x: LEFT + plotWidth + 12, y: panelTop + 10 + 16 * j, fill: series.colour },
          `${series.label}: ${formatNumber(total)}`,
        ),
      );
    });
    parts.push('</g>');
  });

  parts.push(
    svgText({ x: LEFT, y: bandsTop + 10, 'font-weight': 'bold' }, 'Alarms (red: critical, amber: warning)'),
  );
  chart.alarms.forEach((band, row) => {
    const rowY = bandsTop + 20 + row * (BAND_HEIGHT + 4);
    const colour = band.severity === 'critical' ? CRITICAL : WARNING;
    parts.push(
      `<g class="alarm" data-alarm="${escapeXml(band.alarm)}">`,
      svgElement('rect', { x: LEFT, y: rowY, width: plotWidth, height: BAND_HEIGHT, fill: '#eef6ee' }),
      ...band.intervals.map((interval) =>
        svgElement('rect', {
          class: 'in-alarm',
          x: x(interval.fromMs).toFixed(1),
          y: rowY,
          width: Math.max(1, x(interval.toMs) - x(interval.fromMs)).toFixed(1),
          height: BAND_HEIGHT,
          fill: colour,
        }),
      ),
      svgText({ x: LEFT + plotWidth + 12, y: rowY + 13, fill: colour }, band.alarm),
      '</g>',
    );
  });
  const quietY = bandsTop + 20 + chart.alarms.length * (BAND_HEIGHT + 4) + 13;
  parts.push(
    svgText(
      { x: LEFT, y: quietY, fill: '#2e7d32' },
      chart.alarms.length === 0
        ? `no alarm raised: none of the ${chart.alarmsQuiet} alarms was ever in ALARM`
        : `${chart.alarmsQuiet} other alarms never in ALARM`,
    ),
  );

  // Time axis, with ticks at round days.
  parts.push(
    line(LEFT, axisY, LEFT + plotWidth, axisY, '#333'),
    svgText(
      { x: LEFT + plotWidth / 2, y: axisY + 36, 'text-anchor': 'middle' },
      'virtual time (days from the start)',
    ),
  );
  const days = span / DAY_MS;
  const step = [1, 2, 5, 10, 25, 50, 100].find((d) => days / d <= 12) ?? 200;
  for (let day = 0; day * DAY_MS <= span; day += step) {
    const tickX = x(chart.startMs + day * DAY_MS).toFixed(1);
    parts.push(
      line(tickX, top, tickX, axisY + 4, '#ddd'),
      svgText({ x: tickX, y: axisY + 18, 'text-anchor': 'middle' }, String(day)),
    );
  }
  for (const marker of chart.markers) {
    const markerX = x(marker.atMs).toFixed(1);
    parts.push(
      svgElement('line', {
        class: 'marker',
        x1: markerX,
        y1: top,
        x2: markerX,
        y2: axisY,
        stroke: '#333',
        'stroke-dasharray': '5 3',
      }),
      svgText({ x: markerX, y: top + 6, dx: 4, fill: '#333' }, marker.label),
    );
  }
  return svgDocument(WIDTH, height, chart.title, parts);
}

function formatNumber(value: number): string {
  return Number.isInteger(value) ? value.toLocaleString('en-US') : value.toFixed(1);
}

function durationLabel(ms: number): string {
  if (ms % DAY_MS === 0) return ms === DAY_MS ? 'day' : `${ms / DAY_MS} days`;
  return ms === HOUR_MS ? 'hour' : `${ms / HOUR_MS} hours`;
}
