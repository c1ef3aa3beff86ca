import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type ClientAuthMethod, OAuth2IdentityProvider } from '../../functions/adapters/idp/oauth2';
import {
  ConfigurationError,
  IdpConfigurationError,
  IdpPermanentError,
  IdpTransientError,
} from '../../functions/core/errors';
import { Secret } from '../../functions/core/secret';
import { caught, shown } from '../support/caught';
import {
  ManualClock,
  type Reply,
  type ScriptedServer,
  startScriptedServer,
} from '../support/idp-http-server';
import { type OidcServer, startOidcServer } from '../support/oidc-server';
import { RotatingCredentials } from '../support/rotating-credentials';

const TOKEN_PATH = '/oauth2/token';
const REVOKE_PATH = '/oauth2/revoke';

// Canary strings: none of them may ever appear in an error.
const REFRESH_TOKEN = 'rt-CANARY-old-1f2e';
const NEW_REFRESH_TOKEN = 'rt-CANARY-new-3d4c';
const ACCESS_TOKEN = 'at-CANARY-5b6a';
// Characters that form-urlencoding must escape (RFC 6749 section 2.3.1): space, ':', '+', '/', '&', '=', '%', non-ASCII.
const CLIENT_ID = 'my app:1+x';
const CLIENT_SECRET = 'cs-CANARY p@ss/&=%é+';
const ROTATED_SECRET = 'cs-CANARY-rotated';
const CANARIES = [REFRESH_TOKEN, NEW_REFRESH_TOKEN, ACCESS_TOKEN, 'cs-CANARY'];

let server: ScriptedServer;
let clock: ManualClock;
let credentials: RotatingCredentials;

function idp(options: { clientAuth?: ClientAuthMethod; revocation?: boolean } = {}): OAuth2IdentityProvider {
  return new OAuth2IdentityProvider({
    tokenEndpoint: `${server.url}${TOKEN_PATH}`,
    credentials,
    clock,
    ...(options.clientAuth ? { clientAuth: options.clientAuth } : {}),
    ...(options.revocation ? { revocationEndpoint: `${server.url}${REVOKE_PATH}` } : {}),
  });
}

const refreshed: Reply = {
  status: 200,
  body: {
    access_token: ACCESS_TOKEN,
    refresh_token: NEW_REFRESH_TOKEN,
    token_type: 'Bearer',
    expires_in: 300,
  },
};

const refresh = (provider = idp(), timeoutMs = 2000) =>
  provider.refresh(new Secret(REFRESH_TOKEN), { timeoutMs });

/** Decodes an `application/x-www-form-urlencoded` component. */
const formDecode = (value: string) => decodeURIComponent(value.replace(/\+/g, ' '));

