import { Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import type { TokenKeeper } from './token-keeper';

/** The id of the policy that holds `dynamodb:ListStreams` alone (its "*" resource is acknowledged). */
export const LIST_STREAMS_POLICY_ID = 'ExpiryStreamListStreamsPolicy';

/** Why each queue of the service needs no dead-letter queue of its own: it is one. */
const QUEUE_IS_A_DEAD_LETTER_QUEUE = {
  SweepDeadLetterQueue: 'the dead-letter queue of the sweep schedule target (EventBridge DLQ)',
  SweepFailureQueue: 'the on-failure destination of the sweep (asynchronous invocation records)',
  ExpiryStreamFailureQueue:
    'the on-failure destination of the table stream mapping (shard and sequence numbers of batches given up on)',
} as const;

/** Why no function of the service has a Lambda dead-letter queue, by function. */
const NO_LAMBDA_DLQ = {
  StoreTokens: 'invoked synchronously (RequestResponse) by the app; a failure is returned to the caller',
  GetAccessToken: 'invoked synchronously (RequestResponse) by callers; a failure is returned to the caller',
  Disconnect: 'invoked synchronously (RequestResponse) by callers; a failure is returned to the caller',
  TokenStatus: 'invoked synchronously (RequestResponse) by callers; a failure is returned to the caller',
  RefreshSweep:
    'invoked asynchronously by the schedule, with an on-failure destination (SweepFailureQueue), which ' +
    'records the error as well as the event; a DLQ would only duplicate it',
  ExpiryStream:
    'invoked by a stream mapping, which sends what it gives up on to its own on-failure destination ' +
    '(ExpiryStreamFailureQueue); a Lambda DLQ applies only to asynchronous invocations',
} as const;

/**
 * No X-Ray: active tracing needs `xray:PutTraceSegments` and `xray:PutTelemetryRecords` on "*" in
 * every role (AwsSolutions-IAM5), and what a trace would show is measured already: IdpLatency,
 * Duration alarms at 80 % of each timeout, and structured logs with the outcome of every step.
 */
const NO_TRACING =
  'No X-Ray tracing: it would need xray:Put* on "*" in every role; latency is measured by the IdpLatency ' +
  'metric, the Duration alarms (80 % of the timeout) and the structured logs.';

/**
 * Every cdk-nag finding (AwsSolutions and Serverless packs) the design accepts, with its reason:
 * the one place where the service acknowledges them. Each names one rule on one resource.
 */
export function acknowledgeTokenKeeperFindings(
  tk: TokenKeeper,
  options: { readonly ownSecret: boolean },
): void {
  if (options.ownSecret) {
    acknowledge(tk.clientCredentialsSecret, 'AwsSolutions-SMG4', [
      'The client secret is issued by the IdP and can only be rotated there; the operator puts the new ',
      'value with put-secret-value and the functions re-read it (5-minute cache, and at once on a 401).',
    ]);
  }
  const queues = {
    SweepDeadLetterQueue: tk.sweepDeadLetterQueue,
    SweepFailureQueue: tk.sweepFailureQueue,
    ExpiryStreamFailureQueue: tk.expiryStreamFailureQueue,
  };
  for (const [name, queue] of Object.entries(queues) as [keyof typeof queues, IConstruct][]) {
    const what = `This queue is itself ${QUEUE_IS_A_DEAD_LETTER_QUEUE[name]}; its ApproximateNumberOfMessagesVisible alarm notifies the operator.`;
    acknowledge(queue, 'AwsSolutions-SQS3', [what]);
    acknowledge(queue, 'Serverless-SQSRedrivePolicy', [what]);
  }
  const listStreams = tk.node.findChild(LIST_STREAMS_POLICY_ID);
  acknowledge(listStreams, 'AwsSolutions-IAM5[Resource::*]', [
    'dynamodb:ListStreams supports no resource-level permission (only "*"), and Lambda requires it to create ',
    'the table stream mapping; it lists stream ARNs (metadata), never items. Stream reads are on this stream ARN only.',
  ]);
  const functions = {
    StoreTokens: tk.storeTokensFunction,
    GetAccessToken: tk.getAccessTokenFunction,
    Disconnect: tk.disconnectFunction,
    RefreshSweep: tk.refreshSweepFunction,
    ExpiryStream: tk.expiryStreamFunction,
    TokenStatus: tk.tokenStatusFunction,
  };
  for (const [name, fn] of Object.entries(functions) as [keyof typeof functions, IConstruct][]) {
    acknowledge(fn, 'Serverless-LambdaDLQ', [`No Lambda DLQ: ${NO_LAMBDA_DLQ[name]}.`]);
    acknowledge(fn, 'Serverless-LambdaTracing', [NO_TRACING]);
  }
}

/** The example caller's accepted findings: it is invoked by hand, synchronously, to show a grant. */
export function acknowledgeExampleCallerFindings(fn: IConstruct): void {
  acknowledge(fn, 'Serverless-LambdaDLQ', [
    'No Lambda DLQ: the example caller is invoked by hand, synchronously; its answer shows the outcome.',
  ]);
  acknowledge(fn, 'Serverless-LambdaTracing', [NO_TRACING]);
}

/** An e-mail subscription of an alarm topic needs no dead-letter queue. */
export function acknowledgeAlarmEmailSubscription(subscription: IConstruct): void {
  acknowledge(subscription, 'Serverless-SNSRedrivePolicy', [
    'An e-mail subscription to alarm notifications: an undelivered message is retried by SNS and the ',
    'alarm itself stays in ALARM in CloudWatch and on the dashboard; a queue of lost e-mails would go unread.',
  ]);
}

function acknowledge(construct: IConstruct, id: string, reason: readonly string[]): void {
  Validations.of(construct).acknowledge({ id, reason: reason.join('') });
}
