import { describe, expect, it } from 'vitest';
import { rotationSettings } from '../../functions/adapters/runtime';
import {
  awsCallBoundMs,
  commitBoundMs,
  DEFAULT_AWS_CALL_LIMITS,
  LEASE_MARGIN_MS,
  loadConfig,
} from '../../functions/config';
import { ConfigurationError } from '../../functions/core/errors';

const DAY = 86_400;
const BASE = { TOKEN_TABLE_NAME: 'tokens', TOKEN_KEY_ARN: 'arn:aws:kms:eu-west-1:111122223333:key/abc' };

/** The ConfigurationError that loading `env` (over BASE) throws. */
function configErrorOf(
  env: Record<string, string | undefined>,
  base: Record<string, string> = BASE,
): ConfigurationError {
  try {
    loadConfig({ ...base, ...env });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigurationError);
    return error as ConfigurationError;
  }
  throw new Error('expected a ConfigurationError');
}

describe('Function: loadConfig', () => {
  describe('defaults', () => {
    it('needs only the table name and the key, and defaults the rest', () => {
      // Act
      const config = loadConfig(BASE);

      // Assess
      expect(config).toMatchObject({
        tableName: 'tokens',
        idp: { flavor: 'transmit', baseUrl: 'https://api.transmitsecurity.io' },
        credentials: undefined,
        cipher: { kind: 'kms', keyId: BASE.TOKEN_KEY_ARN },
        lifetimes: {
          refreshTokenTtlSeconds: 14 * DAY,
          maxRotationSeconds: 365 * DAY,
          refreshAheadSeconds: 3 * DAY,
        },
        resourceLifetimes: {},
        idpTimeoutMs: 5000,
        leaseSeconds: 30,
        aws: { requestTimeoutMs: 2000, maxAttempts: 2 },
        commitBoundMs: 8200,
        dueShards: 4,
        sweepConcurrency: 8,
        idpRequestsPerSecond: 20,
        reauthSoonSeconds: 14 * DAY,
        metricsNamespace: 'TokenKeeper',
        metricsDisabled: false,
        serviceName: 'token-keeper',
        eventBusName: undefined,
        logLevel: 'INFO',
      });
    });

    it('treats blank values as absent', () => {
      // Act
      const config = loadConfig({ ...BASE, DUE_SHARDS: '  ', IDP_FLAVOR: '', EVENT_BUS_NAME: ' ' });

      // Assess
      expect(config.dueShards).toBe(4);
      expect(config.idp.flavor).toBe('transmit');
      expect(config.eventBusName).toBeUndefined();
    });

    it('reads every setting that is given', () => {
      // Act
      const config = loadConfig({
        ...BASE,
        TRANSMIT_BASE_URL: 'https://api.eu.transmitsecurity.io/',
        CLIENT_CREDENTIALS_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:creds',
        REFRESH_TOKEN_TTL_SECONDS: '86400',
        MAX_ROTATION_SECONDS: '604800',
        REFRESH_AHEAD_SECONDS: ' 3600 ',
        IDP_TIMEOUT_MS: '2000',
        LEASE_SECONDS: '60',
        DUE_SHARDS: '16',
        SWEEP_CONCURRENCY: '32',
        IDP_RATE_LIMIT_RPS: '50',
        REAUTH_SOON_DAYS: '0',
        METRICS_NAMESPACE: 'Custom',
        POWERTOOLS_SERVICE_NAME: 'svc',
        EVENT_BUS_NAME: 'bus',
        LOG_LEVEL: 'DEBUG',
      });

      // Assess
      expect(config).toMatchObject({
        idp: { flavor: 'transmit', baseUrl: 'https://api.eu.transmitsecurity.io' },
        credentials: {
          source: 'secretsManager',
          secretId: 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:creds',
        },
        lifetimes: { refreshTokenTtlSeconds: 86_400, maxRotationSeconds: 604_800, refreshAheadSeconds: 3600 },
        idpTimeoutMs: 2000,
        leaseSeconds: 60,
        dueShards: 16,
        sweepConcurrency: 32,
        idpRequestsPerSecond: 50,
        reauthSoonSeconds: 0,
        metricsNamespace: 'Custom',
        serviceName: 'svc',
        eventBusName: 'bus',
        logLevel: 'DEBUG',
      });
    });

    it('returns a frozen object, parts included', () => {
      // Act
      const config = loadConfig({ ...BASE, CLIENT_ID: 'client', CLIENT_SECRET: 'secret' });

      // Assess
      expect(Object.isFrozen(config)).toBe(true);
      expect(Object.isFrozen(config.idp)).toBe(true);
      expect(Object.isFrozen(config.lifetimes)).toBe(true);
      expect(Object.isFrozen(config.resourceLifetimes)).toBe(true);
      expect(Object.isFrozen(config.cipher)).toBe(true);
      expect(Object.isFrozen(config.credentials)).toBe(true);
    });

    it('does not read process.env', () => {
      // Prepare
      process.env.DUE_SHARDS = '63';

      // Act
      let dueShards: number;
      try {
        dueShards = loadConfig(BASE).dueShards;
      } finally {
        delete process.env.DUE_SHARDS;
      }

      // Assess
      expect(dueShards).toBe(4);
    });
  });

  describe('required settings', () => {
    it.each([undefined, '', '   '])('names TOKEN_TABLE_NAME when it is %j', (value) => {
      // Act
      const error = configErrorOf({ TOKEN_TABLE_NAME: value });

      // Assess
      expect(error.message).toBe('TOKEN_TABLE_NAME is required');
    });

    it('names TOKEN_KEY_ARN when no key is configured', () => {
      // Act
      const error = configErrorOf({ TOKEN_KEY_ARN: undefined });

      // Assess
      expect(error.message).toMatch(/^TOKEN_KEY_ARN is required/);
    });

    it('uses LOCAL_TOKEN_KEY when there is no KMS key, and KMS when both are set', () => {
      // Act
      const local = loadConfig({ TOKEN_TABLE_NAME: 't', LOCAL_TOKEN_KEY: 'a2V5' });
      const both = loadConfig({ ...BASE, LOCAL_TOKEN_KEY: 'a2V5' });

      // Assess
      expect(local.cipher).toEqual({ kind: 'local', keyBase64: 'a2V5' });
      expect(both.cipher.kind).toBe('kms');
    });
  });

  describe('client credentials', () => {
    it('reads static credentials from CLIENT_ID and CLIENT_SECRET', () => {
      // Act
      const config = loadConfig({ ...BASE, CLIENT_ID: 'client', CLIENT_SECRET: 'secret' });

      // Assess
      expect(config.credentials).toEqual({ source: 'static', clientId: 'client', clientSecret: 'secret' });
    });

    it('names CLIENT_SECRET when CLIENT_ID comes without it', () => {
      // Act
      const error = configErrorOf({ CLIENT_ID: 'client' });

      // Assess
      expect(error.message).toBe('CLIENT_SECRET is required');
    });

    it('prefers the Secrets Manager secret over static credentials', () => {
      // Act
      const config = loadConfig({
        ...BASE,
        CLIENT_CREDENTIALS_SECRET_ARN: 'arn:secret',
        CLIENT_ID: 'client',
      });

      // Assess
      expect(config.credentials).toEqual({ source: 'secretsManager', secretId: 'arn:secret' });
    });

    it('never echoes the client secret in an error', () => {
      // Act
      const error = configErrorOf({ CLIENT_ID: 'client', CLIENT_SECRET: 'sekret-value', DUE_SHARDS: 'x' });

      // Assess
      expect(`${error.message} ${JSON.stringify(error)}`).not.toContain('sekret-value');
    });
  });

  describe('identity provider', () => {
    it('proves a refresh token dead only by invalid_grant unless IDP_DEAD_TOKEN_CODES says more', () => {
      // Act
      const defaults = loadConfig(BASE);
      const configured = loadConfig({ ...BASE, IDP_DEAD_TOKEN_CODES: ' invalid_grant, token_revoked ,,' });

      // Assess
      expect(defaults.idpDeadTokenCodes).toEqual(['invalid_grant']);
      expect(configured.idpDeadTokenCodes).toEqual(['invalid_grant', 'token_revoked']);
    });

    it.each(['Invalid Grant', 'invalid-grant', '400', ','])('refuses IDP_DEAD_TOKEN_CODES=%j', (value) => {
      // Act
      const error = configErrorOf({ IDP_DEAD_TOKEN_CODES: value });

      // Assess
      expect(error.message).toMatch(/^IDP_DEAD_TOKEN_CODES must be/);
    });

    it('names IDP_FLAVOR when it is unknown', () => {
      // Act
      const error = configErrorOf({ IDP_FLAVOR: 'saml' });

      // Assess
      expect(error.message).toBe('IDP_FLAVOR must be one of transmit, oauth2');
    });

    it('reads the oauth2 flavour with its defaults', () => {
      // Act
      const config = loadConfig({
        ...BASE,
        IDP_FLAVOR: 'oauth2',
        OAUTH2_TOKEN_ENDPOINT: 'https://idp.example.com/token',
      });

      // Assess
      expect(config.idp).toEqual({
        flavor: 'oauth2',
        tokenEndpoint: 'https://idp.example.com/token',
        clientAuth: 'client_secret_basic',
        revocationEndpoint: undefined,
      });
    });

    it('reads the oauth2 client authentication and revocation endpoint', () => {
      // Act
      const config = loadConfig({
        ...BASE,
        IDP_FLAVOR: 'oauth2',
        OAUTH2_TOKEN_ENDPOINT: 'https://idp.example.com/token',
        OAUTH2_CLIENT_AUTH: 'client_secret_post',
        OAUTH2_REVOCATION_ENDPOINT: 'https://idp.example.com/revoke',
      });

      // Assess
      expect(config.idp).toMatchObject({
        clientAuth: 'client_secret_post',
        revocationEndpoint: 'https://idp.example.com/revoke',
      });
    });

    it.each([
      ['OAUTH2_TOKEN_ENDPOINT', { OAUTH2_TOKEN_ENDPOINT: undefined }, 'OAUTH2_TOKEN_ENDPOINT is required'],
      ['OAUTH2_CLIENT_AUTH', { OAUTH2_CLIENT_AUTH: 'private_key_jwt' }, 'OAUTH2_CLIENT_AUTH must be one of'],
      [
        'OAUTH2_REVOCATION_ENDPOINT',
        { OAUTH2_REVOCATION_ENDPOINT: 'revoke' },
        'OAUTH2_REVOCATION_ENDPOINT must be',
      ],
    ])('names %s when it is missing or malformed', (_name, env, message) => {
      // Act
      const error = configErrorOf({
        IDP_FLAVOR: 'oauth2',
        OAUTH2_TOKEN_ENDPOINT: 'https://idp.example.com/token',
        ...env,
      });

      // Assess
      expect(error.message.startsWith(message)).toBe(true);
    });

    it.each([
      'http://localhost:8080',
      'http://127.0.0.1:9000/base',
      'http://127.9.8.7',
      'http://[::1]:9000',
      'http://LOCALHOST:1',
      'https://api.sbx.transmitsecurity.io',
    ])('accepts %s as a base URL', (url) => {
      // Act
      const config = loadConfig({ ...BASE, TRANSMIT_BASE_URL: url });

      // Assess
      expect(config.idp.flavor === 'transmit' && config.idp.baseUrl).toBe(url);
    });

    it.each([
      'http://api.transmitsecurity.io',
      'http://localhost.attacker.example',
      'http://127.0.0.1.nip.io',
      'http://10.0.0.1',
      'http://[::2]',
      'ftp://localhost/',
      'file:///etc/passwd',
    ])('rejects %s: http only for loopback', (url) => {
      // Act
      const error = configErrorOf({ TRANSMIT_BASE_URL: url });

      // Assess
      expect(error.message).toBe('TRANSMIT_BASE_URL must use https (http only for localhost)');
    });

    it.each(['api.transmitsecurity.io', '/relative', 'https://'])(
      'rejects %s: not an absolute URL',
      (url) => {
        // Act
        const error = configErrorOf({ TRANSMIT_BASE_URL: url });

        // Assess
        expect(error.message).toBe('TRANSMIT_BASE_URL must be an absolute URL');
      },
    );

    it('drops trailing slashes', () => {
      // Act
      const config = loadConfig({ ...BASE, TRANSMIT_BASE_URL: 'https://idp.example.com/base//' });

      // Assess
      expect(config.idp.flavor === 'transmit' && config.idp.baseUrl).toBe('https://idp.example.com/base');
    });
  });

  describe('numbers', () => {
    it.each([
      ['REFRESH_TOKEN_TTL_SECONDS', ['abc', '-1', '1.5', '1e6', '0x100', '59', '9007199254740993']],
      ['MAX_ROTATION_SECONDS', ['abc', '-86400', '59', '31536000.0']],
      ['REFRESH_AHEAD_SECONDS', ['0', '-1', 'soon', '3600s']],
      ['IDP_TIMEOUT_MS', ['99', '0', 'fast', '5000ms']],
      ['LEASE_SECONDS', ['0', '-30', 'thirty']],
      ['DUE_SHARDS', ['0', '65', '4.0', 'four']],
      ['SWEEP_CONCURRENCY', ['0', '257', '+8']],
      ['IDP_RATE_LIMIT_RPS', ['0', '10001', '2.5']],
      ['REAUTH_SOON_DAYS', ['-1', '366', '14d']],
    ])('names %s for each malformed value', (name, values) => {
      for (const value of values) {
        // Act
        const error = configErrorOf({ [name]: value });

        // Assess
        expect(error.message.startsWith(`${name} must be an integer between`)).toBe(true);
      }
    });

    it('accepts the bounds of DUE_SHARDS and SWEEP_CONCURRENCY', () => {
      // Act
      const low = loadConfig({ ...BASE, DUE_SHARDS: '1', SWEEP_CONCURRENCY: '1' });
      const high = loadConfig({ ...BASE, DUE_SHARDS: '64', SWEEP_CONCURRENCY: '256' });

      // Assess
      expect([low.dueShards, low.sweepConcurrency, high.dueShards, high.sweepConcurrency]).toEqual([
        1, 1, 64, 256,
      ]);
    });

    it('rejects REFRESH_AHEAD_SECONDS equal to or longer than REFRESH_TOKEN_TTL_SECONDS', () => {
      // Act
      const equal = configErrorOf({ REFRESH_AHEAD_SECONDS: String(14 * DAY) });
      const shortTtl = configErrorOf({ REFRESH_TOKEN_TTL_SECONDS: '3600' });
      const fine = loadConfig({ ...BASE, REFRESH_AHEAD_SECONDS: String(14 * DAY - 1) });

      // Assess
      expect(equal.message).toBe('REFRESH_AHEAD_SECONDS must be shorter than REFRESH_TOKEN_TTL_SECONDS');
      expect(shortTtl.message).toBe('REFRESH_AHEAD_SECONDS must be shorter than REFRESH_TOKEN_TTL_SECONDS');
      expect(fine.lifetimes.refreshAheadSeconds).toBe(14 * DAY - 1);
    });

    it('rejects a lease that does not cover the IdP timeout, the bounded commit and the margin, naming the settings', () => {
      // Prepare: with KMS, a commit is a GenerateDataKey and a PutItem of 2 x 2000 + 100 ms each.
      const commit = 2 * (2 * 2000 + 100);
      expect(5000 + commit + LEASE_MARGIN_MS).toBe(14_200);

      // Act
      const error = configErrorOf({ LEASE_SECONDS: '14', IDP_TIMEOUT_MS: '5000' });
      const fine = loadConfig({ ...BASE, LEASE_SECONDS: '15', IDP_TIMEOUT_MS: '5000' });

      // Assess
      expect(error.message).toMatch(
        /^LEASE_SECONDS must be longer than IDP_TIMEOUT_MS \+ the bounded commit/,
      );
      for (const name of ['IDP_TIMEOUT_MS', 'AWS_MAX_ATTEMPTS', 'AWS_REQUEST_TIMEOUT_MS']) {
        expect(error.message).toContain(name);
      }
      expect(error.message).toContain('14000 ms <= 5000 + 8200 + 1000 ms');
      expect(fine.leaseSeconds).toBe(15);
      expect(fine.commitBoundMs).toBe(commit);
    });

    it('counts the AWS deadlines in the lease check: longer timeouts or more attempts need a longer lease', () => {
      // Act
      const slow = configErrorOf({ AWS_REQUEST_TIMEOUT_MS: '10000' });
      const retries = configErrorOf({ AWS_MAX_ATTEMPTS: '4', LEASE_SECONDS: '20' });
      const fewer = loadConfig({ ...BASE, AWS_MAX_ATTEMPTS: '1', LEASE_SECONDS: '11' });

      // Assess: 2 x (2 x 10000 + 100) and 2 x (4 x 2000 + 100 + 200 + 400) do not fit.
      expect(slow.message).toContain('30000 ms <= 5000 + 40200 + 1000 ms');
      expect(retries.message).toContain('20000 ms <= 5000 + 17400 + 1000 ms');
      expect(fewer.commitBoundMs).toBe(2 * 2000);
    });

    it('keeps no KMS call in the commit bound with a local key', () => {
      // Act
      const config = loadConfig({ TOKEN_TABLE_NAME: 'tokens', LOCAL_TOKEN_KEY: 'a2V5', LEASE_SECONDS: '11' });

      // Assess: 5000 + (2 x 2000 + 100) + 1000 < 11000
      expect(config.commitBoundMs).toBe(4100);
    });

    it('names AWS_REQUEST_TIMEOUT_MS and AWS_MAX_ATTEMPTS when they are out of range', () => {
      for (const [name, values] of [
        ['AWS_REQUEST_TIMEOUT_MS', ['49', '60001', '2s', '-1']],
        ['AWS_MAX_ATTEMPTS', ['0', '11', 'two']],
      ] as const) {
        for (const value of values) {
          // Act
          const error = configErrorOf({ [name]: value });

          // Assess
          expect(error.message.startsWith(`${name} must be an integer between`)).toBe(true);
        }
      }
    });

    it('names LOG_LEVEL when it is unknown', () => {
      // Act
      const error = configErrorOf({ LOG_LEVEL: 'VERBOSE' });

      // Assess
      expect(error.message).toMatch(/^LOG_LEVEL must be one of/);
    });
  });

  describe('RESOURCE_LIFETIMES', () => {
    it('parses per-resource overrides', () => {
      // Act
      const config = loadConfig({
        ...BASE,
        RESOURCE_LIFETIMES: JSON.stringify({
          'https://api.example.com': { refreshTokenTtlSeconds: DAY, refreshAheadSeconds: 3600 },
          'urn:short': { maxRotationSeconds: 7 * DAY },
        }),
      });

      // Assess
      expect(config.resourceLifetimes).toEqual({
        'https://api.example.com': { refreshTokenTtlSeconds: DAY, refreshAheadSeconds: 3600 },
        'urn:short': { maxRotationSeconds: 7 * DAY },
      });
      expect(Object.isFrozen(config.resourceLifetimes['urn:short'])).toBe(true);
    });

    it.each(['not json', '[]', '"text"', 'null', '42'])('rejects %s as not a JSON object', (raw) => {
      // Act
      const error = configErrorOf({ RESOURCE_LIFETIMES: raw });

      // Assess
      expect(error.message).toBe('RESOURCE_LIFETIMES must be a JSON object');
    });

    it.each([
      ['an entry that is not an object', { r: 5 }, 'RESOURCE_LIFETIMES["r"] must be an object'],
      ['an entry that is an array', { r: [] }, 'RESOURCE_LIFETIMES["r"] must be an object'],
      ['an unknown field', { r: { ttl: 5 } }, 'RESOURCE_LIFETIMES["r"].ttl is not a known lifetime'],
      [
        'zero',
        { r: { maxRotationSeconds: 0 } },
        'RESOURCE_LIFETIMES["r"].maxRotationSeconds must be a positive integer',
      ],
      [
        'a negative',
        { r: { maxRotationSeconds: -1 } },
        'RESOURCE_LIFETIMES["r"].maxRotationSeconds must be a positive integer',
      ],
      [
        'a fraction',
        { r: { maxRotationSeconds: 1.5 } },
        'RESOURCE_LIFETIMES["r"].maxRotationSeconds must be a positive integer',
      ],
      [
        'a string',
        { r: { maxRotationSeconds: '60' } },
        'RESOURCE_LIFETIMES["r"].maxRotationSeconds must be a positive integer',
      ],
      [
        'refreshAhead not shorter than its TTL',
        { r: { refreshTokenTtlSeconds: 3600 } },
        'REFRESH_AHEAD_SECONDS["r"] must be shorter than REFRESH_TOKEN_TTL_SECONDS["r"]',
      ],
      [
        'refreshAhead over the default TTL',
        { r: { refreshAheadSeconds: 15 * DAY } },
        'REFRESH_AHEAD_SECONDS["r"] must be shorter than REFRESH_TOKEN_TTL_SECONDS["r"]',
      ],
    ])('rejects %s, naming the resource', (_label, value, message) => {
      // Act
      const error = configErrorOf({ RESOURCE_LIFETIMES: JSON.stringify(value) });

      // Assess
      expect(error.message).toBe(message);
    });

    it('keeps __proto__ and constructor as plain resource names, without polluting prototypes', () => {
      // Act
      const config = loadConfig({
        ...BASE,
        RESOURCE_LIFETIMES:
          '{"__proto__":{"refreshAheadSeconds":60},"constructor":{"refreshAheadSeconds":120}}',
      });

      // Assess
      expect(Object.getOwnPropertyNames(config.resourceLifetimes).sort()).toEqual([
        '__proto__',
        'constructor',
      ]);
      expect(config.resourceLifetimes.constructor).toEqual({ refreshAheadSeconds: 120 });
      expect(({} as Record<string, unknown>).refreshAheadSeconds).toBeUndefined();
      expect(config.resourceLifetimes.toString).toBeUndefined();
    });
  });
});

