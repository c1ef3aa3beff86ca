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
  GET_ACCESS_TOKEN_FUNCTION_ENV,
  STORE_TOKENS_FUNCTION_ENV,
  TOKEN_STATUS_FUNCTION_ENV,
} from '../functions/client/env';
import {
  backlogAlarmPeriodsBound,
  boundMessage,
  type IntegerBound,
  SETTING_BOUNDS,
  withinBound,
} from '../functions/settings-bounds';
import { type FunctionBundle, nodeFunction } from './function-defaults';
import { acknowledgeTokenKeeperFindings, LIST_STREAMS_POLICY_ID } from './nag-acknowledgements';
import { type AlarmDestination, METRICS_NAMESPACE, TokenKeeperMonitoring } from './token-keeper-monitoring';

/** The encryption context of every token-key call; the IAM grants and the key policy require it. */
export const TOKEN_KEY_ENCRYPTION_CONTEXT = { purpose: 'token-keeper' } as const;

/**
 * The `source` of every event the functions put on EventBridge (`EVENT_SOURCE` of
 * functions/adapters/observability/events.ts; a test keeps the two equal). The PutEvents grants
 * require it, so a function role cannot publish events that pretend to come from another service.
 */
export const EVENT_SOURCE = 'token-keeper';

/** Set by `grantDisconnect`: the name of the disconnect function. */
export const DISCONNECT_FUNCTION_ENV = 'TOKEN_KEEPER_DISCONNECT_FUNCTION';

/** The bundle of each function (lib/function-defaults.ts FUNCTION_ENTRIES names its entry). */
export const FUNCTION_BUNDLES = {
  storeTokens: 'store-tokens',
  getAccessToken: 'get-access-token',
  refreshSweep: 'refresh-sweep',
  disconnect: 'disconnect',
  expiryStream: 'expiry-stream',
  tokenStatus: 'token-status',
} as const satisfies Record<string, FunctionBundle>;

/** Fixed function timeouts: the lease and IdP timeout are validated against them. */
export const FUNCTION_TIMEOUTS = {
  storeTokens: Duration.seconds(10),
  getAccessToken: Duration.seconds(30),
  refreshSweep: Duration.seconds(300),
  disconnect: Duration.seconds(30),
  // A batch of up to 100 removals, one PutEvents call each.
  expiryStream: Duration.seconds(60),
  // One consistent GetItem with a projection.
  tokenStatus: Duration.seconds(10),
} as const;

/** What Lambda accepts as a function's memory, in MB. */
const SWEEP_MEMORY_BOUND: IntegerBound = { min: 128, max: 10_240 };

/** The sweep's memory when not set: 16 MB per IdP call in flight, 512 to 3008 MB. */
export function defaultSweepMemorySize(sweepConcurrency: number): number {
  return Math.min(3008, Math.max(512, 16 * sweepConcurrency));
}

/** The stream mapping gives up on a record this old. */
const EXPIRY_STREAM_MAX_RECORD_AGE = Duration.hours(1);

/** The expiry consumer's lag that alarms (well before the mapping gives up). */
const EXPIRY_STREAM_LAG_ALARM = Duration.minutes(15);

/** Time a function needs besides the IdP call: lease, KMS, the commit and its retries. */
const COMMIT_BUDGET_MS = 10_000;

/** The table actions of each function (exact lists, tested). */
export const TABLE_ACTIONS = {
  // Reads the previous version (a projection) and puts the new record: it opens no stored token.
  storeTokens: ['dynamodb:GetItem', 'dynamodb:PutItem'],
  getAccessToken: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
  refreshSweep: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
  // Reads the record (for the IdP session), then deletes it.
  disconnect: ['dynamodb:DeleteItem', 'dynamodb:GetItem'],
  // Reads the schedule attributes of one record (a projection): no token, nothing decrypted.
  tokenStatus: ['dynamodb:GetItem'],
} as const;

/**
 * What the expiry consumer may do with the table's stream (resource: that stream's ARN).
 * `dynamodb:ListStreams` is granted apart: it has no resource-level permissions.
 */
export const STREAM_READ_ACTIONS = [
  'dynamodb:DescribeStream',
  'dynamodb:GetRecords',
  'dynamodb:GetShardIterator',
];

