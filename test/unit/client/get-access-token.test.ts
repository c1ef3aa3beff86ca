import 'aws-sdk-client-mock-vitest/extend';
import { InvokeCommand, LambdaClient, TooManyRequestsException } from '@aws-sdk/client-lambda';
import { Uint8ArrayBlobAdapter } from '@smithy/core/serde';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  createTokenKeeperClient,
  getAccessToken,
  type TokenKeeperClientOptions,
} from '../../../functions/client/get-access-token';
import {
  ConfigurationError,
  ReauthRequiredError,
  RefreshUnavailableError,
  type TokenKeeperError,
  TokenNotFoundError,
  ValidationError,
} from '../../../functions/core/errors';

const FUNCTION = 'token-keeper-GetAccessToken';
const ACCESS_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.access-token-material.sig';
const START_MS = Date.parse('2030-01-01T00:00:00Z');

const lambdaMock = mockClient(LambdaClient);
let nowMs: number;
const clock = { nowMs: () => nowMs };

const payload = (body: unknown) => Uint8ArrayBlobAdapter.fromString(JSON.stringify(body));

/** A successful answer whose token expires `validForSeconds` after the current test time. */
function tokenAnswer(validForSeconds = 3600, accessToken = ACCESS_TOKEN) {
  return {
    StatusCode: 200,
    Payload: payload({
      accessToken,
      tokenType: 'Bearer',
      expiresAt: new Date(nowMs + validForSeconds * 1000).toISOString(),
    }),
  };
}

function errorAnswer(errorType: string, errorMessage: string) {
  return {
    StatusCode: 200,
    FunctionError: 'Unhandled',
    Payload: payload({
      errorType,
      errorMessage,
      trace: [`${errorType}: ${errorMessage}`, '    at secret-file.js:1'],
    }),
  };
}

const client = (options: TokenKeeperClientOptions = {}) =>
  createTokenKeeperClient({ functionName: FUNCTION, lambdaClient: new LambdaClient({}), clock, ...options });

/** The error a promise rejects with. */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

