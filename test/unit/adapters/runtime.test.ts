import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { buildRuntime, lambdaRuntime } from '../../../functions/adapters/runtime';
import { loadConfig } from '../../../functions/config';
import { ConfigurationError } from '../../../functions/core/errors';
import type { IdTokenVerifier } from '../../../functions/core/ports';
import { Secret } from '../../../functions/core/secret';
import { caught } from '../../support/caught';
import { FakeClock, InMemoryTokenStore } from '../../support/fakes';

const ID_TOKEN_ENV = {
  ID_TOKEN_JWKS_URL: 'http://127.0.0.1:9/cis/oidc/jwks',
  ID_TOKEN_ISSUER: 'https://userid.security',
};

function configWith(env: Record<string, string> = {}) {
  return loadConfig({
    TOKEN_TABLE_NAME: 'tokens',
    TRANSMIT_BASE_URL: 'http://127.0.0.1:9',
    CLIENT_ID: 'local-client',
    CLIENT_SECRET: 'local-secret',
    LOCAL_TOKEN_KEY: randomBytes(32).toString('base64'),
    ...env,
  });
}

function storeInput() {
  return {
    key: { userId: 'user-1', resource: 'default' },
    authenticatedAt: undefined,
    tokens: {
      accessToken: new Secret('access'),
      refreshToken: new Secret('refresh'),
      idToken: new Secret('id'),
      tokenType: 'Bearer',
      expiresIn: 3600,
    },
  };
}

describe('Function: buildRuntime', () => {
  it('builds the ID token verifier through idTokenVerifierFor, with the settings and the clock', async () => {
    // Prepare
    const clock = new FakeClock();
    const verify = vi.fn<IdTokenVerifier['verify']>(async () => undefined);
    const idTokenVerifierFor = vi.fn(() => ({ verify }));
    const runtime = buildRuntime(configWith(ID_TOKEN_ENV), {
      clock,
      store: new InMemoryTokenStore(),
      idTokenVerifierFor,
    });

    // Act
    await runtime.tokenService.storeTokens(storeInput());

    // Assess
    expect(idTokenVerifierFor).toHaveBeenCalledWith(
      {
        jwksUrl: ID_TOKEN_ENV.ID_TOKEN_JWKS_URL,
        issuer: ID_TOKEN_ENV.ID_TOKEN_ISSUER,
        audience: 'local-client',
      },
      { clock },
    );
    expect(verify).toHaveBeenCalledWith(expect.any(Secret), 'user-1');
  });

  it('fails closed when ID token verification is configured but no verifier was built', async () => {
    // Prepare
    const clock = new FakeClock();
    const store = new InMemoryTokenStore();
    const runtime = buildRuntime(configWith(ID_TOKEN_ENV), { clock, store });

    // Act
    const error = await caught(runtime.tokenService.storeTokens(storeInput()));

    // Assess
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(await store.currentVersion({ userId: 'user-1', resource: 'default' })).toBeUndefined();
  });

  it('builds no verifier when verification is not configured', async () => {
    // Prepare
    const clock = new FakeClock();
    const idTokenVerifierFor = vi.fn();
    const runtime = buildRuntime(configWith(), {
      clock,
      store: new InMemoryTokenStore(),
      idTokenVerifierFor,
    });

    // Act
    await runtime.tokenService.storeTokens(storeInput());

    // Assess
    expect(idTokenVerifierFor).not.toHaveBeenCalled();
  });
});

describe('Function: lambdaRuntime', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('builds tokenStatus without IdP credentials (it never calls the IdP), and refuses getAccessToken without them', () => {
    // Prepare: the environment is read once per process, so both roles see this one.
    vi.stubEnv('TOKEN_TABLE_NAME', 'tokens');
    vi.stubEnv('LOCAL_TOKEN_KEY', randomBytes(32).toString('base64'));
    vi.stubEnv('CLIENT_ID', '');
    vi.stubEnv('CLIENT_SECRET', '');
    vi.stubEnv('CLIENT_CREDENTIALS_SECRET_ARN', '');

    // Act
    const status = () => lambdaRuntime('tokenStatus');
    const serve = () => lambdaRuntime('getAccessToken');

    // Assess
    expect(status).not.toThrow();
    expect(serve).toThrow(ConfigurationError);
  });
});
