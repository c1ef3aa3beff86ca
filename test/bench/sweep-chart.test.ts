import { describe, expect, it } from 'vitest';
import { NO_RATE_LIMIT } from '../../bench/sweep';
import { type ChartedCase, renderSweepChart } from '../../bench/sweep-chart';
import { xmlProblems } from '../support/well-formed-xml';

describe('Function: renderSweepChart', () => {
  it('draws one line per IdP latency, the ideal dashed beside it, and leaves the rate-limited case out', () => {
    // Prepare
    const cases: ChartedCase[] = [
      { latencyMs: 0, concurrency: 64, idpRateLimit: NO_RATE_LIMIT, rotationsPerSecond: 189.4 },
      { latencyMs: 50, concurrency: 8, idpRateLimit: NO_RATE_LIMIT, rotationsPerSecond: 128.5 },
      { latencyMs: 50, concurrency: 64, idpRateLimit: NO_RATE_LIMIT, rotationsPerSecond: 223 },
      { latencyMs: 200, concurrency: 8, idpRateLimit: NO_RATE_LIMIT, rotationsPerSecond: 37 },
      { latencyMs: 50, concurrency: 64, idpRateLimit: 20, rotationsPerSecond: 20 },
    ];

    // Act
    const svg = renderSweepChart(cases);

    // Assess
    expect(xmlProblems(svg)).toEqual([]);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.match(/<polyline [^>]*stroke-width="2"/g)).toHaveLength(3);
    expect(svg.match(/<polyline [^>]*stroke-dasharray/g)).toHaveLength(2);
    expect(svg.match(/<circle /g)).toHaveLength(4);
    for (const latency of [0, 50, 200]) expect(svg).toContain(`>IdP ${latency} ms</text>`);
  });
});
