import {
  DecryptionFailure,
  GetSecretValueCommand,
  InternalServiceError,
  ResourceNotFoundException,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { StaticClientCredentials } from '../../../functions/adapters/credentials/client-credentials';
import {
  SecretsManagerClientCredentials,
  type SecretsManagerClientCredentialsOptions,
} from '../../../functions/adapters/credentials/secrets-manager-credentials';
import { ConfigurationError, RefreshUnavailableError } from '../../../functions/core/errors';
import { Secret } from '../../../functions/core/secret';
import { caught, shown } from '../../support/caught';
import { ManualClock } from '../../support/idp-http-server';

const SECRET_ID = 'token-keeper/client-credentials';
const CANARY = 'cs-CANARY-5d21ef';

const smClient = new SecretsManagerClient({
  region: 'eu-west-1',
  credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
});
const sm = mockClient(smClient);

const secretString = (clientId: string, clientSecret: string) =>
  JSON.stringify({ client_id: clientId, client_secret: clientSecret });

function source(
  options: Partial<SecretsManagerClientCredentialsOptions> = {},
): SecretsManagerClientCredentials {
  return new SecretsManagerClientCredentials({ secretId: SECRET_ID, client: smClient, ...options });
}

const reads = () => sm.commandCalls(GetSecretValueCommand).length;

describe('Class: StaticClientCredentials', () => {
  describe('Method: get', () => {
    it('returns the values it was given, the secret wrapped', async () => {
      // Act
      const credentials = await new StaticClientCredentials('app-1', CANARY).get();

      // Assess
      expect(credentials.clientId).toBe('app-1');
      expect(credentials.clientSecret).toBeInstanceOf(Secret);
      expect(credentials.clientSecret.reveal()).toBe(CANARY);
      expect(JSON.stringify(credentials)).not.toContain(CANARY);
    });

    it('survives invalidate()', async () => {
      // Prepare
      const credentials = new StaticClientCredentials('app-1', new Secret(CANARY));

      // Act
      credentials.invalidate();

      // Assess
      expect((await credentials.get()).clientId).toBe('app-1');
    });
  });

  describe('Method: constructor', () => {
    it.each([
      ['CLIENT_ID', '', CANARY],
      ['CLIENT_SECRET', 'app-1', ''],
    ])('throws ConfigurationError naming %s when it is empty', (name, clientId, clientSecret) => {
      expect(() => new StaticClientCredentials(clientId, clientSecret)).toThrow(ConfigurationError);
      expect(() => new StaticClientCredentials(clientId, clientSecret)).toThrow(name);
    });
  });
});

describe('Class: SecretsManagerClientCredentials', () => {
  beforeEach(() => {
    sm.reset();
    sm.on(GetSecretValueCommand).resolves({ SecretString: secretString('app-1', CANARY) });
  });

  describe('Method: get', () => {
    it('reads the secret by id and parses client_id and client_secret', async () => {
      // Act
      const credentials = await source().get();

      // Assess
      expect(sm.commandCalls(GetSecretValueCommand)[0]?.args[0].input).toEqual({ SecretId: SECRET_ID });
      expect(credentials.clientId).toBe('app-1');
      expect(credentials.clientSecret.reveal()).toBe(CANARY);
    });

    it('serves from the cache within the TTL', async () => {
      // Prepare
      const clock = new ManualClock();
      const credentials = source({ cacheTtlMs: 60_000, clock });
      await credentials.get();

      // Act
      clock.advance(59_999);
      await credentials.get();
      await credentials.get();

      // Assess
      expect(reads()).toBe(1);
    });

    it('reads again after the TTL and picks up a rotated secret', async () => {
      // Prepare
      const clock = new ManualClock();
      const credentials = source({ cacheTtlMs: 60_000, clock });
      await credentials.get();
      sm.on(GetSecretValueCommand).resolves({ SecretString: secretString('app-1', 'rotated-secret') });

      // Act
      clock.advance(60_000);
      const fresh = await credentials.get();

      // Assess
      expect(reads()).toBe(2);
      expect(fresh.clientSecret.reveal()).toBe('rotated-secret');
    });

    it('defaults the TTL to 5 minutes', async () => {
      // Prepare
      const clock = new ManualClock();
      const credentials = source({ clock });
      await credentials.get();

      // Act
      clock.advance(5 * 60_000 - 1);
      await credentials.get();
      const beforeExpiry = reads();
      clock.advance(1);
      await credentials.get();

      // Assess
      expect(beforeExpiry).toBe(1);
      expect(reads()).toBe(2);
    });

    it('shares one read between concurrent callers', async () => {
      // Prepare
      const credentials = source();

      // Act
      const results = await Promise.all(Array.from({ length: 10 }, () => credentials.get()));

      // Assess
      expect(reads()).toBe(1);
      expect(new Set(results).size).toBe(1);
    });

    it('does not cache a failure: the next call reads again', async () => {
      // Prepare
      sm.on(GetSecretValueCommand)
        .rejectsOnce(new InternalServiceError({ message: 'x', $metadata: {} }))
        .resolves({ SecretString: secretString('app-1', CANARY) });
      const credentials = source();

      // Act
      await caught(credentials.get());
      const second = await credentials.get();

      // Assess
      expect(second.clientId).toBe('app-1');
      expect(reads()).toBe(2);
    });

    it.each([
      ['not JSON', `{"client_id":"app-1","client_secret":"${CANARY}"`, /not valid JSON/],
      ['a JSON array', `["${CANARY}"]`, /not a JSON object/],
      ['missing client_id', JSON.stringify({ client_secret: CANARY }), /client_id/],
      ['a numeric client_id', JSON.stringify({ client_id: 7, client_secret: CANARY }), /client_id/],
      [
        'missing client_secret',
        JSON.stringify({ client_id: 'app-1', clientSecret: CANARY }),
        /client_secret/,
      ],
      ['an empty client_secret', JSON.stringify({ client_id: 'app-1', client_secret: '' }), /client_secret/],
    ])(
      'throws ConfigurationError naming the secret and field for %s, never the value',
      async (_label, value, field) => {
        // Prepare
        sm.on(GetSecretValueCommand).resolves({ SecretString: value });

        // Act
        const error = await caught(source().get());

        // Assess
        expect(error).toBeInstanceOf(ConfigurationError);
        expect(error.message).toContain(SECRET_ID);
        expect(error.message).toMatch(field);
        expect(shown(error)).not.toContain(CANARY);
        expect(error.cause).toBeUndefined();
      },
    );

    it('throws ConfigurationError when the secret has no SecretString', async () => {
      // Prepare
      sm.on(GetSecretValueCommand).resolves({ SecretBinary: new Uint8Array([1, 2]) });

      // Act
      const error = await caught(source().get());

      // Assess
      expect(error).toBeInstanceOf(ConfigurationError);
      expect(error.message).toContain('SecretString');
    });

    it.each([
      ['ResourceNotFoundException', () => new ResourceNotFoundException({ message: 'nope', $metadata: {} })],
      ['AccessDeniedException', () => Object.assign(new Error('denied'), { name: 'AccessDeniedException' })],
      ['DecryptionFailure', () => new DecryptionFailure({ message: 'kms', $metadata: {} })],
    ])('maps %s to ConfigurationError with the SDK error as cause', async (name, makeError) => {
      // Prepare
      const sdkError = makeError();
      sm.on(GetSecretValueCommand).rejects(sdkError);

      // Act
      const error = await caught(source().get());

      // Assess
      expect(error).toBeInstanceOf(ConfigurationError);
      expect(error.cause).toBe(sdkError);
      expect(error.message).toContain(name);
      expect(error.message).toContain(SECRET_ID);
    });

    it.each([
      [
        'ThrottlingException',
        () => Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }),
      ],
      ['InternalServiceError', () => new InternalServiceError({ message: 'x', $metadata: {} })],
      ['a network error', () => Object.assign(new Error('socket hang up'), { name: 'TimeoutError' })],
    ])(
      'maps %s to a retryable RefreshUnavailableError with the SDK error as cause',
      async (_name, makeError) => {
        // Prepare
        const sdkError = makeError();
        sm.on(GetSecretValueCommand).rejects(sdkError);

        // Act
        const error = await caught(source().get());

        // Assess
        expect(error).toBeInstanceOf(RefreshUnavailableError);
        expect((error as RefreshUnavailableError).retryable).toBe(true);
        expect(error.cause).toBe(sdkError);
      },
    );
  });

  describe('Method: invalidate', () => {
    it('drops the cached value so the next get() reads the secret again', async () => {
      // Prepare
      const credentials = source({ cacheTtlMs: 60_000, clock: new ManualClock() });
      await credentials.get();
      sm.on(GetSecretValueCommand).resolves({ SecretString: secretString('app-1', 'rotated-secret') });

      // Act
      credentials.invalidate();
      const fresh = await credentials.get();

      // Assess
      expect(reads()).toBe(2);
      expect(fresh.clientSecret.reveal()).toBe('rotated-secret');
    });

    it('keeps a read that started before it from repopulating the cache', async () => {
      // Prepare
      const credentials = source();
      const stale = credentials.get();
      credentials.invalidate();
      sm.on(GetSecretValueCommand).resolves({ SecretString: secretString('app-1', 'rotated-secret') });

      // Act
      await stale;
      const fresh = await credentials.get();

      // Assess
      expect(fresh.clientSecret.reveal()).toBe('rotated-secret');
      expect(reads()).toBe(2);
    });
  });
});
