import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import type { AwsCallLimits } from '../../config';
import { awsClientConfig } from '../aws-client-config';

let client: LambdaClient | undefined;

/**
 * Invokes a function asynchronously (InvocationType `Event`): Lambda queues the event and
 * answers at once, so the caller can end its run while the next one starts. The call is bounded
 * by `limits` like every other AWS call of the functions.
 */
export async function invokeAsync(
  functionName: string,
  payload: Readonly<Record<string, unknown>>,
  limits: AwsCallLimits,
): Promise<void> {
  client ??= new LambdaClient(awsClientConfig(limits));
  const answer = await client.send(
    new InvokeCommand({
      FunctionName: functionName,
      InvocationType: 'Event',
      Payload: new TextEncoder().encode(JSON.stringify(payload)),
    }),
  );
  if (answer.StatusCode !== 202) throw new Error(`asynchronous invoke answered ${answer.StatusCode}`);
}
