import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { App, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTokenKeeperApp } from '../../lib/app';
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

let outdir: string;
let app: App;
let stack: TokenKeeperStack;

beforeAll(() => {
  // The real thing: bundled functions, the example caller, the plugin bin/app.ts registers.
  outdir = mkdtempSync(join(tmpdir(), 'token-keeper-nag-'));
  app = new App({ outdir, context: { ...cdkJsonContext(), ...CONTEXT } });
  stack = buildTokenKeeperApp(app, { account: '111122223333', region: 'eu-west-1' });
});

afterAll(() => {
  rmSync(outdir, { recursive: true, force: true });
});

describe('Class: AwsSolutionsChecks (over the token-keeper app)', () => {
  describe('Method: validateScope', () => {
    it('reports no finding that is not acknowledged', () => {
      const report = new AwsSolutionsChecks().validateScope(app);
      expect(
        report.violations.map((v) => `${v.ruleName} ${v.violatingResources.map((r) => r.constructPath)}`),
      ).toEqual([]);
      expect(report.success).toBe(true);
    });

    it('reports a finding that nobody acknowledged (the check is live)', () => {
      const probe = testApp({ context: CONTEXT });
      const probeStack = buildTokenKeeperApp(probe, { account: '111122223333', region: 'eu-west-1' });
      probeStack.exampleCaller?.function.addToRolePolicy(
        new iam.PolicyStatement({ actions: ['dynamodb:*'], resources: ['*'] }),
      );
      const rules = new AwsSolutionsChecks().validateScope(probe).violations.map((v) => v.ruleName);
      expect(rules).toEqual(
        expect.arrayContaining(['AwsSolutions-IAM5[Action::dynamodb:*]', 'AwsSolutions-IAM5[Resource::*]']),
      );
    });
  });

  describe('Method: synth (with the plugin bin/app.ts registers)', () => {
    it('synthesizes the app, bundling every function', () => {
      const assembly = app.synth();
      const template = assembly.getStackByName(stack.stackName).template as {
        Resources: Record<string, { Type: string }>;
      };
      const functions = Object.values(template.Resources).filter((r) => r.Type === 'AWS::Lambda::Function');
      expect(functions).toHaveLength(4);
      const bundles = readdirSync(outdir).filter((dir) => existsSync(join(outdir, dir, 'index.mjs')));
      expect(bundles).toHaveLength(4);
    });
  });

  describe('Method: handler (of a bundled function)', () => {
    it('keeps error class names through minification, so callers can map errorType', () => {
      // Prepare: the bundle of getAccessToken, as the synth above staged it
      const assembly = app.synth();
      const template = assembly.getStackByName(stack.stackName).template as {
        Resources: Record<string, { Properties: { Code?: { S3Key?: string } } }>;
      };
      const fnId = stack.getLogicalId(
        stack.tokenKeeper.getAccessTokenFunction.node.defaultChild as Parameters<
          typeof stack.getLogicalId
        >[0],
      );
      const hash = template.Resources[fnId]?.Properties.Code?.S3Key?.replace(/\.zip$/, '');
      const bundle = pathToFileURL(join(outdir, `asset.${hash}`, 'index.mjs')).href;
      const script =
        `const { handler } = await import(${JSON.stringify(bundle)});` +
        "try { await handler({}); } catch (e) { process.stdout.write('RESULT ' + e.name); }";

      // Act: an invalid event fails validation before any AWS call
      const output = execFileSync(process.execPath, ['--no-warnings', '--input-type=module', '-e', script], {
        env: {
          PATH: process.env.PATH,
          AWS_REGION: 'eu-west-1',
          TOKEN_TABLE_NAME: 'tokens',
          TOKEN_KEY_ARN: 'arn:aws:kms:eu-west-1:111122223333:key/test',
          CLIENT_CREDENTIALS_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:test',
        },
        encoding: 'utf8',
      });

      // Assess
      expect(output).toContain('RESULT ValidationError');
    });
  });

  describe('Acknowledgements', () => {
    it('acknowledges only the two findings the design accepts, on the resources they concern', () => {
      expect(acknowledgements(app).map(({ path, id }) => ({ path, id }))).toEqual([
        { path: 'TokenKeeper/TokenKeeper/ClientCredentials', id: 'AwsSolutions-SMG4' },
        { path: 'TokenKeeper/TokenKeeper/SweepDeadLetterQueue', id: 'AwsSolutions-SQS3' },
      ]);
    });

    it('gives each acknowledgement a specific reason and never a whole rule family', () => {
      for (const { id, reason } of acknowledgements(app)) {
        expect(reason.length).toBeGreaterThan(20);
        expect(id).toMatch(/^AwsSolutions-[A-Z]+\d+(\[.+\])?$/);
        expect(id).not.toMatch(/^AwsSolutions-IAM5$/);
      }
    });

    it('writes the warning about the IdP only when no transmitBaseUrl is given', () => {
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
