import 'aws-sdk-client-mock-vitest/extend';
import { InvokeCommand, LambdaClient, TooManyRequestsException } from '@aws-sdk/client-lambda';
import { Uint8ArrayBlobAdapter } from '@smithy/core/serde';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createTokenKeeperClient, getTokenStatus } from '../../../functions/client/get-access-token';
import {
  ConfigurationError,
  RefreshUnavailableError,
  TokenNotFoundError,
  ValidationError,
} from '../../../functions/core/errors';
import { caught } from '../../support/caught';

const STATUS_FUNCTION = 'token-keeper-TokenStatus';
const lambdaMock = mockClient(LambdaClient);

const payload = (body: unknown) => Uint8ArrayBlobAdapter.fromString(JSON.stringify(body));

const ACTIVE = {
  userId: 'user-1',
  resource: 'default',
  status: 'ACTIVE',
  rotationDeadline: '2031-01-01T00:00:00.000Z',
  refreshTokenExpiresAt: '2030-01-15T00:00:00.000Z',
  lastRotatedAt: '2030-01-01T00:00:00.000Z',
  failures: 0,
  offlineAccessUntil: '2031-01-01T00:00:00.000Z',
};

function errorAnswer(errorType: string, errorMessage: string) {
  return {
    StatusCode: 200,
    FunctionError: 'Unhandled',
    Payload: payload({ errorType, errorMessage, trace: [`${errorType}: ${errorMessage}`] }),
  };
}

const client = () =>
  createTokenKeeperClient({ tokenStatusFunctionName: STATUS_FUNCTION, lambdaClient: new LambdaClient({}) });

