import { execFile } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, relative } from 'node:path';
import { promisify } from 'node:util';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FUNCTION_ENTRIES, PROJECT_ROOT } from '../../lib/function-defaults';
import { FUNCTION_BUNDLES, TokenKeeper } from '../../lib/token-keeper';

const run = promisify(execFile);

/** `npm pack` builds the package (prepack) before it packs; two installs follow. */
const SETUP_TIMEOUT_MS = 300_000;
const STEP_TIMEOUT_MS = 120_000;

const INSTALL = ['install', '--prefer-offline', '--no-audit', '--no-fund'];

const OWN = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as {
  devDependencies: Record<string, string>;
};
const pinned = (name: string) => `${name}@${OWN.devDependencies[name]}`;

/** The construct's functions, by the id `addFunction` gives them. */
const SERVICE_FUNCTIONS = {
  StoreTokens: FUNCTION_BUNDLES.storeTokens,
  GetAccessToken: FUNCTION_BUNDLES.getAccessToken,
  RefreshSweep: FUNCTION_BUNDLES.refreshSweep,
  Disconnect: FUNCTION_BUNDLES.disconnect,
  ExpiryStream: FUNCTION_BUNDLES.expiryStream,
  TokenStatus: FUNCTION_BUNDLES.tokenStatus,
} as const;

/** A CDK app as a consumer writes it: plain Node.js, the package, aws-cdk-lib, constructs. */
const CDK_APP = `
import { App, Stack } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { TokenKeeper } from 'token-keeper';
import { TokenKeeper as TokenKeeperFromCdk } from 'token-keeper/cdk';

const app = new App({ outdir: process.argv[2] });
const stack = new Stack(app, 'Consumer', { env: { account: '111122223333', region: 'eu-west-1' } });
const keeper = new TokenKeeper(stack, 'TokenKeeper', {
  identityProvider: { flavor: 'transmit', baseUrl: 'https://api.transmitsecurity.io' },
});
const caller = new lambda.Function(stack, 'Caller', {
  runtime: lambda.Runtime.NODEJS_24_X,
  handler: 'index.handler',
  code: lambda.Code.fromInline('export const handler = async () => 1;'),
});
keeper.grantGetAccessToken(caller);
keeper.grantTokenStatus(caller);
app.synth();

let esbuild = 'absent';
try {
  await import('esbuild');
  esbuild = 'importable';
} catch {}
process.stdout.write(JSON.stringify({ sameConstruct: TokenKeeperFromCdk === TokenKeeper, esbuild }));
`;

/** What CDK_APP builds, from this repository's sources (no bundling: the code is compared apart). */
function synthesizeFromSources(): Record<string, unknown> {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new Stack(app, 'Consumer', { env: { account: '111122223333', region: 'eu-west-1' } });
  const keeper = new TokenKeeper(stack, 'TokenKeeper', {
    identityProvider: { flavor: 'transmit', baseUrl: 'https://api.transmitsecurity.io' },
  });
  const caller = new lambda.Function(stack, 'Caller', {
    runtime: lambda.Runtime.NODEJS_24_X,
    handler: 'index.handler',
    code: lambda.Code.fromInline('export const handler = async () => 1;'),
  });
  keeper.grantGetAccessToken(caller);
  keeper.grantTokenStatus(caller);
  return Template.fromStack(stack).toJSON();
}

/** A template with its asset hashes and construct metadata left out. */
function withoutAssets(template: Record<string, unknown>): string {
  const resources = { ...(template.Resources as Record<string, { Metadata?: unknown }>) };
  delete resources.CDKMetadata;
  const bare = Object.fromEntries(
    Object.entries(resources).map(([id, { Metadata: _metadata, ...resource }]) => [id, resource]),
  );
  return JSON.stringify({ ...template, Resources: bare }, null, 1).replace(/[0-9a-f]{64}/g, '<asset hash>');
}