beforeEach(() => {
  lambdaMock.reset();
  nowMs = START_MS;
});

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('Function: createTokenKeeperClient', () => {
  describe('Method: getAccessToken', () => {
    it('invokes the function with the request and returns the token as a Secret', async () => {
      // Prepare
      lambdaMock.on(InvokeCommand).resolves(tokenAnswer(3600));

      // Act
      const token = await client().getAccessToken({ userId: 'user-1' });

      // Assess
      expect(lambdaMock).toHaveReceivedCommandTimes(InvokeCommand, 1);
      const input = lambdaMock.commandCalls(InvokeCommand)[0]?.args[0].input;
      expect(input?.FunctionName).toBe(FUNCTION);
      expect(JSON.parse(new TextDecoder().decode(input?.Payload as Uint8Array))).toEqual({
        userId: 'user-1',
        resource: 'default',
        minValiditySeconds: 60,
      });
      expect(token.accessToken.reveal()).toBe(ACCESS_TOKEN);
      expect(token.tokenType).toBe('Bearer');
      expect(token.expiresAt).toBe('2030-01-01T01:00:00.000Z');
      expect(JSON.stringify(token)).not.toContain(ACCESS_TOKEN);
    });

    it('passes the resource and the asked validity through', async () => {
      lambdaMock.on(InvokeCommand).resolves(tokenAnswer());

      await client().getAccessToken({
        userId: 'user-1',
        resource: 'https://api.example.com',
        minValiditySeconds: 300,
      });

      const input = lambdaMock.commandCalls(InvokeCommand)[0]?.args[0].input;
      expect(JSON.parse(new TextDecoder().decode(input?.Payload as Uint8Array))).toEqual({
        userId: 'user-1',
        resource: 'https://api.example.com',
        minValiditySeconds: 300,
      });
    });

    it("sends the caller's correlation id, and refuses one the function would refuse without invoking", async () => {
      // Prepare
      lambdaMock.on(InvokeCommand).resolves(tokenAnswer());
      const keeper = client();

      // Act
      await keeper.getAccessToken({ userId: 'user-1', correlationId: 'order-4711:retry.2' });
      const refused = await rejection(
        keeper.getAccessToken({ userId: 'user-2', correlationId: 'two words' }),
      );

      // Assess
      const input = lambdaMock.commandCalls(InvokeCommand)[0]?.args[0].input;
      expect(JSON.parse(new TextDecoder().decode(input?.Payload as Uint8Array))).toEqual({
        userId: 'user-1',
        resource: 'default',
        minValiditySeconds: 60,
        correlationId: 'order-4711:retry.2',
      });
      expect(refused).toBeInstanceOf(ValidationError);
      expect(lambdaMock).toHaveReceivedCommandTimes(InvokeCommand, 1);
    });

    it('takes the function name from TOKEN_KEEPER_GET_ACCESS_TOKEN_FUNCTION when none is passed', async () => {
      vi.stubEnv('TOKEN_KEEPER_GET_ACCESS_TOKEN_FUNCTION', 'from-env');
      lambdaMock.on(InvokeCommand).resolves(tokenAnswer());

      await client({ functionName: undefined }).getAccessToken({ userId: 'user-1' });

      expect(lambdaMock).toHaveReceivedCommandWith(InvokeCommand, { FunctionName: 'from-env' });
    });

    it('throws ConfigurationError naming the variable when no function name is known', async () => {
      vi.stubEnv('TOKEN_KEEPER_GET_ACCESS_TOKEN_FUNCTION', '');

      const error = await rejection(client({ functionName: undefined }).getAccessToken({ userId: 'user-1' }));

      expect(error).toBeInstanceOf(ConfigurationError);
      expect(error.message).toContain('TOKEN_KEEPER_GET_ACCESS_TOKEN_FUNCTION');
      expect(lambdaMock).toHaveReceivedCommandTimes(InvokeCommand, 0);
    });

    it('throws ValidationError for a bad request without invoking', async () => {
      const keeper = client();

      await expect(keeper.getAccessToken({ userId: '' })).rejects.toBeInstanceOf(ValidationError);
      await expect(keeper.getAccessToken({ userId: 'u', minValiditySeconds: -1 })).rejects.toBeInstanceOf(
        ValidationError,
      );
      await expect(keeper.getAccessToken({ userId: 'u', resource: '' })).rejects.toBeInstanceOf(
        ValidationError,
      );
      expect(lambdaMock).toHaveReceivedCommandTimes(InvokeCommand, 0);
    });
  });

  describe('Method: getAccessToken (cache)', () => {
    it('does not invoke again while the cached token keeps the asked validity', async () => {
      lambdaMock.on(InvokeCommand).resolves(tokenAnswer(3600));
      const keeper = client();

      await keeper.getAccessToken({ userId: 'user-1' });
      nowMs += (3600 - 60) * 1000; // exactly 60 s left: still enough for the default
      const second = await keeper.getAccessToken({ userId: 'user-1' });

      expect(lambdaMock).toHaveReceivedCommandTimes(InvokeCommand, 1);
      expect(second.accessToken.reveal()).toBe(ACCESS_TOKEN);
    });

    it('invokes again once the cached token has less than the asked validity', async () => {
      lambdaMock.on(InvokeCommand).resolves(tokenAnswer(3600));
      const keeper = client();

      await keeper.getAccessToken({ userId: 'user-1' });
      nowMs += (3600 - 59) * 1000;
      await keeper.getAccessToken({ userId: 'user-1' });

      expect(lambdaMock).toHaveReceivedCommandTimes(InvokeCommand, 2);
    });

    it('invokes again when a caller asks for more validity than the cached token has', async () => {
      lambdaMock.on(InvokeCommand).resolves(tokenAnswer(600));
      const keeper = client();

      await keeper.getAccessToken({ userId: 'user-1', minValiditySeconds: 60 });
      await keeper.getAccessToken({ userId: 'user-1', minValiditySeconds: 900 });

      expect(lambdaMock).toHaveReceivedCommandTimes(InvokeCommand, 2);
    });

    it('keeps one entry per user and resource', async () => {
      lambdaMock.on(InvokeCommand).resolves(tokenAnswer());
      const keeper = client();

      await keeper.getAccessToken({ userId: 'user-1' });
      await keeper.getAccessToken({ userId: 'user-1', resource: 'default' });
      await keeper.getAccessToken({ userId: 'user-1', resource: 'https://api.example.com' });
      await keeper.getAccessToken({ userId: 'user-2' });

      expect(lambdaMock).toHaveReceivedCommandTimes(InvokeCommand, 3);
    });

    it('shares one invocation between concurrent callers for the same user', async () => {
      lambdaMock.on(InvokeCommand).resolves(tokenAnswer());
      const keeper = client();

      const tokens = await Promise.all([
        keeper.getAccessToken({ userId: 'user-1' }),
        keeper.getAccessToken({ userId: 'user-1', minValiditySeconds: 30 }),
        keeper.getAccessToken({ userId: 'user-1' }),
      ]);

      expect(lambdaMock).toHaveReceivedCommandTimes(InvokeCommand, 1);
      expect(tokens.map((t) => t.accessToken.reveal())).toEqual([ACCESS_TOKEN, ACCESS_TOKEN, ACCESS_TOKEN]);
    });

    it('evicts the least recently used entry beyond cacheSize', async () => {
      lambdaMock.on(InvokeCommand).resolves(tokenAnswer());
      const keeper = client({ cacheSize: 2 });

      await keeper.getAccessToken({ userId: 'a' });
      await keeper.getAccessToken({ userId: 'b' });
      await keeper.getAccessToken({ userId: 'a' }); // a is now the most recently used
      await keeper.getAccessToken({ userId: 'c' }); // evicts b
      await keeper.getAccessToken({ userId: 'a' });
      expect(lambdaMock).toHaveReceivedCommandTimes(InvokeCommand, 3);

      await keeper.getAccessToken({ userId: 'b' });
      expect(lambdaMock).toHaveReceivedCommandTimes(InvokeCommand, 4);
    });

    it('does not cache a failure', async () => {
      lambdaMock
        .on(InvokeCommand)
        .resolvesOnce(
          errorAnswer('RefreshUnavailableError', 'the identity provider is unavailable; retry later'),
        )
        .resolves(tokenAnswer());
      const keeper = client();

      await expect(keeper.getAccessToken({ userId: 'user-1' })).rejects.toBeInstanceOf(
        RefreshUnavailableError,
      );
      const token = await keeper.getAccessToken({ userId: 'user-1' });

      expect(token.accessToken.reveal()).toBe(ACCESS_TOKEN);
      expect(lambdaMock).toHaveReceivedCommandTimes(InvokeCommand, 2);
    });

    it('accepts an expiry given in epoch seconds', async () => {
      lambdaMock.on(InvokeCommand).resolves({
        StatusCode: 200,
        Payload: payload({
          accessToken: ACCESS_TOKEN,
          tokenType: 'Bearer',
          expiresAt: START_MS / 1000 + 120,
        }),
      });

      const token = await client().getAccessToken({ userId: 'user-1' });

      expect(token.expiresAt).toBe('2030-01-01T00:02:00.000Z');
    });
  });

  describe('Method: invalidate', () => {
    it('drops the cached token so the next call invokes', async () => {
      lambdaMock.on(InvokeCommand).resolves(tokenAnswer());
      const keeper = client();

      await keeper.getAccessToken({ userId: 'user-1' });
      keeper.invalidate({ userId: 'user-1' });
      await keeper.getAccessToken({ userId: 'user-1' });

      expect(lambdaMock).toHaveReceivedCommandTimes(InvokeCommand, 2);
    });
  });

  describe('Method: getAccessToken (function errors)', () => {
    const cases = [
      ['ValidationError', 'userId must be a non-empty string', ValidationError, false],
      ['TokenNotFoundError', 'no tokens are stored for this user and resource', TokenNotFoundError, false],
      [
        'RefreshUnavailableError',
        'the identity provider is unavailable; retry later',
        RefreshUnavailableError,
        true,
      ],
      ['ConfigurationError', 'TOKEN_TABLE_NAME is required', ConfigurationError, false],
    ] as const;

    it.each(cases)('maps %s to the same typed error', async (errorType, message, errorClass, retryable) => {
      lambdaMock.on(InvokeCommand).resolves(errorAnswer(errorType, message));

      const error = await rejection(client().getAccessToken({ userId: 'user-1' }));

      expect(error).toBeInstanceOf(errorClass);
      expect(error.name).toBe(errorType);
      expect(error.message).toBe(message);
      expect((error as TokenKeeperError).retryable).toBe(retryable);
      expect(error.message).not.toContain('secret-file.js');
    });

    it.each([
      ['the user must sign in again: the identity provider rejected the refresh token', 'refresh_rejected'],
      ['the user must sign in again: the maximum rotation period has passed', 'deadline'],
      ['the user must sign in again: the refresh token expired before it could be rotated', 'expired'],
      ['the user must sign in again: the stored tokens cannot be decrypted', 'corrupted'],
      ['the user must sign in again (reason: deadline)', 'deadline'],
    ])('maps ReauthRequiredError "%s" with reason %s', async (message, reason) => {
      lambdaMock.on(InvokeCommand).resolves(errorAnswer('ReauthRequiredError', message));

      const error = await rejection(client().getAccessToken({ userId: 'user-1' }));

      expect(error).toBeInstanceOf(ReauthRequiredError);
      expect((error as ReauthRequiredError).reason).toBe(reason);
      expect(error.message).toBe(message);
    });

    it('maps any other failure to a retryable error that names only the error type', async () => {
      lambdaMock
        .on(InvokeCommand)
        .resolves(errorAnswer('Sandbox.Timedout', `Task timed out; last log said ${ACCESS_TOKEN}`));

      const error = await rejection(client().getAccessToken({ userId: 'user-1' }));

      expect(error).toBeInstanceOf(RefreshUnavailableError);
      expect(error.message).toContain('Sandbox.Timedout');
      expect(error.message).not.toContain(ACCESS_TOKEN);
      expect(JSON.stringify(error)).not.toContain(ACCESS_TOKEN);
    });

    it('does not echo an error type that is free text', async () => {
      lambdaMock.on(InvokeCommand).resolves(errorAnswer(`Bearer ${ACCESS_TOKEN}`, 'x'));

      const error = await rejection(client().getAccessToken({ userId: 'user-1' }));

      expect(error).toBeInstanceOf(RefreshUnavailableError);
      expect(error.message).toContain('UnknownError');
      expect(error.message).not.toContain(ACCESS_TOKEN);
    });

    it('maps an error payload that is not JSON to a retryable error', async () => {
      lambdaMock.on(InvokeCommand).resolves({
        StatusCode: 200,
        FunctionError: 'Unhandled',
        Payload: Uint8ArrayBlobAdapter.fromString('not json'),
      });

      await expect(client().getAccessToken({ userId: 'user-1' })).rejects.toBeInstanceOf(
        RefreshUnavailableError,
      );
    });

    it('rejects a success payload it does not understand without echoing it', async () => {
      lambdaMock.on(InvokeCommand).resolves({ StatusCode: 200, Payload: payload({ token: ACCESS_TOKEN }) });

      const error = await rejection(client().getAccessToken({ userId: 'user-1' }));

      expect(error).toBeInstanceOf(ConfigurationError);
      expect(error.message).not.toContain(ACCESS_TOKEN);
    });
  });

  describe('Method: getAccessToken (invoke failures)', () => {
    it('maps AccessDeniedException to ConfigurationError, keeping the SDK error as a hidden cause', async () => {
      const denied = Object.assign(new Error('not authorized to perform lambda:InvokeFunction'), {
        name: 'AccessDeniedException',
      });
      lambdaMock.on(InvokeCommand).rejects(denied);

      const error = await rejection(client().getAccessToken({ userId: 'user-1' }));

      expect(error).toBeInstanceOf(ConfigurationError);
      expect(error.message).toContain('grantGetAccessToken');
      expect(error.cause).toBe(denied);
      expect(Object.keys(error)).not.toContain('cause');
    });

    it('maps throttling to a retryable RefreshUnavailableError', async () => {
      lambdaMock
        .on(InvokeCommand)
        .rejects(new TooManyRequestsException({ message: 'Rate exceeded', $metadata: {} }));

      const error = await rejection(client().getAccessToken({ userId: 'user-1' }));

      expect(error).toBeInstanceOf(RefreshUnavailableError);
      expect((error as RefreshUnavailableError).retryable).toBe(true);
      expect(error.message).toContain('TooManyRequestsException');
    });
  });
});

describe('Function: getAccessToken', () => {
  it('uses one shared client per function name, so a second call is served from its cache', async () => {
    vi.stubEnv('TOKEN_KEEPER_GET_ACCESS_TOKEN_FUNCTION', 'shared-function');
    nowMs = Date.now();
    lambdaMock.on(InvokeCommand).resolves(tokenAnswer(3600));

    const first = await getAccessToken({ userId: 'shared-user' });
    const second = await getAccessToken({ userId: 'shared-user' });

    expect(lambdaMock).toHaveReceivedCommandTimes(InvokeCommand, 1);
    expect(lambdaMock).toHaveReceivedCommandWith(InvokeCommand, { FunctionName: 'shared-function' });
    expect(second).toBe(first);
  });

  it('invokes the function passed in options', async () => {
    nowMs = Date.now();
    lambdaMock.on(InvokeCommand).resolves(tokenAnswer(3600));

    await getAccessToken({ userId: 'other-user' }, { functionName: 'explicit-function' });

    expect(lambdaMock).toHaveReceivedCommandWith(InvokeCommand, { FunctionName: 'explicit-function' });
  });
});
