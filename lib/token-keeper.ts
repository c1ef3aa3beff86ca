import { join } from 'node:path';
import { Duration, RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { TOKEN_TABLE } from '../functions/adapters/dynamodb/table-schema';
import { GET_ACCESS_TOKEN_FUNCTION_ENV, STORE_TOKENS_FUNCTION_ENV } from '../functions/client/env';
import { nodeFunctionDefaults, PROJECT_ROOT } from './function-defaults';
import { METRICS_NAMESPACE, TokenKeeperMonitoring } from './token-keeper-monitoring';

/** The encryption context of every token-key call; the IAM grants require it. */
export const TOKEN_KEY_ENCRYPTION_CONTEXT = { purpose: 'token-keeper' } as const;

/** Where the functions' code lives. */
export const HANDLER_ENTRIES = {
  storeTokens: join(PROJECT_ROOT, 'functions/handlers/store-tokens.ts'),
  getAccessToken: join(PROJECT_ROOT, 'functions/handlers/get-access-token.ts'),
  refreshSweep: join(PROJECT_ROOT, 'functions/handlers/refresh-sweep.ts'),
} as const;

/** Fixed function timeouts: the lease and IdP timeout are validated against them. */
export const FUNCTION_TIMEOUTS = {
  storeTokens: Duration.seconds(10),
  getAccessToken: Duration.seconds(30),
  refreshSweep: Duration.seconds(300),
} as const;

/** Time a function needs besides the IdP call: lease, KMS, the commit and its retries. */
const COMMIT_BUDGET_MS = 10_000;

/** The table actions of each function (exact lists, tested). */
export const TABLE_ACTIONS = {
  storeTokens: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
  getAccessToken: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
  refreshSweep: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
} as const;

/** What a function may do with the token key: make data keys to seal, open what it reads. */
const TOKEN_KEY_ACTIONS = ['kms:GenerateDataKey', 'kms:Decrypt'];

/**
 * What DynamoDB does with the storage key on a function's behalf (the table is encrypted with
 * it). Only through DynamoDB: the grant carries a `kms:ViaService` condition.
 */
const STORAGE_KEY_ACTIONS = ['kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:GenerateDataKey'];

/** The identity provider the functions refresh tokens with. */
export type IdentityProviderSettings =
  | {
      readonly flavor: 'transmit';
      /** Regional Transmit host, e.g. `https://api.transmitsecurity.io`. */
      readonly baseUrl: string;
    }
  | {
      readonly flavor: 'oauth2';
      /** RFC 6749 token endpoint used for the refresh grant. */
      readonly tokenEndpoint: string;
      /**
       * How the client authenticates at the token endpoint.
       * @default 'client_secret_basic'
       */
      readonly clientAuth?: 'client_secret_basic' | 'client_secret_post';
      /**
       * RFC 7009 revocation endpoint, used when a user is disconnected.
       * @default - refresh tokens are not revoked at the IdP on disconnect
       */
      readonly revocationEndpoint?: string;
    };

/** Lifetimes of one resource that differ from the defaults (Transmit sets them per resource). */
export interface ResourceLifetimeOverrides {
  /** @default - the construct's `refreshTokenTtl` */
  readonly refreshTokenTtl?: Duration;
  /** @default - the construct's `maxRotation` */
  readonly maxRotation?: Duration;
  /** @default - the construct's `refreshAhead` */
  readonly refreshAhead?: Duration;
}

/** Log levels the functions understand. */
export type TokenKeeperLogLevel = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';

/** Properties of {@link TokenKeeper}. */
export interface TokenKeeperProps {
  /** The IdP that issued the tokens. */
  readonly identityProvider: IdentityProviderSettings;
  /**
   * An existing secret holding `{"client_id","client_secret"}`.
   * @default - a new secret with a placeholder value, to be set after deploy
   */
  readonly clientCredentialsSecret?: secretsmanager.ISecret;
  /**
   * Service name: the `service` metric dimension and log field.
   * @default 'token-keeper'
   */
  readonly serviceName?: string;
  /**
   * A refresh token dies this long after it was issued unless rotated.
   * @default Duration.days(14)
   */
  readonly refreshTokenTtl?: Duration;
  /**
   * No rotation extends access beyond authentication plus this.
   * @default Duration.days(365)
   */
  readonly maxRotation?: Duration;
  /**
   * Rotate this long before a refresh token would expire. Also the longest IdP outage the
   * tokens survive, so keep it well above the sweep interval.
   * @default Duration.days(3)
   */
  readonly refreshAhead?: Duration;
  /**
   * Lifetimes per resource URI that differ from the defaults.
   * @default - none
   */
  readonly resourceLifetimes?: Readonly<Record<string, ResourceLifetimeOverrides>>;
  /**
   * Timeout of one IdP call. `leaseDuration` must exceed it by more than 10 s.
   * @default Duration.seconds(5)
   */
  readonly idpTimeout?: Duration;
  /**
   * How long a refresh lease lasts: it must outlive an IdP call plus the commit.
   * @default Duration.seconds(30)
   */
  readonly leaseDuration?: Duration;
  /**
   * Shards of the due index (spreads the sweep's queries).
   * @default 4
   */
  readonly dueShards?: number;
  /**
   * Rotations one sweep runs at the same time.
   * @default 8
   */
  readonly sweepConcurrency?: number;
  /**
   * How often the sweep runs (whole minutes).
   * @default Duration.minutes(15)
   */
  readonly sweepInterval?: Duration;
  /**
   * Reserved concurrency of the sweep, so overlapping sweeps cannot multiply the IdP load;
   * `false` reserves none (for accounts at the 10-execution minimum, where reserving fails).
   * @default 1
   */
  readonly sweepReservedConcurrency?: number | false;
  /**
   * Log level of the functions.
   * @default 'INFO'
   */
  readonly logLevel?: TokenKeeperLogLevel;
  /**
   * Retention of the functions' log groups.
   * @default logs.RetentionDays.THREE_MONTHS
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * What happens to the table, keys, created secret and log groups when the stack is deleted.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * DynamoDB deletion protection of the table.
   * @default - true unless `removalPolicy` is DESTROY
   */
  readonly deletionProtection?: boolean;
  /**
   * An EventBridge bus for the app's events (`Reauth Required`, `Reauth Soon`, `Tokens Expired`,
   * `Rotation Recovered`; source `token-keeper`); the refreshing functions may put events on it.
   * @default - events are written to the function logs only
   */
  readonly eventBus?: events.IEventBus;
  /**
   * E-mail address subscribed to the alarm topic.
   * @default - no subscription
   */
  readonly alarmEmail?: string;
  /**
   * Consecutive sweeps that must leave a backlog before the backlog alarm fires.
   * @default 2
   */
  readonly sweepBacklogAlarmPeriods?: number;
  /**
   * Whether to create the CloudWatch dashboard.
   * @default true
   */
  readonly dashboard?: boolean;
}

/** A principal to grant, optionally with an environment to receive the function name (a Lambda). */
export interface TokenKeeperGrantee extends iam.IGrantable {
  /** Sets an environment variable; `lambda.Function` has it. */
  addEnvironment?(key: string, value: string): unknown;
}

/** What `addFunction` needs to build one of the service's functions. */
interface FunctionSpec {
  readonly entry: string;
  readonly description: string;
  readonly timeout: Duration;
  readonly memorySize: number;
  readonly environment: Readonly<Record<string, string>>;
  readonly statements: readonly iam.PolicyStatement[];
  readonly reservedConcurrentExecutions?: number;
  readonly asyncRetryAttempts?: number;
  readonly asyncMaxEventAge?: Duration;
}

/**
 * token-keeper on AWS: the token table and its keys, the client-credentials secret, the
 * storeTokens / getAccessToken / refreshSweep functions (one least-privilege role each), the
 * sweep schedule, alarms and dashboard. Grant callers with {@link grantGetAccessToken} and
 * {@link grantStoreTokens}; there is no function URL and no public invoke.
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
  readonly storeTokensFunction: nodejs.NodejsFunction;
  /** Invoked by granted callers for a valid access token. */
  readonly getAccessTokenFunction: nodejs.NodejsFunction;
  /** Run by the schedule: rotates the refresh tokens that are due. */
  readonly refreshSweepFunction: nodejs.NodejsFunction;
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
    this.storageKey = new kms.Key(this, 'StorageKey', {
      description: `${settings.serviceName}: at-rest encryption of the token table and the alarm topic`,
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
    if (props.clientCredentialsSecret === undefined) {
      Validations.of(this.clientCredentialsSecret).acknowledge({
        id: 'AwsSolutions-SMG4',
        reason:
          'The client secret is issued by the IdP and can only be rotated there; the operator puts the new ' +
          'value with put-secret-value and the functions re-read it (5-minute cache, and at once on a 401).',
      });
    }

    this.monitoring = new TokenKeeperMonitoring(this, 'Monitoring', {
      serviceName: settings.serviceName,
      topicKey: this.storageKey,
      sweepInterval: settings.sweepInterval,
      sweepBacklogPeriods: props.sweepBacklogAlarmPeriods,
      alarmEmail: props.alarmEmail,
      dashboard: props.dashboard,
    });

    const commonEnv: Record<string, string> = {
      TOKEN_TABLE_NAME: this.table.tableName,
      TOKEN_KEY_ARN: this.tokenKey.keyArn,
      REFRESH_TOKEN_TTL_SECONDS: String(settings.refreshTokenTtl.toSeconds()),
      MAX_ROTATION_SECONDS: String(settings.maxRotation.toSeconds()),
      REFRESH_AHEAD_SECONDS: String(settings.refreshAhead.toSeconds()),
      DUE_SHARDS: String(settings.dueShards),
      METRICS_NAMESPACE,
      POWERTOOLS_SERVICE_NAME: settings.serviceName,
      LOG_LEVEL: settings.logLevel,
      NODE_OPTIONS: '--enable-source-maps',
      ...(props.resourceLifetimes !== undefined && Object.keys(props.resourceLifetimes).length > 0
        ? { RESOURCE_LIFETIMES: JSON.stringify(resourceLifetimesJson(props.resourceLifetimes)) }
        : {}),
    };
    const refreshEnv: Record<string, string> = {
      ...commonEnv,
      ...identityProviderEnv(props.identityProvider),
      CLIENT_CREDENTIALS_SECRET_ARN: this.clientCredentialsSecret.secretArn,
      IDP_TIMEOUT_MS: String(settings.idpTimeout.toMilliseconds()),
      LEASE_SECONDS: String(settings.leaseDuration.toSeconds()),
      ...(props.eventBus ? { EVENT_BUS_NAME: props.eventBus.eventBusName } : {}),
    };

    const tableItems = (actions: readonly string[]) =>
      new iam.PolicyStatement({ actions: [...actions], resources: [this.table.tableArn] });
    const tokenKeyUse = new iam.PolicyStatement({
      actions: TOKEN_KEY_ACTIONS,
      resources: [this.tokenKey.keyArn],
      conditions: { StringEquals: { 'kms:EncryptionContext:purpose': TOKEN_KEY_ENCRYPTION_CONTEXT.purpose } },
    });
    const storageKeyViaDynamoDb = new iam.PolicyStatement({
      actions: STORAGE_KEY_ACTIONS,
      resources: [this.storageKey.keyArn],
      conditions: { StringEquals: { 'kms:ViaService': `dynamodb.${Stack.of(this).region}.amazonaws.com` } },
    });
    const readSecret = new iam.PolicyStatement({
      actions: ['secretsmanager:GetSecretValue'],
      resources: [secretArnForPolicy(this.clientCredentialsSecret)],
    });
    const putEvents = props.eventBus
      ? [new iam.PolicyStatement({ actions: ['events:PutEvents'], resources: [props.eventBus.eventBusArn] })]
      : [];

    this.storeTokensFunction = this.addFunction('StoreTokens', {
      entry: HANDLER_ENTRIES.storeTokens,
      description: `${settings.serviceName}: stores the token set of a fresh sign-in`,
      timeout: FUNCTION_TIMEOUTS.storeTokens,
      memorySize: 256,
      environment: commonEnv,
      statements: [tableItems(TABLE_ACTIONS.storeTokens), tokenKeyUse, storageKeyViaDynamoDb],
    });
    this.getAccessTokenFunction = this.addFunction('GetAccessToken', {
      entry: HANDLER_ENTRIES.getAccessToken,
      description: `${settings.serviceName}: serves a valid access token, refreshing on demand`,
      timeout: FUNCTION_TIMEOUTS.getAccessToken,
      memorySize: 256,
      environment: refreshEnv,
      statements: [
        tableItems(TABLE_ACTIONS.getAccessToken),
        tokenKeyUse,
        storageKeyViaDynamoDb,
        readSecret,
        ...putEvents,
      ],
    });
    this.refreshSweepFunction = this.addFunction('RefreshSweep', {
      entry: HANDLER_ENTRIES.refreshSweep,
      description: `${settings.serviceName}: rotates the refresh tokens that are due`,
      timeout: FUNCTION_TIMEOUTS.refreshSweep,
      memorySize: 512,
      environment: { ...refreshEnv, SWEEP_CONCURRENCY: String(settings.sweepConcurrency) },
      statements: [
        tableItems(TABLE_ACTIONS.refreshSweep),
        new iam.PolicyStatement({
          actions: ['dynamodb:Query'],
          resources: [`${this.table.tableArn}/index/${TOKEN_TABLE.dueIndex.name}`],
        }),
        tokenKeyUse,
        storageKeyViaDynamoDb,
        readSecret,
        ...putEvents,
      ],
      reservedConcurrentExecutions: settings.sweepReservedConcurrency,
      // A failed sweep is not retried: the next scheduled one picks up the same due records.
      asyncRetryAttempts: 0,
      asyncMaxEventAge: settings.sweepInterval,
    });

    // An existing secret may be encrypted with its own key: the refreshing functions decrypt it.
    for (const fn of [this.getAccessTokenFunction, this.refreshSweepFunction]) {
      this.clientCredentialsSecret.encryptionKey?.grantDecrypt(fn);
    }

    this.sweepDeadLetterQueue = new sqs.Queue(this, 'SweepDeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(this.sweepDeadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason:
        'This queue is itself the dead-letter queue of the sweep schedule target (EventBridge DLQ); ' +
        'its ApproximateNumberOfMessagesVisible alarm notifies the operator.',
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
      'EventBridge could not invoke the refresh sweep (the messages in the dead-letter queue say why). ' +
        'Tokens are not being rotated: fix the cause (permissions, throttling), then purge the queue.',
    );
  }

  /** Grants invoke on the getAccessToken function and sets TOKEN_KEEPER_GET_ACCESS_TOKEN_FUNCTION. */
  grantGetAccessToken(grantee: TokenKeeperGrantee): iam.Grant {
    return grantInvoke(grantee, this.getAccessTokenFunction, GET_ACCESS_TOKEN_FUNCTION_ENV);
  }

  /** Grants invoke on the storeTokens function and sets TOKEN_KEEPER_STORE_TOKENS_FUNCTION. */
  grantStoreTokens(grantee: TokenKeeperGrantee): iam.Grant {
    return grantInvoke(grantee, this.storeTokensFunction, STORE_TOKENS_FUNCTION_ENV);
  }

  /**
   * Builds one function: its log group, its own role (logs + the given statements), bundling
   * with the local esbuild, and its alarms.
   */
  private addFunction(name: string, spec: FunctionSpec): nodejs.NodejsFunction {
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
    const fn = new nodejs.NodejsFunction(this, name, {
      ...nodeFunctionDefaults(),
      entry: spec.entry,
      description: spec.description,
      memorySize: spec.memorySize,
      timeout: spec.timeout,
      role,
      logGroup,
      environment: { ...spec.environment },
      reservedConcurrentExecutions: spec.reservedConcurrentExecutions,
      retryAttempts: spec.asyncRetryAttempts,
      maxEventAge: spec.asyncMaxEventAge,
    });
    this.monitoring.addFunctionAlarms(name, fn, spec.timeout);
    return fn;
  }
}

/** Settings with their defaults applied. */
interface ResolvedSettings {
  readonly serviceName: string;
  readonly refreshTokenTtl: Duration;
  readonly maxRotation: Duration;
  readonly refreshAhead: Duration;
  readonly idpTimeout: Duration;
  readonly leaseDuration: Duration;
  readonly dueShards: number;
  readonly sweepConcurrency: number;
  readonly sweepInterval: Duration;
  readonly sweepReservedConcurrency: number | undefined;
  readonly logLevel: TokenKeeperLogLevel;
  readonly resourceLifetimes: Readonly<Record<string, ResourceLifetimeOverrides>>;
}

function resolveSettings(props: TokenKeeperProps): ResolvedSettings {
  return {
    serviceName: props.serviceName ?? 'token-keeper',
    refreshTokenTtl: props.refreshTokenTtl ?? Duration.days(14),
    maxRotation: props.maxRotation ?? Duration.days(365),
    refreshAhead: props.refreshAhead ?? Duration.days(3),
    idpTimeout: props.idpTimeout ?? Duration.seconds(5),
    leaseDuration: props.leaseDuration ?? Duration.seconds(30),
    dueShards: props.dueShards ?? 4,
    sweepConcurrency: props.sweepConcurrency ?? 8,
    sweepInterval: props.sweepInterval ?? Duration.minutes(15),
    sweepReservedConcurrency:
      props.sweepReservedConcurrency === false ? undefined : (props.sweepReservedConcurrency ?? 1),
    logLevel: props.logLevel ?? 'INFO',
    resourceLifetimes: props.resourceLifetimes ?? {},
  };
}

/**
 * Throws at synth when settings break an invariant of DESIGN.md, so a prop change cannot
 * deploy a service whose lease may expire during an IdP call, or whose tokens expire between sweeps.
 */
function validateSettings(s: ResolvedSettings, idp: IdentityProviderSettings): void {
  const fail = (message: string): never => {
    throw new Error(`TokenKeeper: ${message}`);
  };
  const idpMs = s.idpTimeout.toMilliseconds();
  if (idpMs <= 0) fail('idpTimeout must be positive');
  if (s.leaseDuration.toMilliseconds() <= idpMs + COMMIT_BUDGET_MS) {
    fail(
      `leaseDuration (${s.leaseDuration.toMilliseconds()} ms) must exceed idpTimeout + 10 s (${idpMs + COMMIT_BUDGET_MS} ms): ` +
        'the lease has to outlive an IdP call plus the commit',
    );
  }
  for (const [name, timeout] of [
    ['getAccessToken', FUNCTION_TIMEOUTS.getAccessToken],
    ['refreshSweep', FUNCTION_TIMEOUTS.refreshSweep],
  ] as const) {
    if (timeout.toMilliseconds() < idpMs + COMMIT_BUDGET_MS) {
      fail(`idpTimeout + 10 s must fit in the ${name} timeout (${timeout.toSeconds()} s)`);
    }
  }
  const intervalSeconds = s.sweepInterval.toSeconds();
  if (intervalSeconds < 60 || intervalSeconds % 60 !== 0) {
    fail('sweepInterval must be a whole number of minutes, at least 1');
  }
  if (intervalSeconds > 24 * 3600) fail('sweepInterval must be at most 24 hours');
  checkLifetimes('defaults', s.refreshTokenTtl, s.refreshAhead, intervalSeconds, fail);
  for (const [resource, overrides] of Object.entries(s.resourceLifetimes)) {
    if (resource === '') fail('resourceLifetimes keys must be resource URIs, not empty');
    checkLifetimes(
      `resource ${resource}`,
      overrides.refreshTokenTtl ?? s.refreshTokenTtl,
      overrides.refreshAhead ?? s.refreshAhead,
      intervalSeconds,
      fail,
    );
  }
  // The same bounds as the functions' configuration module, so a deploy cannot fail at start.
  if (!Number.isInteger(s.dueShards) || s.dueShards < 1 || s.dueShards > 64) {
    fail('dueShards must be an integer from 1 to 64');
  }
  if (!Number.isInteger(s.sweepConcurrency) || s.sweepConcurrency < 1 || s.sweepConcurrency > 256) {
    fail('sweepConcurrency must be an integer from 1 to 256');
  }
  if (
    s.sweepReservedConcurrency !== undefined &&
    (!Number.isInteger(s.sweepReservedConcurrency) || s.sweepReservedConcurrency < 1)
  ) {
    fail('sweepReservedConcurrency must be a positive integer or false');
  }
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(s.serviceName)) {
    fail('serviceName must be 1-64 characters of letters, digits, ".", "_" or "-"');
  }
  const urls = idp.flavor === 'transmit' ? [idp.baseUrl] : [idp.tokenEndpoint, idp.revocationEndpoint];
  for (const url of urls) {
    if (url !== undefined && !Token.isUnresolved(url) && !isHttpsUrl(url)) {
      fail(`the IdP URLs must be https URLs (got "${url}")`);
    }
  }
}

