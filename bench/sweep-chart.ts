import { niceCeiling, polylinePoints, svgDocument, svgElement, svgText } from '../local/svg';
import { NO_RATE_LIMIT, type SweepCaseResult } from './sweep';

/** What the chart reads of a sweep case. */
export type ChartedCase = Pick<
  SweepCaseResult,
  'latencyMs' | 'concurrency' | 'idpRateLimit' | 'rotationsPerSecond'
>;

/** The sweep cases without a rate limit as an SVG chart: rotations/s against concurrency, one line per IdP latency. */
export function renderSweepChart(allCases: readonly ChartedCase[]): string {
  const cases = allCases.filter((c) => c.idpRateLimit >= NO_RATE_LIMIT);
  const [width, height, left, right, top, bottom] = [640, 360, 60, 150, 40, 40];
  const maxConcurrency = Math.max(8, ...cases.map((c) => c.concurrency));
  const maxRate = niceCeiling(Math.max(10, ...cases.map((c) => c.rotationsPerSecond)) * 1.1);
  const x = (concurrency: number) =>
    left + ((width - left - right) * Math.log2(concurrency)) / Math.log2(maxConcurrency);
  const y = (rate: number) => height - bottom - ((height - top - bottom) * Math.min(rate, maxRate)) / maxRate;
  const colours = ['#1b9e77', '#d95f02', '#7570b3', '#e7298a'];
  const latencies = [...new Set(cases.map((c) => c.latencyMs))].sort((a, b) => a - b);
  const parts = [
    svgText(
      { x: left, y: 20, 'font-size': 14 },
      'Sweep rotations/s against concurrency (solid) and concurrency / latency (dashed)',
    ),
    svgElement('line', {
      x1: left,
      y1: height - bottom,
      x2: width - right,
      y2: height - bottom,
      stroke: '#333',
    }),
    svgElement('line', { x1: left, y1: top, x2: left, y2: height - bottom, stroke: '#333' }),
    svgText(
      { x: (left + width - right) / 2, y: height - 8, 'text-anchor': 'middle' },
      'concurrency (log scale)',
    ),
    svgText(
      {
        x: 14,
        y: (top + height - bottom) / 2,
        transform: `rotate(-90 14 ${(top + height - bottom) / 2})`,
        'text-anchor': 'middle',
      },
      'rotations/s',
    ),
    ...[...new Set(cases.map((c) => c.concurrency))].map((concurrency) =>
      svgText(
        { x: x(concurrency).toFixed(1), y: height - bottom + 16, 'text-anchor': 'middle' },
        String(concurrency),
      ),
    ),
    ...[0, 1, 2, 3, 4].map((tick) =>
      svgText(
        { x: left - 6, y: (y((maxRate * tick) / 4) + 4).toFixed(1), 'text-anchor': 'end' },
        String(Math.round((maxRate * tick) / 4)),
      ),
    ),
  ];
  latencies.forEach((latency, i) => {
    const colour = colours[i % colours.length];
    const series = cases.filter((c) => c.latencyMs === latency).sort((a, b) => a.concurrency - b.concurrency);
    parts.push(
      svgElement('polyline', {
        points: polylinePoints(series.map((c) => [x(c.concurrency), y(c.rotationsPerSecond)])),
        fill: 'none',
        stroke: colour,
        'stroke-width': 2,
      }),
      ...series.map((c) =>
        svgElement('circle', {
          cx: x(c.concurrency).toFixed(1),
          cy: y(c.rotationsPerSecond).toFixed(1),
          r: 3,
          fill: colour,
        }),
      ),
      svgText({ x: width - right + 10, y: top + 16 * i + 10, fill: colour }, `IdP ${latency} ms`),
    );
    if (latency > 0) {
      const ideal = series.map((c): [number, number] => [
        x(c.concurrency),
        y((c.concurrency * 1000) / latency),
      ]);
      parts.push(
        svgElement('polyline', {
          points: polylinePoints(ideal),
          fill: 'none',
          stroke: colour,
          'stroke-dasharray': '4 3',
        }),
      );
    }
  });
  return svgDocument(
    width,
    height,
    'Sweep rotations per second against concurrency, one line per IdP latency',
    parts,
  );
}
