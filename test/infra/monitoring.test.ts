import { Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { beforeAll, describe, expect, it } from 'vitest';
import { TokenKeeperMonitoring, type TokenKeeperMonitoringProps } from '../../lib/token-keeper-monitoring';
import { synthStack, testApp } from './support/app';

type Built = ReturnType<typeof synthStack>;

let built: Built;
let topicRef: unknown;

const logicalId = (construct: { node: { defaultChild?: unknown } }): string =>
  built.stack.getLogicalId(construct.node.defaultChild as Parameters<Stack['getLogicalId']>[0]);

/** A monitoring construct alone in a stack: no functions, so nothing to bundle. */
function monitoringAlone(props: Partial<TokenKeeperMonitoringProps> = {}): Template {
  const stack = new Stack(testApp(), 'MonitoringOnly', {
    env: { account: '111122223333', region: 'eu-west-1' },
  });
  new TokenKeeperMonitoring(stack, 'Monitoring', {
    serviceName: 'token-keeper',
    topicKey: new kms.Key(stack, 'Key', { enableKeyRotation: true }),
    sweepInterval: Duration.minutes(15),
    ...props,
  });
  return Template.fromStack(stack);
}

beforeAll(() => {
  built = synthStack({ alarmEmail: 'ops@example.com' });
  topicRef = { Ref: logicalId(built.stack.tokenKeeper.monitoring.alarmTopic) };
});

describe('Class: TokenKeeperMonitoring', () => {
  describe('Resource: service metric alarms', () => {
    const countAlarms = [
      ['RotationFailed', 300],
      ['ReauthRequired', 300],
      ['PersistFailed', 60],
      ['TokensExpired', 300],
      ['DisconnectIdpFailed', 300],
    ] as const;

    it.each(countAlarms)(
      'alarms when %s reaches 1 within %i s, notifying the topic',
      (metricName, period) => {
        built.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
          AlarmName: `TokenKeeperTest-token-keeper-${metricName}`,
          AlarmDescription: Match.stringLikeRegexp('.{60,}'),
          Namespace: 'TokenKeeper',
          MetricName: metricName,
          Dimensions: [{ Name: 'service', Value: 'token-keeper' }],
          Statistic: 'Sum',
          Period: period,
          Threshold: 1,
          ComparisonOperator: 'GreaterThanOrEqualToThreshold',
          EvaluationPeriods: 1,
          TreatMissingData: 'notBreaching',
          AlarmActions: [topicRef],
        });
      },
    );

    it('alarms when two consecutive sweeps leave a backlog', () => {
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
        AlarmActions: [topicRef],
      });
    });

    it('alarms as soon as the sweep dead-letter queue holds a message', () => {
      const queue = built.stack.tokenKeeper.sweepDeadLetterQueue;
      built.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        AlarmName: 'TokenKeeperTest-token-keeper-SweepDeadLetters',
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId(queue), 'QueueName'] } }],
        Statistic: 'Maximum',
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
        AlarmActions: [topicRef],
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
        AlarmActions: [topicRef],
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
    ] as const;
    const lambdaAlarm = (fn: lambda.IFunction, metricName: string) => ({
      Namespace: 'AWS/Lambda',
      MetricName: metricName,
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: logicalId(fn) } }],
      Period: 300,
      EvaluationPeriods: 1,
      TreatMissingData: 'notBreaching',
      AlarmActions: [topicRef],
    });

    it.each(functions)('alarms on errors and throttles of %s', (label, field) => {
      const fn = built.stack.tokenKeeper[field];
      for (const metric of ['Errors', 'Throttles']) {
        built.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
          ...lambdaAlarm(fn, metric),
          AlarmName: `TokenKeeperTest-token-keeper-${label}${metric}`,
          Statistic: 'Sum',
          Threshold: 1,
          ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        });
      }
    });

    it.each(functions)(
      'alarms when the p99 duration of %s passes 80%% of its timeout (%i ms)',
      (label, field, ms) => {
        built.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
          ...lambdaAlarm(built.stack.tokenKeeper[field], 'Duration'),
          AlarmName: `TokenKeeperTest-token-keeper-${label}Duration`,
          ExtendedStatistic: 'p99',
          Threshold: ms,
          ComparisonOperator: 'GreaterThanThreshold',
        });
      },
    );
  });

  describe('Resource: alarm set', () => {
    it('has 23 alarms, each with a description and the topic as its only action', () => {
      // 5 service counts + backlog + 2 queues + 3 per function x 5
      const alarms = Object.values(built.template.findResources('AWS::CloudWatch::Alarm'));
      expect(alarms).toHaveLength(23);
      for (const alarm of alarms) {
        expect(alarm.Properties.AlarmActions).toEqual([topicRef]);
        expect(String(alarm.Properties.AlarmDescription).length).toBeGreaterThan(60);
      }
      expect(built.stack.tokenKeeper.monitoring.alarms).toHaveLength(23);
    });

    it('names each alarm after the stack, the service and what it watches', () => {
      const names = Object.values(built.template.findResources('AWS::CloudWatch::Alarm')).map(
        (alarm) => alarm.Properties.AlarmName,
      );
      expect(new Set(names).size).toBe(names.length);
      for (const name of names) expect(name).toMatch(/^TokenKeeperTest-token-keeper-[A-Za-z]+$/);
    });
  });

  describe('Resource: alarm topic', () => {
    it('encrypts the topic with the storage key', () => {
      built.template.hasResourceProperties('AWS::SNS::Topic', {
        KmsMasterKeyId: built.stack.resolve(built.stack.tokenKeeper.storageKey.keyArn),
      });
    });

    it('denies publishing without TLS and lets CloudWatch of this account publish', () => {
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
              Condition: { StringEquals: { 'aws:SourceAccount': '111122223333' } },
            }),
          ]),
        },
      });
    });

    it('subscribes the alarm e-mail when one is given, and nothing otherwise', () => {
      built.template.hasResourceProperties('AWS::SNS::Subscription', {
        Protocol: 'email',
        Endpoint: 'ops@example.com',
        TopicArn: topicRef,
      });
      monitoringAlone().resourceCountIs('AWS::SNS::Subscription', 0);
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
      monitoringAlone({ dashboard: false }).resourceCountIs('AWS::CloudWatch::Dashboard', 0);
    });
  });

  describe('Method: constructor (options)', () => {
    it('uses the service name as the metric dimension and the backlog periods as given', () => {
      monitoringAlone({ serviceName: 'billing', sweepBacklogPeriods: 3 }).hasResourceProperties(
        'AWS::CloudWatch::Alarm',
        {
          MetricName: 'SweepBacklog',
          Dimensions: [{ Name: 'service', Value: 'billing' }],
          EvaluationPeriods: 3,
          DatapointsToAlarm: 3,
        },
      );
    });

    it('lets CloudWatch use the topic key to publish encrypted alarm messages', () => {
      monitoringAlone().hasResourceProperties('AWS::KMS::Key', {
        KeyPolicy: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Effect: 'Allow',
              Principal: { Service: 'cloudwatch.amazonaws.com' },
              Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
            }),
          ]),
        },
      });
    });
  });
});
