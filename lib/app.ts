import { Annotations, type App, type Environment, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import { stackFromContext } from './context';
import { TokenKeeperStack } from './token-keeper-stack';

/**
 * Adds the token-keeper stack to an app from its context values and registers cdk-nag's
 * AwsSolutions and Serverless packs, so any unacknowledged finding fails `cdk synth`
 * (acknowledgements: lib/nag-acknowledgements.ts, each with its reason). `bin/app.ts` and the
 * cdk-nag test build the app the same way.
 */
export function buildTokenKeeperApp(app: App, env?: Environment): TokenKeeperStack {
  const { stackId, props, warnings } = stackFromContext(app.node);
  const stack = new TokenKeeperStack(app, stackId, {
    ...props,
    description: 'token-keeper: keeps refresh tokens alive and serves access tokens',
    env,
  });
  for (const warning of warnings) {
    Annotations.of(stack).addWarningV2('token-keeper:context', warning);
  }
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new ServerlessChecks(app));
  return stack;
}
