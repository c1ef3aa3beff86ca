import { describe, expect, it } from 'vitest';
import {
  type AlarmDefinition,
  DatapointIndex,
  evaluateAlarm,
  evaluateExpression,
  statistic,
} from '../../support/cloudwatch-alarms';

const MIN = 60_000;
const metric: { namespace: string; metricName: string; dimensions: Record<string, string> } = {
  namespace: 'TokenKeeper',
  metricName: 'X',
  dimensions: { service: 'tk' },
};

function alarm(overrides: Partial<AlarmDefinition> = {}): AlarmDefinition {
  return {
    name: 'a',
    description: '',
    metric: { kind: 'metric', stat: { ...metric, stat: 'Sum', periodSeconds: 300 } },
    evaluationPeriods: 1,
    datapointsToAlarm: 1,
    threshold: 1,
    comparison: 'GreaterThanOrEqualToThreshold',
    treatMissingData: 'notBreaching',
    ...overrides,
  };
}

const at = (minute: number, value = 1, dimensions = metric.dimensions) => ({
  ...metric,
  dimensions,
  value,
  atMs: minute * MIN,
});

describe('Module: cloudwatch-alarms (the evaluator the alarm proofs rely on)', () => {
  describe('Function: evaluateAlarm', () => {
    it('goes to ALARM at the end of the period that breached and back to OK after it', () => {
      const index = new DatapointIndex([at(7)]);
      expect(evaluateAlarm(alarm(), index, 0, 30 * MIN)).toEqual([
        { atMs: 5 * MIN, state: 'OK' },
        { atMs: 10 * MIN, state: 'ALARM' },
        { atMs: 15 * MIN, state: 'OK' },
      ]);
    });

    it('needs M of N breaching periods', () => {
      const twoOfThree = alarm({ evaluationPeriods: 3, datapointsToAlarm: 2 });
      expect(evaluateAlarm(twoOfThree, new DatapointIndex([at(1), at(11)]), 0, 15 * MIN)).toEqual([
        { atMs: 5 * MIN, state: 'OK' },
        { atMs: 15 * MIN, state: 'ALARM' },
      ]);
      expect(evaluateAlarm(twoOfThree, new DatapointIndex([at(1), at(16)]), 0, 20 * MIN)).toEqual([
        { atMs: 5 * MIN, state: 'OK' },
      ]);
    });

    it('counts missing periods as breaching when told (a heartbeat)', () => {
      const heartbeat = alarm({
        comparison: 'LessThanThreshold',
        evaluationPeriods: 2,
        datapointsToAlarm: 2,
        treatMissingData: 'breaching',
      });
      const beats = [at(1), at(6), at(11)];
      expect(evaluateAlarm(heartbeat, new DatapointIndex(beats), 0, 30 * MIN)).toEqual([
        { atMs: 5 * MIN, state: 'OK' },
        { atMs: 25 * MIN, state: 'ALARM' },
      ]);
    });

    it('matches the exact dimension set only', () => {
      const index = new DatapointIndex([at(1, 5, { service: 'tk', reason: 'x' })]);
      expect(evaluateAlarm(alarm(), index, 0, 5 * MIN)).toEqual([{ atMs: 5 * MIN, state: 'OK' }]);
    });

    it('evaluates metric math per period, with FILL', () => {
      const ratio = alarm({
        metric: {
          kind: 'expression',
          expression: '100 * failed / (failed + FILL(ok, 0))',
          periodSeconds: 300,
          metrics: {
            failed: { ...metric, metricName: 'F', stat: 'Sum', periodSeconds: 300 },
            ok: { ...metric, metricName: 'S', stat: 'Sum', periodSeconds: 300 },
          },
        },
        threshold: 50,
        comparison: 'GreaterThanThreshold',
      });
      const points = [
        { ...at(1, 3), metricName: 'F' },
        { ...at(6, 1), metricName: 'F' },
        { ...at(6, 9), metricName: 'S' },
      ];
      expect(evaluateAlarm(ratio, new DatapointIndex(points), 0, 10 * MIN)).toEqual([
        { atMs: 5 * MIN, state: 'ALARM' },
        { atMs: 10 * MIN, state: 'OK' },
      ]);
    });
  });

  describe('Function: evaluateExpression', () => {
    it('computes arithmetic left to right with precedence, and gives no value for a missing operand', () => {
      expect(evaluateExpression('a - FILL(b, 0)', { a: 5, b: undefined })).toBe(5);
      expect(evaluateExpression('2 + 3 * a', { a: 4 })).toBe(14);
      expect(evaluateExpression('a / b', { a: 1, b: 0 })).toBeUndefined();
      expect(evaluateExpression('a + b', { a: 1, b: undefined })).toBeUndefined();
    });
  });

  describe('Function: statistic', () => {
    it('computes Sum, Maximum, SampleCount and a nearest-rank percentile', () => {
      const values = Array.from({ length: 100 }, (_, i) => i + 1);
      expect(statistic('Sum', [1, 2])).toBe(3);
      expect(statistic('Maximum', [1, 7, 2])).toBe(7);
      expect(statistic('SampleCount', [1, 1])).toBe(2);
      expect(statistic('p99', values)).toBe(99);
      expect(statistic('Sum', [])).toBeUndefined();
    });
  });
});
