import { Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import { beforeAll, describe, expect, it } from 'vitest';
import { TokenKeeperMonitoring, type TokenKeeperMonitoringProps } from '../../lib/token-keeper-monitoring';
import { synthStack, testApp } from './support/app';

type Built = ReturnType<typeof synthStack>;

let built: Built;
let criticalRef: unknown;
let warningRef: unknown;

const logicalId = (construct: { node: { defaultChild?: unknown } }): string =>
  built.stack.getLogicalId(construct.node.defaultChild as Parameters<Stack['getLogicalId']>[0]);

/** A monitoring construct alone in a stack: no functions, so nothing to bundle. */
function monitoringAlone(props: Partial<TokenKeeperMonitoringProps> = {}, stackId = 'MonitoringOnly') {
  const stack = new Stack(testApp(), stackId, {
    env: { account: '111122223333', region: 'eu-west-1' },
  });
  const monitoring = new TokenKeeperMonitoring(stack, 'Monitoring', {
    serviceName: 'token-keeper',
    sweepInterval: Duration.minutes(15),
    ...props,
  });
  return { stack, monitoring, template: Template.fromStack(stack) };
}

beforeAll(() => {
  built = synthStack({ alarmEmail: 'ops@example.com' });
  const monitoring = built.stack.tokenKeeper.monitoring;
  criticalRef = { Ref: built.stack.getLogicalId(monitoring.criticalTopic!.node.defaultChild as never) };
  warningRef = { Ref: built.stack.getLogicalId(monitoring.warningTopic!.node.defaultChild as never) };
});

/** The alarm named `<stack>-token-keeper-<id>`, its properties. */
function alarmProps(id: string): Record<string, unknown> {
  const found = Object.values(built.template.findResources('AWS::CloudWatch::Alarm')).find(
    (alarm) => alarm.Properties.AlarmName === `TokenKeeperTest-token-keeper-${id}`,
  );
  if (!found) throw new Error(`no alarm ${id}`);
  return found.Properties as Record<string, unknown>;
}

describe('Class: TokenKeeperMonitoring', () => {
  describe('Resource: service metric alarms', () => {
    const singleEventAlarms = [
      ['PersistFailed', 'PersistFailed', 60, 'critical'],
      ['TokensExpired', 'TokensExpired', 300, 'critical'],
      ['IdpConfigurationRejected', 'IdpConfigurationRejected', 300, 'critical'],
      ['RotationCircuitOpen', 'RotationCircuitOpen', 300, 'critical'],
      ['CorruptRecordFound', 'CorruptRecordFound', 300, 'warning'],
      ['DisconnectIdpFailed', 'DisconnectIdpFailed', 300, 'warning'],
    ] as const;

    it.each(singleEventAlarms)(
      'alarms when %s counts 1 within %i s (metric %s), notifying the %s actions, and on OK',
      (id, metricName, period, severity) => {
        const ref = severity === 'critical' ? criticalRef : warningRef;
        built.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
          AlarmName: `TokenKeeperTest-token-keeper-${id}`,
          AlarmDescription: Match.stringLikeRegexp(`^\\[${severity}\\] .{60,}`),
          Namespace: 'TokenKeeper',
          MetricName: metricName,
          Dimensions: [{ Name: 'service', Value: 'token-keeper' }],
          Statistic: 'Sum',
          Period: period,
          Threshold: 1,
          ComparisonOperator: 'GreaterThanOrEqualToThreshold',
          EvaluationPeriods: 1,
          TreatMissingData: 'notBreaching',
          AlarmActions: [ref],
          OKActions: [ref],
        });
      },
    );

    it('has no alarm on the raw RotationFailed count, nor on ReauthRequired with deadline ends in it', () => {
      const metricNames = Object.values(built.template.findResources('AWS::CloudWatch::Alarm')).map(
        (alarm) => alarm.Properties.MetricName,
      );
      expect(metricNames).not.toContain('RotationFailed');
      expect(metricNames).not.toContain('ReauthRequired');
      expect(metricNames).not.toContain('ErrorAnswered');
    });

    it('alarms (critical) when no sweep finished in two intervals, counting missing data as breaching', () => {
      built.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        AlarmName: 'TokenKeeperTest-token-keeper-SweepHeartbeat',
        Namespace: 'TokenKeeper',
        MetricName: 'SweepCompleted',
        Statistic: 'Sum',
        Period: 900,
        Threshold: 1,
        ComparisonOperator: 'LessThanThreshold',
        EvaluationPeriods: 2,
        DatapointsToAlarm: 2,
        TreatMissingData: 'breaching',
        AlarmActions: [criticalRef],
      });
    });

    it('alarms (critical) when most rotations fail in 3 sweep periods in a row, not on one failure', () => {
      const props = alarmProps('RotationFailing');
      expect(props).toMatchObject({
        Threshold: 50,
        ComparisonOperator: 'GreaterThanThreshold',
        EvaluationPeriods: 3,
        DatapointsToAlarm: 3,
        TreatMissingData: 'notBreaching',
        AlarmActions: [criticalRef],
      });
      const metrics = props.Metrics as { Id: string; Expression?: string; MetricStat?: unknown }[];
      expect(metrics.find((m) => m.Expression)?.Expression).toBe(
        '100 * failed / (failed + FILL(succeeded, 0))',
      );
      expect(metrics.filter((m) => m.MetricStat)).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            Id: 'failed',
            MetricStat: expect.objectContaining({ Period: 900, Stat: 'Sum' }),
          }),
        ]),
      );
    });

    it('alarms (warning) on a burst of users needing to sign in again, leaving deadline ends out', () => {
      const props = alarmProps('ReauthRequired');
      expect(props).toMatchObject({ Threshold: 10, EvaluationPeriods: 1, AlarmActions: [warningRef] });
      const metrics = props.Metrics as {
        Id: string;
        Expression?: string;
        MetricStat?: { Metric: unknown };
      }[];
      expect(metrics.find((m) => m.Expression)?.Expression).toBe('all - FILL(deadline, 0)');
      expect(metrics.find((m) => m.Id === 'deadline')?.MetricStat?.Metric).toMatchObject({
        Dimensions: expect.arrayContaining([{ Name: 'reason', Value: 'deadline' }]),
      });
    });

    it('alarms (warning) on unexpected errors in 2 of 3 periods, not on typed answers', () => {
      expect(alarmProps('UnexpectedErrors')).toMatchObject({
        MetricName: 'UnexpectedError',
        Period: 900,
        EvaluationPeriods: 3,
        DatapointsToAlarm: 2,
        AlarmActions: [warningRef],
      });
    });

    it('alarms (warning) when two consecutive sweeps leave a backlog', () => {
      built.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        AlarmName: 'TokenKeeperTest-token-keeper-SweepBacklog',
        Namespace: 'TokenKeeper',
        MetricName: 'SweepBacklog',
        Dimensions: [{ Name: 'service', Value: 'token-keeper' }],
        Statistic: 'Maximum',
        Period: 900,
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
        EvaluationPeriods: 2,
        DatapointsToAlarm: 2,
        TreatMissingData: 'notBreaching',
        AlarmActions: [warningRef],
      });
    });

    it('alarms (critical) as soon as the sweep dead-letter queue holds a message', () => {
      const queue = built.stack.tokenKeeper.sweepDeadLetterQueue;
      built.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        AlarmName: 'TokenKeeperTest-token-keeper-SweepDeadLetters',
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId(queue), 'QueueName'] } }],
        Statistic: 'Maximum',
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
        AlarmActions: [criticalRef],
      });
    });

    it('sends a failed sweep invocation to a queue, and alarms when it holds a message', () => {
      const tk = built.stack.tokenKeeper;
      built.template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
        FunctionName: { Ref: logicalId(tk.refreshSweepFunction) },
        MaximumRetryAttempts: 0,
        DestinationConfig: {
          OnFailure: { Destination: { 'Fn::GetAtt': [logicalId(tk.sweepFailureQueue), 'Arn'] } },
        },
      });
      built.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        AlarmName: 'TokenKeeperTest-token-keeper-SweepFailures',
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [
          { Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId(tk.sweepFailureQueue), 'QueueName'] } },
        ],
        AlarmActions: [warningRef],
      });
    });

    it('tells the operator to end the IdP session by hand when a disconnect could not', () => {
      built.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: 'DisconnectIdpFailed',
        AlarmDescription: Match.stringLikeRegexp('session may still be alive at the IdP.*log them out there'),
      });
    });

    it('alarms as soon as the expiry stream consumer gives up on a batch', () => {
      const queue = built.stack.tokenKeeper.expiryStreamFailureQueue;
      built.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        AlarmName: 'TokenKeeperTest-token-keeper-ExpiryStreamFailures',
        AlarmDescription: Match.stringLikeRegexp('within 24 h'),
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId(queue), 'QueueName'] } }],
        Statistic: 'Maximum',
        Period: 300,
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
        EvaluationPeriods: 1,
        TreatMissingData: 'notBreaching',
        AlarmActions: [warningRef],
      });
    });

    it('alarms when the expiry stream consumer lags 15 minutes behind for 15 minutes', () => {
      built.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        AlarmName: 'TokenKeeperTest-token-keeper-ExpiryStreamIteratorAge',
        Namespace: 'AWS/Lambda',
        MetricName: 'IteratorAge',
        Dimensions: [
          { Name: 'FunctionName', Value: { Ref: logicalId(built.stack.tokenKeeper.expiryStreamFunction) } },
        ],
        Statistic: 'Maximum',
        Threshold: 900_000,
        EvaluationPeriods: 3,
        DatapointsToAlarm: 3,
      });
    });
  });

  describe('Method: addFunctionAlarms', () => {
    const functions = [
      ['StoreTokens', 'storeTokensFunction', 8_000],
      ['GetAccessToken', 'getAccessTokenFunction', 24_000],
      ['RefreshSweep', 'refreshSweepFunction', 240_000],
      ['Disconnect', 'disconnectFunction', 24_000],
      ['ExpiryStream', 'expiryStreamFunction', 48_000],
      ['TokenStatus', 'tokenStatusFunction', 8_000],
    ] as const;
    const lambdaAlarm = (fn: lambda.IFunction, metricName: string) => ({
      Namespace: 'AWS/Lambda',
      MetricName: metricName,
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: logicalId(fn) } }],
      TreatMissingData: 'notBreaching',
      AlarmActions: [warningRef],
    });

    it.each(functions)('alarms on throttles of %s', (label, field) => {
      built.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        ...lambdaAlarm(built.stack.tokenKeeper[field], 'Throttles'),
        AlarmName: `TokenKeeperTest-token-keeper-${label}Throttles`,
        Period: 300,
        EvaluationPeriods: 1,
        Statistic: 'Sum',
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      });
    });

    it('alarms on Lambda errors only of the functions that answer no caller (sweep, expiry stream)', () => {
      const errorAlarms = Object.values(built.template.findResources('AWS::CloudWatch::Alarm'))
        .filter((alarm) => alarm.Properties.MetricName === 'Errors')
        .map((alarm) => alarm.Properties.AlarmName)
        .sort();
      expect(errorAlarms).toEqual([
        'TokenKeeperTest-token-keeper-ExpiryStreamErrors',
        'TokenKeeperTest-token-keeper-RefreshSweepErrors',
      ]);
      built.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        ...lambdaAlarm(built.stack.tokenKeeper.refreshSweepFunction, 'Errors'),
        Period: 900,
        EvaluationPeriods: 3,
        DatapointsToAlarm: 2,
      });
    });

    it.each(functions)(
      'alarms when the p99 duration of %s passes 80%% of its timeout (%i ms) in 2 of 3 periods',
      (label, field, ms) => {
        built.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
          ...lambdaAlarm(built.stack.tokenKeeper[field], 'Duration'),
          AlarmName: `TokenKeeperTest-token-keeper-${label}Duration`,
          ExtendedStatistic: 'p99',
          Period: 300,
          EvaluationPeriods: 3,
          DatapointsToAlarm: 2,
          Threshold: ms,
          ComparisonOperator: 'GreaterThanThreshold',
        });
      },
    );
  });

  describe('Resource: alarm set', () => {
    it('has 29 alarms (7 critical), each with a description, one severity and its actions on ALARM and OK', () => {
      // critical: 6 service + SweepDeadLetters; warning: 6 service + 3 queue/stream + 2 per function x 6 + 2 errors
      const alarms = Object.values(built.template.findResources('AWS::CloudWatch::Alarm'));
      expect(alarms).toHaveLength(29);
      const critical = alarms.filter((alarm) =>
        String(alarm.Properties.AlarmDescription).startsWith('[critical]'),
      );
      expect(
        critical
          .map((alarm) => alarm.Properties.AlarmName.replace('TokenKeeperTest-token-keeper-', ''))
          .sort(),
      ).toEqual([
        'IdpConfigurationRejected',
        'PersistFailed',
        'RotationCircuitOpen',
        'RotationFailing',
        'SweepDeadLetters',
        'SweepHeartbeat',
        'TokensExpired',
      ]);
      for (const alarm of alarms) {
        const ref = critical.includes(alarm) ? criticalRef : warningRef;
        expect(alarm.Properties.AlarmActions).toEqual([ref]);
        expect(alarm.Properties.OKActions).toEqual([ref]);
        expect(String(alarm.Properties.AlarmDescription).length).toBeGreaterThan(60);
      }
      expect(built.stack.tokenKeeper.monitoring.alarms).toHaveLength(29);
    });

    it('names each alarm after the stack, the service and what it watches', () => {
      const names = Object.values(built.template.findResources('AWS::CloudWatch::Alarm')).map(
        (alarm) => alarm.Properties.AlarmName,
      );
      expect(new Set(names).size).toBe(names.length);
      for (const name of names) expect(name).toMatch(/^TokenKeeperTest-token-keeper-[A-Za-z]+$/);
    });

    it('fits every alarm in CloudWatch limits: period x evaluation periods within one day', () => {
      for (const alarm of Object.values(built.template.findResources('AWS::CloudWatch::Alarm'))) {
        const p = alarm.Properties;
        const period =
          p.Period ??
          (p.Metrics as { Period?: number; MetricStat?: { Period: number } }[]).find((m) => m.MetricStat)
            ?.MetricStat?.Period;
        expect(period * p.EvaluationPeriods).toBeLessThanOrEqual(86_400);
        expect(p.DatapointsToAlarm ?? p.EvaluationPeriods).toBeLessThanOrEqual(p.EvaluationPeriods);
      }
    });
  });

  describe('Resource: alarm topics', () => {
    it('creates a critical and a warning topic, both encrypted with a key of their own (not the storage key)', () => {
      const monitoring = built.stack.tokenKeeper.monitoring;
      const keyArn = built.stack.resolve(monitoring.topicKey!.keyArn);
      built.template.resourceCountIs('AWS::SNS::Topic', 2);
      for (const topic of Object.values(built.template.findResources('AWS::SNS::Topic'))) {
        expect(topic.Properties.KmsMasterKeyId).toEqual(keyArn);
      }
      expect(keyArn).not.toEqual(built.stack.resolve(built.stack.tokenKeeper.storageKey.keyArn));
    });

    it('denies publishing without TLS and lets only CloudWatch alarms of this account publish', () => {
      built.template.hasResourceProperties('AWS::SNS::TopicPolicy', {
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Effect: 'Deny',
              Action: 'sns:Publish',
              Condition: { Bool: { 'aws:SecureTransport': 'false' } },
            }),
            Match.objectLike({
              Effect: 'Allow',
              Action: 'sns:Publish',
              Principal: { Service: 'cloudwatch.amazonaws.com' },
              Condition: {
                StringEquals: { 'aws:SourceAccount': '111122223333' },
                ArnLike: { 'aws:SourceArn': Match.anyValue() },
              },
            }),
          ]),
        },
      });
    });

    it('lets CloudWatch use the topic key only for alarms of this account, and no service use the storage key', () => {
      const statements = (key: { node: { defaultChild?: unknown } }) =>
        (built.template.findResources('AWS::KMS::Key')[logicalId(key)]?.Properties.KeyPolicy.Statement ??
          []) as { Principal?: { Service?: string }; Condition?: unknown }[];
      const tk = built.stack.tokenKeeper;
      const cloudwatch = statements(tk.monitoring.topicKey!).filter(
        (s) => s.Principal?.Service === 'cloudwatch.amazonaws.com',
      );
      expect(cloudwatch).toHaveLength(1);
      expect(cloudwatch[0]?.Condition).toEqual({
        StringEquals: { 'aws:SourceAccount': '111122223333' },
        ArnLike: { 'aws:SourceArn': 'arn:aws:cloudwatch:eu-west-1:111122223333:alarm:*' },
      });
      expect(statements(tk.storageKey).filter((s) => s.Principal?.Service !== undefined)).toEqual([]);
    });

    it('subscribes the alarm e-mail to both topics when one is given, and nothing otherwise', () => {
      for (const ref of [criticalRef, warningRef]) {
        built.template.hasResourceProperties('AWS::SNS::Subscription', {
          Protocol: 'email',
          Endpoint: 'ops@example.com',
          TopicArn: ref,
        });
      }
      monitoringAlone().template.resourceCountIs('AWS::SNS::Subscription', 0);
    });

    it('uses a topic or actions the operator brings, and creates no topic or key for them', () => {
      const other = new Stack(testApp(), 'BringYourOwn', {
        env: { account: '111122223333', region: 'eu-west-1' },
      });
      const paging = sns.Topic.fromTopicArn(other, 'Paging', 'arn:aws:sns:eu-west-1:111122223333:paging');
      const ops = new actions.SnsAction(
        sns.Topic.fromTopicArn(other, 'Ops', 'arn:aws:sns:eu-west-1:111122223333:ops'),
      );
      new TokenKeeperMonitoring(other, 'Monitoring', {
        serviceName: 'token-keeper',
        sweepInterval: Duration.minutes(15),
        critical: { topic: paging },
        warning: { actions: [ops] },
        notifyOnOk: false,
      });
      const own = Template.fromStack(other);
      own.resourceCountIs('AWS::SNS::Topic', 0);
      own.resourceCountIs('AWS::KMS::Key', 0);
      own.hasResourceProperties('AWS::CloudWatch::Alarm', {
        AlarmName: 'BringYourOwn-token-keeper-SweepHeartbeat',
        AlarmActions: ['arn:aws:sns:eu-west-1:111122223333:paging'],
      });
      own.hasResourceProperties('AWS::CloudWatch::Alarm', {
        AlarmName: 'BringYourOwn-token-keeper-SweepBacklog',
        AlarmActions: ['arn:aws:sns:eu-west-1:111122223333:ops'],
      });
      for (const alarm of Object.values(own.findResources('AWS::CloudWatch::Alarm'))) {
        expect(alarm.Properties.OKActions).toBeUndefined();
      }
    });
  });

  describe('Resource: dashboard', () => {
    it('graphs the rotation, refresh and sweep metrics and each function', () => {
      built.template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
      const body = JSON.stringify(
        Object.values(built.template.findResources('AWS::CloudWatch::Dashboard'))[0],
      );
      for (const name of [
        'RotationSucceeded',
        'RotationFailed',
        'ReauthRequired',
        'PersistFailed',
        'AccessTokenServed',
        'IdpLatency',
        'SweepDue',
        'SweepBacklog',
        'TokensExpired',
        'StoreTokens: invocations',
        'GetAccessToken: duration',
        'RefreshSweep: invocations',
        'Disconnect: invocations',
        'ExpiryStream: duration',
        'TokenStatus: invocations',
        'TokensStored',
        'ReauthSoon',
        'RotationRecovered',
        'Disconnected',
        'DisconnectIdpFailed',
      ]) {
        expect(body).toContain(name);
      }
    });

    it('can be turned off', () => {
      monitoringAlone({ dashboard: false }).template.resourceCountIs('AWS::CloudWatch::Dashboard', 0);
    });
  });

  describe('Method: constructor (options)', () => {
    it('uses the service name as the metric dimension and the backlog periods as given', () => {
      monitoringAlone({ serviceName: 'billing', sweepBacklogPeriods: 3 }).template.hasResourceProperties(
        'AWS::CloudWatch::Alarm',
        {
          MetricName: 'SweepBacklog',
          Dimensions: [{ Name: 'service', Value: 'billing' }],
          EvaluationPeriods: 3,
          DatapointsToAlarm: 3,
        },
      );
    });
  });
});