/** What a function may do with the token key: make data keys to seal, open what it reads. */
const TOKEN_KEY_ACTIONS = ['kms:GenerateDataKey', 'kms:Decrypt'];

/**
 * What DynamoDB does with the storage key on a function's behalf (the table is encrypted with
 * it). Only through DynamoDB: the grant carries a `kms:ViaService` condition.
 */
const STORAGE_KEY_ACTIONS = ['kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:GenerateDataKey'];

/** The storage-key actions of a reader that never writes the table (what CDK's read grants give). */
const STORAGE_KEY_READ_ACTIONS = ['kms:Decrypt', 'kms:DescribeKey'];

/** The principal DynamoDB's TTL process writes on the stream records of its deletions. */
const TTL_PRINCIPAL = 'dynamodb.amazonaws.com';

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

/**
 * How storeTokens verifies the ID token of a sign-in (signature against the IdP's JWKS, issuer,
 * audience, expiry, and `sub` equal to the userId), so tokens cannot be filed under the wrong user.
 */
export interface IdTokenVerificationSettings {
  /**
   * The IdP's JWKS (https).
   * @default - transmit: `{baseUrl}/cis/oidc/jwks`; required with the oauth2 flavour
   */
  readonly jwksUrl?: string;
  /**
   * The exact `iss` of the ID tokens (https URL). Transmit: `https://userid.security` (US), a
   * regional variant such as `https://eu.userid.security`, or the app's own subdomain when
   * app-specific signing keys are on: check the `iss` of one of your ID tokens.
   */
  readonly issuer: string;
  /** This app's client id: it must be among the token's `aud`. */
  readonly audience: string;
}

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
   * Requests per second the sweep sends to the IdP at most, shared by its workers (an integer,
   * 1-10,000); a 429 slows it down further. getAccessToken is not limited: it refreshes on demand.
   * @default 20
   */
  readonly idpRateLimitPerSecond?: number;
  /**
   * The `Reauth Soon` event goes out once, this long before a record's absolute rotation deadline,
   * so the app can ask the user to sign in again ahead of time (whole days, 0-365).
   * @default Duration.days(14)
   */
  readonly reauthSoon?: Duration;
  /**
   * Error codes of a refresh answer that prove a refresh token dead, besides `invalid_grant`
   * (`IDP_DEAD_TOKEN_CODES`). Add what `npm run probe-idp` reports for your tenant; any other
   * refusal is retried, never taken as a dead token.
   * @default ['invalid_grant']
   */
  readonly idpDeadTokenCodes?: readonly string[];
  /**
   * Dead-token rejections (of any users) within 10 minutes that open the rejection circuit
   * breaker (`REJECTION_BREAKER_THRESHOLD`): past it nobody more is marked.
   * @default 10
   */
  readonly rejectionBreakerThreshold?: number;
  /**
   * Verify the ID token in storeTokens. Off unless given: the issuer is specific to the app's
   * Transmit tenant and region, so it cannot be guessed.
   * @default - ID tokens are not verified
   */
  readonly idTokenVerification?: IdTokenVerificationSettings;
  /**
   * How often the sweep runs (whole minutes).
   * @default Duration.minutes(15)
   */
  readonly sweepInterval?: Duration;
  /**
   * Reserved concurrency of the sweep (1-1000), so overlapping sweeps cannot multiply the IdP load.
   * None by default: a new account has 10 concurrent executions, all of which must stay unreserved,
   * so any reservation fails its first deploy. Overlapping sweeps are harmless (leases), only busier.
   * @default false - none reserved
   */
  readonly sweepReservedConcurrency?: number | false;
  /**
   * Memory of the sweep in MB (128-10240). Lambda gives CPU in proportion to memory, and the sweep's
   * work (TLS to the IdP, KMS, DynamoDB) grows with its concurrency.
   * @default - 16 MB per unit of sweepConcurrency, at least 512 and at most 3008
   */
  readonly sweepMemorySize?: number;
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
   * The EventBridge bus for the app's events (`Reauth Required`, `Reauth Soon`, `Tokens Expired`,
   * `Rotation Recovered`, `Disconnected`; source `token-keeper`). The publishing functions may put
   * events with that source on this bus only.
   * @default - the account's default bus
   */
  readonly eventBus?: events.IEventBus;
  /**
   * E-mail address subscribed to the alarm topics this construct creates.
   * @default - no subscription
   */
  readonly alarmEmail?: string;
  /**
   * Where critical alarms go (tokens at risk: page someone): an existing topic, or actions.
   * @default - a topic of the construct's own
   */
  readonly criticalAlarms?: AlarmDestination;
  /**
   * Where warnings go (look within a working day): an existing topic, or actions.
   * @default - a topic of the construct's own
   */
  readonly warningAlarms?: AlarmDestination;
  /**
   * Run the alarm actions also when an alarm returns to OK.
   * @default true
   */
  readonly notifyOnOk?: boolean;
  /**
   * Consecutive sweeps that must leave a backlog before the backlog alarm fires (1 up to a day of sweeps).
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

/** Statements a function role may get; each function picks from these. */
interface Statements {
  readonly tableItems: (actions: readonly string[]) => iam.PolicyStatement;
  readonly tokenKeyUse: iam.PolicyStatement;
  readonly tokenKeySeal: iam.PolicyStatement;
  readonly tokenKeyDecrypt: iam.PolicyStatement;
  readonly storageKeyViaDynamoDb: iam.PolicyStatement;
  readonly storageKeyReadViaDynamoDb: iam.PolicyStatement;
  readonly readSecret: iam.PolicyStatement;
  readonly putEvents: iam.PolicyStatement;
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

