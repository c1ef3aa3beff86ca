import { App, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { beforeAll, describe, expect, it } from 'vitest';
import { TokenKeeper, type TokenKeeperProps } from '../../lib/token-keeper';
import type { TokenKeeperStack } from '../../lib/token-keeper-stack';
import { BASE_PROPS, synthStack } from './support/app';
import { allIamStatements, roleActions, roleBasics, roleLogicalId, roleStatements } from './support/policies';

type Built = ReturnType<typeof synthStack>;

const IMPORTED_SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:tk/client-AbCdEf';

/** Functions granted by the tests, built into the default stack. */
interface Callers {
  caller: lambda.Function;
  authBackend: lambda.Function;
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
      bareRole: new iam.Role(stack, 'BareRole', {
        assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      }),
    };
    stack.tokenKeeper.grantGetAccessToken(callers.caller);
    stack.tokenKeeper.grantStoreTokens(callers.authBackend);
    stack.tokenKeeper.grantGetAccessToken(callers.bareRole);
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
    sweepReservedConcurrency: false,
    refreshAhead: Duration.days(2),
    resourceLifetimes: {
      'https://api.example.com': { refreshTokenTtl: Duration.days(7), refreshAhead: Duration.days(1) },
    },
    idpTimeout: Duration.seconds(3),
    leaseDuration: Duration.seconds(20),
    dueShards: 8,
    sweepConcurrency: 16,
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
    it('creates two customer-managed keys, both rotating, retained by default', () => {
      base.template.resourceCountIs('AWS::KMS::Key', 2);
      for (const key of Object.values(base.template.findResources('AWS::KMS::Key'))) {
        expect(key).toMatchObject({ DeletionPolicy: 'Retain', Properties: { EnableKeyRotation: true } });
      }
    });

    it('lets CloudWatch use the storage key for the alarm topic, and no service use the token key', () => {
      const keys = base.template.findResources('AWS::KMS::Key');
      const statementsOf = (key: { node: { defaultChild?: unknown } }) =>
        JSON.stringify(keys[logicalId(base.stack, key)]?.Properties.KeyPolicy.Statement);
      expect(statementsOf(base.stack.tokenKeeper.storageKey)).toContain('cloudwatch.amazonaws.com');
      expect(statementsOf(base.stack.tokenKeeper.tokenKey)).not.toContain('amazonaws.com');
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
        return [tk.storeTokensFunction, tk.getAccessTokenFunction, tk.refreshSweepFunction].map((fn) => {
          const group = groups[logicalId(built.stack, fn.logGroup)];
          return [group?.Properties.RetentionInDays, group?.DeletionPolicy];
        });
      };
      expect(retentionOf(base)).toEqual([
        [90, 'Retain'],
        [90, 'Retain'],
        [90, 'Retain'],
      ]);
      expect(retentionOf(custom)).toEqual([
        [30, 'Delete'],
        [30, 'Delete'],
        [30, 'Delete'],
      ]);
    });

    it('gives storeTokens the table, key and lifetimes but no IdP settings', () => {
      const tk = base.stack.tokenKeeper;
      expect(envOf(base, tk.storeTokensFunction)).toEqual({
        TOKEN_TABLE_NAME: base.stack.resolve(tk.table.tableName),
        TOKEN_KEY_ARN: base.stack.resolve(tk.tokenKey.keyArn),
        REFRESH_TOKEN_TTL_SECONDS: String(14 * 86_400),
        MAX_ROTATION_SECONDS: String(365 * 86_400),
        REFRESH_AHEAD_SECONDS: String(3 * 86_400),
        DUE_SHARDS: '4',
        METRICS_NAMESPACE: 'TokenKeeper',
        POWERTOOLS_SERVICE_NAME: 'token-keeper',
        LOG_LEVEL: 'INFO',
        NODE_OPTIONS: '--enable-source-maps',
      });
    });

    it('gives getAccessToken the IdP, secret, timeout and lease settings as well', () => {
      const tk = base.stack.tokenKeeper;
      expect(envOf(base, tk.getAccessTokenFunction)).toEqual({
        ...envOf(base, tk.storeTokensFunction),
        IDP_FLAVOR: 'transmit',
        TRANSMIT_BASE_URL: 'https://api.transmitsecurity.io',
        CLIENT_CREDENTIALS_SECRET_ARN: base.stack.resolve(tk.clientCredentialsSecret.secretArn),
        IDP_TIMEOUT_MS: '5000',
        LEASE_SECONDS: '30',
      });
    });

    it('gives refreshSweep what getAccessToken has plus its concurrency', () => {
      const tk = base.stack.tokenKeeper;
      expect(envOf(base, tk.refreshSweepFunction)).toEqual({
        ...envOf(base, tk.getAccessTokenFunction),
        SWEEP_CONCURRENCY: '8',
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
        LOG_LEVEL: 'DEBUG',
        EVENT_BUS_NAME: 'app-events',
      });
      expect(env).not.toHaveProperty('TRANSMIT_BASE_URL');
      expect(JSON.parse(String(env.RESOURCE_LIFETIMES))).toEqual({
        'https://api.example.com': { refreshTokenTtlSeconds: 7 * 86_400, refreshAheadSeconds: 86_400 },
      });
    });

    it('has no function URL and no invoke permission except the schedule', () => {
      base.template.resourceCountIs('AWS::Lambda::Url', 0);
      base.template.resourceCountIs('AWS::Lambda::Permission', 1);
      base.template.hasResourceProperties('AWS::Lambda::Permission', {
        Principal: 'events.amazonaws.com',
        FunctionName: {
          'Fn::GetAtt': [logicalId(base.stack, base.stack.tokenKeeper.refreshSweepFunction), 'Arn'],
        },
      });
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

    it('bounds the sweep to one concurrent execution and does not retry a failed sweep', () => {
      const sweep = base.stack.tokenKeeper.refreshSweepFunction;
      expect(functionProps(base, sweep).ReservedConcurrentExecutions).toBe(1);
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

    it('reserves no concurrency when sweepReservedConcurrency is false', () => {
      expect(
        functionProps(custom, custom.stack.tokenKeeper.refreshSweepFunction).ReservedConcurrentExecutions,
      ).toBe(undefined);
    });
  });

  describe('Resource: roles', () => {
    const tokenKeyStatement = (built: Built) => ({
      effect: 'Allow',
      actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
      resources: [built.stack.resolve(built.stack.tokenKeeper.tokenKey.keyArn)],
      condition: { StringEquals: { 'kms:EncryptionContext:purpose': 'token-keeper' } },
    });
    const storageKeyStatement = (built: Built) => ({
      effect: 'Allow',
      actions: ['kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:GenerateDataKey'],
      resources: [built.stack.resolve(built.stack.tokenKeeper.storageKey.keyArn)],
      condition: { StringEquals: { 'kms:ViaService': 'dynamodb.eu-west-1.amazonaws.com' } },
    });
    const logsStatement = (built: Built, fn: lambda.IFunction) => {
      const group = (fn as lambda.Function).logGroup;
      return {
        effect: 'Allow',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [built.stack.resolve(group.logGroupArn)],
      };
    };
    const tableStatement = (built: Built) => ({
      effect: 'Allow',
      actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
      resources: [built.stack.resolve(built.stack.tokenKeeper.table.tableArn)],
    });
    const secretStatement = (built: Built) => ({
      effect: 'Allow',
      actions: ['secretsmanager:GetSecretValue'],
      resources: [built.stack.resolve(built.stack.tokenKeeper.clientCredentialsSecret.secretArn)],
    });
    const statementsOf = (built: Built, fn: lambda.IFunction) =>
      roleStatements(built.template, roleLogicalId(built.stack, fn.role!));

    it('gives each function its own role, trusted by Lambda only, with no managed policy', () => {
      const tk = base.stack.tokenKeeper;
      const roles = [tk.storeTokensFunction, tk.getAccessTokenFunction, tk.refreshSweepFunction].map((fn) =>
        roleLogicalId(base.stack, fn.role!),
      );
      expect(new Set(roles).size).toBe(3);
      for (const role of roles) {
        expect(roleBasics(base.template, role)).toEqual({
          managed: [],
          trustedServices: ['lambda.amazonaws.com'],
        });
      }
    });

    it('lets storeTokens write records and seal tokens, nothing else', () => {
      const fn = base.stack.tokenKeeper.storeTokensFunction;
      expect(statementsOf(base, fn)).toEqual([
        logsStatement(base, fn),
        tableStatement(base),
        tokenKeyStatement(base),
        storageKeyStatement(base),
      ]);
    });

    it('lets getAccessToken read, lease and commit records, use the token key and read the secret', () => {
      const fn = base.stack.tokenKeeper.getAccessTokenFunction;
      expect(statementsOf(base, fn)).toEqual([
        logsStatement(base, fn),
        tableStatement(base),
        tokenKeyStatement(base),
        storageKeyStatement(base),
        secretStatement(base),
      ]);
    });

    it('lets refreshSweep also query the due index, and only the index', () => {
      const fn = base.stack.tokenKeeper.refreshSweepFunction;
      expect(statementsOf(base, fn)).toEqual([
        logsStatement(base, fn),
        tableStatement(base),
        {
          effect: 'Allow',
          actions: ['dynamodb:Query'],
          resources: [
            { 'Fn::Join': ['', [base.stack.resolve(base.stack.tokenKeeper.table.tableArn), '/index/byDue']] },
          ],
        },
        tokenKeyStatement(base),
        storageKeyStatement(base),
        secretStatement(base),
      ]);
    });

    it('lists the exact actions of each role', () => {
      const actionsOf = (fn: lambda.IFunction) =>
        roleActions(base.template, roleLogicalId(base.stack, fn.role!));
      const common = [
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:UpdateItem',
        'kms:Decrypt',
        'kms:DescribeKey',
        'kms:Encrypt',
        'kms:GenerateDataKey',
        'logs:CreateLogStream',
        'logs:PutLogEvents',
      ];
      const tk = base.stack.tokenKeeper;
      expect(actionsOf(tk.storeTokensFunction)).toEqual(common);
      expect(actionsOf(tk.getAccessTokenFunction)).toEqual(
        [...common, 'secretsmanager:GetSecretValue'].sort(),
      );
      expect(actionsOf(tk.refreshSweepFunction)).toEqual(
        [...common, 'dynamodb:Query', 'secretsmanager:GetSecretValue'].sort(),
      );
    });

    it('grants the imported secret and the event bus to the refreshing functions only', () => {
      const tk = custom.stack.tokenKeeper;
      const putEvents = {
        effect: 'Allow',
        actions: ['events:PutEvents'],
        resources: ['arn:aws:events:eu-west-1:111122223333:event-bus/app-events'],
      };
      for (const fn of [tk.getAccessTokenFunction, tk.refreshSweepFunction]) {
        expect(statementsOf(custom, fn)).toContainEqual(putEvents);
        expect(statementsOf(custom, fn)).toContainEqual({
          effect: 'Allow',
          actions: ['secretsmanager:GetSecretValue'],
          resources: [IMPORTED_SECRET_ARN],
        });
      }
      expect(statementsOf(custom, tk.storeTokensFunction)).not.toContainEqual(putEvents);
    });

    it('has no wildcard action or resource in any IAM statement', () => {
      for (const statement of allIamStatements(base.template)) {
        expect(statement.actions.filter((a) => a.includes('*'))).toEqual([]);
        expect(JSON.stringify(statement.resources)).not.toContain('*');
      }
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

  describe('Method: grantStoreTokens', () => {
    it('grants invoke on exactly the storeTokens function and sets its name in the environment', () => {
      const tk = base.stack.tokenKeeper;
      expect(roleStatements(base.template, roleLogicalId(base.stack, callers.authBackend.role!))).toEqual([
        {
          effect: 'Allow',
          actions: ['lambda:InvokeFunction'],
          resources: [base.stack.resolve(tk.storeTokensFunction.functionArn)],
        },
      ]);
      expect(envOf(base, callers.authBackend)).toEqual({
        TOKEN_KEEPER_STORE_TOKENS_FUNCTION: base.stack.resolve(tk.storeTokensFunction.functionName),
      });
    });
  });

  describe('Method: constructor (validation)', () => {
    const build = (overrides: Partial<TokenKeeperProps>) => () =>
      new TokenKeeper(new Stack(new App(), 'ValidationTest'), 'TokenKeeper', { ...BASE_PROPS, ...overrides });

    it('throws when the lease does not outlive an IdP call plus 10 s', () => {
      expect(build({ leaseDuration: Duration.seconds(15) })).toThrow(
        /leaseDuration .* must exceed idpTimeout \+ 10 s/,
      );
      expect(build({ idpTimeout: Duration.seconds(20) })).toThrow(/leaseDuration/);
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
      expect(build({ sweepInterval: Duration.seconds(90) })).toThrow(/whole number of minutes/);
    });

    it('throws on shard, concurrency and service-name values the functions would reject', () => {
      expect(build({ dueShards: 0 })).toThrow(/dueShards/);
      expect(build({ dueShards: 65 })).toThrow(/dueShards/);
      expect(build({ sweepConcurrency: 1.5 })).toThrow(/sweepConcurrency/);
      expect(build({ sweepReservedConcurrency: 0 })).toThrow(/sweepReservedConcurrency/);
      expect(build({ serviceName: 'has spaces' })).toThrow(/serviceName/);
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