/** The same construct from TypeScript: the declarations must be real types, not `any`. */
const CDK_APP_TYPES = `
import type { Stack } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { TokenKeeper, type TokenKeeperProps } from 'token-keeper';
import { TokenKeeperStack } from 'token-keeper/cdk';

export function addTokenKeeper(stack: Stack, caller: lambda.Function): lambda.Function {
  const props: TokenKeeperProps = {
    identityProvider: { flavor: 'oauth2', tokenEndpoint: 'https://idp.example.com/token' },
  };
  const keeper = new TokenKeeper(stack, 'TokenKeeper', props);
  keeper.grantGetAccessToken(caller);
  keeper.grantTokenStatus(caller);
  return keeper.tokenStatusFunction;
}
export const stackClass: typeof Stack = TokenKeeperStack;
// @ts-expect-error the identity provider is required
export const incomplete: TokenKeeperProps = {};
`;

/** A caller Lambda in TypeScript that imports the client. */
const CLIENT_CALLER = `
import {
  createTokenKeeperClient,
  getAccessToken,
  getTokenStatus,
  ReauthRequiredError,
  TOKEN_STATUS_FUNCTION_ENV,
  type TokenStatus,
} from 'token-keeper/client';

export const handler = async (event: { userId: string }): Promise<string> => {
  const status: TokenStatus = await getTokenStatus({ userId: event.userId });
  try {
    const token = await getAccessToken({ userId: event.userId, minValiditySeconds: 120 });
    const header: string = \`\${token.tokenType} \${token.accessToken.reveal()}\`;
    return \`\${status.offlineAccessUntil} \${header.length} \${TOKEN_STATUS_FUNCTION_ENV}\`;
  } catch (error) {
    if (error instanceof ReauthRequiredError) return error.reason;
    throw error;
  }
};

createTokenKeeperClient({ functionName: 'get-access-token', cacheSize: 10 }).invalidate({ userId: 'u' });

// @ts-expect-error userId is required
await getAccessToken({ user: 'user-1' });
`;

/** Strict, and Node.js's own ESM resolution: what a consumer's declarations must survive. */
function tsconfig(file: string, options: { types: string[]; skipLibCheck: boolean }): string {
  return JSON.stringify({
    compilerOptions: {
      strict: true,
      target: 'ES2022',
      module: 'nodenext',
      moduleResolution: 'nodenext',
      noEmit: true,
      ...options,
    },
    files: [file],
  });
}

/** The environment of a child, without what `npm test` says about this project. */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^npm_(package_|lifecycle_|command$|config_local_prefix$)|^INIT_CWD$/.test(key)) continue;
    env[key] = value;
  }
  return env;
}

/** PATH without any node_modules/.bin, so the scratch app cannot reach this project's tools. */
function pathWithoutProjectBins(): string {
  return (process.env.PATH ?? '')
    .split(delimiter)
    .filter((dir) => !dir.includes(`node_modules${'/'}.bin`))
    .join(delimiter);
}