    // What every function needs to build its runtime (functions/config.ts requires the table and
    // the key ARN even where they are unused) and to log and count.
    const baseEnv: Record<string, string> = {
      TOKEN_TABLE_NAME: this.table.tableName,
      TOKEN_KEY_ARN: this.tokenKey.keyArn,
      METRICS_NAMESPACE,
      POWERTOOLS_SERVICE_NAME: settings.serviceName,
      LOG_LEVEL: settings.logLevel,
      NODE_OPTIONS: '--enable-source-maps',
    };
    const eventsEnv = { EVENT_BUS_NAME: this.eventBus.eventBusName };
    const commonEnv: Record<string, string> = {
      ...baseEnv,
      REFRESH_TOKEN_TTL_SECONDS: String(settings.refreshTokenTtl.toSeconds()),
      MAX_ROTATION_SECONDS: String(settings.maxRotation.toSeconds()),
      REFRESH_AHEAD_SECONDS: String(settings.refreshAhead.toSeconds()),
      DUE_SHARDS: String(settings.dueShards),
      REAUTH_SOON_DAYS: String(settings.reauthSoon.toDays()),
      ...(props.resourceLifetimes !== undefined && Object.keys(props.resourceLifetimes).length > 0
        ? { RESOURCE_LIFETIMES: JSON.stringify(resourceLifetimesJson(props.resourceLifetimes)) }
        : {}),
    };
    const refreshEnv: Record<string, string> = {
      ...commonEnv,
      ...identityProviderEnv(props.identityProvider),
      ...(props.idpDeadTokenCodes !== undefined
        ? { IDP_DEAD_TOKEN_CODES: deadTokenCodes(props.idpDeadTokenCodes) }
        : {}),
      ...(props.rejectionBreakerThreshold !== undefined
        ? { REJECTION_BREAKER_THRESHOLD: String(breakerThreshold(props.rejectionBreakerThreshold)) }
        : {}),
      CLIENT_CREDENTIALS_SECRET_ARN: this.clientCredentialsSecret.secretArn,
      IDP_TIMEOUT_MS: String(settings.idpTimeout.toMilliseconds()),
      LEASE_SECONDS: String(settings.leaseDuration.toSeconds()),
      ...eventsEnv,
    };

    const statements = this.statements();

