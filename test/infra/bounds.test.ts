import { Duration } from 'aws-cdk-lib';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../functions/config';
import { ConfigurationError } from '../../functions/core/errors';
import { backlogAlarmPeriodsBound, SETTING_BOUNDS } from '../../functions/settings-bounds';
import type { TokenKeeperStackProps } from '../../lib/token-keeper-stack';
import { synthStack } from './support/app';

/** Settings at one bound, as construct props, with what they need besides to stay valid. */
const AT_BOUND: readonly [
  string,
  (value: number) => Partial<TokenKeeperStackProps>,
  { min: number; max: number },
][] = [
  ['dueShards', (v) => ({ dueShards: v }), SETTING_BOUNDS.dueShards],
  ['sweepConcurrency', (v) => ({ sweepConcurrency: v }), SETTING_BOUNDS.sweepConcurrency],
  ['idpRateLimitPerSecond', (v) => ({ idpRateLimitPerSecond: v }), SETTING_BOUNDS.idpRateLimitPerSecond],
  ['reauthSoon', (v) => ({ reauthSoon: Duration.days(v) }), SETTING_BOUNDS.reauthSoonDays],
  [
    'sweepInterval',
    (v) => ({
      sweepInterval: Duration.minutes(v),
      refreshAhead: Duration.minutes(Math.max(2 * v, 3 * 24 * 60)),
    }),
    SETTING_BOUNDS.sweepIntervalMinutes,
  ],
  [
    'sweepReservedConcurrency',
    (v) => ({ sweepReservedConcurrency: v }),
    SETTING_BOUNDS.sweepReservedConcurrency,
  ],
  [
    'idpTimeout',
    (v) => ({
      idpTimeout: Duration.millis(v),
      leaseDuration: Duration.seconds(Math.ceil((2 * v) / 1000) + 11),
    }),
    SETTING_BOUNDS.idpTimeoutMs,
  ],
  [
    'sweepBacklogAlarmPeriods (6-hour sweeps)',
    (v) => ({
      sweepInterval: Duration.hours(6),
      refreshAhead: Duration.days(3),
      sweepBacklogAlarmPeriods: v,
    }),
    backlogAlarmPeriodsBound(360),
  ],
];

/** Issue 10 item 9: one module of bounds; the stack synthesizes at every bound and refuses one step past it. */
describe('Module: functions/settings-bounds (the stack at every bound)', () => {
  it.each(
    AT_BOUND.flatMap(
      ([name, props, bound]) =>
        [
          [name, 'min', bound.min, props],
          [name, 'max', bound.max, props],
        ] as const,
    ),
  )('synthesizes with %s at its %s (%i)', { timeout: 120_000 }, (_name, _end, value, props) => {
    // Act
    const { template } = synthStack(props(value));

    // Assess: every alarm fits CloudWatch's one-day evaluation range
    for (const alarm of Object.values(template.findResources('AWS::CloudWatch::Alarm'))) {
      const p = alarm.Properties;
      const period =
        p.Period ?? p.Metrics.find((m: { MetricStat?: unknown }) => m.MetricStat).MetricStat.Period;
      expect(period * p.EvaluationPeriods).toBeLessThanOrEqual(86_400);
    }
  });

  it.each(
    AT_BOUND.flatMap(
      ([name, props, bound]) =>
        [
          [name, bound.min - 1, props],
          [name, bound.max + 1, props],
        ] as const,
    ),
  )('refuses %s at %i, one step outside', (_name, value, props) => {
    expect(() => synthStack(props(value))).toThrow(/must be an integer from|must fit|cannot be negative/);
  });

  it('makes the functions accept exactly the construct bounds', () => {
    const env = { TOKEN_TABLE_NAME: 't', LOCAL_TOKEN_KEY: 'AAAA' };
    const { min, max } = SETTING_BOUNDS.dueShards;
    expect(loadConfig({ ...env, DUE_SHARDS: String(max) }).dueShards).toBe(max);
    expect(loadConfig({ ...env, DUE_SHARDS: String(min) }).dueShards).toBe(min);
    expect(() => loadConfig({ ...env, DUE_SHARDS: String(max + 1) })).toThrow(ConfigurationError);
    const sweep = SETTING_BOUNDS.sweepConcurrency;
    expect(() => loadConfig({ ...env, SWEEP_CONCURRENCY: String(sweep.max + 1) })).toThrow(
      ConfigurationError,
    );
  });

  it('gives the sweep memory that follows its concurrency, and reserves none by default', () => {
    const props = (c: number) => synthStack({ sweepConcurrency: c }).stack.tokenKeeper.refreshSweepFunction;
    const memory = (c: number) =>
      (props(c).node.defaultChild as unknown as { memorySize: number }).memorySize;
    expect([memory(8), memory(64), memory(256)]).toEqual([512, 1024, 3008]);
  });
});
