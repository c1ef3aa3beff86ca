import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';

/** The repository root: entries, lock file and tsconfig are resolved from it. */
export const PROJECT_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

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
    runtime: lambda.Runtime.NODEJS_24_X,
    architecture: lambda.Architecture.ARM_64,
    loggingFormat: lambda.LoggingFormat.JSON,
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
