import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TransmitIdentityProvider } from '../../functions/adapters/idp/transmit';
import { IdpConfigurationError, IdpPermanentError, IdpTransientError } from '../../functions/core/errors';
import { Secret } from '../../functions/core/secret';
import {
  startTransmitServer,
  type TransmitServer,
  type TransmitServerOptions,
} from '../../local/transmit-server';
import { caught, shown } from '../support/caught';
import {
  ManualClock,
  type Reply,
  type ScriptedServer,
  startScriptedServer,
} from '../support/idp-http-server';
import { RotatingCredentials } from '../support/rotating-credentials';

const TOKEN_PATH = '/oidc/token';
const REFRESH_PATH = '/cis/v1/auth/token/refresh';
const LOGOUT_PATH = '/cis/v1/auth/session/logout';

// Canary strings: none of them may ever appear in an error.
const REFRESH_TOKEN = 'rt-CANARY-old-4c1d';
const NEW_REFRESH_TOKEN = 'rt-CANARY-new-8e2f';
const ACCESS_TOKEN = 'at-CANARY-5a6b';
const ID_TOKEN = 'id-CANARY-3c4d';
const SESSION_ID = 'sid-CANARY-9a0b';
const CLIENT_SECRET = 'cs-CANARY-7e7e';
const CANARIES = [REFRESH_TOKEN, NEW_REFRESH_TOKEN, ACCESS_TOKEN, ID_TOKEN, SESSION_ID, CLIENT_SECRET, 'ct-'];

let server: ScriptedServer;
let clock: ManualClock;
let credentials: RotatingCredentials;

function idp(baseUrl = server.url): TransmitIdentityProvider {
  return new TransmitIdentityProvider({ baseUrl, credentials, clock });
}

/** Answers every client token request with a new token `ct-<n>` valid for 1 h. */
function issueClientTokens(): void {
  let issued = 0;
  server.route(TOKEN_PATH, () => {
    issued += 1;
    return { status: 200, body: { access_token: `ct-${issued}`, token_type: 'Bearer', expires_in: 3600 } };
  });
}

const refreshed: Reply = {
  status: 200,
  body: {
    access_token: ACCESS_TOKEN,
    id_token: ID_TOKEN,
    refresh_token: NEW_REFRESH_TOKEN,
    token_type: 'Bearer',
    expires_in: 3600,
  },
};

const refresh = (provider = idp(), timeoutMs = 2000) =>
  provider.refresh(new Secret(REFRESH_TOKEN), { timeoutMs });

function expectNoCanary(error: Error): void {
  const text = shown(error);
  for (const canary of CANARIES) expect(text).not.toContain(canary);
}

