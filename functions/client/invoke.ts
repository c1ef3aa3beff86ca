import { InvokeCommand, type InvokeCommandOutput, type LambdaClient } from '@aws-sdk/client-lambda';
import { ConfigurationError } from '../core/errors';
import { errorFromFunctionError, errorFromInvokeFailure } from './errors';

/** The token-keeper functions a caller invokes, by the name its errors use. */
export type FunctionLabel = 'getAccessToken' | 'tokenStatus';

/** The error for an answer this client cannot read; it never echoes the answer. */
export function malformedAnswer(label: FunctionLabel): ConfigurationError {
  return new ConfigurationError(
    `the ${label} function returned an answer this client does not understand (client and function versions differ?)`,
  );
}

/**
 * Invokes a token-keeper function with `request` as its event and returns its answer, a JSON
 * object. A failed invocation or a function error becomes the service's typed error; an answer
 * that is not a JSON object is {@link malformedAnswer}.
 */
export async function invokeForObject(
  client: LambdaClient,
  functionName: string,
  label: FunctionLabel,
  request: unknown,
): Promise<Record<string, unknown>> {
  let response: InvokeCommandOutput;
  try {
    response = await client.send(
      new InvokeCommand({
        FunctionName: functionName,
        Payload: new TextEncoder().encode(JSON.stringify(request)),
      }),
    );
  } catch (error) {
    throw errorFromInvokeFailure(error, functionName, label);
  }
  const text = response.Payload ? new TextDecoder().decode(response.Payload) : '';
  if (response.FunctionError) throw errorFromFunctionError(text, label);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw malformedAnswer(label);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw malformedAnswer(label);
  return body as Record<string, unknown>;
}
