import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import type { Construct } from 'constructs';

/** The repository root: entries, lock file and tsconfig are resolved from it. */
export const PROJECT_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Every function the constructs deploy: the name of its prebuilt bundle in the package
 * (`dist/functions/<name>/index.mjs`) and its entry in this repository. The package build
 * (scripts/build-package.ts) bundles each of these.
 */
export const FUNCTION_ENTRIES = {
  'store-tokens': 'functions/handlers/store-tokens.ts',
  'get-access-token': 'functions/handlers/get-access-token.ts',
  'refresh-sweep': 'functions/handlers/refresh-sweep.ts',
  disconnect: 'functions/handlers/disconnect.ts',
  'expiry-stream': 'functions/handlers/expiry-stream.ts',
  'token-status': 'functions/handlers/token-status.ts',
  'example-caller': 'examples/caller/handler.ts',
} as const;

/** The name of a function's bundle. */
export type FunctionBundle = keyof typeof FUNCTION_ENTRIES;

/**
 * Set to `true` by the package build (an esbuild `define`); not declared at all when the
 * constructs run from this repository's sources.
 */
declare const TOKEN_KEEPER_PREBUILT: boolean | undefined;

/**
 * True when the constructs run from the installed package: the functions are then the bundles
 * prebuilt into it, and a consumer's synth needs no esbuild. From the sources (tests, `cdk synth`
 * here) NodejsFunction bundles each entry with the local esbuild.
 */
export const PREBUILT = typeof TOKEN_KEEPER_PREBUILT === 'boolean' && TOKEN_KEEPER_PREBUILT;

/**
 * Left out of every bundle: the AWS SDK's default credential chain imports these with `import()`
 * only after its first link, the environment variables, has failed, and in Lambda that link always
 * answers (AWS_ACCESS_KEY_ID and friends are set for the execution role). Bundled, they and the STS,
 * SSO and sign-in clients they pull in are 23 % of each bundle, parsed at every cold start
 * (`npm run bench`, section 4). Keep in step with STACK_BUNDLING in bench/bundle.ts.
 */
export const UNREACHED_IN_LAMBDA = [
  '@aws-sdk/credential-provider-ini',
  '@aws-sdk/credential-provider-process',
  '@aws-sdk/credential-provider-sso',
  '@aws-sdk/credential-provider-web-identity',
] as const;

/** Node.js 24 on arm64, logging JSON: every function of the project. */
function runtimeDefaults() {
  return {
    runtime: lambda.Runtime.NODEJS_24_X,
    architecture: lambda.Architecture.ARM_64,
    loggingFormat: lambda.LoggingFormat.JSON,
  };
}

/**
 * Runtime, architecture and bundling shared by every function of the project: Node.js 24 on
 * arm64, bundled by the local esbuild (no Docker) into minified ESM with source maps.
 */
export function nodeFunctionDefaults(): Pick<
  nodejs.NodejsFunctionProps,
  'handler' | 'runtime' | 'architecture' | 'loggingFormat' | 'projectRoot' | 'depsLockFilePath' | 'bundling'
> {
  return {
    handler: 'handler',
    ...runtimeDefaults(),
    projectRoot: PROJECT_ROOT,
    depsLockFilePath: join(PROJECT_ROOT, 'package-lock.json'),
    bundling: {
      forceDockerBundling: false,
      format: nodejs.OutputFormat.ESM,
      target: 'node24',
      mainFields: ['module', 'main'],
      minify: true,
      // Error classes are matched by name (errorType crosses the Lambda boundary): keep them.
      keepNames: true,
      sourceMap: true,
      sourcesContent: false,
      // Bundled, not taken from the runtime: the SDK version is the one the tests ran with.
      bundleAwsSDK: true,
      externalModules: [...UNREACHED_IN_LAMBDA],
      // Bundled CommonJS dependencies call require(); ESM output has none without this.
      banner: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
      tsconfig: join(PROJECT_ROOT, 'tsconfig.json'),
    },
  };
}

/** What {@link nodeFunction} takes: a function's own settings, without its code. */
export type NodeFunctionProps = Omit<
  lambda.FunctionProps,
  'code' | 'handler' | 'runtime' | 'architecture' | 'loggingFormat'
>;

/**
 * One function of the project with {@link nodeFunctionDefaults}: from the installed package, its
 * prebuilt bundle (`lambda.Code.fromAsset`); from the sources, a NodejsFunction that bundles its
 * entry. Both deploy the same `index.mjs` with the handler `index.handler`.
 */
export function nodeFunction(
  scope: Construct,
  id: string,
  bundle: FunctionBundle,
  props: NodeFunctionProps,
): lambda.Function {
  if (PREBUILT) {
    return new lambda.Function(scope, id, {
      ...props,
      ...runtimeDefaults(),
      handler: 'index.handler',
      code: lambda.Code.fromAsset(prebuiltBundleDir(bundle)),
    });
  }
  return new nodejs.NodejsFunction(scope, id, {
    ...props,
    ...nodeFunctionDefaults(),
    entry: join(PROJECT_ROOT, FUNCTION_ENTRIES[bundle]),
  });
}

/** Where the package keeps a prebuilt bundle: `dist/functions/<name>`, beside `dist/cdk/`. */
function prebuiltBundleDir(bundle: FunctionBundle): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', 'functions', bundle);
}
