import { Duration, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import { SqsDlq } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { TOKEN_TABLE } from '../functions/adapters/dynamodb/table-schema';
import {
  DISCONNECT_FUNCTION_ENV,
  GET_ACCESS_TOKEN_FUNCTION_ENV,
  STORE_TOKENS_FUNCTION_ENV,
  TOKEN_STATUS_FUNCTION_ENV,
} from '../functions/client/env';
import { TTL_PRINCIPAL } from '../functions/shared-facts';
import { type FunctionBundle, nodeFunction } from './function-defaults';
import { acknowledgeTokenKeeperFindings, LIST_STREAMS_POLICY_ID } from './nag-acknowledgements';
import { functionEnvironments } from './token-keeper-environment';
import { TokenKeeperMonitoring } from './token-keeper-monitoring';
import {
  functionStatements,
  STREAM_READ_ACTIONS,
  TABLE_ACTIONS,
  TOKEN_KEY_ENCRYPTION_CONTEXT,
} from './token-keeper-permissions';
import type { CallableFunction, TokenKeeperGrantee, TokenKeeperProps } from './token-keeper-props';
import {
  defaultSweepMemorySize,
  FUNCTION_TIMEOUTS,
  resolveSettings,
  validateSettings,
} from './token-keeper-settings';

/** The bundle of each function (lib/function-defaults.ts FUNCTION_ENTRIES names its entry). */
export const FUNCTION_BUNDLES = {
  storeTokens: 'store-tokens',
  getAccessToken: 'get-access-token',
  refreshSweep: 'refresh-sweep',
  disconnect: 'disconnect',
  expiryStream: 'expiry-stream',
  tokenStatus: 'token-status',
} as const satisfies Record<string, FunctionBundle>;

/** The stream mapping gives up on a record this old. */
const EXPIRY_STREAM_MAX_RECORD_AGE = Duration.hours(1);

/** The expiry consumer's lag that alarms (well before the mapping gives up). */
const EXPIRY_STREAM_LAG_ALARM = Duration.minutes(15);

/** What `addFunction` needs to build one of the service's functions. */
interface FunctionSpec {
  readonly bundle: FunctionBundle;
  readonly description: string;
  readonly timeout: Duration;
  readonly memorySize: number;
  readonly environment: Readonly<Record<string, string>>;
  readonly statements: readonly iam.PolicyStatement[];
  readonly reservedConcurrentExecutions?: number;
  readonly asyncRetryAttempts?: number;
  readonly asyncMaxEventAge?: Duration;
  readonly asyncOnFailure?: lambda.IDestination;
  /** Alarm on Lambda errors: only for functions that give callers no typed answers. */
  readonly alarmErrors?: boolean;
}

/**
 * token-keeper on AWS: the token table (with its stream) and its keys, the client-credentials
 * secret, the storeTokens / getAccessToken / refreshSweep / disconnect / expiryStream /
 * tokenStatus functions (one least-privilege role each), the sweep schedule, the stream consumer,
 * alarms and dashboard. Grant callers with {@link grantGetAccessToken}, {@link grantStoreTokens},
 * {@link grantDisconnect} and {@link grantTokenStatus}; there is no function URL and no public invoke.
 */
export class TokenKeeper extends Construct {
  /** The token table (one item per user and resource, sparse `byDue` index). */
  readonly table: dynamodb.Table;
  /** Envelope-encryption key of the token material (used directly by the functions). */
  readonly tokenKey: kms.Key;
  /** At-rest key of the table and the alarm topic (used through DynamoDB and SNS only). */
  readonly storageKey: kms.Key;
  /** The IdP client credentials, `{"client_id","client_secret"}`. */
  readonly clientCredentialsSecret: secretsmanager.ISecret;
  /** Invoked by the app's auth backend after a sign-in. */
  readonly storeTokensFunction: lambda.Function;
  /** Invoked by granted callers for a valid access token. */
  readonly getAccessTokenFunction: lambda.Function;
  /** Run by the schedule: rotates the refresh tokens that are due. */
  readonly refreshSweepFunction: lambda.Function;
  /** Invoked by granted callers to log a user out at the IdP and delete their record. */
  readonly disconnectFunction: lambda.Function;
  /** Consumes the table stream's TTL removals: counts and reports tokens lost to expiry. */
  readonly expiryStreamFunction: lambda.Function;
  /** Invoked by granted callers for where a user's offline access stands (no token, nothing decrypted). */
  readonly tokenStatusFunction: lambda.Function;
  /** The stream -> expiryStream mapping (TTL removals only). */
  readonly expiryStreamMapping: lambda.EventSourceMapping;
  /** Where the stream mapping sends the position of batches it gave up on. */
  readonly expiryStreamFailureQueue: sqs.Queue;
  /** Where Lambda puts a sweep invocation that failed (its asynchronous on-failure destination). */
  readonly sweepFailureQueue: sqs.Queue;
  /** The bus the functions publish the app's events on. */
  readonly eventBus: events.IEventBus;
  /** The EventBridge rule that runs the sweep. */
  readonly sweepSchedule: events.Rule;
  /** Sweep events EventBridge could not deliver. */
  readonly sweepDeadLetterQueue: sqs.Queue;
  /** Alarms, their topic and the dashboard. */
  readonly monitoring: TokenKeeperMonitoring;

  readonly #serviceName: string;
  readonly #logRetention: logs.RetentionDays;
  readonly #removalPolicy: RemovalPolicy;

  constructor(scope: Construct, id: string, props: TokenKeeperProps) {
    super(scope, id);
    const settings = resolveSettings(props);
    validateSettings(settings, props.identityProvider);
    this.#serviceName = settings.serviceName;
    this.#logRetention = props.logRetention ?? logs.RetentionDays.THREE_MONTHS;
    this.#removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const removalPolicy = this.#removalPolicy;

    this.tokenKey = new kms.Key(this, 'TokenKey', {
      description: `${settings.serviceName}: envelope encryption of stored tokens (context purpose=token-keeper)`,
      enableKeyRotation: true,
      removalPolicy,
    });
    // The key itself refuses cryptographic use without the context, whoever asks (an admin, a
    // role granted later with a broader policy): a sealed token cannot be opened outside token-keeper.
    this.tokenKey.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'DenyCryptographicUseWithoutTheTokenKeeperEncryptionContext',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey*', 'kms:ReEncrypt*'],
        resources: ['*'],
        conditions: {
          StringNotEquals: { 'kms:EncryptionContext:purpose': TOKEN_KEY_ENCRYPTION_CONTEXT.purpose },
        },
      }),
    );
    this.storageKey = new kms.Key(this, 'StorageKey', {
      description: `${settings.serviceName}: at-rest encryption of the token table (used through DynamoDB only)`,
      enableKeyRotation: true,
      removalPolicy,
    });

    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: attribute(TOKEN_TABLE.partitionKey),
      sortKey: attribute(TOKEN_TABLE.sortKey),
      timeToLiveAttribute: TOKEN_TABLE.ttlAttribute,
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: this.storageKey,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      // The expiry consumer reads keys, status and lifetimes of what the TTL deleted: the old image.
      stream: dynamodb.StreamViewType.OLD_IMAGE,
      removalPolicy,
      deletionProtection: props.deletionProtection ?? removalPolicy !== RemovalPolicy.DESTROY,
    });
    this.table.addGlobalSecondaryIndex({
      indexName: TOKEN_TABLE.dueIndex.name,
      partitionKey: attribute(TOKEN_TABLE.dueIndex.partitionKey),
      sortKey: attribute(TOKEN_TABLE.dueIndex.sortKey),
      projectionType: dynamodb.ProjectionType.KEYS_ONLY,
    });

    this.clientCredentialsSecret =
      props.clientCredentialsSecret ??
      new secretsmanager.Secret(this, 'ClientCredentials', {
        description:
          `${settings.serviceName}: IdP client credentials as JSON {"client_id","client_secret"}. ` +
          'Put the real values after deploy (aws secretsmanager put-secret-value).',
        // A placeholder the IdP rejects (ConfigurationError), never a usable credential.
        generateSecretString: {
          secretStringTemplate: JSON.stringify({ client_id: 'SET-AFTER-DEPLOY' }),
          generateStringKey: 'client_secret',
          excludePunctuation: true,
        },
        removalPolicy,
      });

    this.eventBus = props.eventBus ?? events.EventBus.fromEventBusName(this, 'DefaultEventBus', 'default');

    this.monitoring = new TokenKeeperMonitoring(this, 'Monitoring', {
      serviceName: settings.serviceName,
      sweepInterval: settings.sweepInterval,
      critical: props.criticalAlarms,
      warning: props.warningAlarms,
      notifyOnOk: props.notifyOnOk,
      sweepBacklogPeriods: settings.sweepBacklogAlarmPeriods,
      alarmEmail: props.alarmEmail,
      dashboard: props.dashboard,
    });

    const env = functionEnvironments(settings, props, {
      tableName: this.table.tableName,
      tokenKeyArn: this.tokenKey.keyArn,
      eventBusName: this.eventBus.eventBusName,
      clientCredentialsSecretArn: this.clientCredentialsSecret.secretArn,
    });
    const statements = functionStatements({
      table: this.table,
      tokenKey: this.tokenKey,
      storageKey: this.storageKey,
      clientCredentialsSecret: this.clientCredentialsSecret,
      eventBus: this.eventBus,
      region: Stack.of(this).region,
    });

    this.storeTokensFunction = this.addFunction('StoreTokens', {
      bundle: FUNCTION_BUNDLES.storeTokens,
      description: `${settings.serviceName}: stores the token set of a fresh sign-in`,
      timeout: FUNCTION_TIMEOUTS.storeTokens,
      memorySize: 256,
      environment: env.storeTokens,
      statements: [
        statements.tableItems(TABLE_ACTIONS.storeTokens),
        // Seals the new tokens only: the sign-in role cannot open any stored token.
        statements.tokenKeySeal,
        statements.storageKeyViaDynamoDb,
      ],
    });
    this.getAccessTokenFunction = this.addFunction('GetAccessToken', {
      bundle: FUNCTION_BUNDLES.getAccessToken,
      description: `${settings.serviceName}: serves a valid access token, refreshing on demand`,
      timeout: FUNCTION_TIMEOUTS.getAccessToken,
      memorySize: 256,
      environment: env.refresh,
      statements: [
        statements.tableItems(TABLE_ACTIONS.getAccessToken),
        statements.tokenKeyUse,
        statements.storageKeyViaDynamoDb,
        statements.readSecret,
        statements.putEvents,
      ],
    });
    this.sweepFailureQueue = new sqs.Queue(this, 'SweepFailureQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.refreshSweepFunction = this.addFunction('RefreshSweep', {
      bundle: FUNCTION_BUNDLES.refreshSweep,
      description: `${settings.serviceName}: rotates the refresh tokens that are due`,
      timeout: FUNCTION_TIMEOUTS.refreshSweep,
      memorySize: settings.sweepMemorySize ?? defaultSweepMemorySize(settings.sweepConcurrency),
      environment: {
        ...env.refresh,
        SWEEP_CONCURRENCY: String(settings.sweepConcurrency),
        IDP_RATE_LIMIT_RPS: String(settings.idpRateLimitPerSecond),
      },
      statements: [
        statements.tableItems(TABLE_ACTIONS.refreshSweep),
        new iam.PolicyStatement({
          actions: ['dynamodb:Query'],
          resources: [`${this.table.tableArn}/index/${TOKEN_TABLE.dueIndex.name}`],
        }),
        statements.tokenKeyUse,
        statements.storageKeyViaDynamoDb,
        statements.readSecret,
        statements.putEvents,
      ],
      reservedConcurrentExecutions: settings.sweepReservedConcurrency,
      // A failed sweep is not retried: the next scheduled one picks up the same due records.
      asyncRetryAttempts: 0,
      asyncMaxEventAge: settings.sweepInterval,
      // ...but it leaves a trace: the failed invocation's record goes to a queue that alarms.
      asyncOnFailure: new destinations.SqsDestination(this.sweepFailureQueue),
      alarmErrors: true,
    });
    if (settings.sweepReservedConcurrency === 1) {
      // One sweep at a time, so a sweep that ends with a backlog may start the next at once
      // (functions/handlers/refresh-sweep.ts), up to SWEEP_CHAIN_MAX in a row. A policy of its own:
      // the role's default policy cannot name the function it belongs to (a circular dependency).
      this.refreshSweepFunction.addEnvironment('SWEEP_CHAIN_MAX', String(SWEEP_CHAIN_MAX));
      new iam.Policy(this, 'RefreshSweepContinuation', {
        roles: [this.refreshSweepFunction.role as iam.IRole],
        statements: [
          new iam.PolicyStatement({
            actions: ['lambda:InvokeFunction'],
            resources: [this.refreshSweepFunction.functionArn],
          }),
        ],
      });
    }
    this.disconnectFunction = this.addFunction('Disconnect', {
      bundle: FUNCTION_BUNDLES.disconnect,
      description: `${settings.serviceName}: logs a user out at the IdP and deletes their tokens`,
      timeout: FUNCTION_TIMEOUTS.disconnect,
      memorySize: 256,
      environment: env.refresh,
      statements: [
        statements.tableItems(TABLE_ACTIONS.disconnect),
        // It opens the stored session id / refresh token to end the session, and seals nothing.
        statements.tokenKeyDecrypt,
        statements.storageKeyViaDynamoDb,
        statements.readSecret,
        statements.putEvents,
      ],
    });
    this.tokenStatusFunction = this.addFunction('TokenStatus', {
      bundle: FUNCTION_BUNDLES.tokenStatus,
      description: `${settings.serviceName}: tells where a user's offline access stands, with no token`,
      timeout: FUNCTION_TIMEOUTS.tokenStatus,
      memorySize: 256,
      // What its configuration requires and no more: it never calls the IdP, never publishes, and
      // the role has no permission on the token key whose ARN the configuration asks for.
      environment: env.base,
      statements: [
        statements.tableItems(TABLE_ACTIONS.tokenStatus),
        // The table is encrypted with the storage key: a read decrypts through DynamoDB.
        statements.storageKeyReadViaDynamoDb,
      ],
    });
    this.expiryStreamFunction = this.addFunction('ExpiryStream', {
      bundle: FUNCTION_BUNDLES.expiryStream,
      description: `${settings.serviceName}: reports refresh tokens lost to expiry (table stream, TTL removals)`,
      timeout: FUNCTION_TIMEOUTS.expiryStream,
      memorySize: 256,
      // No IdP settings, no secret: it never calls the IdP. The key ARN is there only because the
      // configuration requires it; the role has no permission on the token key.
      environment: { ...env.base, ...env.events },
      alarmErrors: true,
      statements: [
        new iam.PolicyStatement({
          actions: STREAM_READ_ACTIONS,
          resources: [this.tableStreamArn()],
        }),
        statements.storageKeyReadViaDynamoDb,
        statements.putEvents,
      ],
    });

    // An existing secret may be encrypted with a customer key: the functions that call the IdP may
    // decrypt with it through Secrets Manager, for this secret only (not whatever else the key seals).
    const secretKey = this.clientCredentialsSecret.encryptionKey;
    if (secretKey !== undefined) {
      for (const fn of [this.getAccessTokenFunction, this.refreshSweepFunction, this.disconnectFunction]) {
        fn.addToRolePolicy(
          new iam.PolicyStatement({
            actions: ['kms:Decrypt'],
            resources: [secretKey.keyArn],
            conditions: {
              StringEquals: {
                'kms:ViaService': `secretsmanager.${Stack.of(this).region}.amazonaws.com`,
                'kms:EncryptionContext:SecretARN': this.clientCredentialsSecret.secretArn,
              },
            },
          }),
        );
      }
    }

    this.sweepDeadLetterQueue = new sqs.Queue(this, 'SweepDeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.sweepSchedule = new events.Rule(this, 'SweepSchedule', {
      description: `${settings.serviceName}: runs the refresh sweep`,
      schedule: events.Schedule.rate(settings.sweepInterval),
      targets: [
        new targets.LambdaFunction(this.refreshSweepFunction, {
          retryAttempts: 2,
          // An event older than one interval is superseded by the next scheduled one.
          maxEventAge: settings.sweepInterval,
          deadLetterQueue: this.sweepDeadLetterQueue,
        }),
      ],
    });
    this.monitoring.addQueueNotEmptyAlarm(
      'SweepDeadLetters',
      this.sweepDeadLetterQueue,
      'CRITICAL: EventBridge could not invoke the refresh sweep (the messages in the dead-letter queue say why). ' +
        'Tokens are not being rotated: fix the cause (permissions, throttling), then purge the queue.',
      'critical',
    );
    this.monitoring.addQueueNotEmptyAlarm(
      'SweepFailures',
      this.sweepFailureQueue,
      'A sweep invocation failed (the message holds its error and request id; failed sweeps are not retried, ' +
        'the next one takes over). Read the refreshSweep log for that request id, then purge the queue.',
    );

    this.expiryStreamFailureQueue = new sqs.Queue(this, 'ExpiryStreamFailureQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.expiryStreamMapping = this.addExpiryStreamMapping();
    this.monitoring.addQueueNotEmptyAlarm(
      'ExpiryStreamFailures',
      this.expiryStreamFailureQueue,
      'The expiry consumer gave up on a batch of TTL removals, so lost tokens in it were neither counted ' +
        'nor reported. The message names the shard and sequence numbers: read those records from the table ' +
        'stream within 24 h (stream retention), fix the function error in its log, then purge the queue.',
    );
    this.monitoring.addIteratorAgeAlarm(
      'ExpiryStreamIteratorAge',
      this.expiryStreamFunction,
      EXPIRY_STREAM_LAG_ALARM,
      `The expiry consumer is more than ${EXPIRY_STREAM_LAG_ALARM.toMinutes()} minutes behind the table stream ` +
        `for 15 minutes; at ${EXPIRY_STREAM_MAX_RECORD_AGE.toMinutes()} minutes it gives up on records (ExpiryStreamFailures). ` +
        'Check its errors, throttles and duration.',
    );
    acknowledgeTokenKeeperFindings(this, { ownSecret: props.clientCredentialsSecret === undefined });
  }

  /** Grants invoke on the getAccessToken function and sets TOKEN_KEEPER_GET_ACCESS_TOKEN_FUNCTION. */
  grantGetAccessToken(grantee: TokenKeeperGrantee): iam.Grant {
    return this.#grantInvoke(grantee, 'GetAccessToken', GET_ACCESS_TOKEN_FUNCTION_ENV);
  }

  /** Grants invoke on the storeTokens function and sets TOKEN_KEEPER_STORE_TOKENS_FUNCTION. */
  grantStoreTokens(grantee: TokenKeeperGrantee): iam.Grant {
    return this.#grantInvoke(grantee, 'StoreTokens', STORE_TOKENS_FUNCTION_ENV);
  }

  /** Grants invoke on the disconnect function and sets TOKEN_KEEPER_DISCONNECT_FUNCTION. */
  grantDisconnect(grantee: TokenKeeperGrantee): iam.Grant {
    return this.#grantInvoke(grantee, 'Disconnect', DISCONNECT_FUNCTION_ENV);
  }

  /** Grants invoke on the tokenStatus function and sets TOKEN_KEEPER_TOKEN_STATUS_FUNCTION. */
  grantTokenStatus(grantee: TokenKeeperGrantee): iam.Grant {
    return this.#grantInvoke(grantee, 'TokenStatus', TOKEN_STATUS_FUNCTION_ENV);
  }

  /**
   * Lets principals of another AWS account, or of an AWS Organization, invoke one function, through
   * the function's resource policy (unqualified: that function only). The caller's own role still
   * needs `lambda:InvokeFunction` on the function ARN (a stack output) in its account.
   */
  grantInvokeAcrossAccounts(
    target: CallableFunction,
    from: { readonly account: string } | { readonly organizationId: string },
  ): void {
    const fn = this.#callable(target);
    const id = 'account' in from ? `Account${from.account}` : `Organization${from.organizationId}`;
    fn.addPermission(`InvokeFrom${id.replace(/[^A-Za-z0-9]/g, '')}`, {
      action: 'lambda:InvokeFunction',
      ...('account' in from
        ? { principal: new iam.AccountPrincipal(from.account) }
        : {
            principal: new iam.OrganizationPrincipal(from.organizationId),
            organizationId: from.organizationId,
          }),
    });
  }

  #callable(target: CallableFunction): lambda.Function {
    switch (target) {
      case 'GetAccessToken':
        return this.getAccessTokenFunction;
      case 'StoreTokens':
        return this.storeTokensFunction;
      case 'Disconnect':
        return this.disconnectFunction;
      case 'TokenStatus':
        return this.tokenStatusFunction;
    }
  }

  /**
   * Invoke on exactly that function (no `:*` qualifier wildcard), plus the env var when possible.
   * A grantee in another stack gets the function ARN through an SSM parameter (a weak reference):
   * no CloudFormation export ties the stacks, so the function can still be replaced; that stack
   * only deploys after this one and picks up a new ARN on its next deploy.
   */
  #grantInvoke(grantee: TokenKeeperGrantee, target: CallableFunction, envName: string): iam.Grant {
    const fn = this.#callable(target);
    const granteeStack = stackOf(grantee) ?? stackOf(grantee.grantPrincipal);
    const here = Stack.of(this);
    let arn = fn.functionArn;
    if (granteeStack !== undefined && granteeStack !== here) {
      if (
        !Token.isUnresolved(granteeStack.account) &&
        !Token.isUnresolved(here.account) &&
        granteeStack.account !== here.account
      ) {
        throw new Error(
          `TokenKeeper: ${granteeStack.stackName} is in another account; use grantInvokeAcrossAccounts ` +
            'and give the caller the function ARN (a stack output)',
        );
      }
      arn = ssm.StringParameter.valueForStringParameter(granteeStack, this.#arnParameter(target, fn));
      granteeStack.addDependency(here, 'reads the token-keeper function ARNs from SSM parameters');
    }
    const grant = iam.Grant.addToPrincipal({
      grantee,
      actions: ['lambda:InvokeFunction'],
      resourceArns: [arn],
    });
    // Lambda accepts a function ARN wherever it takes a name.
    grantee.addEnvironment?.(envName, arn === fn.functionArn ? fn.functionName : arn);
    return grant;
  }

  /** The name of the SSM parameter holding one function's ARN, for callers in other stacks (made once). */
  #arnParameter(target: CallableFunction, fn: lambda.IFunction): string {
    const parameterName = `/${Stack.of(this).stackName}/${this.#serviceName}/${target}FunctionArn`;
    const id = `${target}FunctionArnParameter`;
    if (this.node.tryFindChild(id) === undefined) {
      new ssm.StringParameter(this, id, {
        parameterName,
        stringValue: fn.functionArn,
        description: `${this.#serviceName}: ARN of the ${target} function, for callers in other stacks`,
      });
    }
    return parameterName;
  }

  private tableStreamArn(): string {
    const arn = this.table.tableStreamArn;
    if (arn === undefined) throw new Error('TokenKeeper: the token table has no stream');
    return arn;
  }

  /**
   * Feeds the table stream's TTL removals, and nothing else, to the expiry consumer: the filter
   * drops every write and every delete made by a caller (disconnect, an operator), so the function
   * runs only when DynamoDB's TTL process deleted a record.
   */
  private addExpiryStreamMapping(): lambda.EventSourceMapping {
    const role = this.expiryStreamFunction.role as iam.Role;
    // ListStreams has no resource-level permissions (Service Authorization Reference), and Lambda
    // checks for it when it creates a stream mapping. Kept in a policy of its own so the
    // acknowledgement (lib/nag-acknowledgements.ts) covers this one statement, not the rest of the role.
    const listStreams = new iam.Policy(this, LIST_STREAMS_POLICY_ID, {
      statements: [new iam.PolicyStatement({ actions: ['dynamodb:ListStreams'], resources: ['*'] })],
      roles: [role],
    });
    const mapping = this.expiryStreamFunction.addEventSourceMapping('TtlRemovals', {
      eventSourceArn: this.tableStreamArn(),
      startingPosition: lambda.StartingPosition.TRIM_HORIZON,
      batchSize: 100,
      // A failing record is isolated by halving the batch, retried a bounded number of times, and
      // given up after an hour (its position goes to the queue; the stream keeps it 24 h).
      bisectBatchOnError: true,
      retryAttempts: 3,
      maxRecordAge: EXPIRY_STREAM_MAX_RECORD_AGE,
      onFailure: new SqsDlq(this.expiryStreamFailureQueue),
      filters: [
        lambda.FilterCriteria.filter({
          eventName: lambda.FilterRule.isEqual('REMOVE'),
          userIdentity: {
            type: lambda.FilterRule.isEqual('Service'),
            principalId: lambda.FilterRule.isEqual(TTL_PRINCIPAL),
          },
        }),
      ],
    });
    mapping.node.addDependency(listStreams);
    return mapping;
  }

  /**
   * Builds one function: its log group, its own role (logs + the given statements), its code
   * (lib/function-defaults.ts: prebuilt in the package, bundled from the sources here), and its alarms.
   */
  private addFunction(name: string, spec: FunctionSpec): lambda.Function {
    const logGroup = new logs.LogGroup(this, `${name}Logs`, {
      retention: this.#logRetention,
      removalPolicy: this.#removalPolicy,
    });
    const role = new iam.Role(this, `${name}Role`, {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `${this.#serviceName}: ${name} function`,
    });
    logGroup.grantWrite(role);
    for (const statement of spec.statements) {
      role.addToPolicy(statement);
    }
    const fn = nodeFunction(this, name, spec.bundle, {
      description: spec.description,
      memorySize: spec.memorySize,
      timeout: spec.timeout,
      role,
      logGroup,
      environment: { ...spec.environment },
      reservedConcurrentExecutions: spec.reservedConcurrentExecutions,
      retryAttempts: spec.asyncRetryAttempts,
      maxEventAge: spec.asyncMaxEventAge,
      onFailure: spec.asyncOnFailure,
    });
    this.monitoring.addFunctionAlarms(name, fn, spec.timeout, { errors: spec.alarmErrors });
    return fn;
  }
}

/**
 * Sweeps that may continue one another while a backlog remains: 12 runs of at most 300 s, about an
 * hour, then the schedule takes over (and stays below the 16 links after which Lambda's recursion
 * detection could stop a chain).
 */
const SWEEP_CHAIN_MAX = 12;

function attribute(key: { readonly name: string; readonly type: 'S' | 'N' }): dynamodb.Attribute {
  return {
    name: key.name,
    type: key.type === 'S' ? dynamodb.AttributeType.STRING : dynamodb.AttributeType.NUMBER,
  };
}

/** The stack a grantee belongs to, when it is a construct. */
function stackOf(value: unknown): Stack | undefined {
  return Construct.isConstruct(value) ? Stack.of(value) : undefined;
}