/** Refresh-ahead must leave the token alive at rotation time and span at least two sweeps. */
function checkLifetimes(
  what: string,
  refreshTokenTtl: Duration,
  refreshAhead: Duration,
  sweepIntervalSeconds: number,
  fail: (message: string) => never,
): void {
  if (refreshAhead.toSeconds() >= refreshTokenTtl.toSeconds()) {
    fail(`${what}: refreshAhead must be shorter than refreshTokenTtl`);
  }
  if (refreshAhead.toSeconds() < 2 * sweepIntervalSeconds) {
    fail(`${what}: refreshAhead must be at least two sweep intervals, so every due token is seen twice`);
  }
}

function isHttpsUrl(value: string): boolean {
  try {
    return new URL(value).protocol === 'https:';
  } catch {
    return false;
  }
}

function identityProviderEnv(idp: IdentityProviderSettings): Record<string, string> {
  if (idp.flavor === 'transmit') {
    return { IDP_FLAVOR: 'transmit', TRANSMIT_BASE_URL: idp.baseUrl };
  }
  return {
    IDP_FLAVOR: 'oauth2',
    OAUTH2_TOKEN_ENDPOINT: idp.tokenEndpoint,
    OAUTH2_CLIENT_AUTH: idp.clientAuth ?? 'client_secret_basic',
    ...(idp.revocationEndpoint ? { OAUTH2_REVOCATION_ENDPOINT: idp.revocationEndpoint } : {}),
  };
}

