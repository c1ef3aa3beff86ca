import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { beforeAll, describe, expect, it } from 'vitest';
import { TokenKeeper } from '../../lib/token-keeper';
import type { TokenKeeperStack } from '../../lib/token-keeper-stack';
import { BASE_PROPS, synthStack, testApp } from './support/app';
import {
  type NormalisedStatement,
  roleActions,
  roleBasics,
  roleLogicalId,
  roleStatements,
} from './support/policies';

type Built = ReturnType<typeof synthStack>;

const FUNCTIONS = [
  'storeTokens',
  'getAccessToken',
  'refreshSweep',
  'disconnect',
  'expiryStream',
  'tokenStatus',
] as const;
type FunctionName = (typeof FUNCTIONS)[number];

const IMPORTED_SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:tk/client-AbCdEf';
const IMPORTED_SECRET_KEY_ARN = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';

/** The default stack, with the example caller and one caller per grant method. */
let built: Built;
let granted: {
  reader: lambda.Function;
  backend: lambda.Function;
  offboarding: lambda.Function;
  statusPage: lambda.Function;
  role: iam.Role;
};
/** A construct with an imported secret (its own key) and a bus of the app's. */
let imported: { stack: Stack; template: Template; tk: TokenKeeper };

const fnOf = (tk: TokenKeeper, name: FunctionName): lambda.Function => tk[`${name}Function`];
const roleIdOf = (stack: Stack, fn: lambda.IFunction): string => roleLogicalId(stack, fn.role!);
const logicalId = (stack: Stack, construct: { node: { defaultChild?: unknown } }): string =>
  stack.getLogicalId(construct.node.defaultChild as Parameters<Stack['getLogicalId']>[0]);

/** Every statement of every role in a template, with the role it belongs to. */
function everyGrant(template: Template): { roleId: string; statement: NormalisedStatement }[] {
  return Object.keys(template.findResources('AWS::IAM::Role')).flatMap((roleId) =>
    roleStatements(template, roleId).map((statement) => ({ roleId, statement })),
  );
}

/** The same statements, in any order, and nothing else. */
function expectExactly(actual: NormalisedStatement[], expected: NormalisedStatement[]): void {
  expect(actual).toHaveLength(expected.length);
  expect(actual).toEqual(expect.arrayContaining(expected));
}

beforeAll(() => {
  // One sweep at a time: the sweep may continue itself (its continuation grant is checked here).
  built = synthStack({ exampleCaller: true, sweepReservedConcurrency: 1 }, (stack: TokenKeeperStack) => {
    const inline = (id: string) =>
      new lambda.Function(stack, id, {
        runtime: lambda.Runtime.NODEJS_24_X,
        handler: 'index.handler',
        code: lambda.Code.fromInline('exports.handler = async () => ({});'),
      });
    granted = {
      reader: inline('Reader'),
      backend: inline('AuthBackend'),
      offboarding: inline('Offboarding'),
      statusPage: inline('StatusPage'),
      role: new iam.Role(stack, 'TaskRole', {
        assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      }),
    };
    stack.tokenKeeper.grantGetAccessToken(granted.reader);
    stack.tokenKeeper.grantStoreTokens(granted.backend);
    stack.tokenKeeper.grantDisconnect(granted.offboarding);
    stack.tokenKeeper.grantTokenStatus(granted.statusPage);
    stack.tokenKeeper.grantGetAccessToken(granted.role);
  });

  const stack = new Stack(testApp(), 'ImportedSecret', { env: BASE_PROPS.env });
  const tk = new TokenKeeper(stack, 'TokenKeeper', {
    identityProvider: BASE_PROPS.identityProvider,
    clientCredentialsSecret: secretsmanager.Secret.fromSecretAttributes(stack, 'Secret', {
      secretCompleteArn: IMPORTED_SECRET_ARN,
      encryptionKey: kms.Key.fromKeyArn(stack, 'SecretKey', IMPORTED_SECRET_KEY_ARN),
    }),
    eventBus: events.EventBus.fromEventBusName(stack, 'Bus', 'app-events'),
  });
  imported = { stack, tk, template: Template.fromStack(stack) };
});

