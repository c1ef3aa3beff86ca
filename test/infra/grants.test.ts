import { Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { describe, expect, it } from 'vitest';
import { TokenKeeperStack } from '../../lib/token-keeper-stack';
import { BASE_PROPS, testApp } from './support/app';

const ENV = { account: '111122223333', region: 'eu-west-1' };

function callerFunction(stack: Stack): lambda.Function {
  return new lambda.Function(stack, 'Caller', {
    runtime: lambda.Runtime.NODEJS_24_X,
    handler: 'index.handler',
    code: lambda.Code.fromInline('export const handler = async () => 1;'),
  });
}

/** Issue 10 item 11: callers in other stacks and other accounts, proven by synthesis. */
describe('Class: TokenKeeper (callers elsewhere)', () => {
  describe('Method: grantGetAccessToken (a caller in another stack of the same account)', () => {
    it('reads the function ARN from an SSM parameter: no export ties the stacks', {
      timeout: 120_000,
    }, () => {
      // Prepare
      const app = testApp();
      const service = new TokenKeeperStack(app, 'Service', { ...BASE_PROPS, env: ENV });
      const callers = new Stack(app, 'Callers', { env: ENV });
      const fn = callerFunction(callers);

      // Act
      service.tokenKeeper.grantGetAccessToken(fn);
      const assembly = app.synth();

      // Assess
      const serviceTemplate = assembly.getStackByName('Service').template;
      const callersTemplate = assembly.getStackByName('Callers').template;
      const outputs = Object.values(serviceTemplate.Outputs ?? {}) as { Export?: unknown }[];
      expect(outputs.filter((o) => o.Export !== undefined)).toEqual([]);
      expect(JSON.stringify(callersTemplate)).not.toContain('Fn::ImportValue');
      Template.fromJSON(serviceTemplate).hasResourceProperties('AWS::SSM::Parameter', {
        Name: '/Service/token-keeper/GetAccessTokenFunctionArn',
        Value: { 'Fn::GetAtt': [Match.stringLikeRegexp('GetAccessToken'), 'Arn'] },
      });
      const parameters = Object.entries(callersTemplate.Parameters ?? {}) as [
        string,
        { Type: string; Default: string },
      ][];
      const arnParameter = parameters.find(
        ([, p]) => p.Default === '/Service/token-keeper/GetAccessTokenFunctionArn',
      );
      expect(arnParameter?.[1].Type).toBe('AWS::SSM::Parameter::Value<String>');
      const callers_ = Template.fromJSON(callersTemplate);
      callers_.hasResourceProperties('AWS::IAM::Policy', {
        PolicyDocument: {
          Statement: [
            { Action: 'lambda:InvokeFunction', Effect: 'Allow', Resource: { Ref: arnParameter?.[0] } },
          ],
        },
      });
      callers_.hasResourceProperties('AWS::Lambda::Function', {
        Environment: { Variables: { TOKEN_KEEPER_GET_ACCESS_TOKEN_FUNCTION: { Ref: arnParameter?.[0] } } },
      });
      expect(assembly.getStackByName('Callers').dependencies.map((d) => d.id)).toContain('Service');
    });

    it('refuses a caller whose stack is in another account, naming the way that works', () => {
      // Prepare
      const app = testApp();
      const service = new TokenKeeperStack(app, 'Service', { ...BASE_PROPS, env: ENV });
      const foreign = new Stack(app, 'Foreign', { env: { account: '444455556666', region: 'eu-west-1' } });

      // Act + Assess
      expect(() => service.tokenKeeper.grantGetAccessToken(callerFunction(foreign))).toThrow(
        /another account; use grantInvokeAcrossAccounts/,
      );
    });
  });

  describe('Method: grantInvokeAcrossAccounts', () => {
    it('lets one other account, or one organization, invoke exactly that function through its resource policy', {
      timeout: 120_000,
    }, () => {
      // Prepare
      const app = testApp();
      const service = new TokenKeeperStack(app, 'Service', { ...BASE_PROPS, env: ENV });
      const tk = service.tokenKeeper;

      // Act
      tk.grantInvokeAcrossAccounts('GetAccessToken', { account: '444455556666' });
      tk.grantInvokeAcrossAccounts('StoreTokens', { organizationId: 'o-a1b2c3d4e5' });
      const template = Template.fromStack(service);

      // Assess
      const functionRef = (fn: lambda.IFunction) => ({
        'Fn::GetAtt': [service.getLogicalId(fn.node.defaultChild as lambda.CfnFunction), 'Arn'],
      });
      template.hasResourceProperties('AWS::Lambda::Permission', {
        Action: 'lambda:InvokeFunction',
        FunctionName: functionRef(tk.getAccessTokenFunction),
        Principal: '444455556666',
      });
      template.hasResourceProperties('AWS::Lambda::Permission', {
        Action: 'lambda:InvokeFunction',
        FunctionName: functionRef(tk.storeTokensFunction),
        Principal: '*',
        PrincipalOrgID: 'o-a1b2c3d4e5',
      });
    });
  });
});
