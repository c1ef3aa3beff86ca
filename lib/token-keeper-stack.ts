import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { ExampleCaller } from './example-caller';
import { TokenKeeper } from './token-keeper';
import type { TokenKeeperProps } from './token-keeper-props';

/** Properties of {@link TokenKeeperStack}: the construct's, plus the stack's own. */
export interface TokenKeeperStackProps extends StackProps, TokenKeeperProps {
  /**
   * Also deploy an example caller Lambda granted with `grantGetAccessToken`.
   * @default false
   */
  readonly exampleCaller?: boolean;
  /**
   * The API the example caller calls with the access token.
   * @default - none
   */
  readonly exampleApiUrl?: string;
  /**
   * The complete ARN of an existing client-credentials secret (ignored when
   * `clientCredentialsSecret` is given).
   * @default - a new secret
   */
  readonly clientCredentialsSecretArn?: string;
  /**
   * The ARN of the customer-managed KMS key that encrypts that secret; the functions that read the
   * secret may then decrypt with it, through Secrets Manager and for that secret only.
   * @default - the secret uses the AWS managed key (aws/secretsmanager)
   */
  readonly clientCredentialsSecretKeyArn?: string;
  /**
   * An existing topic for critical alarms (ignored when `criticalAlarms` is given).
   * @default - a topic of the stack's own
   */
  readonly criticalAlarmTopicArn?: string;
  /**
   * An existing topic for warnings (ignored when `warningAlarms` is given).
   * @default - a topic of the stack's own
   */
  readonly warningAlarmTopicArn?: string;
  /**
   * The name of an existing EventBridge bus for the app's events (ignored when `eventBus` is given).
   * @default - the account's default bus
   */
  readonly eventBusName?: string;
}

/** The deployable unit: one {@link TokenKeeper} and the outputs an operator needs. */
export class TokenKeeperStack extends Stack {
  /** The service. */
  readonly tokenKeeper: TokenKeeper;
  /** The example caller, when enabled. */
  readonly exampleCaller: ExampleCaller | undefined;

  constructor(scope: Construct, id: string, props: TokenKeeperStackProps) {
    super(scope, id, props);
    this.tokenKeeper = new TokenKeeper(this, 'TokenKeeper', {
      ...props,
      clientCredentialsSecret:
        props.clientCredentialsSecret ??
        (props.clientCredentialsSecretArn
          ? secretsmanager.Secret.fromSecretAttributes(this, 'ClientCredentials', {
              secretCompleteArn: props.clientCredentialsSecretArn,
              encryptionKey: props.clientCredentialsSecretKeyArn
                ? kms.Key.fromKeyArn(this, 'ClientCredentialsKey', props.clientCredentialsSecretKeyArn)
                : undefined,
            })
          : undefined),
      criticalAlarms:
        props.criticalAlarms ??
        (props.criticalAlarmTopicArn
          ? { topic: sns.Topic.fromTopicArn(this, 'CriticalAlarmTopic', props.criticalAlarmTopicArn) }
          : undefined),
      warningAlarms:
        props.warningAlarms ??
        (props.warningAlarmTopicArn
          ? { topic: sns.Topic.fromTopicArn(this, 'WarningAlarmTopic', props.warningAlarmTopicArn) }
          : undefined),
      eventBus:
        props.eventBus ??
        (props.eventBusName
          ? events.EventBus.fromEventBusName(this, 'EventBus', props.eventBusName)
          : undefined),
    });
    if (props.exampleCaller) {
      this.exampleCaller = new ExampleCaller(this, 'ExampleCaller', {
        tokenKeeper: this.tokenKeeper,
        apiUrl: props.exampleApiUrl,
      });
    }

    const tk = this.tokenKeeper;
    new CfnOutput(this, 'TableName', { value: tk.table.tableName });
    new CfnOutput(this, 'StoreTokensFunctionName', { value: tk.storeTokensFunction.functionName });
    new CfnOutput(this, 'GetAccessTokenFunctionName', { value: tk.getAccessTokenFunction.functionName });
    new CfnOutput(this, 'RefreshSweepFunctionName', { value: tk.refreshSweepFunction.functionName });
    new CfnOutput(this, 'DisconnectFunctionName', { value: tk.disconnectFunction.functionName });
    new CfnOutput(this, 'TokenStatusFunctionName', { value: tk.tokenStatusFunction.functionName });
    new CfnOutput(this, 'EventBusName', { value: tk.eventBus.eventBusName });
    new CfnOutput(this, 'ClientCredentialsSecretArn', {
      value: tk.clientCredentialsSecret.secretArn,
      description: 'Put {"client_id","client_secret"} here after the first deploy',
    });
    if (tk.monitoring.criticalTopic) {
      new CfnOutput(this, 'CriticalAlarmTopicArn', { value: tk.monitoring.criticalTopic.topicArn });
    }
    if (tk.monitoring.warningTopic) {
      new CfnOutput(this, 'WarningAlarmTopicArn', { value: tk.monitoring.warningTopic.topicArn });
    }
    if (this.exampleCaller) {
      new CfnOutput(this, 'ExampleCallerFunctionName', { value: this.exampleCaller.function.functionName });
    }
  }
}
