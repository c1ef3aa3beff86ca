import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { App, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTokenKeeperApp } from '../../lib/app';
import type { TokenKeeper } from '../../lib/token-keeper';
import type { TokenKeeperStack } from '../../lib/token-keeper-stack';
import { cdkJsonContext, testApp } from './support/app';

/** Every `Validations.acknowledge` in the tree: where, which rule, why. */
function acknowledgements(root: IConstruct): { path: string; id: string; reason: string }[] {
  return root.node.findAll().flatMap((construct) =>
    construct.node.metadata
      .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((entry) =>
        Object.entries(entry.data as Record<string, string>).map(([id, reason]) => ({
          path: construct.node.path,
          id: id.replace(/^annotation::/i, ''),
          reason,
        })),
      ),
  );
}

const CONTEXT = {
  transmitBaseUrl: 'https://api.eu.transmitsecurity.io',
  alarmEmail: 'ops@example.com',
  exampleCaller: 'true',
};

/** Marks the handler's result in the child's output, after its log lines. */
const RESULT = '@@RESULT@@ ';

/** Bundling seven functions with esbuild takes a while on a loaded two-core machine. */
const SYNTH_TIMEOUT_MS = 240_000;

interface SynthTemplate {
  Resources: Record<
    string,
    {
      Type: string;
      Properties: { Code?: { S3Key?: string }; Environment?: { Variables: Record<string, unknown> } };
    }
  >;
}

let outdir: string;
let app: App;
let stack: TokenKeeperStack;
let template: SynthTemplate;

beforeAll(() => {
  // The real thing: bundled functions, the example caller, the plugin bin/app.ts registers.
  outdir = mkdtempSync(join(tmpdir(), 'token-keeper-nag-'));
  app = new App({ outdir, context: { ...cdkJsonContext(), ...CONTEXT } });
  stack = buildTokenKeeperApp(app, { account: '111122223333', region: 'eu-west-1' });
  template = app.synth().getStackByName(stack.stackName).template as SynthTemplate;
}, SYNTH_TIMEOUT_MS);

/**
 * Runs the staged bundle of one function with the environment the template gives it (references
 * replaced by plausible values) and returns what its handler returned or the name of what it threw.
 */
function runBundle(field: keyof TokenKeeper & `${string}Function`, event: unknown): string {
  const fn = stack.tokenKeeper[field] as { node: { defaultChild?: unknown } };
  const resource =
    template.Resources[stack.getLogicalId(fn.node.defaultChild as Parameters<typeof stack.getLogicalId>[0])];
  const hash = resource?.Properties.Code?.S3Key?.replace(/\.zip$/, '');
  const bundle = pathToFileURL(join(outdir, `asset.${hash}`, 'index.mjs')).href;
  const placeholders: Record<string, string> = {
    TOKEN_TABLE_NAME: 'tokens',
    TOKEN_KEY_ARN: 'arn:aws:kms:eu-west-1:111122223333:key/test',
    CLIENT_CREDENTIALS_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:test-AbCdEf',
  };
  const environment = Object.fromEntries(
    Object.entries(resource?.Properties.Environment?.Variables ?? {}).map(([key, value]) => [
      key,
      typeof value === 'string' ? value : (placeholders[key] ?? `unresolved-${key}`),
    ]),
  );
  const script =
    `const { handler } = await import(${JSON.stringify(bundle)});` +
    `try { const r = await handler(${JSON.stringify(event)}); process.stdout.write(${JSON.stringify(RESULT)} + JSON.stringify(r)); }` +
    `catch (e) { process.stdout.write(${JSON.stringify(RESULT)} + e.name); }`;
  const output = execFileSync(process.execPath, ['--no-warnings', '--input-type=module', '-e', script], {
    env: {
      PATH: process.env.PATH,
      AWS_REGION: 'eu-west-1',
      // Nothing may reach AWS: any call fails at once on a closed local port.
      AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      ...environment,
    },
    encoding: 'utf8',
  });
  // The handler's own log lines come first; the result is what follows the last marker.
  return output.slice(output.lastIndexOf(RESULT) + RESULT.length);
}

afterAll(() => {
  rmSync(outdir, { recursive: true, force: true });
});

