import { createServer } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ClientTokenProvider } from '../../../functions/adapters/idp/client-token';
import {
  ConfigurationError,
  IdpConfigurationError,
  IdpTransientError,
  RefreshUnavailableError,
} from '../../../functions/core/errors';
import { Secret } from '../../../functions/core/secret';
import { caught, shown } from '../../support/caught';
import { ManualClock, type ScriptedServer, startScriptedServer } from '../../support/idp-http-server';
import { RotatingCredentials } from '../../support/rotating-credentials';

const TOKEN_PATH = '/oidc/token';
const CLIENT_SECRET = 'cs-CANARY-0a1b2c';
const ROTATED_SECRET = 'cs-CANARY-rotated-9f8e';
const TOKEN_CANARY = 'ct-CANARY-77aa';

let server: ScriptedServer;
let clock: ManualClock;
let credentials: RotatingCredentials;

function provider(options: { expirySkewMs?: number } = {}): ClientTokenProvider {
  return new ClientTokenProvider({ tokenUrl: `${server.url}${TOKEN_PATH}`, credentials, clock, ...options });
}

/** Answers every token request with a new token `ct-<n>` valid for `expiresIn` seconds. */
function issueTokens(expiresIn = 3600): void {
  let issued = 0;
  server.route(TOKEN_PATH, () => {
    issued += 1;
    return {
      status: 200,
      body: { access_token: `ct-${issued}`, token_type: 'Bearer', expires_in: expiresIn },
    };
  });
}

