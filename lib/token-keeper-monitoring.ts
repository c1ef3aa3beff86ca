import { Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { MetricName } from '../functions/core/ports';

/** The CloudWatch namespace of every token-keeper metric (EMF, written by the functions). */
export const METRICS_NAMESPACE = 'TokenKeeper';

/** The metric names the functions emit: the core's own list, so the alarms cannot drift from it. */
export type TokenKeeperMetricName = MetricName;

/** Properties of {@link TokenKeeperMonitoring}. */
export interface TokenKeeperMonitoringProps {
  /** The `service` dimension of every metric (POWERTOOLS_SERVICE_NAME of the functions). */
  readonly serviceName: string;
  /** The key that encrypts the alarm topic; CloudWatch is allowed to use it to publish. */
  readonly topicKey: kms.IKey;
  /** How often the sweep runs: the period of the backlog alarm. */
  readonly sweepInterval: Duration;
  /**
   * Consecutive sweeps that must leave a backlog before the backlog alarm fires.
   * @default 2
   */
  readonly sweepBacklogPeriods?: number;
  /**
   * An e-mail address subscribed to the alarm topic (the recipient must confirm it).
   * @default - no subscription
   */
  readonly alarmEmail?: string;
  /**
   * Whether to create the CloudWatch dashboard.
   * @default true
   */
  readonly dashboard?: boolean;
}

/** What a count alarm watches and when it fires. */
interface CountAlarmSpec {
  readonly metricName: TokenKeeperMetricName;
  readonly threshold: number;
  readonly period: Duration;
  readonly description: string;
}

/** Period of the count and function alarms. */
const ALARM_PERIOD = Duration.minutes(5);

/**
 * Alarms, their SNS topic and the dashboard of one token-keeper deployment. Every alarm
 * notifies the topic; count alarms treat missing data as fine, because the functions only
 * emit a count when the event happened.
 */
export class TokenKeeperMonitoring extends Construct {
  /** The topic every alarm notifies (KMS-encrypted, TLS-only). */
  readonly alarmTopic: sns.Topic;
  /** The dashboard, when enabled. */
  readonly dashboard: cloudwatch.Dashboard | undefined;
  readonly #alarms: cloudwatch.Alarm[] = [];
  readonly #serviceName: string;
  readonly #alarmAction: actions.SnsAction;

  constructor(scope: Construct, id: string, props: TokenKeeperMonitoringProps) {
    super(scope, id);
    this.#serviceName = props.serviceName;

    this.alarmTopic = new sns.Topic(this, 'AlarmTopic', {
      displayName: `${props.serviceName} alarms`,
      masterKey: props.topicKey,
      enforceSSL: true,
    });
    // Alarms publish as the CloudWatch service: allow it on this topic, for this account only.
    this.alarmTopic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowCloudWatchAlarmsToPublish',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.alarmTopic.topicArn],
        conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
      }),
    );
    // CloudWatch encrypts the alarm message with the topic key before SNS stores it.
    props.topicKey.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowCloudWatchAlarmsToUseTheKeyForTheAlarmTopic',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
      }),
    );
    if (props.alarmEmail !== undefined && props.alarmEmail !== '') {
      this.alarmTopic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
    }
    this.#alarmAction = new actions.SnsAction(this.alarmTopic);

    this.addCountAlarm('RotationFailed', {
      metricName: 'RotationFailed',
      threshold: 1,
      period: ALARM_PERIOD,
      description:
        'A refresh-token rotation failed in the last 5 minutes (IdP unreachable, 5xx or 429). ' +
        'The record is retried with backoff; check the IdP status and the refreshSweep logs.',
    });
    this.addCountAlarm('ReauthRequired', {
      metricName: 'ReauthRequired',
      threshold: 1,
      period: ALARM_PERIOD,
      description:
        'At least one user must sign in again: the IdP rejected a refresh token or the rotation ' +
        'deadline passed. Expected now and then; a burst points to revoked client credentials or reuse.',
    });
    this.addCountAlarm('PersistFailed', {
      metricName: 'PersistFailed',
      threshold: 1,
      period: Duration.minutes(1),
      description:
        'CRITICAL: a rotated refresh token could not be stored after retries, so that user lost offline ' +
        'access. Check DynamoDB and KMS errors/throttling in the function logs now.',
    });
    this.addCountAlarm('TokensExpired', {
      metricName: 'TokensExpired',
      threshold: 1,
      period: ALARM_PERIOD,
      description:
        'A refresh token expired before it was rotated. The sweep did not reach it in time: check ' +
        'the SweepBacklog and RotationFailed alarms, the schedule and the sweep errors.',
    });
    this.addCountAlarm('DisconnectIdpFailed', {
      metricName: 'DisconnectIdpFailed',
      threshold: 1,
      period: ALARM_PERIOD,
      description:
        'A user was deleted locally but the IdP logout / revocation failed: their session may still be alive ' +
        'at the IdP. Find the user in the disconnect log ("IdP logout failed") and log them out there.',
    });
    const backlogPeriods = props.sweepBacklogPeriods ?? 2;
    this.#addAlarm(
      new cloudwatch.Alarm(this, 'SweepBacklogAlarm', {
        alarmName: this.#alarmName('SweepBacklog'),
        alarmDescription:
          `The sweep left due records unprocessed on ${backlogPeriods} consecutive runs. Raise DUE_SHARDS ` +
          'or SWEEP_CONCURRENCY, run the sweep more often, or check IdP latency.',
        metric: this.metric('SweepBacklog', {
          statistic: cloudwatch.Stats.MAXIMUM,
          period: props.sweepInterval,
        }),
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: backlogPeriods,
        datapointsToAlarm: backlogPeriods,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
    );

    if (props.dashboard ?? true) {
      this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
        defaultInterval: Duration.hours(24),
      });
      this.dashboard.addWidgets(
        new cloudwatch.GraphWidget({
          title: 'Rotations',
          width: 8,
          left: (['RotationSucceeded', 'RotationFailed', 'ReauthRequired', 'PersistFailed'] as const).map(
            (name) => this.metric(name),
          ),
        }),
        new cloudwatch.GraphWidget({
          title: 'Access tokens served',
          width: 8,
          left: [this.metric('AccessTokenServed')],
        }),
        new cloudwatch.GraphWidget({
          title: 'IdP latency (ms)',
          width: 8,
          left: [
            this.metric('IdpLatency', { statistic: cloudwatch.Stats.p(50), label: 'p50' }),
            this.metric('IdpLatency', { statistic: cloudwatch.Stats.p(99), label: 'p99' }),
          ],
        }),
      );
      this.dashboard.addWidgets(
        new cloudwatch.GraphWidget({
          title: 'Sweep',
          width: 12,
          left: [this.metric('SweepDue'), this.metric('TokensExpired')],
          right: [this.metric('SweepBacklog', { statistic: cloudwatch.Stats.MAXIMUM })],
        }),
        new cloudwatch.GraphWidget({
          title: 'Users',
          width: 12,
          left: (
            [
              'TokensStored',
              'ReauthSoon',
              'RotationRecovered',
              'Disconnected',
              'DisconnectIdpFailed',
            ] as const
          ).map((name) => this.metric(name)),
        }),
      );
    }
  }

  /** Every alarm created so far. */
  get alarms(): readonly cloudwatch.Alarm[] {
    return [...this.#alarms];
  }

  /** A token-keeper metric with the `service` dimension; Sum over 5 minutes unless told. */
  metric(name: TokenKeeperMetricName, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: METRICS_NAMESPACE,
      metricName: name,
      dimensionsMap: { service: this.#serviceName },
      statistic: cloudwatch.Stats.SUM,
      period: ALARM_PERIOD,
      ...props,
    });
  }

  /** Alarms when a count metric reaches the threshold within one period. */
  addCountAlarm(id: string, spec: CountAlarmSpec): cloudwatch.Alarm {
    return this.#addAlarm(
      new cloudwatch.Alarm(this, `${id}Alarm`, {
        alarmName: this.#alarmName(id),
        alarmDescription: spec.description,
        metric: this.metric(spec.metricName, { period: spec.period }),
        threshold: spec.threshold,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
    );
  }

  /** Alarms on a function's errors, throttles and p99 duration above 80% of its timeout; adds its graphs. */
  addFunctionAlarms(label: string, fn: lambda.IFunction, timeout: Duration): cloudwatch.Alarm[] {
    const durationThresholdMs = Math.floor(timeout.toMilliseconds() * 0.8);
    const created = [
      this.#addAlarm(
        new cloudwatch.Alarm(this, `${label}ErrorsAlarm`, {
          alarmName: this.#alarmName(`${label}Errors`),
          alarmDescription:
            `${label} failed at least once in 5 minutes (uncaught error, timeout or a typed error ` +
            'returned to the caller). Read the function logs for the error name.',
          metric: fn.metricErrors({ period: ALARM_PERIOD, statistic: cloudwatch.Stats.SUM }),
          threshold: 1,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          evaluationPeriods: 1,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        }),
      ),
      this.#addAlarm(
        new cloudwatch.Alarm(this, `${label}ThrottlesAlarm`, {
          alarmName: this.#alarmName(`${label}Throttles`),
          alarmDescription:
            `${label} was throttled in the last 5 minutes: account or reserved concurrency exhausted. ` +
            'Raise the concurrency limit or find the caller that floods it.',
          metric: fn.metricThrottles({ period: ALARM_PERIOD, statistic: cloudwatch.Stats.SUM }),
          threshold: 1,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          evaluationPeriods: 1,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        }),
      ),
      this.#addAlarm(
        new cloudwatch.Alarm(this, `${label}DurationAlarm`, {
          alarmName: this.#alarmName(`${label}Duration`),
          alarmDescription:
            `${label} p99 duration is above 80% of its ${timeout.toSeconds()} s timeout: slow IdP, ` +
            'DynamoDB or KMS. Timeouts follow; check IdpLatency and the function logs.',
          metric: fn.metricDuration({ period: ALARM_PERIOD, statistic: cloudwatch.Stats.p(99) }),
          threshold: durationThresholdMs,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
          evaluationPeriods: 1,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        }),
      ),
    ];
    this.dashboard?.addWidgets(
      new cloudwatch.GraphWidget({
        title: `${label}: invocations, errors, throttles`,
        width: 12,
        left: [fn.metricInvocations(), fn.metricErrors(), fn.metricThrottles()],
      }),
      new cloudwatch.GraphWidget({
        title: `${label}: duration p99 (ms)`,
        width: 12,
        left: [fn.metricDuration({ statistic: cloudwatch.Stats.p(99) })],
        leftAnnotations: [{ value: durationThresholdMs, label: 'alarm' }],
      }),
    );
    return created;
  }

  /** Alarms as soon as a queue (a dead-letter queue) holds a message. */
  addQueueNotEmptyAlarm(id: string, queue: sqs.IQueue, description: string): cloudwatch.Alarm {
    return this.#addAlarm(
      new cloudwatch.Alarm(this, `${id}Alarm`, {
        alarmName: this.#alarmName(id),
        alarmDescription: description,
        metric: queue.metricApproximateNumberOfMessagesVisible({
          period: ALARM_PERIOD,
          statistic: cloudwatch.Stats.MAXIMUM,
        }),
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
    );
  }

  #addAlarm(alarm: cloudwatch.Alarm): cloudwatch.Alarm {
    alarm.addAlarmAction(this.#alarmAction);
    this.#alarms.push(alarm);
    return alarm;
  }

  /** Stack and service in the name, so two deployments in one account never collide. */
  #alarmName(id: string): string {
    return `${Stack.of(this).stackName}-${this.#serviceName}-${id}`;
  }
}
