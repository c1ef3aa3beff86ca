import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { afterEach, describe, expect, it } from 'vitest';
import { createTokenKeeperClient, defaultLambdaClientConfig } from '../../functions/client/get-access-token';
import { RefreshUnavailableError } from '../../functions/core/errors';

/**
 * The caller's client against a Lambda endpoint that accepts the request and never answers (a
 * hung connection, injected on the wire): with the client's own configuration each attempt ends
 * at its deadline and the call fails retryably after two attempts, instead of hanging the caller.
 */
describe('Client: an Invoke that never answers', () => {
  let server: Server | undefined;
  const open: ServerResponse[] = [];
  afterEach(async () => {
    for (const res of open) res.destroy();
    open.length = 0;
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  });

  /** A server that reads each request and holds it; counts the attempts. */
  async function hungEndpoint() {
    const attempts: string[] = [];
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      attempts.push(req.url ?? '');
      req.resume();
      open.push(res);
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}`, attempts };
  }

  it('fails with RefreshUnavailableError after two attempts, each given up at its deadline', async () => {
    // Prepare
    const endpoint = await hungEndpoint();
    const lambdaClient = new LambdaClient({
      ...defaultLambdaClientConfig(300),
      endpoint: endpoint.url,
      region: 'eu-west-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    const keeper = createTokenKeeperClient({ functionName: 'token-keeper-getAccessToken', lambdaClient });

    // Act
    const error = await keeper.getAccessToken({ userId: 'alice' }).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(RefreshUnavailableError);
    expect((error as Error).message).toMatch(
      /^invoking the getAccessToken function failed \(\w+\); retry later$/,
    );
    expect(endpoint.attempts).toHaveLength(2);
    expect(endpoint.attempts[0]).toContain('/functions/token-keeper-getAccessToken/invocations');
    lambdaClient.destroy();
  });

  it('uses a deadline of 35 s by default: longer than any token-keeper function runs', () => {
    // Act
    const config = defaultLambdaClientConfig();

    // Assess
    expect(config).toMatchObject({
      requestHandler: { requestTimeout: 35_000, throwOnRequestTimeout: true },
      maxAttempts: 2,
    });
  });
});
