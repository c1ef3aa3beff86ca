import { createHash } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { type OidcClientCredentials, type OidcServer, startOidcServer } from '../support/oidc-server';

interface TokenAnswer {
  readonly status: number;
  readonly body: Readonly<Record<string, unknown>>;
}

/** RFC 6749 section 2.3.1: id and secret are form-encoded before they are joined and base64-encoded. */
function basicAuthorization(client: OidcClientCredentials): string {
  const credentials = `${encodeURIComponent(client.id)}:${encodeURIComponent(client.secret)}`;
  return `Basic ${Buffer.from(credentials).toString('base64')}`;
}

async function postForm(
  url: string,
  form: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<TokenAnswer> {
  const response = await fetch(url, { method: 'POST', headers, body: new URLSearchParams(form) });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** A refresh_token grant with client_secret_basic. */
function refreshBasic(
  server: OidcServer,
  refreshToken: string,
  client = server.clients.basic,
): Promise<TokenAnswer> {
  return postForm(
    server.tokenEndpoint,
    { grant_type: 'refresh_token', refresh_token: refreshToken },
    { authorization: basicAuthorization(client) },
  );
}

/** A refresh_token grant with client_secret_post. */
function refreshPost(
  server: OidcServer,
  refreshToken: string,
  client = server.clients.post,
): Promise<TokenAnswer> {
  return postForm(server.tokenEndpoint, {
    grant_type: 'refresh_token',
    refresh_token: refreshToken,
    client_id: client.id,
    client_secret: client.secret,
  });
}

function sha256Hex(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

function jwtClaims(jwt: string): Record<string, unknown> {
  const payload = jwt.split('.')[1];
  if (payload === undefined) throw new Error('not a JWT');
  return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
}

function stringField(answer: TokenAnswer, field: string): string {
  const value = answer.body[field];
  if (typeof value !== 'string') throw new Error(`answer has no string ${field} (HTTP ${answer.status})`);
  return value;
}

describe('Class: OidcServer', () => {
  let server: OidcServer;

  beforeAll(async () => {
    server = await startOidcServer();
  });

  afterAll(async () => {
    await server.close();
  });

  describe('Method: startOidcServer', () => {
    it('serves discovery on 127.0.0.1 and exposes the discovered endpoints', async () => {
      // Act
      const response = await fetch(`${server.issuer}/.well-known/openid-configuration`);
      const document = (await response.json()) as Record<string, unknown>;

      // Assess
      expect(server.issuer).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(document.issuer).toBe(server.issuer);
      expect(document.token_endpoint).toBe(server.tokenEndpoint);
      expect(document.revocation_endpoint).toBe(server.revocationEndpoint);
      expect(document.grant_types_supported).toEqual(
        expect.arrayContaining(['refresh_token', 'client_credentials']),
      );
      expect(document.scopes_supported).toEqual(expect.arrayContaining(['openid', 'offline_access']));
    });

    it('registers two distinct confidential clients, the basic one also as clientId/clientSecret', () => {
      // Assess
      expect(server.clientId).toBe(server.clients.basic.id);
      expect(server.clientSecret).toBe(server.clients.basic.secret);
      expect(server.clients.post.id).not.toBe(server.clients.basic.id);
      expect(server.clients.post.secret).not.toBe(server.clients.basic.secret);
      expect(server.clients.basic.secret.length).toBeGreaterThanOrEqual(32);
    });
  });

  describe('Method: signIn', () => {
    it('returns a sign-in token set whose ID token names the account', async () => {
      // Act
      const tokens = await server.signIn('user-sign-in');

      // Assess
      expect(tokens.token_type).toBe('Bearer');
      expect(tokens.expires_in).toBe(3600);
      expect(tokens.access_token).toEqual(expect.any(String));
      expect(tokens.refresh_token).toEqual(expect.any(String));
      expect(tokens.refresh_token).not.toBe(tokens.access_token);
      expect(jwtClaims(tokens.id_token ?? '')).toMatchObject({
        sub: 'user-sign-in',
        iss: server.issuer,
        aud: server.clientId,
      });
    });

    it('mints a different refresh token on every sign-in', async () => {
      // Act
      const first = await server.signIn('user-twice');
      const second = await server.signIn('user-twice');

      // Assess
      expect(second.refresh_token).not.toBe(first.refresh_token);
    });

    it('binds the tokens to the requested client', async () => {
      // Prepare
      const tokens = await server.signIn('user-post-client', { clientId: server.clients.post.id });

      // Act
      const answer = await refreshPost(server, tokens.refresh_token);

      // Assess
      expect(answer.status).toBe(200);
      expect(jwtClaims(tokens.id_token ?? '').aud).toBe(server.clients.post.id);
    });

    it('rejects an unknown client', async () => {
      // Act & Assess
      await expect(server.signIn('user-x', { clientId: 'nobody' })).rejects.toThrow('unknown client nobody');
    });
  });

  describe('Method: tokenEndpoint (grant_type=refresh_token)', () => {
    it('rotates: a refresh answers a NEW refresh token and a new access token', async () => {
      // Prepare
      const tokens = await server.signIn('user-rotate');

      // Act
      const answer = await refreshBasic(server, tokens.refresh_token);

      // Assess
      expect(answer.status).toBe(200);
      expect(answer.body).toMatchObject({ token_type: 'Bearer', expires_in: 3600 });
      expect(stringField(answer, 'refresh_token')).not.toBe(tokens.refresh_token);
      expect(stringField(answer, 'access_token')).not.toBe(tokens.access_token);
      expect(jwtClaims(stringField(answer, 'id_token')).sub).toBe('user-rotate');
    });

    it('keeps rotating: each new refresh token works once', async () => {
      // Prepare
      const tokens = await server.signIn('user-chain');
      const seen = new Set([tokens.refresh_token]);
      let current = tokens.refresh_token;

      // Act
      for (let i = 0; i < 3; i += 1) {
        const answer = await refreshBasic(server, current);
        expect(answer.status).toBe(200);
        current = stringField(answer, 'refresh_token');
        seen.add(current);
      }

      // Assess
      expect(seen.size).toBe(4);
    });

    it('answers 400 invalid_grant when a consumed refresh token is presented again', async () => {
      // Prepare
      const tokens = await server.signIn('user-reuse');
      expect((await refreshBasic(server, tokens.refresh_token)).status).toBe(200);

      // Act
      const reuse = await refreshBasic(server, tokens.refresh_token);

      // Assess
      expect(reuse.status).toBe(400);
      expect(reuse.body.error).toBe('invalid_grant');
    });

    it('revokes the whole grant on reuse: the newest refresh token fails too', async () => {
      // Prepare
      const tokens = await server.signIn('user-family');
      const rotated = await refreshBasic(server, tokens.refresh_token);
      const newest = stringField(rotated, 'refresh_token');
      expect((await refreshBasic(server, tokens.refresh_token)).status).toBe(400);

      // Act
      const answer = await refreshBasic(server, newest);

      // Assess
      expect(answer.status).toBe(400);
      expect(answer.body.error).toBe('invalid_grant');
    });

    it('leaves other grants of the same account alone when one grant is revoked for reuse', async () => {
      // Prepare
      const victim = await server.signIn('user-two-grants');
      const bystander = await server.signIn('user-two-grants');
      await refreshBasic(server, victim.refresh_token);
      await refreshBasic(server, victim.refresh_token);

      // Act
      const answer = await refreshBasic(server, bystander.refresh_token);

      // Assess
      expect(answer.status).toBe(200);
    });

    it('accepts client_secret_post for the post client', async () => {
      // Prepare
      const tokens = await server.signIn('user-post', { clientId: server.clients.post.id });

      // Act
      const answer = await refreshPost(server, tokens.refresh_token);

      // Assess
      expect(answer.status).toBe(200);
      expect(stringField(answer, 'refresh_token')).not.toBe(tokens.refresh_token);
    });

    it('answers 401 invalid_client for a wrong secret and leaves the refresh token unconsumed', async () => {
      // Prepare
      const tokens = await server.signIn('user-wrong-secret');
      const impostor = { id: server.clients.basic.id, secret: 'not-the-secret' };

      // Act
      const answer = await refreshBasic(server, tokens.refresh_token, impostor);

      // Assess
      expect(answer.status).toBe(401);
      expect(answer.body.error).toBe('invalid_client');
      expect((await refreshBasic(server, tokens.refresh_token)).status).toBe(200);
    });

    it('answers 401 invalid_client for a wrong secret sent with client_secret_post', async () => {
      // Prepare
      const tokens = await server.signIn('user-wrong-post', { clientId: server.clients.post.id });

      // Act
      const answer = await refreshPost(server, tokens.refresh_token, {
        id: server.clients.post.id,
        secret: 'not-the-secret',
      });

      // Assess
      expect(answer.status).toBe(401);
      expect(answer.body.error).toBe('invalid_client');
    });

    it('accepts either secret transport from either client (oidc-provider treats basic and post alike)', async () => {
      // Prepare
      const tokens = await server.signIn('user-either-method', { clientId: server.clients.post.id });

      // Act
      const answer = await refreshBasic(server, tokens.refresh_token, server.clients.post);

      // Assess
      expect(answer.status).toBe(200);
    });

    it('answers 400 invalid_request when the secret is sent both in the header and in the body', async () => {
      // Prepare
      const tokens = await server.signIn('user-two-methods');
      const { basic } = server.clients;

      // Act
      const answer = await postForm(
        server.tokenEndpoint,
        {
          grant_type: 'refresh_token',
          refresh_token: tokens.refresh_token,
          client_id: basic.id,
          client_secret: basic.secret,
        },
        { authorization: basicAuthorization(basic) },
      );

      // Assess
      expect(answer.status).toBe(400);
      expect(answer.body.error).toBe('invalid_request');
    });

    it('answers 400 invalid_grant for a refresh token issued to another client', async () => {
      // Prepare
      const tokens = await server.signIn('user-other-client');

      // Act
      const answer = await refreshPost(server, tokens.refresh_token);

      // Assess
      expect(answer.status).toBe(400);
      expect(answer.body.error).toBe('invalid_grant');
    });

    it('answers 400 invalid_grant for a refresh token it never issued', async () => {
      // Act
      const answer = await refreshBasic(server, 'never-issued');

      // Assess
      expect(answer.status).toBe(400);
      expect(answer.body.error).toBe('invalid_grant');
    });
  });

  describe('Method: tokenEndpoint (grant_type=client_credentials)', () => {
    it('issues a client access token without a refresh token', async () => {
      // Act
      const answer = await postForm(
        server.tokenEndpoint,
        { grant_type: 'client_credentials' },
        { authorization: basicAuthorization(server.clients.basic) },
      );

      // Assess
      expect(answer.status).toBe(200);
      expect(answer.body).toMatchObject({ token_type: 'Bearer', expires_in: 3600 });
      expect(stringField(answer, 'access_token')).not.toBe('');
      expect(answer.body.refresh_token).toBeUndefined();
    });
  });

  describe('Method: revocationEndpoint', () => {
    it('revokes a refresh token so that a later refresh answers 400 invalid_grant', async () => {
      // Prepare
      const tokens = await server.signIn('user-revoke');

      // Act
      const revocation = await postForm(
        server.revocationEndpoint,
        { token: tokens.refresh_token, token_type_hint: 'refresh_token' },
        { authorization: basicAuthorization(server.clients.basic) },
      );
      const answer = await refreshBasic(server, tokens.refresh_token);

      // Assess
      expect(revocation.status).toBe(200);
      expect(answer.status).toBe(400);
      expect(answer.body.error).toBe('invalid_grant');
    });

    it('answers 200 but keeps a token that belongs to another client (RFC 7009)', async () => {
      // Prepare
      const tokens = await server.signIn('user-foreign-revoke');

      // Act
      const revocation = await postForm(server.revocationEndpoint, {
        token: tokens.refresh_token,
        client_id: server.clients.post.id,
        client_secret: server.clients.post.secret,
      });

      // Assess
      expect(revocation.status).toBe(200);
      expect((await refreshBasic(server, tokens.refresh_token)).status).toBe(200);
    });

    it('answers 401 invalid_client for a wrong secret and revokes nothing', async () => {
      // Prepare
      const tokens = await server.signIn('user-revoke-wrong-secret');

      // Act
      const revocation = await postForm(
        server.revocationEndpoint,
        { token: tokens.refresh_token },
        { authorization: basicAuthorization({ id: server.clientId, secret: 'not-the-secret' }) },
      );

      // Assess
      expect(revocation.status).toBe(401);
      expect((await refreshBasic(server, tokens.refresh_token)).status).toBe(200);
    });
  });

  describe('Method: refreshLog', () => {
    it('records the hash and answered status of each refresh_token grant request, in order', async () => {
      // Prepare
      const tokens = await server.signIn('user-log');
      const before = server.refreshLog.length;

      // Act
      const rotated = await refreshBasic(server, tokens.refresh_token);
      await refreshBasic(server, tokens.refresh_token);
      await refreshBasic(server, tokens.refresh_token, { id: server.clientId, secret: 'not-the-secret' });

      // Assess
      expect(server.refreshLog.slice(before)).toEqual([
        { tokenHash: sha256Hex(tokens.refresh_token), status: 200 },
        { tokenHash: sha256Hex(tokens.refresh_token), status: 400 },
        { tokenHash: sha256Hex(tokens.refresh_token), status: 401 },
      ]);
      expect(rotated.status).toBe(200);
    });

    it('never holds a raw token', async () => {
      // Prepare
      const tokens = await server.signIn('user-log-raw');

      // Act
      const rotated = await refreshBasic(server, tokens.refresh_token);

      // Assess
      const log = JSON.stringify(server.refreshLog);
      expect(log).not.toContain(tokens.refresh_token);
      expect(log).not.toContain(stringField(rotated, 'refresh_token'));
      expect(log).not.toContain(stringField(rotated, 'access_token'));
      expect(log).toContain(sha256Hex(tokens.refresh_token));
    });

    it('ignores requests that are not refresh_token grants', async () => {
      // Prepare
      const tokens = await server.signIn('user-log-other');
      const before = server.refreshLog.length;

      // Act
      await postForm(
        server.tokenEndpoint,
        { grant_type: 'client_credentials' },
        { authorization: basicAuthorization(server.clients.basic) },
      );
      await postForm(
        server.revocationEndpoint,
        { token: tokens.refresh_token },
        { authorization: basicAuthorization(server.clients.basic) },
      );
      await fetch(`${server.issuer}/.well-known/openid-configuration`);

      // Assess
      expect(server.refreshLog.length).toBe(before);
    });
  });
});

describe('Class: OidcServer (refreshTokenTtlSeconds)', () => {
  const ttlSeconds = 60;
  const start = new Date('2030-01-01T00:00:00Z');
  let server: OidcServer;

  beforeAll(async () => {
    server = await startOidcServer({ refreshTokenTtlSeconds: ttlSeconds });
  });

  afterAll(async () => {
    await server.close();
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  // Only Date is faked: the provider and its store read the time from Date.now, while sockets
  // and undici's timers keep running on real time.
  function setClock(offsetSeconds: number): void {
    vi.setSystemTime(start.getTime() + offsetSeconds * 1000);
  }

  describe('Method: tokenEndpoint (grant_type=refresh_token)', () => {
    it('answers 400 invalid_grant for a refresh token not rotated within its lifetime', async () => {
      // Prepare
      vi.useFakeTimers({ toFake: ['Date'] });
      setClock(0);
      const tokens = await server.signIn('user-expired');
      setClock(ttlSeconds + 1);

      // Act
      const answer = await refreshBasic(server, tokens.refresh_token);

      // Assess
      expect(answer.status).toBe(400);
      expect(answer.body.error).toBe('invalid_grant');
    });

    it('accepts a refresh token just before its lifetime ends', async () => {
      // Prepare
      vi.useFakeTimers({ toFake: ['Date'] });
      setClock(0);
      const tokens = await server.signIn('user-almost-expired');
      setClock(ttlSeconds - 1);

      // Act
      const answer = await refreshBasic(server, tokens.refresh_token);

      // Assess
      expect(answer.status).toBe(200);
    });

    it('gives every rotated refresh token a fresh lifetime (sliding)', async () => {
      // Prepare
      vi.useFakeTimers({ toFake: ['Date'] });
      setClock(0);
      const tokens = await server.signIn('user-sliding');
      setClock(50);
      const rotated = await refreshBasic(server, tokens.refresh_token);
      expect(rotated.status).toBe(200);
      setClock(100);

      // Act: 100 s after sign-in, 50 s after the rotation
      const answer = await refreshBasic(server, stringField(rotated, 'refresh_token'));

      // Assess
      expect(answer.status).toBe(200);
    });
  });
});

describe('Function: startOidcServer', () => {
  describe('Method: startOidcServer', () => {
    it('starts independent servers with their own clients and tokens', async () => {
      // Prepare
      const first = await startOidcServer();
      const second = await startOidcServer();
      try {
        const tokens = await first.signIn('user-isolated');

        // Act
        const answer = await refreshBasic(second, tokens.refresh_token);

        // Assess
        expect(first.issuer).not.toBe(second.issuer);
        expect(first.clientSecret).not.toBe(second.clientSecret);
        expect(answer.status).toBe(400);
        expect(second.refreshLog).toEqual([{ tokenHash: sha256Hex(tokens.refresh_token), status: 400 }]);
        expect(first.refreshLog).toEqual([]);
      } finally {
        await Promise.all([first.close(), second.close()]);
      }
    });
  });

  describe('Method: close', () => {
    it('stops accepting connections and may be called twice', async () => {
      // Prepare
      const server = await startOidcServer();
      await server.signIn('user-close');

      // Act
      await server.close();
      await server.close();

      // Assess
      await expect(fetch(`${server.issuer}/.well-known/openid-configuration`)).rejects.toThrow();
    });
  });
});