describe('Class: TransmitIdentityProvider', () => {
  beforeEach(async () => {
    server = await startScriptedServer();
    clock = new ManualClock();
    credentials = new RotatingCredentials('app-1', [CLIENT_SECRET, `${CLIENT_SECRET}-rotated`]);
    issueClientTokens();
  });

  afterEach(async () => {
    expect(server.unusedReplies()).toBe(0);
    await server.close();
  });

  describe('Method: refresh', () => {
    it('gets a client token, then POSTs the refresh token as JSON with the Bearer client token', async () => {
      // Prepare
      server.enqueue(REFRESH_PATH, refreshed);

      // Act
      await refresh();

      // Assess
      expect(server.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
        `POST ${TOKEN_PATH}`,
        `POST ${REFRESH_PATH}`,
      ]);
      const tokenRequest = server.requests[0]!;
      expect(tokenRequest.headers['content-type']).toBe('application/x-www-form-urlencoded');
      expect(Object.fromEntries(new URLSearchParams(tokenRequest.body))).toEqual({
        grant_type: 'client_credentials',
        client_id: 'app-1',
        client_secret: CLIENT_SECRET,
      });
      const refreshRequest = server.requests[1]!;
      expect(refreshRequest.headers['content-type']).toBe('application/json');
      expect(refreshRequest.headers.accept).toBe('application/json');
      expect(refreshRequest.headers.authorization).toBe('Bearer ct-1');
      expect(JSON.parse(refreshRequest.body)).toEqual({ refresh_token: REFRESH_TOKEN });
    });

    it('returns the new token set held in Secrets', async () => {
      // Prepare
      server.enqueue(REFRESH_PATH, refreshed);

      // Act
      const tokens = await refresh();

      // Assess
      expect(tokens.accessToken).toBeInstanceOf(Secret);
      expect(tokens.accessToken?.reveal()).toBe(ACCESS_TOKEN);
      expect(tokens.refreshToken?.reveal()).toBe(NEW_REFRESH_TOKEN);
      expect(tokens.idToken?.reveal()).toBe(ID_TOKEN);
      expect(tokens.tokenType).toBe('Bearer');
      expect(tokens.expiresIn).toBe(3600);
      expect(JSON.stringify(tokens)).not.toContain('CANARY');
    });

    it('accepts an answer without id_token and token_type', async () => {
      // Prepare
      server.enqueue(REFRESH_PATH, {
        status: 200,
        body: { access_token: ACCESS_TOKEN, refresh_token: NEW_REFRESH_TOKEN, expires_in: 60 },
      });

      // Act
      const tokens = await refresh();

      // Assess
      expect(tokens.idToken).toBeUndefined();
      expect(tokens.tokenType).toBeUndefined();
      expect(tokens.expiresIn).toBe(60);
    });

    it('accepts a base URL with a trailing slash', async () => {
      // Prepare
      server.enqueue(REFRESH_PATH, refreshed);

      // Act
      await refresh(idp(`${server.url}/`));

      // Assess
      expect(server.requests.map((r) => r.path)).toEqual([TOKEN_PATH, REFRESH_PATH]);
    });

    it('makes one client token call for many refreshes, and a new one after it expires', async () => {
      // Prepare
      server.route(REFRESH_PATH, () => refreshed);
      const provider = idp();

      // Act
      for (let i = 0; i < 5; i += 1) await refresh(provider);
      clock.advance((3600 - 60) * 1000);
      await refresh(provider);

      // Assess
      expect(server.requestsTo(TOKEN_PATH)).toHaveLength(2);
      const bearers = server.requestsTo(REFRESH_PATH).map((r) => r.headers.authorization);
      expect(bearers).toEqual([...Array(5).fill('Bearer ct-1'), 'Bearer ct-2']);
    });

    it('shares one client token request between concurrent refreshes', async () => {
      // Prepare
      server.route(REFRESH_PATH, () => refreshed);
      const provider = idp();

      // Act
      await Promise.all(Array.from({ length: 8 }, () => refresh(provider)));

      // Assess
      expect(server.requestsTo(TOKEN_PATH)).toHaveLength(1);
      expect(server.requestsTo(REFRESH_PATH)).toHaveLength(8);
    });

    it('drops the client token after a 401 and retries once with a fresh one', async () => {
      // Prepare
      server.enqueue(REFRESH_PATH, { status: 401, body: { message: 'jwt expired' } }, refreshed);

      // Act
      const tokens = await refresh();

      // Assess
      expect(tokens.refreshToken?.reveal()).toBe(NEW_REFRESH_TOKEN);
      const refreshes = server.requestsTo(REFRESH_PATH);
      expect(refreshes.map((r) => r.headers.authorization)).toEqual(['Bearer ct-1', 'Bearer ct-2']);
      expect(refreshes.map((r) => r.body)).toEqual([refreshes[0]!.body, refreshes[0]!.body]);
      expect(server.requestsTo(TOKEN_PATH)).toHaveLength(2);
    });

    it('treats a second 401 as a configuration problem, after exactly one retry', async () => {
      // Prepare
      const unauthorized: Reply = {
        status: 401,
        body: { message: 'Unauthorized', error_code: 'unauthorized' },
      };
      server.enqueue(REFRESH_PATH, unauthorized, unauthorized);

      // Act
      const error = await caught(refresh());

      // Assess
      expect(error).toBeInstanceOf(IdpConfigurationError);
      expect((error as IdpConfigurationError).status).toBe(401);
      expect((error as IdpConfigurationError).code).toBe('unauthorized');
      expect(server.requestsTo(REFRESH_PATH)).toHaveLength(2);
    });

    it('treats a second 401 with a dead-token code as proof, after exactly one retry', async () => {
      // Prepare
      const dead: Reply = {
        status: 401,
        body: { message: 'Invalid refresh token', error_code: 'invalid_grant' },
      };
      server.enqueue(REFRESH_PATH, dead, dead);

      // Act
      const error = await caught(refresh());

      // Assess
      expect(error).toBeInstanceOf(IdpPermanentError);
      expect((error as IdpPermanentError).code).toBe('invalid_grant');
      expect(server.requestsTo(REFRESH_PATH)).toHaveLength(2);
    });

    it.each([
      [400, { error: 'invalid_grant', error_description: `token ${REFRESH_TOKEN} revoked` }, 'invalid_grant'],
      [400, { message: 'Refresh token expired', error_code: 'invalid_grant' }, 'invalid_grant'],
    ])('classifies HTTP %s %j as IdpPermanentError with code %s', async (status, body, code) => {
      // Prepare
      server.enqueue(REFRESH_PATH, { status, body });

      // Act
      const error = await caught(refresh());

      // Assess
      expect(error).toBeInstanceOf(IdpPermanentError);
      expect((error as IdpPermanentError).status).toBe(status);
      expect((error as IdpPermanentError).code).toBe(code);
      expect(error.message).toContain(`HTTP ${status}`);
      expect(error.message).toContain(code);
      expect(error.message).not.toContain('revoked');
      expectNoCanary(error);
    });

    it.each([
      [403, { message: 'Forbidden' }],
      [403, '<html>WAF</html>'],
      [400, { error: 'invalid_request' }],
      [400, { message: 'no', error_code: 'unauthorized_client' }],
    ])('classifies HTTP %s %j as IdpConfigurationError', async (status, body) => {
      // Prepare
      server.enqueue(REFRESH_PATH, { status, body });

      // Act
      const error = await caught(refresh());

      // Assess
      expect(error).toBeInstanceOf(IdpConfigurationError);
      expect(error.message).toContain(`HTTP ${status}`);
      expectNoCanary(error);
    });

    it.each([
      [408, { message: 'timeout' }, false],
      [429, { message: 'Too many requests' }, true],
      [500, { message: 'boom' }, false],
      [502, '<html>Bad gateway</html>', false],
      [503, { message: 'unavailable' }, true],
      [504, '', false],
      [404, { message: 'Not found' }, false],
      [409, { message: 'conflict' }, false],
      [302, '', false],
      [400, '<html>proxy error</html>', false],
      [400, { message: 'Refresh token expired', error_code: 'token_expired' }, false],
      [400, { message: 'Bad request', error_code: 400 }, false],
      [400, { error: 'Free Text With Spaces' }, false],
      [400, { error: 'x'.repeat(65) }, false],
      [400, { error: 'temporarily_unavailable' }, true],
      [400, { error: 'slow_down' }, true],
      [500, { error: 'server_error' }, false],
      [503, { error: 'server_error' }, false],
    ])('classifies HTTP %s (%j) as IdpTransientError, notConsumed %s', async (status, body, notConsumed) => {
      // Prepare
      server.enqueue(REFRESH_PATH, {
        status,
        body,
        headers: status === 302 ? { location: 'https://elsewhere.invalid/steal' } : {},
      });

      // Act
      const error = await caught(refresh());

      // Assess
      expect(error).toBeInstanceOf(IdpTransientError);
      expect((error as IdpTransientError).status).toBe(status);
      expect((error as IdpTransientError).retryable).toBe(true);
      expect((error as IdpTransientError).notConsumed).toBe(notConsumed);
      expect(error.message).toContain(`HTTP ${status}`);
      expectNoCanary(error);
    });

    it.each([
      ['delta seconds', '30', 30],
      ['delta seconds above the cap', '99999', 3600],
      ['an HTTP date 2 minutes ahead', 'date+120', 120],
      ['an HTTP date in the past', 'date-60', 0],
      ['an HTTP date days ahead', 'date+864000', 3600],
      ['garbage', 'soon-ish', undefined],
      ['a negative number', '-5', undefined],
    ])('reads Retry-After given as %s', async (_label, header, expected) => {
      // Prepare
      const value = header.startsWith('date')
        ? new Date(clock.nowMs() + Number(header.slice(4)) * 1000).toUTCString()
        : header;
      server.enqueue(REFRESH_PATH, {
        status: 429,
        body: { message: 'slow down' },
        headers: { 'retry-after': value },
      });

      // Act
      const error = await caught(refresh());

      // Assess
      expect(error).toBeInstanceOf(IdpTransientError);
      expect((error as IdpTransientError).retryAfterSeconds).toBe(expected);
    });

    it('throws IdpTransientError when the refresh call does not answer in time', async () => {
      // Prepare
      server.enqueue(REFRESH_PATH, 'hang');
      const started = performance.now();

      // Act
      const error = await caught(refresh(idp(), 200));

      // Assess
      expect(error).toBeInstanceOf(IdpTransientError);
      expect((error as IdpTransientError).status).toBeUndefined();
      expect(error.message).toContain('timed out');
      expect(performance.now() - started).toBeLessThan(5000);
    });

    it('bounds the client token call and the refresh with one deadline', async () => {
      // Prepare
      server.route(TOKEN_PATH, () => 'hang');

      // Act
      const error = await caught(refresh(idp(), 200));

      // Assess
      expect(error).toBeInstanceOf(IdpTransientError);
      expect(server.requestsTo(REFRESH_PATH)).toHaveLength(0);
    });

    it('throws IdpTransientError for a network failure', async () => {
      // Prepare
      const deadUrl = server.url;
      server.enqueue(REFRESH_PATH, refreshed); // consumed below, so afterEach stays clean
      await refresh();
      await server.close();
      const provider = new TransmitIdentityProvider({ baseUrl: deadUrl, credentials, clock });

      // Act
      const error = await caught(refresh(provider));

      // Assess
      expect(error).toBeInstanceOf(IdpTransientError);
      // A pooled keep-alive socket reads as a reset (maybe consumed), a new connection as refused.
      expect(error.message).toMatch(/network error|connection refused/);
      server = await startScriptedServer(); // for afterEach
    });

    it.each([
      ['missing access_token', { refresh_token: NEW_REFRESH_TOKEN, expires_in: 3600 }, '-r-e'],
      ['missing refresh_token', { access_token: ACCESS_TOKEN, expires_in: 3600 }, 'a--e'],
      ['empty refresh_token', { access_token: ACCESS_TOKEN, refresh_token: '', expires_in: 3600 }, 'a--e'],
      [
        'numeric access_token',
        { access_token: 12345, refresh_token: NEW_REFRESH_TOKEN, expires_in: 3600 },
        '-r-e',
      ],
      [
        'expires_in as a string',
        { access_token: ACCESS_TOKEN, refresh_token: NEW_REFRESH_TOKEN, expires_in: '3600' },
        'ar-e',
      ],
      [
        'expires_in as words',
        { access_token: ACCESS_TOKEN, refresh_token: NEW_REFRESH_TOKEN, expires_in: 'an hour' },
        'ar--',
      ],
      ['missing expires_in', { access_token: ACCESS_TOKEN, refresh_token: NEW_REFRESH_TOKEN }, 'ar--'],
      [
        'numeric token_type',
        { access_token: ACCESS_TOKEN, refresh_token: NEW_REFRESH_TOKEN, expires_in: 3600, token_type: 1 },
        'ar-e',
      ],
      [
        'object id_token',
        { access_token: ACCESS_TOKEN, refresh_token: NEW_REFRESH_TOKEN, expires_in: 3600, id_token: {} },
        'ar-e',
      ],
      ['a JSON array', [ACCESS_TOKEN, NEW_REFRESH_TOKEN], '----'],
      ['not JSON', `access_token=${ACCESS_TOKEN}&refresh_token=${NEW_REFRESH_TOKEN}`, '----'],
      ['an empty body', '', '----'],
    ])('resolves a sloppy 200 (%s) with what is usable, never throwing', async (_label, body, usable) => {
      // Prepare
      server.enqueue(REFRESH_PATH, { status: 200, body });

      // Act
      const answer = await refresh();

      // Assess
      const seen = [
        answer.accessToken ? 'a' : '-',
        answer.refreshToken ? 'r' : '-',
        answer.idToken ? 'i' : '-',
        answer.expiresIn === 3600 ? 'e' : '-',
      ].join('');
      expect(seen).toBe(usable);
      expect(JSON.stringify(answer)).not.toContain('CANARY');
    });

    it('throws IdpConfigurationError, without calling refresh, when the IdP refuses the client', async () => {
      // Prepare
      server.enqueue(
        TOKEN_PATH,
        { status: 401, body: { error: 'invalid_client' } },
        {
          status: 401,
          body: { error: 'invalid_client' },
        },
      );

      // Act
      const error = await caught(refresh());

      // Assess
      expect(error).toBeInstanceOf(IdpConfigurationError);
      expect(error).not.toBeInstanceOf(IdpPermanentError);
      expect(server.requestsTo(REFRESH_PATH)).toHaveLength(0);
      expectNoCanary(error);
    });

    it.each([
      [503, { 'retry-after': '10' }, 10],
      [502, {}, undefined],
    ])(
      'throws IdpTransientError, not consumed, when the client token endpoint answers %s',
      async (status, headers, retryAfter) => {
        // Prepare
        server.enqueue(TOKEN_PATH, { status, headers });

        // Act
        const error = await caught(refresh());

        // Assess
        expect(error).toBeInstanceOf(IdpTransientError);
        expect((error as IdpTransientError).retryAfterSeconds).toBe(retryAfter);
        expect((error as IdpTransientError).notConsumed).toBe(true);
        expect(server.requestsTo(REFRESH_PATH)).toHaveLength(0);
      },
    );
  });

  describe('Method: logout', () => {
    const logout = (provider = idp()) => provider.logout(new Secret(SESSION_ID), { timeoutMs: 2000 });

    it('POSTs the session id as JSON with the Bearer client token', async () => {
      // Prepare
      server.enqueue(LOGOUT_PATH, { status: 204 });

      // Act
      const outcome = await logout();

      // Assess
      expect(outcome).toBe('logged_out');
      const [request] = server.requestsTo(LOGOUT_PATH);
      expect(request?.method).toBe('POST');
      expect(request?.headers['content-type']).toBe('application/json');
      expect(request?.headers.authorization).toBe('Bearer ct-1');
      expect(JSON.parse(request?.body ?? '')).toEqual({ session_id: SESSION_ID });
    });

    it.each([
      [200, 'logged_out'],
      [204, 'logged_out'],
      [404, 'already_gone'],
    ])('treats HTTP %s as %s', async (status, outcome) => {
      // Prepare
      server.enqueue(LOGOUT_PATH, { status, ...(status === 204 ? {} : { body: { message: 'x' } }) });

      // Act & Assess
      expect(await logout()).toBe(outcome);
    });

    it('retries once with a fresh client token after a 401', async () => {
      // Prepare
      server.enqueue(LOGOUT_PATH, { status: 401, body: { message: 'jwt expired' } }, { status: 204 });

      // Act
      const outcome = await logout();

      // Assess
      expect(outcome).toBe('logged_out');
      expect(server.requestsTo(LOGOUT_PATH).map((r) => r.headers.authorization)).toEqual([
        'Bearer ct-1',
        'Bearer ct-2',
      ]);
    });

    it.each([
      [400, IdpTransientError],
      [403, IdpConfigurationError],
      [500, IdpTransientError],
      [429, IdpTransientError],
    ])('classifies HTTP %s like refresh (nothing proves a token dead)', async (status, errorClass) => {
      // Prepare
      server.enqueue(LOGOUT_PATH, { status, body: { message: `session ${SESSION_ID}` } });

      // Act
      const error = await caught(logout());

      // Assess
      expect(error).toBeInstanceOf(errorClass);
      expect(error.message).toContain('IdP logout');
      expectNoCanary(error);
    });
  });

  describe('Method: constructor', () => {
    it('throws ConfigurationError naming baseUrl when it is not a URL', () => {
      expect(() => new TransmitIdentityProvider({ baseUrl: 'api.transmitsecurity.io', credentials })).toThrow(
        /baseUrl/,
      );
    });
  });
});