/** The client id and secret of a Basic header, decoded as RFC 6749 section 2.3.1 prescribes. */
function basicCredentials(header: string | undefined): [string, string] {
  expect(header).toMatch(/^Basic [A-Za-z0-9+/]+=*$/);
  const decoded = Buffer.from(header!.slice('Basic '.length), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return [formDecode(decoded.slice(0, colon)), formDecode(decoded.slice(colon + 1))];
}

function expectNoCanary(error: Error): void {
  const text = shown(error);
  for (const canary of CANARIES) expect(text).not.toContain(canary);
}

describe('Class: OAuth2IdentityProvider', () => {
  beforeEach(async () => {
    server = await startScriptedServer();
    clock = new ManualClock();
    credentials = new RotatingCredentials(CLIENT_ID, [CLIENT_SECRET, ROTATED_SECRET]);
  });

  afterEach(async () => {
    expect(server.unusedReplies()).toBe(0);
    await server.close();
  });

  describe('Method: refresh', () => {
    it('POSTs the refresh grant as a form with client_secret_basic by default', async () => {
      // Prepare
      server.enqueue(TOKEN_PATH, refreshed);

      // Act
      await refresh();

      // Assess
      const [request] = server.requests;
      expect(request?.method).toBe('POST');
      expect(request?.path).toBe(TOKEN_PATH);
      expect(request?.headers['content-type']).toBe('application/x-www-form-urlencoded');
      expect(request?.headers.accept).toBe('application/json');
      expect(Object.fromEntries(new URLSearchParams(request?.body))).toEqual({
        grant_type: 'refresh_token',
        refresh_token: REFRESH_TOKEN,
      });
      expect(basicCredentials(request?.headers.authorization)).toEqual([CLIENT_ID, CLIENT_SECRET]);
    });

    it('form-urlencodes id and secret inside the Basic header (RFC 6749 section 2.3.1)', async () => {
      // Prepare
      server.enqueue(TOKEN_PATH, refreshed);

      // Act
      await refresh();

      // Assess
      const header = server.requests[0]?.headers.authorization ?? '';
      const raw = Buffer.from(header.slice('Basic '.length), 'base64').toString('utf8');
      expect(raw).toBe('my+app%3A1%2Bx:cs-CANARY+p%40ss%2F%26%3D%25%C3%A9%2B');
    });

    it('sends client_id and client_secret in the body with client_secret_post', async () => {
      // Prepare
      server.enqueue(TOKEN_PATH, refreshed);

      // Act
      await refresh(idp({ clientAuth: 'client_secret_post' }));

      // Assess
      const [request] = server.requests;
      expect(request?.headers.authorization).toBeUndefined();
      expect(Object.fromEntries(new URLSearchParams(request?.body))).toEqual({
        grant_type: 'refresh_token',
        refresh_token: REFRESH_TOKEN,
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
      });
    });

    it('returns the rotated token set held in Secrets', async () => {
      // Prepare
      server.enqueue(TOKEN_PATH, refreshed);

      // Act
      const tokens = await refresh();

      // Assess
      expect(tokens.accessToken?.reveal()).toBe(ACCESS_TOKEN);
      expect(tokens.refreshToken?.reveal()).toBe(NEW_REFRESH_TOKEN);
      expect(tokens.expiresIn).toBe(300);
      expect(tokens.idToken).toBeUndefined();
      expect(JSON.stringify(tokens)).not.toContain('CANARY');
    });

    it('throws IdpPermanentError with code invalid_grant for a dead refresh token', async () => {
      // Prepare
      server.enqueue(TOKEN_PATH, {
        status: 400,
        body: { error: 'invalid_grant', error_description: `grant request is invalid: ${REFRESH_TOKEN}` },
      });

      // Act
      const error = await caught(refresh());

      // Assess
      expect(error).toBeInstanceOf(IdpPermanentError);
      expect((error as IdpPermanentError).status).toBe(400);
      expect((error as IdpPermanentError).code).toBe('invalid_grant');
      expect(error.message).toBe('IdP refresh rejected: HTTP 400 (invalid_grant)');
      expect(server.requests).toHaveLength(1);
      expectNoCanary(error);
    });

    it.each([
      ['invalid_request', 400],
      ['invalid_scope', 400],
      ['unauthorized_client', 400],
      ['unsupported_grant_type', 400],
      ['insufficient_scope', 400],
      [undefined, 403],
      ['invalid_grant', 403],
    ])(
      'throws IdpConfigurationError for %s (HTTP %s): it is about the client, not the token',
      async (code, status) => {
        // Prepare
        server.enqueue(TOKEN_PATH, { status, body: code ? { error: code } : { message: 'forbidden' } });

        // Act
        const error = await caught(refresh());

        // Assess
        expect(error).toBeInstanceOf(IdpConfigurationError);
        expect((error as IdpConfigurationError).code).toBe(code);
        expect((error as IdpConfigurationError).status).toBe(status);
        expect(server.requests).toHaveLength(1);
      },
    );

    it('honours IDP_DEAD_TOKEN_CODES: a configured code proves the token dead, invalid_grant then does not', async () => {
      // Prepare
      const provider = new OAuth2IdentityProvider({
        tokenEndpoint: `${server.url}${TOKEN_PATH}`,
        credentials,
        clock,
        deadTokenCodes: ['token_revoked'],
      });
      server.enqueue(
        TOKEN_PATH,
        { status: 400, body: { error_code: 'token_revoked', message: 'gone' } },
        { status: 400, body: { error: 'invalid_grant' } },
      );

      // Act
      const configured = await caught(refresh(provider));
      const unconfigured = await caught(refresh(provider));

      // Assess
      expect(configured).toBeInstanceOf(IdpPermanentError);
      expect((configured as IdpPermanentError).code).toBe('token_revoked');
      expect(unconfigured).toBeInstanceOf(IdpTransientError);
      expect((unconfigured as IdpTransientError).notConsumed).toBe(false);
    });

    it.each([
      ['401 invalid_client', { status: 401, body: { error: 'invalid_client' } }],
      ['400 invalid_client', { status: 400, body: { error: 'invalid_client' } }],
      ['401 without a body', { status: 401, headers: { 'www-authenticate': 'Basic' } }],
    ] as const)(
      're-reads the credentials after %s and retries once with the rotated secret',
      async (_l, reply) => {
        // Prepare
        server.enqueue(TOKEN_PATH, reply, refreshed);

        // Act
        const tokens = await refresh();

        // Assess
        expect(tokens.refreshToken?.reveal()).toBe(NEW_REFRESH_TOKEN);
        expect(credentials.invalidations).toBe(1);
        const secrets = server.requests.map((r) => basicCredentials(r.headers.authorization)[1]);
        expect(secrets).toEqual([CLIENT_SECRET, ROTATED_SECRET]);
        const refreshTokens = server.requests.map((r) => new URLSearchParams(r.body).get('refresh_token'));
        expect(refreshTokens).toEqual([REFRESH_TOKEN, REFRESH_TOKEN]);
      },
    );

    it('throws IdpConfigurationError when the client is refused twice', async () => {
      // Prepare
      const refused: Reply = {
        status: 401,
        body: { error: 'invalid_client', error_description: 'bad secret' },
      };
      server.enqueue(TOKEN_PATH, refused, refused);

      // Act
      const error = await caught(refresh(idp({ clientAuth: 'client_secret_post' })));

      // Assess
      expect(error).toBeInstanceOf(IdpConfigurationError);
      expect(error.message).toBe(
        'IdP refresh: client credentials rejected by the IdP (HTTP 401, invalid_client)',
      );
      expect(server.requests).toHaveLength(2);
      expect(credentials.invalidations).toBe(1);
      expectNoCanary(error);
    });

    it.each([
      [429, '15', 15],
      [500, undefined, undefined],
      [503, 'date+30', 30],
      [408, undefined, undefined],
    ])(
      'throws IdpTransientError (not consumed) for HTTP %s temporarily_unavailable with Retry-After %s',
      async (status, header, expected) => {
        // Prepare
        const value = header?.startsWith('date')
          ? new Date(clock.nowMs() + Number(header.slice(4)) * 1000).toUTCString()
          : header;
        server.enqueue(TOKEN_PATH, {
          status,
          body: { error: 'temporarily_unavailable' },
          headers: value ? { 'retry-after': value } : {},
        });

        // Act
        const error = await caught(refresh());

        // Assess
        expect(error).toBeInstanceOf(IdpTransientError);
        expect((error as IdpTransientError).status).toBe(status);
        expect((error as IdpTransientError).retryAfterSeconds).toBe(expected);
        expect((error as IdpTransientError).notConsumed).toBe(true);
      },
    );

    it('throws IdpTransientError when the server does not answer in time', async () => {
      // Prepare
      server.enqueue(TOKEN_PATH, 'hang');

      // Act
      const error = await caught(refresh(idp(), 200));

      // Assess
      expect(error).toBeInstanceOf(IdpTransientError);
      expect(error.message).toContain('timed out');
    });

    it.each([
      ['no refresh_token (a non-rotating server)', { access_token: ACCESS_TOKEN, expires_in: 300 }, 'a--e'],
      [
        'expires_in that parses to Infinity',
        `{"access_token":"${ACCESS_TOKEN}","refresh_token":"${NEW_REFRESH_TOKEN}","expires_in":1e400}`,
        'ar--',
      ],
      [
        'null access_token',
        { access_token: null, refresh_token: NEW_REFRESH_TOKEN, expires_in: 300 },
        '-r-e',
      ],
      ['expires_in as a string', { access_token: ACCESS_TOKEN, expires_in: ' 300 ' }, 'a--e'],
      ['numeric token_type', { access_token: ACCESS_TOKEN, token_type: 1, expires_in: 300 }, 'a--e'],
      ['a JSON array', [ACCESS_TOKEN], '----'],
      ['not JSON', `access_token=${ACCESS_TOKEN}`, '----'],
    ])('resolves a sloppy 200 (%s) with what is usable, without throwing', async (_label, body, usable) => {
      // Prepare
      server.enqueue(TOKEN_PATH, { status: 200, body });

      // Act
      const answer = await refresh();

      // Assess
      const seen = [
        answer.accessToken ? 'a' : '-',
        answer.refreshToken ? 'r' : '-',
        answer.tokenType ? 't' : '-',
        answer.expiresIn === 300 ? 'e' : '-',
      ].join('');
      expect(seen).toBe(usable);
      expect(JSON.stringify(answer)).not.toContain('CANARY');
    });
  });

  describe('Method: revoke', () => {
    const revoke = (provider: OAuth2IdentityProvider) =>
      provider.revoke(new Secret(REFRESH_TOKEN), { timeoutMs: 2000 });

    it('POSTs the token with a refresh_token hint and client authentication (RFC 7009)', async () => {
      // Prepare
      server.enqueue(REVOKE_PATH, { status: 200 });

      // Act
      await revoke(idp({ revocation: true }));

      // Assess
      const [request] = server.requests;
      expect(request?.path).toBe(REVOKE_PATH);
      expect(request?.method).toBe('POST');
      expect(Object.fromEntries(new URLSearchParams(request?.body))).toEqual({
        token: REFRESH_TOKEN,
        token_type_hint: 'refresh_token',
      });
      expect(basicCredentials(request?.headers.authorization)).toEqual([CLIENT_ID, CLIENT_SECRET]);
    });

    it('throws IdpTransientError with Retry-After for a 503', async () => {
      // Prepare
      server.enqueue(REVOKE_PATH, { status: 503, headers: { 'retry-after': '5' } });

      // Act
      const error = await caught(revoke(idp({ revocation: true })));

      // Assess
      expect(error).toBeInstanceOf(IdpTransientError);
      expect((error as IdpTransientError).retryAfterSeconds).toBe(5);
    });

    it('throws IdpConfigurationError for unsupported_token_type', async () => {
      // Prepare
      server.enqueue(REVOKE_PATH, { status: 400, body: { error: 'unsupported_token_type' } });

      // Act
      const error = await caught(revoke(idp({ revocation: true })));

      // Assess
      expect(error).toBeInstanceOf(IdpConfigurationError);
      expect((error as IdpConfigurationError).code).toBe('unsupported_token_type');
      expectNoCanary(error);
    });

    it('throws ConfigurationError, without a request, when no revocation endpoint is configured', async () => {
      // Prepare
      const provider = idp();

      // Act
      const error = await caught(revoke(provider));

      // Assess
      expect(provider.supportsRevocation).toBe(false);
      expect(idp({ revocation: true }).supportsRevocation).toBe(true);
      expect(error).toBeInstanceOf(ConfigurationError);
      expect(server.requests).toHaveLength(0);
    });
  });

  describe('Method: constructor', () => {
    it('throws ConfigurationError for an unknown client authentication method', () => {
      expect(
        () =>
          new OAuth2IdentityProvider({
            tokenEndpoint: 'https://idp.example/token',
            credentials,
            clientAuth: 'private_key_jwt' as ClientAuthMethod,
          }),
      ).toThrow(ConfigurationError);
    });

    it('throws ConfigurationError naming tokenEndpoint when it is not a URL', () => {
      expect(() => new OAuth2IdentityProvider({ tokenEndpoint: '/token', credentials })).toThrow(
        /tokenEndpoint/,
      );
    });
  });
});

describe('Class: OAuth2IdentityProvider, against a standard server (oidc-provider)', () => {
  let oidc: OidcServer;

  beforeAll(async () => {
    oidc = await startOidcServer();
  });

  afterAll(async () => {
    await oidc.close();
  });

  function standardIdp(clientAuth: ClientAuthMethod, secrets?: readonly string[]): OAuth2IdentityProvider {
    const client = clientAuth === 'client_secret_basic' ? oidc.clients.basic : oidc.clients.post;
    return new OAuth2IdentityProvider({
      tokenEndpoint: oidc.tokenEndpoint,
      revocationEndpoint: oidc.revocationEndpoint,
      credentials: new RotatingCredentials(client.id, secrets ?? [client.secret]),
      clientAuth,
    });
  }

  describe('Method: refresh', () => {
    it.each(['client_secret_basic', 'client_secret_post'] as const)(
      'rotates the refresh token with %s, and a replayed token is a permanent invalid_grant',
      async (clientAuth) => {
        // Prepare
        const clientId = clientAuth === 'client_secret_basic' ? oidc.clients.basic.id : oidc.clients.post.id;
        const signedIn = await oidc.signIn(`user-${clientAuth}`, { clientId });
        const provider = standardIdp(clientAuth);

        // Act
        const first = await provider.refresh(new Secret(signedIn.refresh_token), { timeoutMs: 5000 });
        const firstRefresh = first.refreshToken!;
        const second = await provider.refresh(firstRefresh, { timeoutMs: 5000 });
        const replay = await caught(provider.refresh(firstRefresh, { timeoutMs: 5000 }));

        // Assess
        expect(firstRefresh.reveal()).not.toBe(signedIn.refresh_token);
        expect(second.refreshToken?.equals(firstRefresh)).toBe(false);
        expect(first.idToken).toBeDefined();
        expect(replay).toBeInstanceOf(IdpPermanentError);
        expect((replay as IdpPermanentError).code).toBe('invalid_grant');
        expect(shown(replay)).not.toContain(firstRefresh.reveal());
      },
    );

    it('recovers from a stale client secret by re-reading the credentials once', async () => {
      // Prepare
      const signedIn = await oidc.signIn('user-stale-secret');
      const provider = standardIdp('client_secret_basic', ['stale-secret', oidc.clients.basic.secret]);

      // Act
      const tokens = await provider.refresh(new Secret(signedIn.refresh_token), { timeoutMs: 5000 });

      // Assess
      expect(tokens.refreshToken?.reveal()).not.toBe(signedIn.refresh_token);
    });

    it('throws IdpConfigurationError when the client secret is wrong for good', async () => {
      // Prepare
      const signedIn = await oidc.signIn('user-wrong-secret');
      const provider = standardIdp('client_secret_basic', ['wrong-secret']);

      // Act
      const error = await caught(provider.refresh(new Secret(signedIn.refresh_token), { timeoutMs: 5000 }));

      // Assess
      expect(error).toBeInstanceOf(IdpConfigurationError);
      expect(shown(error)).not.toContain(signedIn.refresh_token);
    });
  });

  describe('Method: revoke', () => {
    it('revokes a refresh token so that it can no longer be used', async () => {
      // Prepare
      const signedIn = await oidc.signIn('user-revoke');
      const provider = standardIdp('client_secret_basic');
      const refreshToken = new Secret(signedIn.refresh_token);

      // Act
      await provider.revoke(refreshToken, { timeoutMs: 5000 });
      const error = await caught(provider.refresh(refreshToken, { timeoutMs: 5000 }));

      // Assess
      expect(error).toBeInstanceOf(IdpPermanentError);
      expect((error as IdpPermanentError).code).toBe('invalid_grant');
    });
  });
});
