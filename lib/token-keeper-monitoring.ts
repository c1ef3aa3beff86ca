import { Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { MetricName } from '../functions/core/ports';
import { acknowledgeAlarmEmailSubscription } from './nag-acknowledgements';

/** The CloudWatch namespace of every token-keeper metric (EMF, written by the functions). */
export const METRICS_NAMESPACE = 'TokenKeeper';

/** The metric names the functions emit: the core's own list, so the alarms cannot drift from it. */
export type TokenKeeperMetricName = MetricName;

/**
 * Critical: tokens are at risk or being lost, act now (page). Warning: something needs a look
 * within a working day; no token is lost while it lasts.
 */
export type AlarmSeverity = 'critical' | 'warning';

/** Where the alarms of one severity go. */
export interface AlarmDestination {
  /**
   * An existing topic to notify (bring your own: the on-call's paging topic, say).
   * @default - a topic of this construct, encrypted with a key of its own
   */
  readonly topic?: sns.ITopic;
  /**
   * Actions to run instead of notifying a topic (an SSM OpsItem, a Lambda, a topic elsewhere).
   * @default - notify the topic
   */
  readonly actions?: readonly cloudwatch.IAlarmAction[];
}

/** Properties of {@link TokenKeeperMonitoring}. */
export interface TokenKeeperMonitoringProps {
  /** The `service` dimension of every metric (POWERTOOLS_SERVICE_NAME of the functions). */
  readonly serviceName: string;
  /**
   * How often the sweep runs: the period of the heartbeat, backlog and persistence alarms.
   * At most 6 hours (three periods must fit in CloudWatch's one-day evaluation range).
   */
  readonly sweepInterval: Duration;
  /**
   * Consecutive sweeps that must leave a backlog before the backlog alarm fires.
   * @default 2
   */
  readonly sweepBacklogPeriods?: number;
  /**
   * An e-mail address subscribed to the topics this construct creates (the recipient must confirm).
   * @default - no subscription
   */
  readonly alarmEmail?: string;
  /** @default - a topic of its own */
  readonly critical?: AlarmDestination;
  /** @default - a topic of its own */
  readonly warning?: AlarmDestination;
  /**
   * Whether the same actions also run when an alarm returns to OK, so whoever was told it broke is
   * told it is over.
   * @default true
   */
  readonly notifyOnOk?: boolean;
  /**
   * Whether to create the CloudWatch dashboard.
   * @default true
   */
  readonly dashboard?: boolean;
}

/** What a count alarm watches and when it fires. */
export interface CountAlarmSpec {
  readonly metricName: TokenKeeperMetricName;
  readonly severity: AlarmSeverity;
  readonly description: string;
  /** @default 1 */
  readonly threshold?: number;
  /** @default 5 minutes */
  readonly period?: Duration;
  /** Periods looked at; @default 1 */
  readonly evaluationPeriods?: number;
  /** Breaching periods among them that fire the alarm; @default evaluationPeriods */
  readonly datapointsToAlarm?: number;
}

/** Period of the count and function alarms that fire on a single event. */
const ALARM_PERIOD = Duration.minutes(5);

/** Share of rotations failing (percent) over which a period counts as failing. */
export const ROTATION_FAILING_PERCENT = 50;

/** Sweep periods in a row with mostly failing rotations before RotationFailing fires. */
export const ROTATION_FAILING_PERIODS = 3;

/** Users needing to sign in again (deadline ends excluded) in one hour that point to a cause. */
export const REAUTH_BURST_PER_HOUR = 10;

/**
 * Alarms, their topics and the dashboard of one token-keeper deployment. Every alarm says what to
 * do, and is either critical (tokens at risk) or a warning; each severity has its own topic or
 * actions. An alarm fires only when someone must act: expected outcomes (typed answers to callers,
 * deadline ends, an isolated transient IdP failure) are counted but not alarmed.
 */
export class TokenKeeperMonitoring extends Construct {
  /** The topic of critical alarms, unless actions were given instead. */
  readonly criticalTopic: sns.ITopic | undefined;
  /** The topic of warnings, unless actions were given instead. */
  readonly warningTopic: sns.ITopic | undefined;
  /** The key of the topics this construct created (CloudWatch may use it only for this account's alarms). */
  readonly topicKey: kms.Key | undefined;
  /** The dashboard, when enabled. */
  readonly dashboard: cloudwatch.Dashboard | undefined;
  readonly #alarms: Record<AlarmSeverity, cloudwatch.Alarm[]> = { critical: [], warning: [] };
  readonly #serviceName: string;
  readonly #actions: Record<AlarmSeverity, readonly cloudwatch.IAlarmAction[]>;
  readonly #notifyOnOk: boolean;
  readonly #sweepInterval: Duration;

  constructor(scope: Construct, id: string, props: TokenKeeperMonitoringProps) {
    super(scope, id);
    this.#serviceName = props.serviceName;
    this.#notifyOnOk = props.notifyOnOk ?? true;
    this.#sweepInterval = props.sweepInterval;

    const needsTopic = (d: AlarmDestination | undefined) =>
      d?.actions === undefined && d?.topic === undefined;
    if (needsTopic(props.critical) || needsTopic(props.warning)) {
      this.topicKey = this.#newTopicKey(props.serviceName);
    }
    const destination = (severity: AlarmSeverity, d: AlarmDestination | undefined) => {
      if (d?.actions !== undefined) return { topic: undefined, actions: d.actions };
      const topic = d?.topic ?? this.#newTopic(severity, props.alarmEmail);
      return { topic, actions: [new actions.SnsAction(topic)] };
    };
    const critical = destination('critical', props.critical);
    const warning = destination('warning', props.warning);
    this.criticalTopic = critical.topic;
    this.warningTopic = warning.topic;
    this.#actions = { critical: critical.actions, warning: warning.actions };

    this.#addServiceAlarms(props.sweepInterval, props.sweepBacklogPeriods ?? 2);
    if (props.dashboard ?? true) this.dashboard = this.#newDashboard();
  }

  /** Every alarm created so far. */
  get alarms(): readonly cloudwatch.Alarm[] {
    return [...this.#alarms.critical, ...this.#alarms.warning];
  }

  /** The alarms of one severity. */
  alarmsOf(severity: AlarmSeverity): readonly cloudwatch.Alarm[] {
    return [...this.#alarms[severity]];
  }

  /** A token-keeper metric with the `service` dimension (plus any breakdown); Sum over 5 minutes unless told. */
  metric(
    name: TokenKeeperMetricName,
    props?: cloudwatch.MetricOptions & { readonly breakdown?: Readonly<Record<string, string>> },
  ): cloudwatch.Metric {
    const { breakdown, ...options } = props ?? {};
    return new cloudwatch.Metric({
      namespace: METRICS_NAMESPACE,
      metricName: name,
      dimensionsMap: { service: this.#serviceName, ...breakdown },
      statistic: cloudwatch.Stats.SUM,
      period: ALARM_PERIOD,
      ...options,
    });
  }

  /** Alarms when a count metric reaches the threshold (in M of N periods when asked). */
  addCountAlarm(id: string, spec: CountAlarmSpec): cloudwatch.Alarm {
    const evaluationPeriods = spec.evaluationPeriods ?? 1;
    return this.#addAlarm(id, spec.severity, {
      alarmDescription: spec.description,
      metric: this.metric(spec.metricName, { period: spec.period ?? ALARM_PERIOD }),
      threshold: spec.threshold ?? 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods,
      datapointsToAlarm: spec.datapointsToAlarm ?? evaluationPeriods,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  }

  /**
   * A function's alarms: throttles, and p99 duration above 80% of its timeout, for every function;
   * Lambda errors only with `errors: true`, for functions that give callers no typed answers (an
   * error of theirs is always unexpected; elsewhere the UnexpectedErrors alarm watches).
   */
  addFunctionAlarms(
    label: string,
    fn: lambda.IFunction,
    timeout: Duration,
    options: { readonly errors?: boolean } = {},
  ): cloudwatch.Alarm[] {
    const durationThresholdMs = Math.floor(timeout.toMilliseconds() * 0.8);
    const created: cloudwatch.Alarm[] = [];
    if (options.errors) {
      created.push(
        this.#addAlarm(`${label}Errors`, 'warning', {
          alarmDescription:
            `${label} failed (an uncaught error or a timeout) in 2 of the last 3 periods. It answers no caller, ` +
            'so every error is unexpected: read the function log for the error name.',
          metric: fn.metricErrors({ period: this.#persistencePeriod(), statistic: cloudwatch.Stats.SUM }),
          threshold: 1,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          evaluationPeriods: 3,
          datapointsToAlarm: 2,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        }),
      );
    }
    created.push(
      this.#addAlarm(`${label}Throttles`, 'warning', {
        alarmDescription:
          `${label} was throttled in the last 5 minutes: account or reserved concurrency exhausted. ` +
          'Raise the concurrency limit or find the caller that floods it.',
        metric: fn.metricThrottles({ period: ALARM_PERIOD, statistic: cloudwatch.Stats.SUM }),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
      this.#addAlarm(`${label}Duration`, 'warning', {
        alarmDescription:
          `${label} p99 duration was above 80% of its ${timeout.toSeconds()} s timeout in 2 of the last 3 ` +
          '5-minute periods: slow IdP, DynamoDB or KMS. Timeouts follow; check IdpLatency and the function logs.',
        metric: fn.metricDuration({ period: ALARM_PERIOD, statistic: cloudwatch.Stats.p(99) }),
        threshold: durationThresholdMs,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 3,
        datapointsToAlarm: 2,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
    );
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

  /** Alarms as soon as a queue (a dead-letter or on-failure queue) holds a message. */
  addQueueNotEmptyAlarm(
    id: string,
    queue: sqs.IQueue,
    description: string,
    severity: AlarmSeverity = 'warning',
  ): cloudwatch.Alarm {
    return this.#addAlarm(id, severity, {
      alarmDescription: description,
      metric: queue.metricApproximateNumberOfMessagesVisible({
        period: ALARM_PERIOD,
        statistic: cloudwatch.Stats.MAXIMUM,
      }),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  }

  /**
   * Alarms when a stream consumer falls behind: the age of the newest record it read stays above
   * `maxAge` for 15 minutes (records older than the mapping's maximum age are given up on).
   */
  addIteratorAgeAlarm(
    id: string,
    fn: lambda.IFunction,
    maxAge: Duration,
    description: string,
  ): cloudwatch.Alarm {
    return this.#addAlarm(id, 'warning', {
      alarmDescription: description,
      metric: fn.metric('IteratorAge', { period: ALARM_PERIOD, statistic: cloudwatch.Stats.MAXIMUM }),
      threshold: maxAge.toMilliseconds(),
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 3,
      datapointsToAlarm: 3,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  }

  #addServiceAlarms(sweepInterval: Duration, backlogPeriods: number): void {
    const persistence = this.#persistencePeriod();
    // ---- critical: tokens at risk
    this.addCountAlarm('PersistFailed', {
      metricName: 'PersistFailed',
      severity: 'critical',
      period: Duration.minutes(1),
      description:
        'CRITICAL: a rotated refresh token could not be stored after retries, so that user lost offline ' +
        'access. Check DynamoDB and KMS errors/throttling in the function logs now.',
    });
    this.addCountAlarm('TokensExpired', {
      metricName: 'TokensExpired',
      severity: 'critical',
      description:
        'CRITICAL: a refresh token expired before it was rotated (the user must sign in again). Check the ' +
        'SweepHeartbeat, RotationFailing and SweepBacklog alarms, the schedule and the sweep errors.',
    });
    this.addCountAlarm('IdpConfigurationRejected', {
      metricName: 'IdpConfigurationRejected',
      severity: 'critical',
      description:
        "CRITICAL: the IdP refused this app's client (invalid_client, unauthorized_client or 403), so every " +
        'rotation fails and tokens will expire. Check the client id and secret in the client-credentials ' +
        'secret, and the app and its resources at the IdP. No user is marked while this lasts.',
    });
    this.addCountAlarm('RotationCircuitOpen', {
      metricName: 'RotationCircuitOpen',
      severity: 'critical',
      description:
        'CRITICAL: many refresh tokens were rejected in a short window and the circuit breaker stopped ' +
        'rotations: far likelier a deployment or IdP configuration mistake than a mass revocation. Check ' +
        'the IdP answers in the refreshSweep log; rotations resume when the breaker closes.',
    });
    this.#addAlarm('SweepHeartbeat', 'critical', {
      alarmDescription:
        `CRITICAL: no sweep finished in the last two ${sweepInterval.toMinutes()}-minute intervals, so no ` +
        'refresh token is being rotated. Check that the schedule rule is enabled and may invoke the ' +
        'function, the SweepDeadLetters and SweepFailures queues, and the refreshSweep errors.',
      metric: this.metric('SweepCompleted', { period: sweepInterval }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: 2,
      datapointsToAlarm: 2,
      // The heartbeat's absence is the signal: missing data counts as breaching.
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
    });
    this.#addAlarm('RotationFailing', 'critical', {
      alarmDescription:
        `CRITICAL: more than ${ROTATION_FAILING_PERCENT} % of rotations failed in each of the last ` +
        `${ROTATION_FAILING_PERIODS} ${persistence.toMinutes()}-minute periods. Isolated failures are retried ` +
        'and expected; this is not. Tokens survive an outage as long as refreshAhead: check the IdP status, ' +
        'the token key (KMS) and DynamoDB errors in the refreshSweep log (lastError on the records).',
      metric: new cloudwatch.MathExpression({
        label: 'Rotations failing (%)',
        expression: '100 * failed / (failed + FILL(succeeded, 0))',
        usingMetrics: {
          failed: this.metric('RotationFailed', { period: persistence }),
          succeeded: this.metric('RotationSucceeded', { period: persistence }),
        },
        period: persistence,
      }),
      threshold: ROTATION_FAILING_PERCENT,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: ROTATION_FAILING_PERIODS,
      datapointsToAlarm: ROTATION_FAILING_PERIODS,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });

    // ---- warnings: someone must look, no token is lost yet
    this.addCountAlarm('UnexpectedErrors', {
      metricName: 'UnexpectedError',
      severity: 'warning',
      period: persistence,
      evaluationPeriods: 3,
      datapointsToAlarm: 2,
      description:
        'A function failed with an error that is not a typed answer (not an unknown user, a sign-in needed ' +
        'or bad input), in 2 of the last 3 periods: a dependency (DynamoDB throttling, a disabled token key) ' +
        'or a bug. The log line "unexpected error" names it; the error dimension of UnexpectedError too.',
    });
    this.addCountAlarm('CorruptRecordFound', {
      metricName: 'CorruptRecordFound',
      severity: 'warning',
      description:
        "A record's tokens cannot be decrypted (counted once per record). It was taken off the due index " +
        'with its sealed tokens kept; callers get ReauthRequiredError (corrupted). Find it by corruptAt, check ' +
        'the token key and its grants, then restore it or have the user sign in again.',
    });
    this.#addAlarm('ReauthRequired', 'warning', {
      alarmDescription:
        `At least ${REAUTH_BURST_PER_HOUR} users in one hour must sign in again for another reason than their ` +
        'rotation deadline (refresh rejected, expired, unusable answer). A single one is normal; a burst ' +
        'points to revoked client credentials, an IdP change or token reuse.',
      metric: new cloudwatch.MathExpression({
        label: 'ReauthRequired (not deadline)',
        expression: 'all - FILL(deadline, 0)',
        usingMetrics: {
          all: this.metric('ReauthRequired', { period: Duration.hours(1) }),
          deadline: this.metric('ReauthRequired', {
            period: Duration.hours(1),
            breakdown: { reason: 'deadline' },
          }),
        },
        period: Duration.hours(1),
      }),
      threshold: REAUTH_BURST_PER_HOUR,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    this.addCountAlarm('DisconnectIdpFailed', {
      metricName: 'DisconnectIdpFailed',
      severity: 'warning',
      description:
        'A user was deleted locally but the IdP logout / revocation failed: their session may still be alive ' +
        'at the IdP. Find the user in the disconnect log ("IdP logout failed") and log them out there.',
    });
    this.#addAlarm('SweepBacklog', 'warning', {
      alarmDescription:
        `The sweep left due records unprocessed on ${backlogPeriods} consecutive runs. Raise DUE_SHARDS ` +
        'or SWEEP_CONCURRENCY, run the sweep more often, or check IdP latency.',
      metric: this.metric('SweepBacklog', { statistic: cloudwatch.Stats.MAXIMUM, period: sweepInterval }),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: backlogPeriods,
      datapointsToAlarm: backlogPeriods,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  }

  /** The period of "it persists" alarms: one sweep interval, at least 5 minutes. */
  #persistencePeriod(): Duration {
    const minutes = Math.max(5, this.#sweepInterval.toMinutes());
    return Duration.minutes(minutes);
  }

  #addAlarm(
    id: string,
    severity: AlarmSeverity,
    props: Omit<cloudwatch.AlarmProps, 'alarmName'>,
  ): cloudwatch.Alarm {
    const alarm = new cloudwatch.Alarm(this, `${id}Alarm`, {
      ...props,
      alarmName: this.#alarmName(id),
      alarmDescription: `[${severity}] ${props.alarmDescription ?? ''}`,
    });
    alarm.addAlarmAction(...this.#actions[severity]);
    if (this.#notifyOnOk) alarm.addOkAction(...this.#actions[severity]);
    this.#alarms[severity].push(alarm);
    return alarm;
  }

  /** A key for the alarm topics alone: CloudWatch may use it for this account's alarms only. */
  #newTopicKey(serviceName: string): kms.Key {
    const key = new kms.Key(this, 'AlarmTopicKey', {
      description: `${serviceName}: encryption of the alarm topics`,
      enableKeyRotation: true,
    });
    const stack = Stack.of(this);
    // CloudWatch encrypts the alarm message with the topic key before SNS stores it.
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowCloudWatchAlarmsOfThisAccountToUseTheKeyForTheAlarmTopics',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: alarmsOfThisAccount(stack),
      }),
    );
    return key;
  }

  #newTopic(severity: AlarmSeverity, alarmEmail: string | undefined): sns.Topic {
    const id = severity === 'critical' ? 'CriticalAlarmTopic' : 'WarningAlarmTopic';
    const topic = new sns.Topic(this, id, {
      displayName: `${this.#serviceName} ${severity} alarms`,
      masterKey: this.topicKey,
      enforceSSL: true,
    });
    // Alarms publish as the CloudWatch service: allow it on this topic, for this account's alarms only.
    const stack = Stack.of(this);
    topic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowCloudWatchAlarmsToPublish',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [topic.topicArn],
        conditions: alarmsOfThisAccount(stack),
      }),
    );
    if (alarmEmail !== undefined && alarmEmail !== '') {
      acknowledgeAlarmEmailSubscription(
        topic.addSubscription(new subscriptions.EmailSubscription(alarmEmail)),
      );
    }
    return topic;
  }

  #newDashboard(): cloudwatch.Dashboard {
    const dashboard = new cloudwatch.Dashboard(this, 'Dashboard', { defaultInterval: Duration.hours(24) });
    dashboard.addWidgets(
      // The live lists: the widgets render at synth, after the functions added their alarms.
      new cloudwatch.AlarmStatusWidget({
        title: 'Critical alarms',
        width: 12,
        alarms: this.#alarms.critical,
      }),
      new cloudwatch.AlarmStatusWidget({ title: 'Warnings', width: 12, alarms: this.#alarms.warning }),
    );
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Rotations',
        width: 8,
        left: (['RotationSucceeded', 'RotationFailed', 'ReauthRequired', 'PersistFailed'] as const).map(
          (name) => this.metric(name),
        ),
      }),
      new cloudwatch.GraphWidget({
        title: 'Access tokens served, errors',
        width: 8,
        left: [
          this.metric('AccessTokenServed'),
          this.metric('ErrorAnswered'),
          this.metric('UnexpectedError'),
        ],
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
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Sweep',
        width: 12,
        left: [this.metric('SweepDue'), this.metric('TokensExpired'), this.metric('SweepCompleted')],
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
            'CorruptRecordFound',
          ] as const
        ).map((name) => this.metric(name)),
      }),
    );
    return dashboard;
  }

  /** Stack and service in the name, so two deployments in one account never collide. */
  #alarmName(id: string): string {
    return `${Stack.of(this).stackName}-${this.#serviceName}-${id}`;
  }
}

/** The condition that limits a grant to CloudWatch acting for this account's alarms. */
function alarmsOfThisAccount(stack: Stack): Record<string, Record<string, string>> {
  return {
    StringEquals: { 'aws:SourceAccount': stack.account },
    ArnLike: {
      'aws:SourceArn': `arn:${stack.partition}:cloudwatch:${stack.region}:${stack.account}:alarm:*`,
    },
  };
}
