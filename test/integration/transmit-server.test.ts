import { createHash, createPublicKey, type JsonWebKey, verify } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  startTransmitServer,
  type TransmitServer,
  type TransmitServerOptions,
  type TransmitTokenResponse,
} from '../../local/transmit-server';

const T0 = Date.UTC(2030, 0, 1);

/** A virtual clock: tests move time by assignment, never by waiting. */
class FakeClock {
  now = T0;
  nowMs(): number {
    return this.now;
  }
  advanceSeconds(seconds: number): void {
    this.now += seconds * 1000;
  }
}

interface HttpResult {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly body: Record<string, unknown>;
}

const running: TransmitServer[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((server) => server.close()));
});

async function start(
  options: TransmitServerOptions = {},
): Promise<{ server: TransmitServer; clock: FakeClock; clientToken: string }> {
  const clock = new FakeClock();
  const server = await startTransmitServer({ clock, ...options });
  running.push(server);
  const clientToken = await getClientToken(server, options.clientId, options.clientSecret);
  return { server, clock, clientToken };
}

async function toResult(response: Response): Promise<HttpResult> {
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, body: text ? JSON.parse(text) : {} };
}

async function postForm(
  server: TransmitServer,
  fields: Record<string, string>,
  headers: Record<string, string> = {},
) {
  const response = await fetch(`${server.baseUrl}/oidc/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(fields),
  });
  return toResult(response);
}

async function getClientToken(
  server: TransmitServer,
  clientId = 'local-client',
  clientSecret = 'local-secret',
): Promise<string> {
  const result = await postForm(server, {
    grant_type: 'client_credentials',
    client_id: clientId,
    client_secret: clientSecret,
  });
  expect(result.status).toBe(200);
  return result.body.access_token as string;
}

async function postJson(
  server: TransmitServer,
  path: string,
  body: unknown,
  clientToken?: string,
  signal?: AbortSignal,
): Promise<HttpResult> {
  const response = await fetch(`${server.baseUrl}${path}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(clientToken ? { authorization: `Bearer ${clientToken}` } : {}),
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });
  return toResult(response);
}

function refresh(server: TransmitServer, clientToken: string, refreshToken: string, signal?: AbortSignal) {
  return postJson(server, '/cis/v1/auth/token/refresh', { refresh_token: refreshToken }, clientToken, signal);
}

function decodeJwt(jwt: string): { header: Record<string, unknown>; payload: Record<string, unknown> } {
  const [header, payload] = jwt.split('.');
  return {
    header: JSON.parse(Buffer.from(header ?? '', 'base64url').toString('utf8')),
    payload: JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8')),
  };
}

/** Races a promise against a safety timer that only fires when the promise hangs. */
async function withinMs<T>(promise: Promise<T>, ms: number): Promise<T | 'hung'> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((done) => {
    timer = setTimeout(() => done('hung'), ms);
  });
  try {
    return await Promise.race([promise, hung]);
  } finally {
    clearTimeout(timer);
  }
}

