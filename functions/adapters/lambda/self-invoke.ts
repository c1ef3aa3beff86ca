import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';

let client: LambdaClient | undefined;

/**
 * Invokes a function asynchronously (InvocationType `Event`): Lambda queues the event and
 * answers at once, so the caller can end its run while the next one starts.
 */
export async function invokeAsync(
  functionName: string,
  payload: Readonly<Record<string, unknown>>,
): Promise<void> {
  client ??= new LambdaClient({});
  const answer = await client.send(
    new InvokeCommand({
      FunctionName: functionName,
      InvocationType: 'Event',
      Payload: new TextEncoder().encode(JSON.stringify(payload)),
    }),
  );
  if (answer.StatusCode !== 202) throw new Error(`asynchronous invoke answered ${answer.StatusCode}`);
}