beforeEach(() => {
  lambdaMock.reset();
});

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('Function: createTokenKeeperClient', () => {
  describe('Method: getTokenStatus', () => {
    it('invokes the tokenStatus function with the key and returns the status', async () => {
      // Prepare
      lambdaMock.on(InvokeCommand).resolves({ StatusCode: 200, Payload: payload(ACTIVE) });

      // Act
      const status = await client().getTokenStatus({ userId: 'user-1' });

      // Assess
      expect(lambdaMock).toHaveReceivedCommandTimes(InvokeCommand, 1);
      const input = lambdaMock.commandCalls(InvokeCommand)[0]?.args[0].input;
      expect(input?.FunctionName).toBe(STATUS_FUNCTION);
      expect(JSON.parse(new TextDecoder().decode(input?.Payload as Uint8Array))).toEqual({
        userId: 'user-1',
        resource: 'default',
      });
      expect(status).toEqual(ACTIVE);
    });

    it("sends the caller's correlation id with the key", async () => {
      // Prepare
      lambdaMock.on(InvokeCommand).resolves({ StatusCode: 200, Payload: payload(ACTIVE) });

      // Act
      await client().getTokenStatus({ userId: 'user-1', correlationId: '9b2e-status' });

      // Assess
      const input = lambdaMock.commandCalls(InvokeCommand)[0]?.args[0].input;
      expect(JSON.parse(new TextDecoder().decode(input?.Payload as Uint8Array))).toEqual({
        userId: 'user-1',
        resource: 'default',
        correlationId: '9b2e-status',
      });
    });

    it('returns REAUTH_REQUIRED with its reason, and never caches', async () => {
      // Prepare
      const reauth = {
        ...ACTIVE,
        status: 'REAUTH_REQUIRED',
        reason: 'refresh_rejected',
        lastRotatedAt: undefined,
        failures: 3,
      };
      lambdaMock.on(InvokeCommand).resolves({ StatusCode: 200, Payload: payload(reauth) });
      const keeper = client();

      // Act
      const first = await keeper.getTokenStatus({ userId: 'user-1', resource: 'https://api.example' });
      await keeper.getTokenStatus({ userId: 'user-1', resource: 'https://api.example' });

      // Assess
      expect(first).toMatchObject({ status: 'REAUTH_REQUIRED', reason: 'refresh_rejected', failures: 3 });
      expect(first).not.toHaveProperty('lastRotatedAt');
      expect(lambdaMock).toHaveReceivedCommandTimes(InvokeCommand, 2);
    });

    it('takes the function name from TOKEN_KEEPER_TOKEN_STATUS_FUNCTION, and names it when unset', async () => {
      // Prepare
      lambdaMock.on(InvokeCommand).resolves({ StatusCode: 200, Payload: payload(ACTIVE) });
      vi.stubEnv('TOKEN_KEEPER_TOKEN_STATUS_FUNCTION', 'from-env');

      // Act
      await getTokenStatus({ userId: 'user-1' });
      vi.stubEnv('TOKEN_KEEPER_TOKEN_STATUS_FUNCTION', '');
      const unset = await caught(
        createTokenKeeperClient({ lambdaClient: new LambdaClient({}) }).getTokenStatus({ userId: 'user-1' }),
      );

      // Assess
      expect(lambdaMock).toHaveReceivedCommandWith(InvokeCommand, { FunctionName: 'from-env' });
      expect(unset).toBeInstanceOf(ConfigurationError);
      expect(unset.message).toContain('TOKEN_KEEPER_TOKEN_STATUS_FUNCTION');
    });

    it('throws ValidationError for a bad request without invoking', async () => {
      // Act
      const error = await caught(client().getTokenStatus({ userId: '' }));

      // Assess
      expect(error).toBeInstanceOf(ValidationError);
      expect(lambdaMock).toHaveReceivedCommandTimes(InvokeCommand, 0);
    });

    it('throws TokenNotFoundError when the function answers it', async () => {
      // Prepare
      lambdaMock
        .on(InvokeCommand)
        .resolves(errorAnswer('TokenNotFoundError', 'no live tokens for user "user-1"'));

      // Act
      const error = await caught(client().getTokenStatus({ userId: 'user-1' }));

      // Assess
      expect(error).toBeInstanceOf(TokenNotFoundError);
    });

    it('throws RefreshUnavailableError naming the tokenStatus function when it crashed, without its message', async () => {
      // Prepare
      lambdaMock.on(InvokeCommand).resolves(errorAnswer('Runtime.ExitError', 'secret detail'));

      // Act
      const error = await caught(client().getTokenStatus({ userId: 'user-1' }));

      // Assess
      expect(error).toBeInstanceOf(RefreshUnavailableError);
      expect(error.message).toContain('tokenStatus');
      expect(error.message).not.toContain('secret detail');
    });

    it('throws RefreshUnavailableError when the invocation is throttled, and ConfigurationError naming grantTokenStatus when denied', async () => {
      // Prepare
      const denied = Object.assign(new Error('not authorized'), { name: 'AccessDeniedException' });
      lambdaMock
        .on(InvokeCommand)
        .rejectsOnce(new TooManyRequestsException({ message: 'slow down', $metadata: {} }))
        .rejectsOnce(denied);
      const keeper = client();

      // Act
      const throttled = await caught(keeper.getTokenStatus({ userId: 'user-1' }));
      const refused = await caught(keeper.getTokenStatus({ userId: 'user-1' }));

      // Assess
      expect(throttled).toBeInstanceOf(RefreshUnavailableError);
      expect(refused).toBeInstanceOf(ConfigurationError);
      expect(refused.message).toContain('grantTokenStatus');
    });

    it.each([
      ['not JSON', 'nope'],
      ['an unknown status', JSON.stringify({ ...ACTIVE, status: 'MAYBE' })],
      ['a time that is not one', JSON.stringify({ ...ACTIVE, rotationDeadline: 'soon' })],
      ['negative failures', JSON.stringify({ ...ACTIVE, failures: -1 })],
    ])('throws ConfigurationError for an answer that is %s', async (_name, text) => {
      // Prepare
      lambdaMock
        .on(InvokeCommand)
        .resolves({ StatusCode: 200, Payload: Uint8ArrayBlobAdapter.fromString(text) });

      // Act
      const error = await caught(client().getTokenStatus({ userId: 'user-1' }));

      // Assess
      expect(error).toBeInstanceOf(ConfigurationError);
      expect(error.message).not.toContain(text);
    });
  });
});