describe('Class: TransmitIdentityProvider, against the emulator in each variant', () => {
  const running: TransmitServer[] = [];

  afterEach(async () => {
    await Promise.all(running.splice(0).map((emulator) => emulator.close()));
  });

  async function emulate(options: TransmitServerOptions = {}): Promise<TransmitServer> {
    const emulator = await startTransmitServer(options);
    running.push(emulator);
    return emulator;
  }

  const appIdp = (emulator: TransmitServer, deadTokenCodes?: readonly string[]) =>
    new TransmitIdentityProvider({
      baseUrl: emulator.baseUrl,
      credentials: new RotatingCredentials('local-client', ['local-secret']),
      ...(deadTokenCodes ? { deadTokenCodes } : {}),
    });

  it.each([
    ['mixed', undefined, undefined, IdpPermanentError],
    ['oauth', undefined, undefined, IdpPermanentError],
    ['cis-400', undefined, undefined, IdpTransientError],
    ['cis-400', 'invalid_refresh_token', undefined, IdpTransientError],
    ['cis-400', 'invalid_refresh_token', ['invalid_refresh_token'], IdpPermanentError],
    ['cis-401', undefined, undefined, IdpConfigurationError],
    ['cis-401', 'invalid_refresh_token', ['invalid_refresh_token'], IdpPermanentError],
  ] as const)(
    'reads a reused token answered %s (error_code %s, dead codes %j) as %O',
    async (style, code, deadTokenCodes, errorClass) => {
      // Prepare
      const emulator = await emulate({
        deadTokenStyle: style,
        ...(code ? { deadTokenErrorCode: code } : {}),
      });
      const user = await emulator.signIn('ana@example.com');
      const provider = appIdp(emulator, deadTokenCodes);
      await provider.refresh(new Secret(user.refresh_token), { timeoutMs: 5000 });

      // Act
      const error = await caught(provider.refresh(new Secret(user.refresh_token), { timeoutMs: 5000 }));

      // Assess
      expect(error).toBeInstanceOf(errorClass);
      expect(shown(error)).not.toContain(user.refresh_token);
    },
  );

  it.each([
    [{ loggedOut: 200 }, 'logged_out', 'already_gone'],
    [{ unknownSession: 204 }, 'logged_out', 'logged_out'],
    [{ unknownSession: 400 }, 'logged_out', IdpTransientError],
    [{ acceptsClientToken: false }, IdpConfigurationError, IdpConfigurationError],
  ] as const)(
    'logs out against logout %j: %O, then %O for an unknown session',
    async (logout, first, second) => {
      // Prepare
      const emulator = await emulate({ logout });
      const user = await emulator.signIn('ana@example.com');
      const provider = appIdp(emulator);
      const run = (sessionId: string) =>
        provider.logout(new Secret(sessionId), { timeoutMs: 5000 }).catch((error: unknown) => error);

      // Act
      const outcomes = [await run(user.session_id), await run('sid-never-issued-0123456789')];

      // Assess
      for (const [outcome, expected] of [
        [outcomes[0], first],
        [outcomes[1], second],
      ] as const) {
        if (typeof expected === 'string') expect(outcome).toBe(expected);
        else expect(outcome).toBeInstanceOf(expected);
      }
    },
  );

  it('reads a 403 to a client without permissions as a configuration problem, the token untouched', async () => {
    // Prepare
    const emulator = await emulate({
      limitedClient: { clientId: 'limited', clientSecret: 'limited-secret' },
    });
    const user = await emulator.signIn('ana@example.com');
    const limited = new TransmitIdentityProvider({
      baseUrl: emulator.baseUrl,
      credentials: new RotatingCredentials('limited', ['limited-secret']),
    });

    // Act
    const error = await caught(limited.refresh(new Secret(user.refresh_token), { timeoutMs: 5000 }));
    const afterwards = await appIdp(emulator).refresh(new Secret(user.refresh_token), { timeoutMs: 5000 });

    // Assess
    expect(error).toBeInstanceOf(IdpConfigurationError);
    expect((error as IdpConfigurationError).status).toBe(403);
    expect(afterwards.refreshToken).toBeDefined();
  });
});
