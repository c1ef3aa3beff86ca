import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { beforeAll, describe, expect, it } from 'vitest';
import { EVENT_SOURCE as PUBLISHED_EVENT_SOURCE } from '../../functions/shared-facts';
import { TokenKeeper } from '../../lib/token-keeper';
import { EVENT_SOURCE } from '../../lib/token-keeper-permissions';
import type { TokenKeeperProps } from '../../lib/token-keeper-props';
import type { TokenKeeperStack } from '../../lib/token-keeper-stack';
import { BASE_PROPS, synthStack, testApp } from './support/app';
import { roleActions, roleLogicalId, roleStatements } from './support/policies';

type Built = ReturnType<typeof synthStack>;

const IMPORTED_SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:tk/client-AbCdEf';

/** Functions granted by the tests, built into the default stack. */
interface Callers {
  caller: lambda.Function;
  authBackend: lambda.Function;
  offboarding: lambda.Function;
  statusPage: lambda.Function;
  bareRole: iam.Role;
}

let base: Built;
let callers: Callers;
let custom: Built;

const logicalId = (stack: Stack, construct: { node: { defaultChild?: unknown } }): string =>
  stack.getLogicalId(construct.node.defaultChild as Parameters<Stack['getLogicalId']>[0]);

function functionProps(built: Built, fn: lambda.IFunction): Record<string, unknown> {
  const resource = built.template.findResources('AWS::Lambda::Function')[logicalId(built.stack, fn)];
  return (resource as { Properties: Record<string, unknown> }).Properties;
}

function envOf(built: Built, fn: lambda.IFunction): Record<string, unknown> {
  return (functionProps(built, fn).Environment as { Variables: Record<string, unknown> }).Variables;
}

beforeAll(() => {
  base = synthStack({}, (stack: TokenKeeperStack) => {
    const inline = (id: string) =>
      new lambda.Function(stack, id, {
        runtime: lambda.Runtime.NODEJS_24_X,
        handler: 'index.handler',
        code: lambda.Code.fromInline('exports.handler = async () => ({});'),
      });
    callers = {
      caller: inline('Caller'),
      authBackend: inline('AuthBackend'),
      offboarding: inline('Offboarding'),
      statusPage: inline('StatusPage'),
      bareRole: new iam.Role(stack, 'BareRole', {
        assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      }),
    };
    stack.tokenKeeper.grantGetAccessToken(callers.caller);
    stack.tokenKeeper.grantStoreTokens(callers.authBackend);
    stack.tokenKeeper.grantGetAccessToken(callers.bareRole);
    stack.tokenKeeper.grantDisconnect(callers.offboarding);
    stack.tokenKeeper.grantTokenStatus(callers.statusPage);
  });
  custom = synthStack({
    identityProvider: {
      flavor: 'oauth2',
      tokenEndpoint: 'https://idp.example.com/oauth2/token',
      clientAuth: 'client_secret_post',
      revocationEndpoint: 'https://idp.example.com/oauth2/revoke',
    },
    serviceName: 'billing-tokens',
    removalPolicy: RemovalPolicy.DESTROY,
    sweepInterval: Duration.minutes(5),
    sweepReservedConcurrency: 1,
    idpDeadTokenCodes: ['invalid_refresh_token'],
    rejectionBreakerThreshold: 25,
    refreshAhead: Duration.days(2),
    resourceLifetimes: {
      'https://api.example.com': { refreshTokenTtl: Duration.days(7), refreshAhead: Duration.days(1) },
    },
    idpTimeout: Duration.seconds(3),
    leaseDuration: Duration.seconds(20),
    dueShards: 8,
    sweepConcurrency: 16,
    idpRateLimitPerSecond: 5,
    reauthSoon: Duration.days(30),
    idTokenVerification: {
      jwksUrl: 'https://idp.example.com/oauth2/jwks',
      issuer: 'https://idp.example.com',
      audience: 'billing-client',
    },
    logLevel: 'DEBUG',
    logRetention: logs.RetentionDays.ONE_MONTH,
    clientCredentialsSecretArn: IMPORTED_SECRET_ARN,
    eventBusName: 'app-events',
  });
});