describe('Class: ClientTokenProvider', () => {
  beforeEach(async () => {
    server = await startScriptedServer();
    clock = new ManualClock();
    credentials = new RotatingCredentials('app-1', [CLIENT_SECRET, ROTATED_SECRET]);
  });

  afterEach(async () => {
    expect(server.unusedReplies()).toBe(0);
    await server.close();
  });

  describe('Method: token', () => {
    it('POSTs the client credentials grant as a form', async () => {
      // Prepare
      issueTokens();

      // Act
      const token = await provider().token();

      // Assess
      expect(token.reveal()).toBe('ct-1');
      const [request] = server.requestsTo(TOKEN_PATH);
      expect(request?.method).toBe('POST');
      expect(request?.headers['content-type']).toBe('application/x-www-form-urlencoded');
      expect(request?.headers.accept).toBe('application/json');
      expect(request?.headers.authorization).toBeUndefined();
      expect(Object.fromEntries(new URLSearchParams(request?.body))).toEqual({
        grant_type: 'client_credentials',
        client_id: 'app-1',
        client_secret: CLIENT_SECRET,
      });
    });

    it('makes one request for many calls while the token is valid', async () => {
      // Prepare
      issueTokens();
      const tokens = provider();

      // Act
      const values: string[] = [];
      for (let i = 0; i < 5; i += 1) values.push((await tokens.token()).reveal());

      // Assess
      expect(new Set(values)).toEqual(new Set(['ct-1']));
      expect(server.requests).toHaveLength(1);
    });

    it('renews the token 60 s before expires_in', async () => {
      // Prepare
      issueTokens(3600);
      const tokens = provider();
      await tokens.token();

      // Act
      clock.advance((3600 - 60) * 1000 - 1);
      const stillCached = (await tokens.token()).reveal();
      clock.advance(1);
      const renewed = (await tokens.token()).reveal();

      // Assess
      expect(stillCached).toBe('ct-1');
      expect(renewed).toBe('ct-2');
      expect(server.requests).toHaveLength(2);
    });

    it('reuses a token shorter-lived than the skew for half its lifetime', async () => {
      // Prepare
      issueTokens(30);
      const tokens = provider();
      await tokens.token();

      // Act
      clock.advance(14_999);
      const cached = (await tokens.token()).reveal();
      clock.advance(1);
      const renewed = (await tokens.token()).reveal();

      // Assess
      expect([cached, renewed]).toEqual(['ct-1', 'ct-2']);
    });

    it('shares one request between concurrent callers', async () => {
      // Prepare
      issueTokens();
      const tokens = provider();

      // Act
      const values = await Promise.all(Array.from({ length: 10 }, () => tokens.token()));

      // Assess
      expect(server.requests).toHaveLength(1);
      expect(values.every((token) => token.reveal() === 'ct-1')).toBe(true);
    });

    it('re-reads the credentials once after a 401 and retries with the rotated secret', async () => {
      // Prepare
      server.enqueue(TOKEN_PATH, { status: 401, body: { error: 'invalid_client' } });
      issueTokens();

      // Act
      const token = await provider().token();

      // Assess
      expect(token.reveal()).toBe('ct-1');
      expect(credentials.invalidations).toBe(1);
      const bodies = server
        .requestsTo(TOKEN_PATH)
        .map((r) => new URLSearchParams(r.body).get('client_secret'));
      expect(bodies).toEqual([CLIENT_SECRET, ROTATED_SECRET]);
    });

    it.each([
      ['401', { status: 401, body: { error: 'invalid_client' } }],
      ['401 without a body', { status: 401 }],
      [
        '400 invalid_client',
        { status: 400, body: { error: 'invalid_client', error_description: 'bad secret' } },
      ],
    ])('throws IdpConfigurationError after a second %s, having retried once', async (_label, reply) => {
      // Prepare
      server.enqueue(TOKEN_PATH, reply, reply);

      // Act
      const error = await caught(provider().token());

      // Assess
      expect(error).toBeInstanceOf(IdpConfigurationError);
      expect(error.message).toContain('client credentials rejected by the IdP');
      expect(server.requests).toHaveLength(2);
      expect(credentials.invalidations).toBe(1);
      expect(shown(error)).not.toContain(CLIENT_SECRET);
      expect(shown(error)).not.toContain(ROTATED_SECRET);
    });

    it.each([
      ['400 invalid_scope', { status: 400, body: { error: 'invalid_scope' } }],
      ['403', { status: 403, body: { message: 'forbidden' } }],
    ])('throws IdpConfigurationError without a retry for %s', async (_label, reply) => {
      // Prepare
      server.enqueue(TOKEN_PATH, reply);

      // Act
      const error = await caught(provider().token());

      // Assess
      expect(error).toBeInstanceOf(IdpConfigurationError);
      expect(server.requests).toHaveLength(1);
      expect(credentials.invalidations).toBe(0);
    });

    it.each([
      [500, undefined],
      [502, undefined],
      [503, '120'],
      [429, '7'],
      [408, undefined],
    ])('throws IdpTransientError for HTTP %s (Retry-After %s)', async (status, retryAfter) => {
      // Prepare
      server.enqueue(TOKEN_PATH, {
        status,
        body: { error: 'temporarily_unavailable' },
        headers: retryAfter ? { 'retry-after': retryAfter } : {},
      });

      // Act
      const error = await caught(provider().token());

      // Assess
      expect(error).toBeInstanceOf(IdpTransientError);
      expect((error as IdpTransientError).status).toBe(status);
      expect((error as IdpTransientError).retryAfterSeconds).toBe(
        retryAfter ? Number(retryAfter) : undefined,
      );
      expect(error.message).toContain(`HTTP ${status}`);
    });

    it('does not cache a failure: the next call asks again', async () => {
      // Prepare
      server.enqueue(TOKEN_PATH, { status: 503 });
      issueTokens();
      const tokens = provider();
      await caught(tokens.token());

      // Act
      const token = await tokens.token();

      // Assess
      expect(token.reveal()).toBe('ct-1');
      expect(server.requests).toHaveLength(2);
    });

    it.each([
      ['missing access_token', { token_type: 'Bearer', expires_in: 3600 }],
      ['empty access_token', { access_token: '', expires_in: 3600 }],
      ['expires_in as a string', { access_token: TOKEN_CANARY, expires_in: '3600' }],
      ['negative expires_in', { access_token: TOKEN_CANARY, expires_in: -1 }],
      ['a JSON array', [TOKEN_CANARY]],
      ['HTML', `<html>${TOKEN_CANARY}</html>`],
    ])('throws IdpTransientError for a malformed 200 (%s) without quoting it', async (_label, body) => {
      // Prepare
      server.enqueue(TOKEN_PATH, { status: 200, body });

      // Act
      const error = await caught(provider().token());

      // Assess
      expect(error).toBeInstanceOf(IdpTransientError);
      expect(error.message).toBe('malformed client token response');
      expect(shown(error)).not.toContain(TOKEN_CANARY);
    });

    it('throws IdpTransientError when the IdP does not answer in time', async () => {
      // Prepare
      server.enqueue(TOKEN_PATH, 'hang');
      const started = performance.now();

      // Act
      const error = await caught(provider().token({ timeoutMs: 200 }));

      // Assess
      expect(error).toBeInstanceOf(IdpTransientError);
      expect(error.message).toContain('timed out');
      expect(performance.now() - started).toBeLessThan(5000);
    });

    it('throws IdpTransientError when nothing listens on the port', async () => {
      // Prepare
      const closedPort = await new Promise<number>((resolve) => {
        const probe = createServer().listen(0, '127.0.0.1', () => {
          const { port } = probe.address() as { port: number };
          probe.close(() => resolve(port));
        });
      });
      const tokens = new ClientTokenProvider({
        tokenUrl: `http://127.0.0.1:${closedPort}/oidc/token`,
        credentials,
        clock,
      });

      // Act
      const error = await caught(tokens.token({ timeoutMs: 2000 }));

      // Assess
      expect(error).toBeInstanceOf(IdpTransientError);
      expect(error.message).toContain('connection refused');
      expect((error as IdpTransientError).notConsumed).toBe(true);
    });

    it('lets errors of the credentials source through unchanged', async () => {
      // Prepare
      const failure = new RefreshUnavailableError(
        'cannot read client credentials secret x (ThrottlingException)',
      );
      const tokens = new ClientTokenProvider({
        tokenUrl: `${server.url}${TOKEN_PATH}`,
        credentials: { get: () => Promise.reject(failure), invalidate: () => {} },
      });

      // Act
      const error = await caught(tokens.token());

      // Assess
      expect(error).toBe(failure);
      expect(server.requests).toHaveLength(0);
    });
  });

  describe('Method: invalidate', () => {
    it('drops the cached token so the next call fetches a new one', async () => {
      // Prepare
      issueTokens();
      const tokens = provider();
      await tokens.token();

      // Act
      tokens.invalidate();
      const next = await tokens.token();

      // Assess
      expect(next.reveal()).toBe('ct-2');
    });

    it('keeps a newer token when told to drop one that was already replaced', async () => {
      // Prepare
      issueTokens();
      const tokens = provider();
      const first = await tokens.token();
      tokens.invalidate(first);
      const second = await tokens.token();

      // Act
      tokens.invalidate(new Secret(first.reveal()));
      const third = await tokens.token();

      // Assess
      expect(second.reveal()).toBe('ct-2');
      expect(third.reveal()).toBe('ct-2');
      expect(server.requests).toHaveLength(2);
    });
  });

  describe('Method: constructor', () => {
    it('throws ConfigurationError for a tokenUrl that is not an http(s) URL', () => {
      expect(() => new ClientTokenProvider({ tokenUrl: 'not a url', credentials })).toThrow(
        ConfigurationError,
      );
      expect(() => new ClientTokenProvider({ tokenUrl: 'ftp://x/token', credentials })).toThrow(
        ConfigurationError,
      );
    });
  });
});
