import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { PROJECT_ROOT } from '../../../lib/function-defaults';
import { TokenKeeperStack, type TokenKeeperStackProps } from '../../../lib/token-keeper-stack';

/** The feature flags of cdk.json, so a test synthesizes what `cdk synth` does. */
export function cdkJsonContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(readFileSync(join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as {
    context?: Record<string, unknown>;
  };
  return cdkJson.context ?? {};
}

/**
 * An app with the project's feature flags. Resource tests skip esbuild (`aws:cdk:bundling-stacks`
 * empty) to stay fast; the cdk-nag test bundles for real, as `cdk synth` does.
 */
export function testApp(options: { bundle?: boolean; context?: Record<string, unknown> } = {}): App {
  return new App({
    context: {
      ...cdkJsonContext(),
      ...(options.bundle ? {} : { 'aws:cdk:bundling-stacks': [] }),
      ...options.context,
    },
  });
}

/** The settings every test stack starts from. */
export const BASE_PROPS: TokenKeeperStackProps = {
  identityProvider: { flavor: 'transmit', baseUrl: 'https://api.transmitsecurity.io' },
  env: { account: '111122223333', region: 'eu-west-1' },
};

/** A TokenKeeperStack (fixed account and region) and its template; `extend` adds test constructs first. */
export function synthStack(
  props: Partial<TokenKeeperStackProps> = {},
  extend?: (stack: TokenKeeperStack) => void,
  options: { bundle?: boolean } = {},
): { app: App; stack: TokenKeeperStack; template: Template } {
  const app = testApp(options);
  const stack = new TokenKeeperStack(app, 'TokenKeeperTest', { ...BASE_PROPS, ...props });
  extend?.(stack);
  return { app, stack, template: Template.fromStack(stack) };
}