async function npm(args: string[], cwd: string): Promise<string> {
  const { stdout } = await run('npm', args, { cwd, env: childEnv(), maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

interface TscResult {
  readonly code: number;
  readonly output: string;
}

async function tsc(project: string): Promise<TscResult> {
  try {
    await run(join(PROJECT_ROOT, 'node_modules', '.bin', 'tsc'), ['-p', project], { env: childEnv() });
    return { code: 0, output: '' };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? 1, output: `${failed.stdout ?? ''}${failed.stderr ?? ''}` };
  }
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? filesUnder(join(dir, entry.name)) : [join(dir, entry.name)],
  );
}

/** The modules a bundled file imports (static and dynamic). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found = [
    ...text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s*["']([^"']+)["']/gm),
    ...text.matchAll(/^\s*import\s*["']([^"']+)["']/gm),
    ...text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g),
  ].map((match) => match[1] as string);
  return [...new Set(found)].sort();
}

interface Resource {
  Type: string;
  Properties: Record<string, unknown>;
}

interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
}

interface Synthesized {
  readonly outdir: string;
  readonly template: { Resources: Record<string, Resource> };
  readonly printed: { sameConstruct: boolean; esbuild: string };
}

let work: string;
let appDir: string;
let clientDir: string;
let installed: string;
/** Started once the scratch projects are installed, side by side; each test awaits its own. */
let synthesized: Promise<Synthesized>;
let typeChecked: { app: Promise<TscResult>; client: Promise<TscResult> };

/** Runs the scratch app with plain node and a PATH without this project's tools. */
async function synthesize(): Promise<Synthesized> {
  const outdir = join(appDir, 'cdk.out');
  const { stdout } = await run(process.execPath, ['app.mjs', outdir], {
    cwd: appDir,
    env: { ...childEnv(), PATH: pathWithoutProjectBins(), CDK_DISABLE_CLI_TELEMETRY: 'true' },
  });
  return {
    outdir,
    printed: JSON.parse(stdout),
    template: JSON.parse(readFileSync(join(outdir, 'Consumer.template.json'), 'utf8')),
  };
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'token-keeper-pack-'));
  await npm(['pack', '--pack-destination', work], PROJECT_ROOT);
  const tarball = readdirSync(work).find((file) => file.endsWith('.tgz'));
  if (tarball === undefined) throw new Error('npm pack wrote no tarball');

  appDir = join(work, 'cdk-app');
  clientDir = join(work, 'caller');
  for (const [dir, name] of [
    [appDir, 'scratch-cdk-app'],
    [clientDir, 'scratch-caller'],
  ] as const) {
    mkdirSync(dir);
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, private: true, type: 'module' }));
  }
  writeFileSync(join(appDir, 'app.mjs'), CDK_APP);
  writeFileSync(join(appDir, 'stack.ts'), CDK_APP_TYPES);
  writeFileSync(join(appDir, 'tsconfig.json'), tsconfig('stack.ts', { types: [], skipLibCheck: true }));
  writeFileSync(join(clientDir, 'caller.ts'), CLIENT_CALLER);
  writeFileSync(
    join(clientDir, 'tsconfig.json'),
    tsconfig('caller.ts', { types: ['node'], skipLibCheck: false }),
  );

  const packed = join(work, tarball);
  await Promise.all([
    npm([...INSTALL, packed, pinned('aws-cdk-lib'), pinned('constructs')], appDir),
    npm([...INSTALL, packed, pinned('@types/node')], clientDir),
  ]);
  installed = join(appDir, 'node_modules', 'token-keeper');
  synthesized = synthesize();
  // Awaited by the tests; handled here so that a failure is reported by them, not as unhandled.
  synthesized.catch(() => undefined);
  typeChecked = { app: tsc(join(appDir, 'tsconfig.json')), client: tsc(join(clientDir, 'tsconfig.json')) };
}, SETUP_TIMEOUT_MS);