describe('Class: TransmitServer', () => {
  describe('Method: POST /oidc/token', () => {
    it('issues a Bearer client token for the right client_secret_post credentials', async () => {
      // Prepare
      const { server } = await start();

      // Act
      const result = await postForm(server, {
        grant_type: 'client_credentials',
        client_id: 'local-client',
        client_secret: 'local-secret',
      });

      // Assess
      expect(result.status).toBe(200);
      expect(result.headers.get('content-type')).toBe('application/json');
      expect(result.body).toEqual({
        access_token: expect.any(String),
        token_type: 'Bearer',
        expires_in: 3600,
        scope: expect.any(String),
      });
    });

    it('accepts HTTP Basic client authentication', async () => {
      // Prepare
      const { server } = await start({ clientId: 'my app', clientSecret: 's3cr:t' });
      const basic = Buffer.from(`${encodeURIComponent('my app')}:${encodeURIComponent('s3cr:t')}`).toString(
        'base64',
      );

      // Act
      const result = await postForm(
        server,
        { grant_type: 'client_credentials' },
        { authorization: `Basic ${basic}` },
      );

      // Assess
      expect(result.status).toBe(200);
      expect(result.body.token_type).toBe('Bearer');
    });

    it('answers 401 invalid_client for a wrong secret, posted or in Basic', async () => {
      // Prepare
      const { server } = await start();
      const basic = Buffer.from('local-client:wrong').toString('base64');

      // Act
      const posted = await postForm(server, {
        grant_type: 'client_credentials',
        client_id: 'local-client',
        client_secret: 'wrong',
      });
      const viaBasic = await postForm(
        server,
        { grant_type: 'client_credentials' },
        { authorization: `Basic ${basic}` },
      );

      // Assess
      expect(posted.status).toBe(401);
      expect(posted.body).toEqual({ error: 'invalid_client' });
      expect(viaBasic.status).toBe(401);
      expect(viaBasic.body).toEqual({ error: 'invalid_client' });
    });

    it('answers 400 unsupported_grant_type for other grant types', async () => {
      // Prepare
      const { server } = await start();

      // Act
      const result = await postForm(server, {
        grant_type: 'password',
        client_id: 'local-client',
        client_secret: 'local-secret',
      });

      // Assess
      expect(result.status).toBe(400);
      expect(result.body).toEqual({ error: 'unsupported_grant_type' });
    });

    it('sets the client token audience to the requested resource', async () => {
      // Prepare
      const { server } = await start();

      // Act
      const result = await postForm(server, {
        grant_type: 'client_credentials',
        client_id: 'local-client',
        client_secret: 'local-secret',
        resource: 'https://api.example.com',
      });

      // Assess
      expect(decodeJwt(result.body.access_token as string).payload.aud).toBe('https://api.example.com');
    });

    it('makes the client token expire after clientTokenTtlSeconds of the injected clock', async () => {
      // Prepare
      const { server, clock, clientToken } = await start({ clientTokenTtlSeconds: 600 });
      const user = await server.signIn('ana@example.com');

      // Act
      clock.advanceSeconds(599);
      const beforeExpiry = await refresh(server, clientToken, user.refresh_token);
      clock.advanceSeconds(1);
      const atExpiry = await refresh(server, clientToken, beforeExpiry.body.refresh_token as string);

      // Assess
      expect(beforeExpiry.status).toBe(200);
      expect(atExpiry.status).toBe(401);
      expect(atExpiry.body).toEqual({ message: 'Unauthorized', error_code: 401 });
    });
  });

  describe('Method: client token check', () => {
    it.each([
      ['/cis/v1/auth/token/refresh', { refresh_token: 'x' }],
      [
        '/cis/v1/auth/otp/authenticate',
        { identifier_type: 'email', identifier: 'a@b.c', passcode: '123456' },
      ],
      ['/cis/v1/auth/session/logout', { session_id: 'x' }],
      ['/cis/v1/auth/session/authenticate', { session_id: 'x' }],
    ])('answers 401 on %s without a client token or with an unknown one', async (path, body) => {
      // Prepare
      const { server } = await start();

      // Act
      const missing = await postJson(server, path, body);
      const unknown = await postJson(server, path, body, 'not-a-token-of-this-server');

      // Assess
      expect(missing.status).toBe(401);
      expect(missing.body).toEqual({ message: 'Unauthorized', error_code: 401 });
      expect(unknown.status).toBe(401);
      expect(unknown.body).toEqual({ message: 'Unauthorized', error_code: 401 });
    });

    it('neither logs nor counts a refresh rejected for its client token', async () => {
      // Prepare
      const { server } = await start();
      const user = await server.signIn('ana@example.com');

      // Act
      const result = await refresh(server, 'bogus', user.refresh_token);

      // Assess
      expect(result.status).toBe(401);
      expect(server.refreshLog).toHaveLength(0);
      expect(server.timesPresented(user.refresh_token)).toBe(0);
    });
  });

  describe('Method: POST /cis/v1/auth/otp/authenticate', () => {
    it('signs the user in with the demo passcode and returns a full token set', async () => {
      // Prepare
      const { server, clientToken } = await start();

      // Act
      const result = await postJson(
        server,
        '/cis/v1/auth/otp/authenticate',
        { identifier_type: 'email', identifier: 'ana@example.com', passcode: '123456' },
        clientToken,
      );

      // Assess
      expect(result.status).toBe(200);
      expect(result.body).toEqual({
        access_token: expect.any(String),
        id_token: expect.any(String),
        refresh_token: expect.stringMatching(/^[A-Za-z0-9_-]{43,}$/),
        token_type: 'Bearer',
        expires_in: 3600,
        session_id: expect.stringMatching(/^[A-Za-z0-9_-]{43,}$/),
      });
      expect(decodeJwt(result.body.id_token as string).payload.sub).toBe('ana@example.com');
    });

    it('answers 401 with message and error_code for a wrong passcode', async () => {
      // Prepare
      const { server, clientToken } = await start({ demoPasscode: '654321' });

      // Act
      const result = await postJson(
        server,
        '/cis/v1/auth/otp/authenticate',
        { identifier_type: 'email', identifier: 'ana@example.com', passcode: '123456' },
        clientToken,
      );

      // Assess
      expect(result.status).toBe(401);
      expect(result.body).toEqual({ message: expect.any(String), error_code: 401 });
    });

    it('answers 400 invalid_request for a body without identifier', async () => {
      // Prepare
      const { server, clientToken } = await start();

      // Act
      const result = await postJson(
        server,
        '/cis/v1/auth/otp/authenticate',
        { identifier_type: 'email', passcode: '123456' },
        clientToken,
      );

      // Assess
      expect(result.status).toBe(400);
      expect(result.body.error).toBe('invalid_request');
    });
  });

  describe('Method: POST /cis/v1/auth/token/refresh', () => {
    it('rotates the refresh token and returns a token set without session_id', async () => {
      // Prepare
      const { server, clientToken } = await start();
      const user = await server.signIn('ana@example.com');

      // Act
      const result = await refresh(server, clientToken, user.refresh_token);

      // Assess
      expect(result.status).toBe(200);
      expect(result.body).toEqual({
        access_token: expect.any(String),
        id_token: expect.any(String),
        refresh_token: expect.any(String),
        token_type: 'Bearer',
        expires_in: 3600,
      });
      expect(result.body).not.toHaveProperty('session_id');
      expect(result.body.refresh_token).not.toBe(user.refresh_token);
      expect(decodeJwt(result.body.access_token as string).payload.sid).toBe(user.session_id);
      expect(server.latestRefreshToken(user.refresh_token)).toBe(result.body.refresh_token);
    });

    it('rejects a consumed token with 400 invalid_grant and revokes the whole family', async () => {
      // Prepare
      const { server, clientToken } = await start();
      const user = await server.signIn('ana@example.com');
      const rotated = await refresh(server, clientToken, user.refresh_token);
      const newest = rotated.body.refresh_token as string;

      // Act
      const replay = await refresh(server, clientToken, user.refresh_token);
      const newestAfterReplay = await refresh(server, clientToken, newest);

      // Assess
      expect(replay.status).toBe(400);
      expect(replay.body).toEqual({ message: expect.any(String), error_code: 400, error: 'invalid_grant' });
      expect(newestAfterReplay.status).toBe(400);
      expect(newestAfterReplay.body.error).toBe('invalid_grant');
      expect(server.reuseDetections).toBe(1);
      expect(server.latestRefreshToken(newest)).toBeUndefined();
      expect(server.refreshLog.map((entry) => entry.outcome)).toEqual(['rotated', 'reuse', 'revoked']);
    });

    it('accepts a reuse within reuseGraceSeconds and rejects one at or after it', async () => {
      // Prepare
      const { server, clock, clientToken } = await start({ reuseGraceSeconds: 10 });
      const user = await server.signIn('ana@example.com');
      await refresh(server, clientToken, user.refresh_token);

      // Act
      clock.advanceSeconds(9);
      const withinGrace = await refresh(server, clientToken, user.refresh_token);
      clock.advanceSeconds(1);
      const afterGrace = await refresh(server, clientToken, user.refresh_token);

      // Assess
      expect(withinGrace.status).toBe(200);
      expect(withinGrace.body.refresh_token).not.toBe(user.refresh_token);
      expect(afterGrace.status).toBe(400);
      expect(afterGrace.body.error).toBe('invalid_grant');
      expect(server.refreshLog.map((entry) => entry.outcome)).toEqual(['rotated', 'grace', 'reuse']);
      expect(server.latestRefreshToken(user.refresh_token)).toBeUndefined();
    });

    it('expires a refresh token refreshTokenTtlSeconds after it was issued, sliding on rotation', async () => {
      // Prepare
      const { server, clock, clientToken } = await start({ refreshTokenTtlSeconds: 100 });
      const user = await server.signIn('ana@example.com');

      // Act
      clock.advanceSeconds(99);
      const justInTime = await refresh(server, clientToken, user.refresh_token);
      clock.advanceSeconds(99);
      const slidOn = await refresh(server, clientToken, justInTime.body.refresh_token as string);
      clock.advanceSeconds(100);
      const expired = await refresh(server, clientToken, slidOn.body.refresh_token as string);

      // Assess
      expect(justInTime.status).toBe(200);
      expect(slidOn.status).toBe(200);
      expect(expired.status).toBe(400);
      expect(expired.body.error).toBe('invalid_grant');
      expect(server.refreshLog.at(-1)?.outcome).toBe('expired');
    });

    it('refuses every refresh from authenticatedAt + maxRotationSeconds on', async () => {
      // Prepare
      const { server, clock, clientToken } = await start({
        refreshTokenTtlSeconds: 100,
        maxRotationSeconds: 250,
      });
      const user = await server.signIn('ana@example.com');
      clock.advanceSeconds(90);
      const first = await refresh(server, clientToken, user.refresh_token);
      clock.advanceSeconds(90);
      const second = await refresh(server, clientToken, first.body.refresh_token as string);

      // Act
      clock.advanceSeconds(69);
      const beforeDeadline = await refresh(server, clientToken, second.body.refresh_token as string);
      clock.advanceSeconds(1);
      const atDeadline = await refresh(server, clientToken, beforeDeadline.body.refresh_token as string);

      // Assess
      expect(beforeDeadline.status).toBe(200);
      expect(atDeadline.status).toBe(400);
      expect(atDeadline.body.error).toBe('invalid_grant');
      expect(server.refreshLog.at(-1)?.outcome).toBe('deadline');
    });

    it('answers 400 invalid_grant for an unknown token without echoing it', async () => {
      // Prepare
      const { server, clientToken } = await start();
      const unknown = 'unknown-refresh-token-value-0123456789';

      // Act
      const result = await refresh(server, clientToken, unknown);

      // Assess
      expect(result.status).toBe(400);
      expect(result.body.error).toBe('invalid_grant');
      expect(result.text).not.toContain(unknown);
      expect(server.refreshLog[0]).toMatchObject({ outcome: 'unknown', familyId: undefined, status: 400 });
    });

    it.each([
      ['not JSON', '{"refresh_token":'],
      ['no refresh_token', {}],
      ['a non-string refresh_token', { refresh_token: 42 }],
      ['an array', []],
    ])('answers 400 invalid_request for %s', async (_name, body) => {
      // Prepare
      const { server, clientToken } = await start();

      // Act
      const result = await postJson(server, '/cis/v1/auth/token/refresh', body, clientToken);

      // Assess
      expect(result.status).toBe(400);
      expect(result.body.error).toBe('invalid_request');
    });
  });

  describe('Method: POST /cis/v1/auth/session/logout', () => {
    it('revokes the session family with 204 and stays idempotent', async () => {
      // Prepare
      const { server, clientToken } = await start();
      const user = await server.signIn('ana@example.com');
      const rotated = await refresh(server, clientToken, user.refresh_token);

      // Act
      const logout = await postJson(
        server,
        '/cis/v1/auth/session/logout',
        { session_id: user.session_id },
        clientToken,
      );
      const again = await postJson(
        server,
        '/cis/v1/auth/session/logout',
        { session_id: user.session_id },
        clientToken,
      );
      const afterLogout = await refresh(server, clientToken, rotated.body.refresh_token as string);

      // Assess
      expect(logout.status).toBe(204);
      expect(logout.text).toBe('');
      expect(logout.headers.get('content-type')).toBeNull();
      expect(again.status).toBe(204);
      expect(afterLogout.status).toBe(400);
      expect(afterLogout.body.error).toBe('invalid_grant');
      expect(server.refreshLog.at(-1)?.outcome).toBe('revoked');
    });

    it('answers 404 for an unknown session', async () => {
      // Prepare
      const { server, clientToken } = await start();

      // Act
      const result = await postJson(
        server,
        '/cis/v1/auth/session/logout',
        { session_id: 'nope' },
        clientToken,
      );

      // Assess
      expect(result.status).toBe(404);
      expect(result.body).toEqual({ message: expect.any(String), error_code: 404 });
    });
  });

  describe('Option: variants of what the public documentation does not settle', () => {
    const DAY = 86_400;

    it.each([
      ['mixed', undefined, 400, { message: expect.any(String), error_code: 400, error: 'invalid_grant' }],
      ['oauth', undefined, 400, { error: 'invalid_grant', error_description: expect.any(String) }],
      ['cis-400', undefined, 400, { message: expect.any(String), error_code: 400 }],
      ['cis-401', undefined, 401, { message: expect.any(String), error_code: 401 }],
      [
        'cis-401',
        'invalid_refresh_token',
        401,
        { message: expect.any(String), error_code: 'invalid_refresh_token' },
      ],
    ] as const)(
      'answers a reused token in the %s style (error_code %s)',
      async (style, code, status, body) => {
        // Prepare
        const { server, clientToken } = await start({
          deadTokenStyle: style,
          ...(code ? { deadTokenErrorCode: code } : {}),
        });
        const user = await server.signIn('ana@example.com');
        await refresh(server, clientToken, user.refresh_token);

        // Act
        const replay = await refresh(server, clientToken, user.refresh_token);
        const unknown = await refresh(server, clientToken, 'never-issued-token-0123456789');

        // Assess
        expect(replay.status).toBe(status);
        expect(replay.body).toEqual(body);
        expect(unknown.status).toBe(status);
        expect(server.refreshLog.map((entry) => entry.outcome)).toEqual(['rotated', 'reuse', 'unknown']);
      },
    );

    it.each([
      [true, 400],
      [false, 200],
    ])('with reuseRevokesFamily %s, the newest token after a reuse answers %s', async (revokes, status) => {
      // Prepare
      const { server, clientToken } = await start({ reuseRevokesFamily: revokes });
      const user = await server.signIn('ana@example.com');
      const rotated = await refresh(server, clientToken, user.refresh_token);

      // Act
      const replay = await refresh(server, clientToken, user.refresh_token);
      const newest = await refresh(server, clientToken, rotated.body.refresh_token as string);

      // Assess
      expect(replay.status).toBe(400);
      expect(newest.status).toBe(status);
      expect(server.reuseDetections).toBe(1);
    });

    it.each([14, 365])(
      'with a maximum rotation of %s days, rotates up to it and refuses at it',
      async (days) => {
        // Prepare
        const { server, clock, clientToken } = await start({
          refreshTokenTtlSeconds: 14 * DAY,
          maxRotationSeconds: days * DAY,
          clientTokenTtlSeconds: 400 * DAY,
        });
        let token = (await server.signIn('ana@example.com')).refresh_token;
        let elapsed = 0;
        while (elapsed + 13 * DAY < days * DAY) {
          clock.advanceSeconds(13 * DAY);
          elapsed += 13 * DAY;
          const rotated = await refresh(server, clientToken, token);
          expect(rotated.status).toBe(200);
          token = rotated.body.refresh_token as string;
        }

        // Act
        clock.advanceSeconds(days * DAY - elapsed - 1);
        const lastSecond = await refresh(server, clientToken, token);
        clock.advanceSeconds(1);
        const atDeadline = await refresh(server, clientToken, lastSecond.body.refresh_token as string);

        // Assess
        expect(lastSecond.status).toBe(200);
        expect(atDeadline.status).toBe(400);
        expect(server.refreshLog.at(-1)?.outcome).toBe('deadline');
      },
    );

    it.each([
      [{ loggedOut: 200 }, 200, 404],
      [{ loggedOut: 204, unknownSession: 400 }, 204, 400],
      [{ unknownSession: 204 }, 204, 204],
    ] as const)('answers logout as %j: %s, and %s for an unknown session', async (logout, done, unknown) => {
      // Prepare
      const { server, clientToken } = await start({ logout });
      const user = await server.signIn('ana@example.com');

      // Act
      const first = await postJson(
        server,
        '/cis/v1/auth/session/logout',
        { session_id: user.session_id },
        clientToken,
      );
      const missing = await postJson(
        server,
        '/cis/v1/auth/session/logout',
        { session_id: 'nope' },
        clientToken,
      );

      // Assess
      expect(first.status).toBe(done);
      expect(missing.status).toBe(unknown);
      expect(server.latestRefreshToken(user.refresh_token)).toBeUndefined();
    });

    it('refuses a logout by the client token with 403 when only the user may log out', async () => {
      // Prepare
      const { server, clientToken } = await start({ logout: { acceptsClientToken: false } });
      const user = await server.signIn('ana@example.com');
      const other = await server.signIn('bo@example.com');

      // Act
      const byClient = await postJson(
        server,
        '/cis/v1/auth/session/logout',
        { session_id: user.session_id },
        clientToken,
      );
      const byOtherUser = await postJson(
        server,
        '/cis/v1/auth/session/logout',
        { session_id: user.session_id },
        other.access_token,
      );
      const byUser = await postJson(
        server,
        '/cis/v1/auth/session/logout',
        { session_id: user.session_id },
        user.access_token,
      );

      // Assess
      expect(byClient.status).toBe(403);
      expect(byOtherUser.status).toBe(401);
      expect(byUser.status).toBe(204);
      expect(server.latestRefreshToken(user.refresh_token)).toBeUndefined();
    });

    it('answers 403 to a client that may get a token but lacks the permissions', async () => {
      // Prepare
      const { server, clientToken } = await start({
        limitedClient: { clientId: 'limited', clientSecret: 'limited-secret' },
      });
      const limitedToken = await getClientToken(server, 'limited', 'limited-secret');
      const user = await server.signIn('ana@example.com');

      // Act
      const byLimited = await refresh(server, limitedToken, user.refresh_token);
      const byApp = await refresh(server, clientToken, user.refresh_token);

      // Assess
      expect(byLimited.status).toBe(403);
      expect(byLimited.body).toEqual({ message: expect.any(String), error_code: 403 });
      expect(byApp.status).toBe(200);
      expect(server.timesPresented(user.refresh_token)).toBe(1);
    });
  });

  describe('Method: POST /cis/v1/auth/session/authenticate', () => {
    it('returns a fresh token set in the same family while the session lives', async () => {
      // Prepare
      const { server, clientToken } = await start();
      const user = await server.signIn('ana@example.com');

      // Act
      const result = await postJson(
        server,
        '/cis/v1/auth/session/authenticate',
        { session_id: user.session_id, resource: 'https://api.example.com' },
        clientToken,
      );

      // Assess
      expect(result.status).toBe(200);
      expect(result.body.session_id).toBe(user.session_id);
      expect(result.body.refresh_token).not.toBe(user.refresh_token);
      expect(server.latestRefreshToken(user.refresh_token)).toBe(result.body.refresh_token);
      expect(decodeJwt(result.body.access_token as string).payload.aud).toBe('https://api.example.com');
    });

    it('answers 401 after logout, for an unknown session and past the rotation deadline', async () => {
      // Prepare
      const { server, clock, clientToken } = await start({
        maxRotationSeconds: 1000,
        clientTokenTtlSeconds: 5000,
      });
      const loggedOut = await server.signIn('ana@example.com');
      const aged = await server.signIn('bob@example.com');
      await postJson(
        server,
        '/cis/v1/auth/session/logout',
        { session_id: loggedOut.session_id },
        clientToken,
      );

      // Act
      const afterLogout = await postJson(
        server,
        '/cis/v1/auth/session/authenticate',
        { session_id: loggedOut.session_id },
        clientToken,
      );
      const unknown = await postJson(
        server,
        '/cis/v1/auth/session/authenticate',
        { session_id: 'nope' },
        clientToken,
      );
      clock.advanceSeconds(1000);
      const pastDeadline = await postJson(
        server,
        '/cis/v1/auth/session/authenticate',
        { session_id: aged.session_id },
        clientToken,
      );

      // Assess
      for (const result of [afterLogout, unknown, pastDeadline]) {
        expect(result.status).toBe(401);
        expect(result.body).toEqual({ message: expect.any(String), error_code: 401 });
      }
    });
  });

  describe('Method: GET /cis/oidc/jwks', () => {
    it('publishes the RSA key that verifies ID and access token signatures', async () => {
      // Prepare
      const { server } = await start();
      const user = await server.signIn('ana@example.com', { resource: 'https://api.example.com' });

      // Act
      const jwks = await toResult(await fetch(`${server.baseUrl}/cis/oidc/jwks`));

      // Assess
      const keys = jwks.body.keys as (JsonWebKey & { kid: string })[];
      expect(keys).toHaveLength(1);
      const jwk = keys[0]!;
      expect(jwk).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig' });
      expect(jwk).not.toHaveProperty('d');
      const publicKey = createPublicKey({ key: jwk, format: 'jwk' });
      for (const jwt of [user.id_token, user.access_token]) {
        const [header, payload, signature] = jwt.split('.') as [string, string, string];
        expect(decodeJwt(jwt).header).toEqual({ alg: 'RS256', typ: 'JWT', kid: jwk.kid });
        const signed = Buffer.from(`${header}.${payload}`);
        expect(verify('sha256', signed, publicKey, Buffer.from(signature, 'base64url'))).toBe(true);
        const tampered = Buffer.from(`${header}.${Buffer.from('{"sub":"eve"}').toString('base64url')}`);
        expect(verify('sha256', tampered, publicKey, Buffer.from(signature, 'base64url'))).toBe(false);
      }
    });

    it('puts iss, sub, aud, iat, exp, sid and jti in the tokens', async () => {
      // Prepare
      const { server, clock } = await start({ accessTokenTtlSeconds: 900 });

      // Act
      const user = await server.signIn('ana@example.com', { resource: 'https://api.example.com' });

      // Assess
      const idToken = decodeJwt(user.id_token).payload;
      const accessToken = decodeJwt(user.access_token).payload;
      const iat = Math.floor(clock.now / 1000);
      expect(idToken).toMatchObject({
        iss: server.baseUrl,
        sub: 'ana@example.com',
        aud: 'local-client',
        iat,
        exp: iat + 900,
        sid: user.session_id,
        jti: expect.any(String),
      });
      expect(accessToken).toMatchObject({
        aud: 'https://api.example.com',
        sub: 'ana@example.com',
        exp: iat + 900,
      });
      expect(accessToken.jti).not.toBe(idToken.jti);
    });

    it('uses the issuer option as iss', async () => {
      // Prepare
      const { server } = await start({ issuer: 'https://userid.security' });

      // Act
      const user = await server.signIn('ana@example.com');

      // Assess
      expect(decodeJwt(user.id_token).payload.iss).toBe('https://userid.security');
    });
  });

  describe('Method: faults', () => {
    it('fails with a status fault without consuming the token', async () => {
      // Prepare
      const { server, clientToken } = await start();
      const user = await server.signIn('ana@example.com');
      server.faults.failNext(1, { kind: 'status', status: 503 });

      // Act
      const faulted = await refresh(server, clientToken, user.refresh_token);
      const retried = await refresh(server, clientToken, user.refresh_token);

      // Assess
      expect(faulted.status).toBe(503);
      expect(faulted.body).toEqual({ message: expect.any(String), error_code: 503 });
      expect(retried.status).toBe(200);
      expect(server.timesPresented(user.refresh_token)).toBe(2);
      expect(server.refreshLog.map(({ status, outcome }) => ({ status, outcome }))).toEqual([
        { status: 503, outcome: 'fault' },
        { status: 200, outcome: 'rotated' },
      ]);
    });

    it('consumes the token before answering a processFirst status fault', async () => {
      // Prepare
      const { server, clientToken } = await start();
      const user = await server.signIn('ana@example.com');
      server.faults.failNext(1, { kind: 'status', status: 502, processFirst: true });

      // Act
      const faulted = await refresh(server, clientToken, user.refresh_token);
      const retried = await refresh(server, clientToken, user.refresh_token);

      // Assess
      expect(faulted.status).toBe(502);
      expect(faulted.text).not.toContain('refresh_token');
      expect(retried.status).toBe(400);
      expect(retried.body.error).toBe('invalid_grant');
      expect(server.refreshLog.map(({ status, outcome }) => ({ status, outcome }))).toEqual([
        { status: 502, outcome: 'rotated' },
        { status: 400, outcome: 'reuse' },
      ]);
    });

    it('answers 429 with Retry-After for a rateLimit fault, leaving the token usable', async () => {
      // Prepare
      const { server, clientToken } = await start();
      const user = await server.signIn('ana@example.com');
      server.faults.failNext(1, { kind: 'rateLimit', retryAfterSeconds: 7 });

      // Act
      const limited = await refresh(server, clientToken, user.refresh_token);
      const retried = await refresh(server, clientToken, user.refresh_token);

      // Assess
      expect(limited.status).toBe(429);
      expect(limited.headers.get('retry-after')).toBe('7');
      expect(limited.body).toEqual({ message: expect.any(String), error_code: 429 });
      expect(retried.status).toBe(200);
    });

    it('fails exactly the next count requests, then behaves normally', async () => {
      // Prepare
      const { server, clientToken } = await start();
      const user = await server.signIn('ana@example.com');
      server.faults.failNext(2, { kind: 'status', status: 500 });

      // Act
      const statuses: number[] = [];
      for (let i = 0; i < 3; i += 1)
        statuses.push((await refresh(server, clientToken, user.refresh_token)).status);

      // Assess
      expect(statuses).toEqual([500, 500, 200]);
    });

    it('holds the socket without answering for a timeout fault, leaving the token unconsumed', async () => {
      // Prepare
      const { server, clientToken } = await start();
      const user = await server.signIn('ana@example.com');
      server.faults.failNext(1, { kind: 'timeout' });
      const abort = new AbortController();

      // Act
      const pending = refresh(server, clientToken, user.refresh_token, abort.signal);
      await vi.waitFor(() => expect(server.refreshLog).toHaveLength(1));
      abort.abort();

      // Assess
      await expect(pending).rejects.toThrow(/abort/i);
      expect(server.refreshLog[0]).toMatchObject({ status: 0, outcome: 'fault' });
      expect((await refresh(server, clientToken, user.refresh_token)).status).toBe(200);
    });

    it('rotates before holding the socket for a processFirst timeout fault', async () => {
      // Prepare
      const { server, clientToken } = await start();
      const user = await server.signIn('ana@example.com');
      server.faults.failNext(1, { kind: 'timeout', processFirst: true });
      const abort = new AbortController();

      // Act
      const pending = refresh(server, clientToken, user.refresh_token, abort.signal);
      await vi.waitFor(() => expect(server.refreshLog).toHaveLength(1));
      abort.abort();

      // Assess
      await expect(pending).rejects.toThrow(/abort/i);
      expect(server.refreshLog[0]).toMatchObject({ status: 0, outcome: 'rotated' });
      expect(server.latestRefreshToken(user.refresh_token)).not.toBe(user.refresh_token);
      expect((await refresh(server, clientToken, user.refresh_token)).status).toBe(400);
    });

    it('resets the connection for a reset fault, leaving the token unconsumed', async () => {
      // Prepare
      const { server, clientToken } = await start();
      const user = await server.signIn('ana@example.com');
      server.faults.failNext(1, { kind: 'reset' });

      // Act
      const faulted = refresh(server, clientToken, user.refresh_token);

      // Assess
      await expect(faulted).rejects.toThrow(TypeError);
      expect(server.refreshLog[0]).toMatchObject({ status: 0, outcome: 'fault' });
      expect((await refresh(server, clientToken, user.refresh_token)).status).toBe(200);
    });

    it('rotates before resetting the connection for a processFirst reset fault', async () => {
      // Prepare
      const { server, clientToken } = await start();
      const user = await server.signIn('ana@example.com');
      server.faults.failNext(1, { kind: 'reset', processFirst: true });

      // Act
      const faulted = refresh(server, clientToken, user.refresh_token);

      // Assess
      await expect(faulted).rejects.toThrow(TypeError);
      const newest = server.latestRefreshToken(user.refresh_token);
      expect(newest).toBeDefined();
      expect(newest).not.toBe(user.refresh_token);
      expect((await refresh(server, clientToken, newest!)).status).toBe(200);
    });

    it('fails requests with the failRate probability drawn from the injected random', async () => {
      // Prepare
      const draws = [0.1, 0.9, 0.49, 0.5];
      const { server, clientToken } = await start({ random: () => draws.shift() ?? 1 });
      const user = await server.signIn('ana@example.com');
      server.faults.failRate(0.5, { kind: 'status', status: 504 });

      // Act
      const statuses: number[] = [];
      let token = user.refresh_token;
      for (let i = 0; i < 4; i += 1) {
        const result = await refresh(server, clientToken, token);
        statuses.push(result.status);
        if (result.status === 200) token = result.body.refresh_token as string;
      }

      // Assess
      expect(statuses).toEqual([504, 200, 504, 200]);
      expect(draws).toEqual([]);
    });

    it('faults the token endpoint only when the fault targets it', async () => {
      // Prepare
      const { server, clientToken } = await start();
      const user = await server.signIn('ana@example.com');
      server.faults.failNext(1, { kind: 'status', status: 503, target: 'token' });

      // Act
      const refreshed = await refresh(server, clientToken, user.refresh_token);
      const tokenFaulted = await postForm(server, {
        grant_type: 'client_credentials',
        client_id: 'local-client',
        client_secret: 'local-secret',
      });
      const tokenAfter = await postForm(server, {
        grant_type: 'client_credentials',
        client_id: 'local-client',
        client_secret: 'local-secret',
      });

      // Assess
      expect(refreshed.status).toBe(200);
      expect(tokenFaulted.status).toBe(503);
      expect(tokenAfter.status).toBe(200);
    });

    it('leaves the token endpoint alone for a default-target fault', async () => {
      // Prepare
      const { server } = await start();
      server.faults.failNext(1, { kind: 'status', status: 503 });

      // Act
      const result = await postForm(server, {
        grant_type: 'client_credentials',
        client_id: 'local-client',
        client_secret: 'local-secret',
      });

      // Assess
      expect(result.status).toBe(200);
    });

    it('waits latencyMs before answering refresh and token requests', async () => {
      // Prepare
      const waits: number[] = [];
      const { server, clientToken } = await start({
        delay: async (ms) => {
          waits.push(ms);
        },
      });
      const user = await server.signIn('ana@example.com');
      server.faults.latencyMs = 250;

      // Act
      await refresh(server, clientToken, user.refresh_token);
      await getClientToken(server);

      // Assess
      expect(waits).toEqual([250, 250]);
    });

    it('behaves normally again after reset()', async () => {
      // Prepare
      const waits: number[] = [];
      const { server, clientToken } = await start({
        random: () => 0,
        delay: async (ms) => void waits.push(ms),
      });
      const user = await server.signIn('ana@example.com');
      server.faults.latencyMs = 100;
      server.faults.failNext(3, { kind: 'status', status: 500 });
      server.faults.failRate(1, { kind: 'status', status: 500 });

      // Act
      server.faults.reset();
      const result = await refresh(server, clientToken, user.refresh_token);

      // Assess
      expect(result.status).toBe(200);
      expect(waits).toEqual([]);
      expect(server.faults.latencyMs).toBe(0);
    });

    it('rejects invalid arguments', async () => {
      // Prepare
      const { server } = await start();

      // Act / Assess
      expect(() => server.faults.failNext(-1, { kind: 'timeout' })).toThrow(RangeError);
      expect(() => server.faults.failRate(1.5, { kind: 'timeout' })).toThrow(RangeError);
      expect(() => server.faults.failNext(1, { kind: 'status', status: 501 as 500 })).toThrow(TypeError);
    });
  });

  describe('Method: admin endpoints', () => {
    it('configures faults through POST /local/faults', async () => {
      // Prepare
      const { server, clientToken } = await start();
      const user = await server.signIn('ana@example.com');

      // Act
      const configured = await postJson(server, '/local/faults', {
        failNext: { count: 1, fault: { kind: 'rateLimit', retryAfterSeconds: 3 } },
        latencyMs: 0,
      });
      const limited = await refresh(server, clientToken, user.refresh_token);

      // Assess
      expect(configured.status).toBe(204);
      expect(limited.status).toBe(429);
      expect(limited.headers.get('retry-after')).toBe('3');
    });

    it('resets faults through POST /local/faults', async () => {
      // Prepare
      const { server, clientToken } = await start();
      const user = await server.signIn('ana@example.com');
      server.faults.failNext(5, { kind: 'status', status: 500 });

      // Act
      const reset = await postJson(server, '/local/faults', { reset: true });
      const result = await refresh(server, clientToken, user.refresh_token);

      // Assess
      expect(reset.status).toBe(204);
      expect(result.status).toBe(200);
    });

    it.each([
      ['an unknown fault kind', { failNext: { count: 1, fault: { kind: 'explode' } } }],
      ['a negative count', { failNext: { count: -1, fault: { kind: 'timeout' } } }],
      ['a rate above 1', { failRate: { rate: 2, fault: { kind: 'timeout' } } }],
      ['a non-numeric latency', { latencyMs: 'slow' }],
    ])('answers 400 for %s and changes nothing', async (_name, body) => {
      // Prepare
      const { server, clientToken } = await start();
      const user = await server.signIn('ana@example.com');

      // Act
      const result = await postJson(server, '/local/faults', body);
      const after = await refresh(server, clientToken, user.refresh_token);

      // Assess
      expect(result.status).toBe(400);
      expect(after.status).toBe(200);
      expect(server.faults.latencyMs).toBe(0);
    });

    it('reports counts without token material on GET /local/stats', async () => {
      // Prepare
      const { server, clientToken } = await start();
      const ana = await server.signIn('ana@example.com');
      await server.signIn('bob@example.com');
      const rotated = await refresh(server, clientToken, ana.refresh_token);
      await refresh(server, clientToken, ana.refresh_token);

      // Act
      const stats = await toResult(await fetch(`${server.baseUrl}/local/stats`));

      // Assess
      expect(stats.status).toBe(200);
      expect(stats.body).toEqual({
        refreshRequests: 2,
        rotated: 1,
        reuseDetections: 1,
        families: 2,
        revokedFamilies: 1,
      });
      expect(stats.text).not.toContain(ana.refresh_token);
      expect(stats.text).not.toContain(rotated.body.refresh_token as string);
    });
  });

  describe('Method: HTTP handling', () => {
    it('answers 404 JSON for an unknown route', async () => {
      // Prepare
      const { server } = await start();

      // Act
      const result = await toResult(await fetch(`${server.baseUrl}/nope`));

      // Assess
      expect(result.status).toBe(404);
      expect(result.headers.get('content-type')).toBe('application/json');
      expect(result.body).toEqual({ message: 'Not Found', error_code: 404 });
    });

    it('answers 405 with Allow for a wrong method', async () => {
      // Prepare
      const { server } = await start();

      // Act
      const result = await toResult(await fetch(`${server.baseUrl}/cis/v1/auth/token/refresh`));

      // Assess
      expect(result.status).toBe(405);
      expect(result.headers.get('allow')).toBe('POST');
    });

    it('answers 413 for a body over 64 KiB', async () => {
      // Prepare
      const { server, clientToken } = await start();

      // Act
      const result = await postJson(
        server,
        '/cis/v1/auth/token/refresh',
        { refresh_token: 'x'.repeat(65 * 1024) },
        clientToken,
      );

      // Assess
      expect(result.status).toBe(413);
      expect(result.headers.get('content-type')).toBe('application/json');
      expect(server.refreshLog).toHaveLength(0);
    });
  });

  describe('Method: close', () => {
    it('resolves promptly while a timeout fault holds a socket', async () => {
      // Prepare
      const { server, clientToken } = await start();
      const user = await server.signIn('ana@example.com');
      server.faults.failNext(1, { kind: 'timeout' });
      const pending = refresh(server, clientToken, user.refresh_token);
      await vi.waitFor(() => expect(server.refreshLog).toHaveLength(1));

      // Act
      const closed = await withinMs(
        server.close().then(() => 'closed' as const),
        5000,
      );

      // Assess
      expect(closed).toBe('closed');
      await expect(pending).rejects.toThrow(TypeError);
    });
  });

  describe('Method: refreshLog', () => {
    it('records only a sha256 of each token with its family, status and clock time', async () => {
      // Prepare
      const { server, clock, clientToken } = await start();
      const user: TransmitTokenResponse = await server.signIn('ana@example.com');

      // Act
      clock.advanceSeconds(5);
      await refresh(server, clientToken, user.refresh_token);

      // Assess
      const entry = server.refreshLog[0]!;
      expect(entry).toEqual({
        tokenHash: createHash('sha256').update(user.refresh_token).digest('hex'),
        familyId: expect.any(String),
        status: 200,
        outcome: 'rotated',
        atMs: T0 + 5000,
      });
      expect(JSON.stringify(server.refreshLog)).not.toContain(user.refresh_token);
      expect(server.timesPresented(user.refresh_token)).toBe(1);
      expect(server.timesPresented('never-seen')).toBe(0);
    });
  });

  describe('Method: token confidentiality', () => {
    it('never writes a presented refresh token to a response body, the console or stdout/stderr', async () => {
      // Prepare
      const written: string[] = [];
      const capture = (...args: unknown[]) => void written.push(args.map(String).join(' '));
      for (const method of ['log', 'info', 'warn', 'error', 'debug'] as const) {
        vi.spyOn(console, method).mockImplementation(capture);
      }
      for (const stream of [process.stdout, process.stderr]) {
        const original = stream.write.bind(stream);
        vi.spyOn(stream, 'write').mockImplementation(((chunk: unknown, ...rest: never[]) => {
          written.push(String(chunk));
          return original(chunk as string, ...rest);
        }) as typeof stream.write);
      }
      const { server, clientToken } = await start({ reuseGraceSeconds: 0 });
      const ana = await server.signIn('ana@example.com');
      const bob = await server.signIn('bob@example.com');
      const unknown = 'a-refresh-token-the-server-never-issued-0123';
      server.faults.failNext(1, { kind: 'status', status: 503, processFirst: true });

      // Act
      const bodies: { sent: string; text: string }[] = [];
      const send = async (token: string) =>
        bodies.push({ sent: token, text: (await refresh(server, clientToken, token)).text });
      await send(ana.refresh_token); // 503 after rotation
      await send(ana.refresh_token); // reuse
      await send(unknown); // unknown
      await postJson(server, '/cis/v1/auth/session/logout', { session_id: bob.session_id }, clientToken);
      await send(bob.refresh_token); // revoked
      await postJson(server, '/local/faults', {
        failNext: { count: 1, fault: { kind: 'rateLimit', retryAfterSeconds: 1 } },
      });
      const carol = await server.signIn('carol@example.com');
      await send(carol.refresh_token); // 429
      await postJson(server, '/local/faults', { latencyMs: 'bad', note: carol.refresh_token });

      // Assess
      expect(bodies).toHaveLength(5);
      for (const { sent, text } of bodies) expect(text).not.toContain(sent);
      for (const token of [ana.refresh_token, bob.refresh_token, carol.refresh_token, unknown]) {
        expect(written.join('\n')).not.toContain(token);
        expect(JSON.stringify(server.refreshLog)).not.toContain(token);
      }
    });
  });
});
