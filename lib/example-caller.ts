import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { nodeFunction } from './function-defaults';
import { acknowledgeExampleCallerFindings } from './nag-acknowledgements';
import type { TokenKeeper } from './token-keeper';

/** Properties of {@link ExampleCaller}. */
export interface ExampleCallerProps {
  /** The token-keeper whose getAccessToken the example invokes. */
  readonly tokenKeeper: TokenKeeper;
  /**
   * The API the example calls with the user's access token.
   * @default - no call; the example only reports the token's type and expiry
   */
  readonly apiUrl?: string;
}

/**
 * An example of a caller: a Lambda that gets a user's access token with the client in
 * `functions/client`, granted with `grantGetAccessToken` (invoke on that one function, and its
 * name in the environment).
 */
export class ExampleCaller extends Construct {
  /** The example function. */
  readonly function: lambda.Function;

  constructor(scope: Construct, id: string, props: ExampleCallerProps) {
    super(scope, id);
    const logGroup = new logs.LogGroup(this, 'Logs', {
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'token-keeper example caller',
    });
    logGroup.grantWrite(role);
    this.function = nodeFunction(this, 'Function', 'example-caller', {
      description: 'token-keeper example: calls an API on behalf of a user',
      memorySize: 256,
      timeout: Duration.seconds(40),
      role,
      logGroup,
      environment: props.apiUrl ? { API_URL: props.apiUrl } : {},
    });
    props.tokenKeeper.grantGetAccessToken(this.function);
    acknowledgeExampleCallerFindings(this.function);
  }
}