afterAll(() => {
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

describe('Package: token-keeper (npm pack, installed into scratch projects)', () => {
  it('ships the built constructs, client, prebuilt functions and declarations, and no sources', () => {
    // Act
    const files = filesUnder(installed).map((file) => relative(installed, file));

    // Assess
    for (const name of Object.keys(FUNCTION_ENTRIES)) {
      expect(files).toContain(join('dist', 'functions', name, 'index.mjs'));
    }
    expect(files).toEqual(
      expect.arrayContaining([
        join('dist', 'cdk', 'index.js'),
        join('dist', 'client', 'index.js'),
        join('dist', 'types', 'lib', 'index.d.ts'),
        join('dist', 'types', 'functions', 'client', 'index.d.ts'),
        'package.json',
        'README.md',
      ]),
    );
    expect(files.filter((file) => !file.startsWith('dist/')).sort()).toEqual(['README.md', 'package.json']);
    expect(files.filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'))).toEqual([]);
    const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8'));
    expect(manifest.private).toBeUndefined();
    expect(manifest.license).toBe('Apache-2.0');
    expect(Object.keys(manifest.dependencies)).toEqual(['@aws-sdk/client-lambda']);
    expect(Object.keys(manifest.peerDependencies).sort()).toEqual(['aws-cdk-lib', 'constructs']);
  });

  it('imports nothing at run time but aws-cdk-lib and constructs (constructs) or the Lambda client (client)', () => {
    // Act
    const cdk = importsOf(join(installed, 'dist', 'cdk', 'index.js'));
    const client = importsOf(join(installed, 'dist', 'client', 'index.js'));

    // Assess
    expect(cdk.filter((path) => !/^(node:|aws-cdk-lib(\/|$)|constructs$)/.test(path))).toEqual([]);
    expect(cdk).toContain('aws-cdk-lib');
    expect(client.filter((path) => !path.startsWith('node:'))).toEqual(['@aws-sdk/client-lambda']);
    // A caller that only imports the client gets neither aws-cdk-lib nor constructs.
    expect(existsSync(join(clientDir, 'node_modules', 'aws-cdk-lib'))).toBe(false);
    expect(existsSync(join(clientDir, 'node_modules', 'constructs'))).toBe(false);
  });

  describe('a CDK app that uses the construct (plain node, no esbuild)', () => {
    let template: Synthesized['template'];
    let outdir: string;
    let printed: Synthesized['printed'];

    beforeAll(async () => {
      ({ template, outdir, printed } = await synthesized);
    }, STEP_TIMEOUT_MS);

    const functions = () =>
      Object.entries(template.Resources).filter(([, resource]) => resource.Type === 'AWS::Lambda::Function');

    it('has no esbuild to bundle with, and one construct behind both entry points', () => {
      expect(existsSync(join(appDir, 'node_modules', 'esbuild'))).toBe(false);
      expect(printed).toEqual({ sameConstruct: true, esbuild: 'absent' });
    });

    it.each(Object.entries(SERVICE_FUNCTIONS))(
      'deploys %s from its prebuilt bundle (%s), byte for byte',
      (id, bundle) => {
        // Prepare
        const found = functions().filter(([logicalId]) =>
          new RegExp(`^TokenKeeper${id}[0-9A-F]{8}$`).test(logicalId),
        );
        expect(found).toHaveLength(1);
        const [, resource] = found[0] as [string, Resource];
        const { S3Key } = resource.Properties.Code as { S3Key: string };
        const staged = join(outdir, `asset.${S3Key.replace(/\.zip$/, '')}`);

        // Assess
        expect(resource.Properties).toMatchObject({
          Handler: 'index.handler',
          Runtime: 'nodejs24.x',
          Architectures: ['arm64'],
        });
        expect(readdirSync(staged).sort()).toEqual(['index.mjs', 'index.mjs.map']);
        expect(
          readFileSync(join(staged, 'index.mjs')).equals(
            readFileSync(join(installed, 'dist', 'functions', bundle, 'index.mjs')),
          ),
        ).toBe(true);
      },
    );

    it('synthesizes what the construct synthesizes from this repository, but for the code assets', () => {
      expect(withoutAssets(template)).toBe(withoutAssets(synthesizeFromSources()));
    });

    it('grants the caller invoke on getAccessToken and tokenStatus, with both names in its environment', () => {
      // Prepare
      const idOf = (id: string) =>
        functions().find(([logicalId]) => new RegExp(`^TokenKeeper${id}[0-9A-F]{8}$`).test(logicalId))?.[0];
      const caller = functions().find(([logicalId]) => logicalId.startsWith('Caller'))?.[1];
      const statements = Object.entries(template.Resources)
        .filter(([logicalId]) => logicalId.startsWith('CallerServiceRoleDefaultPolicy'))
        .flatMap(([, policy]) => (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
      const invokes = statements.flatMap((statement) =>
        [statement.Resource].flat().map((resource) => [statement.Effect, statement.Action, resource]),
      );

      // Assess
      expect(caller?.Properties.Environment).toEqual({
        Variables: {
          TOKEN_KEEPER_GET_ACCESS_TOKEN_FUNCTION: { Ref: idOf('GetAccessToken') },
          TOKEN_KEEPER_TOKEN_STATUS_FUNCTION: { Ref: idOf('TokenStatus') },
        },
      });
      expect(invokes).toHaveLength(2);
      expect(invokes).toEqual(
        expect.arrayContaining([
          ['Allow', 'lambda:InvokeFunction', { 'Fn::GetAtt': [idOf('GetAccessToken'), 'Arn'] }],
          ['Allow', 'lambda:InvokeFunction', { 'Fn::GetAtt': [idOf('TokenStatus'), 'Arn'] }],
        ]),
      );
    });

    it('type-checks a TypeScript app against the construct declarations (strict, node16 resolution)', {
      timeout: STEP_TIMEOUT_MS,
    }, async () => {
      expect(await typeChecked.app).toEqual({ code: 0, output: '' });
    });
  });

  describe('a caller Lambda that imports token-keeper/client', () => {
    it('type-checks against the client declarations (strict, node16 resolution)', {
      timeout: STEP_TIMEOUT_MS,
    }, async () => {
      expect(await typeChecked.client).toEqual({ code: 0, output: '' });
    });
  });
});