describe('Function: awsCallBoundMs', () => {
  it('is every attempt timing out plus the longest backoff before each retry', () => {
    // Act & Assess
    expect(awsCallBoundMs({ requestTimeoutMs: 2000, maxAttempts: 1 })).toBe(2000);
    expect(awsCallBoundMs({ requestTimeoutMs: 2000, maxAttempts: 2 })).toBe(4100);
    expect(awsCallBoundMs({ requestTimeoutMs: 500, maxAttempts: 3 })).toBe(1500 + 100 + 200);
    // The backoff is capped at 1 s: 100 + 200 + 400 + 800 + 1000 x 5.
    expect(awsCallBoundMs({ requestTimeoutMs: 100, maxAttempts: 10 })).toBe(1000 + 1500 + 5000);
  });

  it('doubles for a commit with KMS (sealing may call GenerateDataKey before the PutItem)', () => {
    // Act & Assess
    expect(commitBoundMs(DEFAULT_AWS_CALL_LIMITS, 'kms')).toBe(2 * awsCallBoundMs(DEFAULT_AWS_CALL_LIMITS));
    expect(commitBoundMs(DEFAULT_AWS_CALL_LIMITS, 'local')).toBe(awsCallBoundMs(DEFAULT_AWS_CALL_LIMITS));
  });
});

describe('Function: rotationSettings', () => {
  it('keeps the computed commit bound of the lease for the commit', () => {
    // Prepare
    const config = loadConfig({ ...BASE, AWS_REQUEST_TIMEOUT_MS: '1500', AWS_MAX_ATTEMPTS: '3' });

    // Act
    const settings = rotationSettings(config);

    // Assess: 2 x (3 x 1500 + 100 + 200)
    expect(config.commitBoundMs).toBe(9600);
    expect(settings.commitReserveMs).toBe(9600);
    expect(settings.leaseMs).toBeGreaterThan(
      settings.idpTimeoutMs + settings.commitReserveMs + LEASE_MARGIN_MS,
    );
  });
});