describe('Least privilege (issue 5)', () => {
  describe('Resource: function roles', () => {
    /** The statements each function role must hold, exactly. */
    function expectedStatements(name: FunctionName): NormalisedStatement[] {
      const { stack } = built;
      const tk = stack.tokenKeeper;
      const fn = fnOf(tk, name);
      const arn = (value: string) => stack.resolve(value);
      const logs = {
        effect: 'Allow',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [arn(fn.logGroup.logGroupArn)],
      };
      const table = (...actions: string[]) => ({
        effect: 'Allow',
        actions,
        resources: [arn(tk.table.tableArn)],
      });
      const tokenKey = (...actions: string[]) => ({
        effect: 'Allow',
        actions,
        resources: [arn(tk.tokenKey.keyArn)],
        condition: { StringEquals: { 'kms:EncryptionContext:purpose': 'token-keeper' } },
      });
      const storageKey = (...actions: string[]) => ({
        effect: 'Allow',
        actions,
        resources: [arn(tk.storageKey.keyArn)],
        condition: { StringEquals: { 'kms:ViaService': 'dynamodb.eu-west-1.amazonaws.com' } },
      });
      const secret = {
        effect: 'Allow',
        actions: ['secretsmanager:GetSecretValue'],
        resources: [arn(tk.clientCredentialsSecret.secretArn)],
      };
      const putEvents = {
        effect: 'Allow',
        actions: ['events:PutEvents'],
        resources: ['arn:aws:events:eu-west-1:111122223333:event-bus/default'],
        condition: { StringEquals: { 'events:source': 'token-keeper' } },
      };
      const writerStorageKey = storageKey(
        'kms:Decrypt',
        'kms:DescribeKey',
        'kms:Encrypt',
        'kms:GenerateDataKey',
      );
      switch (name) {
        case 'storeTokens':
          // Issue 10 item 6: it reads the previous version with a projection, so it opens no token.
          return [
            logs,
            table('dynamodb:GetItem', 'dynamodb:PutItem'),
            tokenKey('kms:GenerateDataKey'),
            writerStorageKey,
          ];
        case 'getAccessToken':
          return [
            logs,
            table('dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'),
            tokenKey('kms:Decrypt', 'kms:GenerateDataKey'),
            writerStorageKey,
            secret,
            putEvents,
          ];
        case 'refreshSweep':
          return [
            logs,
            table('dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'),
            {
              effect: 'Allow',
              actions: ['dynamodb:Query'],
              resources: [{ 'Fn::Join': ['', [arn(tk.table.tableArn), '/index/byDue']] }],
            },
            tokenKey('kms:Decrypt', 'kms:GenerateDataKey'),
            writerStorageKey,
            secret,
            putEvents,
            // Its asynchronous on-failure destination (issue 10 item 3).
            {
              effect: 'Allow',
              actions: ['sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:SendMessage'],
              resources: [arn(tk.sweepFailureQueue.queueArn)],
            },
            // Its continuation: a sweep that ends with a backlog starts the next (itself only).
            {
              effect: 'Allow',
              actions: ['lambda:InvokeFunction'],
              resources: [arn(tk.refreshSweepFunction.functionArn)],
            },
          ];
        case 'disconnect':
          return [
            logs,
            table('dynamodb:DeleteItem', 'dynamodb:GetItem'),
            tokenKey('kms:Decrypt'),
            writerStorageKey,
            secret,
            putEvents,
          ];
        case 'expiryStream':
          return [
            logs,
            {
              effect: 'Allow',
              actions: ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator'],
              resources: [arn(tk.table.tableStreamArn!)],
            },
            storageKey('kms:Decrypt', 'kms:DescribeKey'),
            putEvents,
            {
              effect: 'Allow',
              actions: ['sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:SendMessage'],
              resources: [arn(tk.expiryStreamFailureQueue.queueArn)],
            },
            { effect: 'Allow', actions: ['dynamodb:ListStreams'], resources: ['*'] },
          ];
        case 'tokenStatus':
          // It reads one record by projection and decrypts nothing: no token key, no secret, no bus.
          return [logs, table('dynamodb:GetItem'), storageKey('kms:Decrypt', 'kms:DescribeKey')];
      }
    }

    it('gives each of the six functions a role of its own, trusted by Lambda only, with no managed policy', () => {
      const roles = FUNCTIONS.map((name) => roleIdOf(built.stack, fnOf(built.stack.tokenKeeper, name)));
      expect(new Set(roles).size).toBe(FUNCTIONS.length);
      for (const role of roles) {
        expect(roleBasics(built.template, role)).toEqual({
          managed: [],
          trustedServices: ['lambda.amazonaws.com'],
        });
      }
    });

    it.each(FUNCTIONS)(
      'gives %s exactly its statements: these actions, on these resources, nothing else',
      (name) => {
        const fn = fnOf(built.stack.tokenKeeper, name);
        expectExactly(roleStatements(built.template, roleIdOf(built.stack, fn)), expectedStatements(name));
      },
    );

    it.each([
      [
        'storeTokens',
        [
          'dynamodb:GetItem',
          'dynamodb:PutItem',
          // kms:Decrypt here is the storage key's, through DynamoDB only (the token key: GenerateDataKey).
          'kms:Decrypt',
          'kms:DescribeKey',
          'kms:Encrypt',
          'kms:GenerateDataKey',
          'logs:CreateLogStream',
          'logs:PutLogEvents',
        ],
      ],
      [
        'getAccessToken',
        [
          'dynamodb:GetItem',
          'dynamodb:PutItem',
          'dynamodb:UpdateItem',
          'events:PutEvents',
          'kms:Decrypt',
          'kms:DescribeKey',
          'kms:Encrypt',
          'kms:GenerateDataKey',
          'logs:CreateLogStream',
          'logs:PutLogEvents',
          'secretsmanager:GetSecretValue',
        ],
      ],
      [
        'refreshSweep',
        [
          'dynamodb:GetItem',
          'dynamodb:PutItem',
          'dynamodb:Query',
          'dynamodb:UpdateItem',
          'events:PutEvents',
          'kms:Decrypt',
          'kms:DescribeKey',
          'kms:Encrypt',
          'kms:GenerateDataKey',
          'lambda:InvokeFunction',
          'logs:CreateLogStream',
          'logs:PutLogEvents',
          'secretsmanager:GetSecretValue',
          'sqs:GetQueueAttributes',
          'sqs:GetQueueUrl',
          'sqs:SendMessage',
        ],
      ],
      [
        'disconnect',
        [
          'dynamodb:DeleteItem',
          'dynamodb:GetItem',
          'events:PutEvents',
          'kms:Decrypt',
          'kms:DescribeKey',
          'kms:Encrypt',
          'kms:GenerateDataKey',
          'logs:CreateLogStream',
          'logs:PutLogEvents',
          'secretsmanager:GetSecretValue',
        ],
      ],
      [
        'expiryStream',
        [
          'dynamodb:DescribeStream',
          'dynamodb:GetRecords',
          'dynamodb:GetShardIterator',
          'dynamodb:ListStreams',
          'events:PutEvents',
          'kms:Decrypt',
          'kms:DescribeKey',
          'logs:CreateLogStream',
          'logs:PutLogEvents',
          'sqs:GetQueueAttributes',
          'sqs:GetQueueUrl',
          'sqs:SendMessage',
        ],
      ],
      [
        'tokenStatus',
        ['dynamodb:GetItem', 'kms:Decrypt', 'kms:DescribeKey', 'logs:CreateLogStream', 'logs:PutLogEvents'],
      ],
    ] as const)('lists the exact action set of %s', (name, actions) => {
      const fn = fnOf(built.stack.tokenKeeper, name);
      expect(roleActions(built.template, roleIdOf(built.stack, fn))).toEqual(actions);
    });

    it('has no wildcard action anywhere, and "*" as a resource only for ListStreams, attached to expiryStream alone', () => {
      const wildcardResources = everyGrant(built.template).filter(({ statement }) =>
        JSON.stringify(statement.resources).includes('*'),
      );
      expect(wildcardResources).toEqual([
        {
          roleId: roleIdOf(built.stack, built.stack.tokenKeeper.expiryStreamFunction),
          statement: { effect: 'Allow', actions: ['dynamodb:ListStreams'], resources: ['*'] },
        },
      ]);
      for (const { statement } of everyGrant(built.template)) {
        expect(statement.actions.filter((action) => action.includes('*'))).toEqual([]);
        expect(statement.effect).toBe('Allow');
      }
      // In a policy of its own, so the cdk-nag acknowledgement covers that one statement.
      const policies = built.template.findResources('AWS::IAM::Policy');
      const listStreams = Object.entries(policies).filter(([id]) =>
        id.includes('ExpiryStreamListStreamsPolicy'),
      );
      expect(listStreams).toHaveLength(1);
      expect(listStreams[0]?.[1].Properties.PolicyDocument.Statement).toHaveLength(1);
    });
  });

  describe('Resource: client-credentials secret', () => {
    const readersOf = (template: Template) =>
      everyGrant(template)
        .filter(({ statement }) => statement.actions.some((a) => a.startsWith('secretsmanager:')))
        .map(({ roleId }) => roleId)
        .sort();

    it('lets only getAccessToken, refreshSweep and disconnect read it: no other role in the stack', () => {
      const tk = built.stack.tokenKeeper;
      expect(readersOf(built.template)).toEqual(
        [tk.getAccessTokenFunction, tk.refreshSweepFunction, tk.disconnectFunction]
          .map((fn) => roleIdOf(built.stack, fn))
          .sort(),
      );
      for (const { statement } of everyGrant(built.template)) {
        if (statement.actions.some((a) => a.startsWith('secretsmanager:'))) {
          expect(statement).toEqual({
            effect: 'Allow',
            actions: ['secretsmanager:GetSecretValue'],
            resources: [built.stack.resolve(tk.clientCredentialsSecret.secretArn)],
          });
        }
      }
    });

    it('gives the secret no resource policy', () => {
      built.template.resourceCountIs('AWS::SecretsManager::ResourcePolicy', 0);
    });

    it("lets the same three, and only they, read an imported secret and decrypt it with the secret's own key", () => {
      const { tk, template, stack } = imported;
      const callers = [tk.getAccessTokenFunction, tk.refreshSweepFunction, tk.disconnectFunction]
        .map((fn) => roleIdOf(stack, fn))
        .sort();
      expect(readersOf(template)).toEqual(callers);
      const secretKeyUsers = everyGrant(template).filter(({ statement }) =>
        statement.resources.includes(IMPORTED_SECRET_KEY_ARN),
      );
      expect(secretKeyUsers.map(({ roleId }) => roleId).sort()).toEqual(callers);
      for (const { statement } of secretKeyUsers) {
        expect(statement.actions).toEqual(['kms:Decrypt']);
        // Issue 10 item 8: through Secrets Manager, for this secret only.
        expect(statement.condition).toEqual({
          StringEquals: {
            'kms:ViaService': 'secretsmanager.eu-west-1.amazonaws.com',
            'kms:EncryptionContext:SecretARN': IMPORTED_SECRET_ARN,
          },
        });
      }
    });
  });

  describe('Resource: token key', () => {
    const tokenKeyGrants = () => {
      const keyId = logicalId(built.stack, built.stack.tokenKeeper.tokenKey);
      return everyGrant(built.template).filter(({ statement }) =>
        JSON.stringify(statement.resources).includes(keyId),
      );
    };

    it('carries the kms:EncryptionContext:purpose condition on every grant of the token key, in every role', () => {
      expect(tokenKeyGrants().length).toBeGreaterThan(0);
      for (const { statement } of tokenKeyGrants()) {
        expect(statement.condition).toEqual({
          StringEquals: { 'kms:EncryptionContext:purpose': 'token-keeper' },
        });
      }
    });

    it('gives the token key to the four functions that seal or open tokens, never to expiryStream, tokenStatus or a caller', () => {
      const tk = built.stack.tokenKeeper;
      const byRole = Object.fromEntries(
        tokenKeyGrants().map(({ roleId, statement }) => [roleId, statement.actions] as const),
      );
      expect(byRole).toEqual({
        [roleIdOf(built.stack, tk.storeTokensFunction)]: ['kms:GenerateDataKey'],
        [roleIdOf(built.stack, tk.getAccessTokenFunction)]: ['kms:Decrypt', 'kms:GenerateDataKey'],
        [roleIdOf(built.stack, tk.refreshSweepFunction)]: ['kms:Decrypt', 'kms:GenerateDataKey'],
        [roleIdOf(built.stack, tk.disconnectFunction)]: ['kms:Decrypt'],
      });
    });

    it('uses the storage key only through DynamoDB in every function role', () => {
      const keyId = logicalId(built.stack, built.stack.tokenKeeper.storageKey);
      const grants = everyGrant(built.template).filter(({ statement }) =>
        JSON.stringify(statement.resources).includes(keyId),
      );
      expect(grants).toHaveLength(FUNCTIONS.length);
      for (const { statement } of grants) {
        expect(statement.condition).toEqual({
          StringEquals: { 'kms:ViaService': 'dynamodb.eu-west-1.amazonaws.com' },
        });
      }
    });
  });

  describe('Resource: invoke', () => {
    it('has no function URL', () => {
      built.template.resourceCountIs('AWS::Lambda::Url', 0);
    });

    it('has one resource-based invoke permission: the sweep schedule, for that rule only', () => {
      const tk = built.stack.tokenKeeper;
      const permissions = Object.values(built.template.findResources('AWS::Lambda::Permission'));
      expect(permissions.map((p) => p.Properties)).toEqual([
        {
          Action: 'lambda:InvokeFunction',
          FunctionName: { 'Fn::GetAtt': [logicalId(built.stack, tk.refreshSweepFunction), 'Arn'] },
          Principal: 'events.amazonaws.com',
          SourceArn: { 'Fn::GetAtt': [logicalId(built.stack, tk.sweepSchedule), 'Arn'] },
        },
      ]);
    });

    it('lets exactly the granted principals invoke, each only the function it was granted, unqualified', () => {
      const tk = built.stack.tokenKeeper;
      const arn = (fn: lambda.IFunction) => built.stack.resolve(fn.functionArn);
      const invokers = everyGrant(built.template)
        .filter(({ statement }) => statement.actions.some((a) => a.startsWith('lambda:')))
        .map(({ roleId, statement }) => [roleId, statement.actions, statement.resources] as const);
      expect(invokers).toHaveLength(7);
      expect(invokers).toEqual(
        expect.arrayContaining([
          [
            roleIdOf(built.stack, granted.reader),
            ['lambda:InvokeFunction'],
            [arn(tk.getAccessTokenFunction)],
          ],
          [roleIdOf(built.stack, granted.backend), ['lambda:InvokeFunction'], [arn(tk.storeTokensFunction)]],
          [
            roleIdOf(built.stack, granted.offboarding),
            ['lambda:InvokeFunction'],
            [arn(tk.disconnectFunction)],
          ],
          [
            roleIdOf(built.stack, granted.statusPage),
            ['lambda:InvokeFunction'],
            [arn(tk.tokenStatusFunction)],
          ],
          [
            roleLogicalId(built.stack, granted.role),
            ['lambda:InvokeFunction'],
            [arn(tk.getAccessTokenFunction)],
          ],
          [
            roleIdOf(built.stack, built.stack.exampleCaller!.function),
            ['lambda:InvokeFunction'],
            [arn(tk.getAccessTokenFunction)],
          ],
        ]),
      );
    });

    it('lets no function of the service invoke any function but the sweep itself (its continuation)', () => {
      const tk = built.stack.tokenKeeper;
      const serviceRoles = new Set(FUNCTIONS.map((name) => roleIdOf(built.stack, fnOf(tk, name))));
      const invoking = everyGrant(built.template)
        .filter(
          ({ roleId, statement }) =>
            serviceRoles.has(roleId) && statement.actions.some((a) => a.startsWith('lambda:')),
        )
        .map(({ roleId, statement }) => [roleId, statement.actions, statement.resources] as const);
      expect(invoking).toEqual([
        [
          roleIdOf(built.stack, tk.refreshSweepFunction),
          ['lambda:InvokeFunction'],
          [built.stack.resolve(tk.refreshSweepFunction.functionArn)],
        ],
      ]);
    });
  });

  describe('Resource: events', () => {
    const publishers = (template: Template) =>
      everyGrant(template).filter(({ statement }) => statement.actions.includes('events:PutEvents'));

    it('lets getAccessToken, refreshSweep, disconnect and expiryStream publish, and storeTokens not', () => {
      const tk = built.stack.tokenKeeper;
      expect(
        publishers(built.template)
          .map(({ roleId }) => roleId)
          .sort(),
      ).toEqual(
        [tk.getAccessTokenFunction, tk.refreshSweepFunction, tk.disconnectFunction, tk.expiryStreamFunction]
          .map((fn) => roleIdOf(built.stack, fn))
          .sort(),
      );
    });

    it('scopes PutEvents to the configured bus and to events whose source is token-keeper', () => {
      const grants = publishers(imported.template);
      expect(grants).toHaveLength(4);
      for (const { statement } of grants) {
        expect(statement).toEqual({
          effect: 'Allow',
          actions: ['events:PutEvents'],
          resources: ['arn:aws:events:eu-west-1:111122223333:event-bus/app-events'],
          condition: { StringEquals: { 'events:source': 'token-keeper' } },
        });
      }
    });
  });
});
