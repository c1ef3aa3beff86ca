import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { invokeAsync } from '../../functions/adapters/lambda/self-invoke';

/**
 * The sweep's continuation (an asynchronous self-invoke) against a Lambda endpoint that accepts
 * the request and never answers: each attempt ends at the configured deadline, instead of the
 * call outliving the sweep's run.
 */
describe('Function: invokeAsync against an endpoint that never answers', () => {
  let server: Server;
  const open: ServerResponse[] = [];
  const attempts: string[] = [];

  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      attempts.push(req.url ?? '');
      req.resume();
      open.push(res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    vi.stubEnv('AWS_ENDPOINT_URL_LAMBDA', `http://127.0.0.1:${port}`);
    vi.stubEnv('AWS_REGION', 'eu-west-1');
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'test');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'test');
  });
  afterAll(async () => {
    vi.unstubAllEnvs();
    for (const res of open) res.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('fails after the configured attempts, each given up at its deadline', async () => {
    // Act
    const error = await invokeAsync(
      'token-keeper-refreshSweep',
      { continuation: 1 },
      { requestTimeoutMs: 300, maxAttempts: 2 },
    ).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).name).toBe('TimeoutError');
    expect(attempts).toHaveLength(2);
    expect(attempts[0]).toContain('/functions/token-keeper-refreshSweep/invocations');
  });
});