describe('Class: TokenKeeper', () => {
  describe('Resource: table', () => {
    it('builds the table from TOKEN_TABLE: keys, TTL, sparse KEYS_ONLY due index', () => {
      base.template.hasResourceProperties('AWS::DynamoDB::Table', {
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        AttributeDefinitions: Match.arrayWith([
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: 'sk', AttributeType: 'S' },
          { AttributeName: 'dueShard', AttributeType: 'N' },
          { AttributeName: 'dueAt', AttributeType: 'N' },
        ]),
        TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
        GlobalSecondaryIndexes: [
          {
            IndexName: 'byDue',
            KeySchema: [
              { AttributeName: 'dueShard', KeyType: 'HASH' },
              { AttributeName: 'dueAt', KeyType: 'RANGE' },
            ],
            Projection: { ProjectionType: 'KEYS_ONLY' },
          },
        ],
      });
    });

    it('streams the old image of every change, for the expiry consumer', () => {
      base.template.hasResourceProperties('AWS::DynamoDB::Table', {
        StreamSpecification: { StreamViewType: 'OLD_IMAGE' },
      });
    });

    it('bills on demand, keeps point-in-time recovery and encrypts with the storage key', () => {
      base.template.hasResourceProperties('AWS::DynamoDB::Table', {
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: {
          SSEEnabled: true,
          SSEType: 'KMS',
          KMSMasterKeyId: base.stack.resolve(base.stack.tokenKeeper.storageKey.keyArn),
        },
      });
    });

    it('retains the table and turns deletion protection on by default', () => {
      base.template.hasResource('AWS::DynamoDB::Table', {
        DeletionPolicy: 'Retain',
        UpdateReplacePolicy: 'Retain',
        Properties: Match.objectLike({ DeletionProtectionEnabled: true }),
      });
    });

    it('deletes the table without deletion protection when removalPolicy is DESTROY', () => {
      custom.template.hasResource('AWS::DynamoDB::Table', {
        DeletionPolicy: 'Delete',
        Properties: Match.objectLike({ DeletionProtectionEnabled: false }),
      });
    });
  });

  describe('Resource: keys and secret', () => {
    it('creates three customer-managed keys (tokens, table, alarm topics), all rotating', () => {
      base.template.resourceCountIs('AWS::KMS::Key', 3);
      const dataKeys = [base.stack.tokenKeeper.tokenKey, base.stack.tokenKeeper.storageKey].map((key) =>
        logicalId(base.stack, key),
      );
      for (const id of dataKeys) {
        expect(base.template.findResources('AWS::KMS::Key')[id]).toMatchObject({ DeletionPolicy: 'Retain' });
      }
      for (const key of Object.values(base.template.findResources('AWS::KMS::Key'))) {
        expect(key).toMatchObject({ Properties: { EnableKeyRotation: true } });
      }
    });

    it('lets no service use the storage key (DynamoDB only, through the roles) or the token key', () => {
      const keys = base.template.findResources('AWS::KMS::Key');
      const statementsOf = (key: { node: { defaultChild?: unknown } }) =>
        JSON.stringify(keys[logicalId(base.stack, key)]?.Properties.KeyPolicy.Statement);
      expect(statementsOf(base.stack.tokenKeeper.storageKey)).not.toContain('amazonaws.com');
      expect(statementsOf(base.stack.tokenKeeper.tokenKey)).not.toContain('amazonaws.com');
    });

    it('makes the token key itself refuse cryptographic use without the token-keeper context', () => {
      const keys = base.template.findResources('AWS::KMS::Key');
      const policy = keys[logicalId(base.stack, base.stack.tokenKeeper.tokenKey)]?.Properties.KeyPolicy;
      expect(policy.Statement).toContainEqual({
        Sid: 'DenyCryptographicUseWithoutTheTokenKeeperEncryptionContext',
        Effect: 'Deny',
        Principal: { AWS: '*' },
        Action: ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey*', 'kms:ReEncrypt*'],
        Resource: '*',
        Condition: { StringNotEquals: { 'kms:EncryptionContext:purpose': 'token-keeper' } },
      });
      // Every other statement is the account's administrative access (CDK's default key policy).
      expect(policy.Statement.filter((s: { Effect: string }) => s.Effect === 'Allow')).toHaveLength(1);
    });

    it('creates the client-credentials secret with a placeholder client_id and no usable value', () => {
      base.template.hasResourceProperties('AWS::SecretsManager::Secret', {
        GenerateSecretString: {
          SecretStringTemplate: JSON.stringify({ client_id: 'SET-AFTER-DEPLOY' }),
          GenerateStringKey: 'client_secret',
        },
      });
      base.template.hasResource('AWS::SecretsManager::Secret', { DeletionPolicy: 'Retain' });
    });

    it('uses an existing secret instead of creating one', () => {
      custom.template.resourceCountIs('AWS::SecretsManager::Secret', 0);
      expect(
        envOf(custom, custom.stack.tokenKeeper.getAccessTokenFunction).CLIENT_CREDENTIALS_SECRET_ARN,
      ).toBe(IMPORTED_SECRET_ARN);
    });
  });

  describe('Resource: functions', () => {
    const cases = [
      ['storeTokens', 'storeTokensFunction', 10, 256],
      ['getAccessToken', 'getAccessTokenFunction', 30, 256],
      ['refreshSweep', 'refreshSweepFunction', 300, 512],
      ['disconnect', 'disconnectFunction', 30, 256],
      ['expiryStream', 'expiryStreamFunction', 60, 256],
      ['tokenStatus', 'tokenStatusFunction', 10, 256],
    ] as const;

    it.each(cases)(
      'runs %s on arm64 Node.js 24 with its timeout and a JSON log group',
      (_name, field, timeout, memory) => {
        const fn = base.stack.tokenKeeper[field];
        expect(functionProps(base, fn)).toMatchObject({
          Runtime: 'nodejs24.x',
          Architectures: ['arm64'],
          Handler: 'index.handler',
          Timeout: timeout,
          MemorySize: memory,
          LoggingConfig: { LogFormat: 'JSON', LogGroup: { Ref: expect.stringContaining('Logs') } },
          Role: { 'Fn::GetAtt': [roleLogicalId(base.stack, fn.role!), 'Arn'] },
        });
      },
    );

    it('keeps three months of logs by default and the configured retention otherwise', () => {
      const retentionOf = (built: Built) => {
        const groups = built.template.findResources('AWS::Logs::LogGroup');
        const tk = built.stack.tokenKeeper;
        return [
          tk.storeTokensFunction,
          tk.getAccessTokenFunction,
          tk.refreshSweepFunction,
          tk.disconnectFunction,
          tk.expiryStreamFunction,
          tk.tokenStatusFunction,
        ].map((fn) => {
          const group = groups[logicalId(built.stack, fn.logGroup)];
          return [group?.Properties.RetentionInDays, group?.DeletionPolicy];
        });
      };
      expect(retentionOf(base)).toEqual(Array(6).fill([90, 'Retain']));
      expect(retentionOf(custom)).toEqual(Array(6).fill([30, 'Delete']));
    });

    it('gives storeTokens the table, key, lifetimes and re-auth notice but no IdP settings and no bus', () => {
      const tk = base.stack.tokenKeeper;
      expect(envOf(base, tk.storeTokensFunction)).toEqual({
        TOKEN_TABLE_NAME: base.stack.resolve(tk.table.tableName),
        TOKEN_KEY_ARN: base.stack.resolve(tk.tokenKey.keyArn),
        REFRESH_TOKEN_TTL_SECONDS: String(14 * 86_400),
        MAX_ROTATION_SECONDS: String(365 * 86_400),
        REFRESH_AHEAD_SECONDS: String(3 * 86_400),
        DUE_SHARDS: '4',
        REAUTH_SOON_DAYS: '14',
        METRICS_NAMESPACE: 'TokenKeeper',
        POWERTOOLS_SERVICE_NAME: 'token-keeper',
        LOG_LEVEL: 'INFO',
        NODE_OPTIONS: '--enable-source-maps',
      });
    });

    it('gives getAccessToken the IdP, secret, timeout, lease and the default event bus as well', () => {
      const tk = base.stack.tokenKeeper;
      expect(envOf(base, tk.getAccessTokenFunction)).toEqual({
        ...envOf(base, tk.storeTokensFunction),
        IDP_FLAVOR: 'transmit',
        TRANSMIT_BASE_URL: 'https://api.transmitsecurity.io',
        CLIENT_CREDENTIALS_SECRET_ARN: base.stack.resolve(tk.clientCredentialsSecret.secretArn),
        IDP_TIMEOUT_MS: '5000',
        LEASE_SECONDS: '30',
        EVENT_BUS_NAME: 'default',
      });
    });

    it('gives refreshSweep what getAccessToken has plus its concurrency, IdP rate limit and chain length', () => {
      const tk = base.stack.tokenKeeper;
      expect(envOf(base, tk.refreshSweepFunction)).toEqual({
        ...envOf(base, tk.getAccessTokenFunction),
        SWEEP_CONCURRENCY: '8',
        IDP_RATE_LIMIT_RPS: '20',
      });
    });

    it("gives disconnect exactly getAccessToken's settings (it calls the IdP too)", () => {
      const tk = base.stack.tokenKeeper;
      expect(envOf(base, tk.disconnectFunction)).toEqual(envOf(base, tk.getAccessTokenFunction));
    });

    it('gives expiryStream what its configuration requires, the bus, and no IdP or secret', () => {
      const tk = base.stack.tokenKeeper;
      expect(envOf(base, tk.expiryStreamFunction)).toEqual({
        TOKEN_TABLE_NAME: base.stack.resolve(tk.table.tableName),
        TOKEN_KEY_ARN: base.stack.resolve(tk.tokenKey.keyArn),
        METRICS_NAMESPACE: 'TokenKeeper',
        POWERTOOLS_SERVICE_NAME: 'token-keeper',
        LOG_LEVEL: 'INFO',
        NODE_OPTIONS: '--enable-source-maps',
        EVENT_BUS_NAME: 'default',
      });
    });

    it('gives tokenStatus what its configuration requires and nothing else: no lifetimes, IdP, secret or bus', () => {
      const tk = base.stack.tokenKeeper;
      expect(envOf(base, tk.tokenStatusFunction)).toEqual({
        TOKEN_TABLE_NAME: base.stack.resolve(tk.table.tableName),
        TOKEN_KEY_ARN: base.stack.resolve(tk.tokenKey.keyArn),
        METRICS_NAMESPACE: 'TokenKeeper',
        POWERTOOLS_SERVICE_NAME: 'token-keeper',
        LOG_LEVEL: 'INFO',
        NODE_OPTIONS: '--enable-source-maps',
      });
    });

    it('publishes with the source the event adapter uses', () => {
      expect(EVENT_SOURCE).toBe(PUBLISHED_EVENT_SOURCE);
    });

    it('turns ID-token verification on in storeTokens only, with the configured JWKS, issuer and audience', () => {
      const tk = custom.stack.tokenKeeper;
      expect(envOf(custom, tk.storeTokensFunction)).toMatchObject({
        ID_TOKEN_VERIFICATION: 'on',
        ID_TOKEN_JWKS_URL: 'https://idp.example.com/oauth2/jwks',
        ID_TOKEN_ISSUER: 'https://idp.example.com',
        ID_TOKEN_AUDIENCE: 'billing-client',
      });
      for (const fn of [tk.getAccessTokenFunction, tk.refreshSweepFunction, tk.disconnectFunction]) {
        expect(Object.keys(envOf(custom, fn)).filter((k) => k.startsWith('ID_TOKEN_'))).toEqual([]);
      }
      expect(Object.keys(envOf(base, base.stack.tokenKeeper.storeTokensFunction))).not.toContain(
        'ID_TOKEN_VERIFICATION',
      );
    });

    it("derives Transmit's JWKS URL from the base URL when only issuer and audience are given", () => {
      const built = synthStack({
        identityProvider: { flavor: 'transmit', baseUrl: 'https://api.eu.transmitsecurity.io/' },
        idTokenVerification: { issuer: 'https://eu.userid.security', audience: 'app-client' },
      });
      expect(envOf(built, built.stack.tokenKeeper.storeTokensFunction)).toMatchObject({
        ID_TOKEN_VERIFICATION: 'on',
        ID_TOKEN_JWKS_URL: 'https://api.eu.transmitsecurity.io/cis/oidc/jwks',
        ID_TOKEN_ISSUER: 'https://eu.userid.security',
        ID_TOKEN_AUDIENCE: 'app-client',
      });
    });

    it('passes the OAuth 2 endpoint, per-resource lifetimes, event bus and tuning settings through', () => {
      const env = envOf(custom, custom.stack.tokenKeeper.refreshSweepFunction);
      expect(env).toMatchObject({
        IDP_FLAVOR: 'oauth2',
        OAUTH2_TOKEN_ENDPOINT: 'https://idp.example.com/oauth2/token',
        OAUTH2_CLIENT_AUTH: 'client_secret_post',
        OAUTH2_REVOCATION_ENDPOINT: 'https://idp.example.com/oauth2/revoke',
        POWERTOOLS_SERVICE_NAME: 'billing-tokens',
        REFRESH_AHEAD_SECONDS: String(2 * 86_400),
        IDP_TIMEOUT_MS: '3000',
        LEASE_SECONDS: '20',
        DUE_SHARDS: '8',
        SWEEP_CONCURRENCY: '16',
        IDP_RATE_LIMIT_RPS: '5',
        REAUTH_SOON_DAYS: '30',
        LOG_LEVEL: 'DEBUG',
        EVENT_BUS_NAME: 'app-events',
      });
      expect(env).not.toHaveProperty('TRANSMIT_BASE_URL');
      expect(JSON.parse(String(env.RESOURCE_LIFETIMES))).toEqual({
        'https://api.example.com': { refreshTokenTtlSeconds: 7 * 86_400, refreshAheadSeconds: 86_400 },
      });
    });
  });

  describe('Resource: expiry stream consumer', () => {
    const mappingProps = (built: Built) => {
      const mapping = built.stack.tokenKeeper.expiryStreamMapping;
      return built.template.findResources('AWS::Lambda::EventSourceMapping')[logicalId(built.stack, mapping)]
        ?.Properties;
    };

    it('maps the table stream to expiryStream only, in batches of 100 from the oldest record', () => {
      const tk = base.stack.tokenKeeper;
      base.template.resourceCountIs('AWS::Lambda::EventSourceMapping', 1);
      expect(mappingProps(base)).toMatchObject({
        EventSourceArn: { 'Fn::GetAtt': [logicalId(base.stack, tk.table), 'StreamArn'] },
        FunctionName: { Ref: logicalId(base.stack, tk.expiryStreamFunction) },
        StartingPosition: 'TRIM_HORIZON',
        BatchSize: 100,
      });
    });

    it('lets only TTL removals through: REMOVE events by the DynamoDB service principal', () => {
      const filters = mappingProps(base).FilterCriteria.Filters as { Pattern: string }[];
      expect(filters.map((f) => JSON.parse(f.Pattern))).toEqual([
        {
          eventName: ['REMOVE'],
          userIdentity: { type: ['Service'], principalId: ['dynamodb.amazonaws.com'] },
        },
      ]);
    });

    it('bisects failing batches, retries a bounded number of times, and sends what it gives up to a queue', () => {
      const queue = base.stack.tokenKeeper.expiryStreamFailureQueue;
      expect(mappingProps(base)).toMatchObject({
        BisectBatchOnFunctionError: true,
        MaximumRetryAttempts: 3,
        MaximumRecordAgeInSeconds: 3600,
        DestinationConfig: {
          OnFailure: { Destination: { 'Fn::GetAtt': [logicalId(base.stack, queue), 'Arn'] } },
        },
      });
    });

    it('encrypts the failure queue and requires TLS', () => {
      const queue = base.stack.tokenKeeper.expiryStreamFailureQueue;
      const queues = base.template.findResources('AWS::SQS::Queue');
      expect(queues[logicalId(base.stack, queue)]?.Properties).toMatchObject({
        SqsManagedSseEnabled: true,
        MessageRetentionPeriod: 14 * 86_400,
      });
      base.template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [{ Ref: logicalId(base.stack, queue) }],
        PolicyDocument: {
          Statement: [
            Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          ],
        },
      });
    });

    it('creates the mapping only after the ListStreams permission exists (Lambda checks it at creation)', () => {
      const mapping = base.stack.tokenKeeper.expiryStreamMapping;
      const resource = base.template.findResources('AWS::Lambda::EventSourceMapping')[
        logicalId(base.stack, mapping)
      ];
      expect(resource?.DependsOn).toEqual([expect.stringContaining('ExpiryStreamListStreamsPolicy')]);
    });

    it('reserves no concurrency for the consumer (one invocation per stream shard at most)', () => {
      expect(
        functionProps(base, base.stack.tokenKeeper.expiryStreamFunction).ReservedConcurrentExecutions,
      ).toBeUndefined();
    });
  });

  describe('Resource: sweep schedule', () => {
    it('runs the sweep every 15 minutes with a retry policy and a dead-letter queue', () => {
      const tk = base.stack.tokenKeeper;
      base.template.hasResourceProperties('AWS::Events::Rule', {
        ScheduleExpression: 'rate(15 minutes)',
        State: 'ENABLED',
        Targets: [
          Match.objectLike({
            Arn: { 'Fn::GetAtt': [logicalId(base.stack, tk.refreshSweepFunction), 'Arn'] },
            RetryPolicy: { MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 900 },
            DeadLetterConfig: {
              Arn: { 'Fn::GetAtt': [logicalId(base.stack, tk.sweepDeadLetterQueue), 'Arn'] },
            },
          }),
        ],
      });
    });

    it('uses the configured interval', () => {
      custom.template.hasResourceProperties('AWS::Events::Rule', {
        ScheduleExpression: 'rate(5 minutes)',
        Targets: [
          Match.objectLike({ RetryPolicy: { MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 300 } }),
        ],
      });
    });

    it('encrypts the dead-letter queue, requires TLS and lets only this rule send to it', () => {
      const tk = base.stack.tokenKeeper;
      base.template.hasResourceProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true });
      base.template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
            Match.objectLike({
              Effect: 'Allow',
              Action: 'sqs:SendMessage',
              Principal: { Service: 'events.amazonaws.com' },
              Condition: {
                ArnEquals: {
                  'aws:SourceArn': { 'Fn::GetAtt': [logicalId(base.stack, tk.sweepSchedule), 'Arn'] },
                },
              },
            }),
          ]),
        },
      });
    });

    it('reserves no concurrency by default (deploys in a new account) and does not retry a failed sweep', () => {
      const sweep = base.stack.tokenKeeper.refreshSweepFunction;
      expect(functionProps(base, sweep).ReservedConcurrentExecutions).toBeUndefined();
      base.template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
        FunctionName: { Ref: logicalId(base.stack, sweep) },
        MaximumRetryAttempts: 0,
        MaximumEventAgeInSeconds: 900,
      });
      for (const fn of [
        base.stack.tokenKeeper.storeTokensFunction,
        base.stack.tokenKeeper.getAccessTokenFunction,
      ]) {
        expect(functionProps(base, fn).ReservedConcurrentExecutions).toBeUndefined();
      }
    });

    it('reserves no concurrency by default (new accounts cannot reserve any), and what is asked for', () => {
      expect(
        functionProps(base, base.stack.tokenKeeper.refreshSweepFunction).ReservedConcurrentExecutions,
      ).toBe(undefined);
      expect(
        functionProps(custom, custom.stack.tokenKeeper.refreshSweepFunction).ReservedConcurrentExecutions,
      ).toBe(1);
    });

    it('passes the dead-token codes and the breaker threshold to the functions that refresh, not by default', () => {
      const tk = custom.stack.tokenKeeper;
      for (const fn of [tk.getAccessTokenFunction, tk.refreshSweepFunction]) {
        expect(envOf(custom, fn)).toMatchObject({
          IDP_DEAD_TOKEN_CODES: 'invalid_grant,invalid_refresh_token',
          REJECTION_BREAKER_THRESHOLD: '25',
        });
      }
      expect(envOf(base, base.stack.tokenKeeper.getAccessTokenFunction)).not.toHaveProperty(
        'IDP_DEAD_TOKEN_CODES',
      );
      expect(envOf(custom, tk.storeTokensFunction)).not.toHaveProperty('IDP_DEAD_TOKEN_CODES');
    });

    it('refuses a dead-token code that is not an OAuth error code, and a breaker threshold out of range', () => {
      const build = (props: Partial<TokenKeeperProps>) => () =>
        new TokenKeeper(new Stack(testApp(), 'Bad'), 'TokenKeeper', { ...BASE_PROPS, ...props });
      expect(build({ idpDeadTokenCodes: ['Invalid Grant'] })).toThrow(/idpDeadTokenCodes/);
      expect(build({ rejectionBreakerThreshold: 0 })).toThrow(/rejectionBreakerThreshold/);
    });

    it('lets the sweep continue itself only where one sweep runs at a time', () => {
      // Without reserved concurrency, chained sweeps could overlap and multiply the IdP rate.
      expect(envOf(base, base.stack.tokenKeeper.refreshSweepFunction)).not.toHaveProperty('SWEEP_CHAIN_MAX');
      expect(envOf(custom, custom.stack.tokenKeeper.refreshSweepFunction)).toHaveProperty(
        'SWEEP_CHAIN_MAX',
        '12',
      );
      const selfInvoke = (built: typeof base) => {
        const sweepArn = JSON.stringify(
          built.stack.resolve(built.stack.tokenKeeper.refreshSweepFunction.functionArn),
        );
        return Object.values(built.template.findResources('AWS::IAM::Policy')).filter((policy) => {
          const text = JSON.stringify(policy);
          return text.includes('lambda:InvokeFunction') && text.includes(sweepArn);
        });
      };
      expect(selfInvoke(base)).toHaveLength(0);
      expect(selfInvoke(custom)).toHaveLength(1);
    });
  });

  describe('Method: grantGetAccessToken', () => {
    it('grants invoke on exactly the getAccessToken function and sets its name in the environment', () => {
      const tk = base.stack.tokenKeeper;
      expect(roleStatements(base.template, roleLogicalId(base.stack, callers.caller.role!))).toContainEqual({
        effect: 'Allow',
        actions: ['lambda:InvokeFunction'],
        resources: [base.stack.resolve(tk.getAccessTokenFunction.functionArn)],
      });
      expect(roleActions(base.template, roleLogicalId(base.stack, callers.caller.role!))).toEqual([
        'lambda:InvokeFunction',
      ]);
      expect(envOf(base, callers.caller)).toEqual({
        TOKEN_KEEPER_GET_ACCESS_TOKEN_FUNCTION: base.stack.resolve(tk.getAccessTokenFunction.functionName),
      });
    });

    it('grants a principal that has no environment (a role) without failing', () => {
      expect(roleStatements(base.template, roleLogicalId(base.stack, callers.bareRole))).toEqual([
        {
          effect: 'Allow',
          actions: ['lambda:InvokeFunction'],
          resources: [base.stack.resolve(base.stack.tokenKeeper.getAccessTokenFunction.functionArn)],
        },
      ]);
    });
  });

  /** The caller may invoke exactly `fn`, and finds its name in `envName`. */
  const expectInvokeGrant = (caller: lambda.Function, fn: lambda.IFunction, envName: string) => {
    expect(roleStatements(base.template, roleLogicalId(base.stack, caller.role!))).toEqual([
      {
        effect: 'Allow',
        actions: ['lambda:InvokeFunction'],
        resources: [base.stack.resolve(fn.functionArn)],
      },
    ]);
    expect(envOf(base, caller)).toEqual({ [envName]: base.stack.resolve(fn.functionName) });
  };

  describe('Method: grantStoreTokens', () => {
    it('grants invoke on exactly the storeTokens function and sets its name in the environment', () => {
      expectInvokeGrant(
        callers.authBackend,
        base.stack.tokenKeeper.storeTokensFunction,
        'TOKEN_KEEPER_STORE_TOKENS_FUNCTION',
      );
    });
  });

  describe('Method: grantDisconnect', () => {
    it('grants invoke on exactly the disconnect function and sets its name in the environment', () => {
      expectInvokeGrant(
        callers.offboarding,
        base.stack.tokenKeeper.disconnectFunction,
        'TOKEN_KEEPER_DISCONNECT_FUNCTION',
      );
      expect(roleActions(base.template, roleLogicalId(base.stack, callers.offboarding.role!))).toEqual([
        'lambda:InvokeFunction',
      ]);
    });
  });

  describe('Method: grantTokenStatus', () => {
    it('grants invoke on exactly the tokenStatus function and sets its name in the environment', () => {
      expectInvokeGrant(
        callers.statusPage,
        base.stack.tokenKeeper.tokenStatusFunction,
        'TOKEN_KEEPER_TOKEN_STATUS_FUNCTION',
      );
    });
  });

  describe('Method: constructor (validation)', () => {
    const build = (overrides: Partial<TokenKeeperProps>) => () =>
      // No bundling: the cases that pass validation would otherwise run esbuild five times each.
      new TokenKeeper(new Stack(testApp(), 'ValidationTest'), 'TokenKeeper', { ...BASE_PROPS, ...overrides });

    it('throws when the lease does not outlive an IdP call plus 10 s', () => {
      expect(build({ leaseDuration: Duration.seconds(15) })).toThrow(
        /leaseDuration .* must exceed idpTimeout \+ 10 s/,
      );
      expect(build({ idpTimeout: Duration.seconds(20) })).toThrow(/leaseDuration/);
    });

    it('throws when the lease is not longer than twice the IdP timeout (the functions would refuse it)', () => {
      expect(build({ idpTimeout: Duration.seconds(20), leaseDuration: Duration.seconds(35) })).toThrow(
        /twice idpTimeout/,
      );
    });

    it('throws when an IdP call plus the commit cannot fit in getAccessToken', () => {
      expect(build({ idpTimeout: Duration.seconds(25), leaseDuration: Duration.seconds(60) })).toThrow(
        /getAccessToken timeout/,
      );
    });

    it('throws when refreshAhead is not shorter than the refresh-token TTL', () => {
      expect(build({ refreshAhead: Duration.days(14) })).toThrow(
        /refreshAhead must be shorter than refreshTokenTtl/,
      );
      expect(
        build({
          resourceLifetimes: {
            'https://r': { refreshTokenTtl: Duration.days(1), refreshAhead: Duration.days(2) },
          },
        }),
      ).toThrow(/resource https:\/\/r/);
    });

    it('throws when refreshAhead spans fewer than two sweeps', () => {
      expect(build({ refreshAhead: Duration.minutes(20) })).toThrow(/two sweep intervals/);
    });

    it('throws on a sweep interval that is not whole minutes', () => {
      expect(build({ sweepInterval: Duration.seconds(90) })).toThrow(
        /sweepInterval \(whole minutes\) must be an integer/,
      );
    });

    it('throws on shard, concurrency and service-name values the functions would reject', () => {
      expect(build({ dueShards: 0 })).toThrow(/dueShards/);
      expect(build({ dueShards: 65 })).toThrow(/dueShards/);
      expect(build({ sweepConcurrency: 1.5 })).toThrow(/sweepConcurrency/);
      expect(build({ sweepReservedConcurrency: 0 })).toThrow(/sweepReservedConcurrency/);
      expect(build({ serviceName: 'has spaces' })).toThrow(/serviceName/);
    });

    it('throws on an IdP rate limit the functions would reject', () => {
      expect(build({ idpRateLimitPerSecond: 0 })).toThrow(/idpRateLimitPerSecond/);
      expect(build({ idpRateLimitPerSecond: 2.5 })).toThrow(/idpRateLimitPerSecond/);
      expect(build({ idpRateLimitPerSecond: 10_001 })).toThrow(/idpRateLimitPerSecond/);
      expect(build({ idpRateLimitPerSecond: 10_000 })).not.toThrow();
    });

    it('throws on a reauthSoon that is not whole days from 0 to 365', () => {
      expect(build({ reauthSoon: Duration.hours(36) })).toThrow(/reauthSoon/);
      expect(build({ reauthSoon: Duration.days(366) })).toThrow(/reauthSoon/);
      expect(build({ reauthSoon: Duration.days(0) })).not.toThrow();
    });

    it('throws on ID-token settings the functions would reject', () => {
      const verification = { issuer: 'https://userid.security', audience: 'client' };
      expect(
        build({
          identityProvider: { flavor: 'oauth2', tokenEndpoint: 'https://idp.example.com/token' },
          idTokenVerification: verification,
        }),
      ).toThrow(/jwksUrl is required with the oauth2 flavour/);
      expect(build({ idTokenVerification: { ...verification, issuer: 'userid.security' } })).toThrow(
        /issuer must be an https URL/,
      );
      expect(
        build({ idTokenVerification: { ...verification, jwksUrl: 'http://idp.example.com/jwks' } }),
      ).toThrow(/jwksUrl must be an https URL/);
      expect(build({ idTokenVerification: { ...verification, audience: ' ' } })).toThrow(/audience/);
      expect(build({ idTokenVerification: verification })).not.toThrow();
    });

    it('throws on an IdP URL that is not https', () => {
      expect(
        build({ identityProvider: { flavor: 'transmit', baseUrl: 'http://api.transmitsecurity.io' } }),
      ).toThrow(/https/);
      expect(build({ identityProvider: { flavor: 'oauth2', tokenEndpoint: 'not a url' } })).toThrow(/https/);
      expect(
        build({
          identityProvider: {
            flavor: 'oauth2',
            tokenEndpoint: 'https://idp.example.com/token',
            revocationEndpoint: 'http://idp.example.com/revoke',
          },
        }),
      ).toThrow(/https/);
    });
  });
});