    this.storeTokensFunction = this.addFunction('StoreTokens', {
      bundle: FUNCTION_BUNDLES.storeTokens,
      description: `${settings.serviceName}: stores the token set of a fresh sign-in`,
      timeout: FUNCTION_TIMEOUTS.storeTokens,
      memorySize: 256,
      environment: { ...commonEnv, ...idTokenEnv(props.idTokenVerification, props.identityProvider) },
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
      environment: refreshEnv,
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
        ...refreshEnv,
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
      environment: refreshEnv,
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
      environment: baseEnv,
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
      environment: { ...baseEnv, ...eventsEnv },
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

  /** The statements the function roles are built from, each scoped to one resource. */
  private statements(): Statements {
    const tokenKey = (actions: string[]) =>
      new iam.PolicyStatement({
        actions,
        resources: [this.tokenKey.keyArn],
        conditions: {
          StringEquals: { 'kms:EncryptionContext:purpose': TOKEN_KEY_ENCRYPTION_CONTEXT.purpose },
        },
      });
    const storageKey = (actions: string[]) =>
      new iam.PolicyStatement({
        actions,
        resources: [this.storageKey.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `dynamodb.${Stack.of(this).region}.amazonaws.com` } },
      });
    return {
      tableItems: (actions) =>
        new iam.PolicyStatement({ actions: [...actions], resources: [this.table.tableArn] }),
      tokenKeyUse: tokenKey(TOKEN_KEY_ACTIONS),
      tokenKeySeal: tokenKey(['kms:GenerateDataKey']),
      tokenKeyDecrypt: tokenKey(['kms:Decrypt']),
      storageKeyViaDynamoDb: storageKey(STORAGE_KEY_ACTIONS),
      storageKeyReadViaDynamoDb: storageKey(STORAGE_KEY_READ_ACTIONS),
      readSecret: new iam.PolicyStatement({
        actions: ['secretsmanager:GetSecretValue'],
        resources: [secretArnForPolicy(this.clientCredentialsSecret)],
      }),
      putEvents: new iam.PolicyStatement({
        actions: ['events:PutEvents'],
        resources: [this.eventBus.eventBusArn],
        conditions: { StringEquals: { 'events:source': EVENT_SOURCE } },
      }),
    };
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
  readonly idpRateLimitPerSecond: number;
  readonly reauthSoon: Duration;
  readonly idTokenVerification: IdTokenVerificationSettings | undefined;
  readonly sweepInterval: Duration;
  readonly sweepReservedConcurrency: number | undefined;
  readonly sweepMemorySize: number | undefined;
  readonly sweepBacklogAlarmPeriods: number;
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
    idpRateLimitPerSecond: props.idpRateLimitPerSecond ?? 20,
    reauthSoon: props.reauthSoon ?? Duration.days(14),
    idTokenVerification: props.idTokenVerification,
    sweepInterval: props.sweepInterval ?? Duration.minutes(15),
    sweepReservedConcurrency:
      props.sweepReservedConcurrency === false ? undefined : props.sweepReservedConcurrency,
    sweepMemorySize: props.sweepMemorySize,
    sweepBacklogAlarmPeriods: props.sweepBacklogAlarmPeriods ?? 2,
    logLevel: props.logLevel ?? 'INFO',
    resourceLifetimes: props.resourceLifetimes ?? {},
  };
}

/**
 * Throws at synth when settings break an invariant of docs/architecture.md, so a prop change cannot
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
  // functions/config.ts refuses LEASE_SECONDS <= 2 x IDP_TIMEOUT_MS: fail here, not at the first call.
  if (s.leaseDuration.toMilliseconds() <= 2 * idpMs) {
    fail('leaseDuration must exceed twice idpTimeout (the functions refuse a shorter lease)');
  }
  for (const [name, timeout] of [
    ['getAccessToken', FUNCTION_TIMEOUTS.getAccessToken],
    ['refreshSweep', FUNCTION_TIMEOUTS.refreshSweep],
  ] as const) {
    if (timeout.toMilliseconds() < idpMs + COMMIT_BUDGET_MS) {
      fail(`idpTimeout + 10 s must fit in the ${name} timeout (${timeout.toSeconds()} s)`);
    }
  }
  const check = (name: string, value: number, bound: IntegerBound) => {
    if (!withinBound(value, bound)) fail(boundMessage(name, bound));
  };
  const intervalSeconds = s.sweepInterval.toSeconds({ integral: false });
  const intervalMinutes = intervalSeconds / 60;
  check('sweepInterval (whole minutes)', intervalMinutes, SETTING_BOUNDS.sweepIntervalMinutes);
  check('sweepBacklogAlarmPeriods', s.sweepBacklogAlarmPeriods, backlogAlarmPeriodsBound(intervalMinutes));
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
  // The same bounds as the functions' configuration module (one module), so a deploy cannot fail at start.
  check('idpTimeout (ms)', idpMs, SETTING_BOUNDS.idpTimeoutMs);
  check('dueShards', s.dueShards, SETTING_BOUNDS.dueShards);
  check('sweepConcurrency', s.sweepConcurrency, SETTING_BOUNDS.sweepConcurrency);
  check('idpRateLimitPerSecond', s.idpRateLimitPerSecond, SETTING_BOUNDS.idpRateLimitPerSecond);
  const reauthSoonDays = s.reauthSoon.toSeconds({ integral: false }) / 86_400;
  check('reauthSoon (whole days)', reauthSoonDays, SETTING_BOUNDS.reauthSoonDays);
  if (s.sweepReservedConcurrency !== undefined) {
    check('sweepReservedConcurrency', s.sweepReservedConcurrency, SETTING_BOUNDS.sweepReservedConcurrency);
  }
  if (s.sweepMemorySize !== undefined) check('sweepMemorySize (MB)', s.sweepMemorySize, SWEEP_MEMORY_BOUND);
  if (s.idTokenVerification !== undefined) checkIdTokenVerification(s.idTokenVerification, idp, fail);
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

/** The ID-token settings the functions' configuration accepts; the JWKS defaults only for Transmit. */
function checkIdTokenVerification(
  v: IdTokenVerificationSettings,
  idp: IdentityProviderSettings,
  fail: (message: string) => never,
): void {
  if (v.jwksUrl === undefined && idp.flavor !== 'transmit') {
    fail('idTokenVerification.jwksUrl is required with the oauth2 flavour');
  }
  for (const [name, url] of [
    ['jwksUrl', v.jwksUrl],
    ['issuer', v.issuer],
  ] as const) {
    if (url !== undefined && !Token.isUnresolved(url) && !isHttpsUrl(url)) {
      fail(`idTokenVerification.${name} must be an https URL (got "${url}")`);
    }
  }
  if (!Token.isUnresolved(v.audience) && v.audience.trim() === '') {
    fail("idTokenVerification.audience must be the app's client id, not empty");
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

/** storeTokens' ID-token settings: none unless verification is configured (the issuer cannot be guessed). */
function idTokenEnv(
  v: IdTokenVerificationSettings | undefined,
  idp: IdentityProviderSettings,
): Record<string, string> {
  if (v === undefined) return {};
  const jwksUrl =
    v.jwksUrl ?? (idp.flavor === 'transmit' ? `${idp.baseUrl.replace(/\/+$/, '')}/cis/oidc/jwks` : '');
  return {
    ID_TOKEN_VERIFICATION: 'on',
    ID_TOKEN_JWKS_URL: jwksUrl,
    ID_TOKEN_ISSUER: v.issuer,
    ID_TOKEN_AUDIENCE: v.audience,
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

/** The functions a caller may be granted. */
export type CallableFunction = 'GetAccessToken' | 'StoreTokens' | 'Disconnect' | 'TokenStatus';

/** The stack a grantee belongs to, when it is a construct. */
function stackOf(value: unknown): Stack | undefined {
  return Construct.isConstruct(value) ? Stack.of(value) : undefined;
}

/** `IDP_DEAD_TOKEN_CODES` from the prop; throws at synth on a code the functions would refuse. */
function deadTokenCodes(codes: readonly string[]): string {
  for (const code of codes) {
    if (!/^[a-z_]{1,64}$/.test(code)) {
      throw new Error(`idpDeadTokenCodes: "${code}" is not an OAuth error code (lower case and underscores)`);
    }
  }
  return [...new Set(['invalid_grant', ...codes])].join(',');
}

/** `REJECTION_BREAKER_THRESHOLD` from the prop; throws at synth outside 1..1,000,000. */
function breakerThreshold(threshold: number): number {
  if (!Number.isInteger(threshold) || threshold < 1 || threshold > 1_000_000) {
    throw new Error('rejectionBreakerThreshold must be an integer between 1 and 1000000');
  }
  return threshold;
}