/** The RESOURCE_LIFETIMES value: resource URI -> lifetimes in seconds, only those set. */
function resourceLifetimesJson(
  overrides: Readonly<Record<string, ResourceLifetimeOverrides>>,
): Record<string, Record<string, number>> {
  const result: Record<string, Record<string, number>> = {};
  for (const [resource, o] of Object.entries(overrides)) {
    result[resource] = {
      ...(o.refreshTokenTtl ? { refreshTokenTtlSeconds: o.refreshTokenTtl.toSeconds() } : {}),
      ...(o.maxRotation ? { maxRotationSeconds: o.maxRotation.toSeconds() } : {}),
      ...(o.refreshAhead ? { refreshAheadSeconds: o.refreshAhead.toSeconds() } : {}),
    };
  }
  return result;
}

function attribute(key: { readonly name: string; readonly type: 'S' | 'N' }): dynamodb.Attribute {
  return {
    name: key.name,
    type: key.type === 'S' ? dynamodb.AttributeType.STRING : dynamodb.AttributeType.NUMBER,
  };
}

/** A secret imported by name has a partial ARN; IAM needs the 6-character suffix matched. */
function secretArnForPolicy(secret: secretsmanager.ISecret): string {
  return secret.secretFullArn ?? `${secret.secretArn}-??????`;
}

/** Invoke on exactly that function (no `:*` qualifier wildcard), plus the env var when possible. */
function grantInvoke(grantee: TokenKeeperGrantee, fn: lambda.IFunction, envName: string): iam.Grant {
  const grant = iam.Grant.addToPrincipal({
    grantee,
    actions: ['lambda:InvokeFunction'],
    resourceArns: [fn.functionArn],
  });
  grantee.addEnvironment?.(envName, fn.functionName);
  return grant;
}