describe('Classes: AwsSolutionsChecks and ServerlessChecks (over the token-keeper app)', () => {
  describe('Method: validateScope', () => {
    it.each([
      ['AwsSolutions', () => new AwsSolutionsChecks()],
      ['Serverless', () => new ServerlessChecks()],
    ] as const)('reports no %s finding that is not acknowledged', (_pack, pack) => {
      const report = pack().validateScope(app);
      expect(
        report.violations.map((v) => `${v.ruleName} ${v.violatingResources.map((r) => r.constructPath)}`),
      ).toEqual([]);
      expect(report.success).toBe(true);
    });

    it('reports a finding that nobody acknowledged (the check is live)', {
      timeout: SYNTH_TIMEOUT_MS,
    }, () => {
      const probe = testApp({ context: CONTEXT });
      const probeStack = buildTokenKeeperApp(probe, { account: '111122223333', region: 'eu-west-1' });
      probeStack.exampleCaller?.function.addToRolePolicy(
        new iam.PolicyStatement({ actions: ['dynamodb:*'], resources: ['*'] }),
      );
      new lambda.Function(probeStack, 'Unacknowledged', {
        runtime: lambda.Runtime.NODEJS_24_X,
        handler: 'index.handler',
        code: lambda.Code.fromInline('export const handler = async () => 1;'),
      });
      const rules = new AwsSolutionsChecks().validateScope(probe).violations.map((v) => v.ruleName);
      expect(rules).toEqual(
        expect.arrayContaining(['AwsSolutions-IAM5[Action::dynamodb:*]', 'AwsSolutions-IAM5[Resource::*]']),
      );
      // The Serverless pack is live too: a function that nobody acknowledged is reported.
      const serverless = new ServerlessChecks().validateScope(probe).violations.map((v) => v.ruleName);
      expect(serverless).toEqual(
        expect.arrayContaining(['Serverless-LambdaDLQ', 'Serverless-LambdaTracing']),
      );
    });
  });

  describe('Method: synth (with the plugin bin/app.ts registers)', () => {
    it('synthesizes the app, bundling every function', () => {
      const functions = Object.values(template.Resources).filter((r) => r.Type === 'AWS::Lambda::Function');
      expect(functions).toHaveLength(7);
      const bundles = readdirSync(outdir).filter((dir) => existsSync(join(outdir, dir, 'index.mjs')));
      expect(bundles).toHaveLength(7);
    });
  });

  describe('Method: handler (of a bundled function, with the environment the template gives it)', () => {
    it.each([
      'storeTokensFunction',
      'getAccessTokenFunction',
      'disconnectFunction',
      'tokenStatusFunction',
    ] as const)(
      'starts %s and keeps error class names through minification (callers map errorType)',
      (field) => {
        // Act: an invalid event fails validation, after the configuration loaded, before any AWS call
        const result = runBundle(field, {});

        // Assess
        expect(result).toBe('ValidationError');
      },
    );

    it('starts expiryStream with only the settings it is given, and ignores a removal that is not a TTL one', () => {
      // Prepare: a delete by a caller (disconnect), which the filter would drop; no AWS call follows
      const event = {
        Records: [
          {
            eventName: 'REMOVE',
            userIdentity: { type: 'AssumedRole', principalId: 'AROAEXAMPLE:disconnect' },
            dynamodb: {
              OldImage: {
                pk: { S: 'u#user-1' },
                sk: { S: 'r#default' },
                status: { S: 'ACTIVE' },
                refreshExpiresAt: { N: '1700000000' },
                rotationDeadline: { N: '1800000000' },
              },
            },
          },
        ],
      };

      // Act
      const result = runBundle('expiryStreamFunction', event);

      // Assess
      expect(JSON.parse(result)).toEqual({ tokensExpired: 0, deadlineReached: 0, ignored: 1 });
    });
  });

  describe('Acknowledgements', () => {
    it('acknowledges only the findings the design accepts, on the resources they concern', () => {
      const tk = 'TokenKeeper/TokenKeeper';
      const functions = [
        'StoreTokens',
        'GetAccessToken',
        'Disconnect',
        'RefreshSweep',
        'ExpiryStream',
        'TokenStatus',
      ];
      const queues = ['SweepDeadLetterQueue', 'SweepFailureQueue', 'ExpiryStreamFailureQueue'];
      const byPath = (a: { path: string; id: string }, b: { path: string; id: string }) =>
        a.path.localeCompare(b.path) || a.id.localeCompare(b.id);
      expect(
        acknowledgements(app)
          .map(({ path, id }) => ({ path, id }))
          .sort(byPath),
      ).toEqual(
        [
          { path: `${tk}/ClientCredentials`, id: 'AwsSolutions-SMG4' },
          ...['Critical', 'Warning'].map((severity) => ({
            path: `${tk}/Monitoring/${severity}AlarmTopic/ops@example.com`,
            id: 'Serverless-SNSRedrivePolicy',
          })),
          { path: `${tk}/ExpiryStreamListStreamsPolicy`, id: 'AwsSolutions-IAM5[Resource::*]' },
          ...queues.flatMap((q) => [
            { path: `${tk}/${q}`, id: 'AwsSolutions-SQS3' },
            { path: `${tk}/${q}`, id: 'Serverless-SQSRedrivePolicy' },
          ]),
          ...[...functions.map((f) => `${tk}/${f}`), 'TokenKeeper/ExampleCaller/Function'].flatMap((path) => [
            { path, id: 'Serverless-LambdaDLQ' },
            { path, id: 'Serverless-LambdaTracing' },
          ]),
        ].sort(byPath),
      );
    });

    it('acknowledges the "*" resource on a policy holding nothing but ListStreams', () => {
      const policy = stack.node
        .findAll()
        .find((c) => c.node.path.endsWith('ExpiryStreamListStreamsPolicy')) as iam.Policy | undefined;
      expect(policy?.document.toJSON()).toEqual({
        Version: '2012-10-17',
        Statement: [{ Action: 'dynamodb:ListStreams', Effect: 'Allow', Resource: '*' }],
      });
    });

    it('gives each acknowledgement a specific reason and never a whole rule family', () => {
      for (const { id, reason } of acknowledgements(app)) {
        expect(reason.length).toBeGreaterThan(20);
        expect(id).toMatch(/^(AwsSolutions-[A-Z]+\d+(\[.+\])?|Serverless-[A-Za-z]+)$/);
        expect(id).not.toMatch(/^AwsSolutions-IAM5$/);
      }
    });

    it('writes the warning about the IdP only when no transmitBaseUrl is given', {
      timeout: SYNTH_TIMEOUT_MS,
    }, () => {
      const warned = testApp();
      const warnedStack = buildTokenKeeperApp(warned);
      const warnings = warnedStack.node.metadata
        .filter((m) => m.type === 'aws:cdk:warning')
        .map((m) => String(m.data));
      expect(warnings.some((w) => w.includes('Transmit sandbox'))).toBe(true);
      expect(stack.node.metadata.filter((m) => m.type === 'aws:cdk:warning')).toEqual([]);
    });
  });
});
