import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo, createServer as createTcpServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FetchFn } from '../../functions/adapters/idp/http';
import { OAuth2IdentityProvider } from '../../functions/adapters/idp/oauth2';
import { TransmitIdentityProvider } from '../../functions/adapters/idp/transmit';
import { IdpConfigurationError, IdpPermanentError, IdpTransientError } from '../../functions/core/errors';
import type { IdentityProvider } from '../../functions/core/ports';
import { tokensFromAnswer } from '../../functions/core/refresh-answer';
import { Secret } from '../../functions/core/secret';
import { shown } from '../support/caught';
import {
  CONFORMANCE_MATRIX,
  type ConformanceOutcome,
  type ConformanceRow,
  conformanceTableMarkdown,
  MATRIX_TOKENS,
  type MatrixReply,
  outcomeListMarkdown,
} from '../support/idp-conformance-matrix';
import { ManualClock } from '../support/idp-http-server';
import { RotatingCredentials } from '../support/rotating-credentials';

const CLIENT_TOKEN_PATH = '/oidc/token';
const TRANSMIT_REFRESH_PATH = '/cis/v1/auth/token/refresh';
const OAUTH2_TOKEN_PATH = '/oauth2/token';
const CLIENT_SECRET = 'cs-CANARY-matrix-7f8e';
const CANARIES = [MATRIX_TOKENS.access, MATRIX_TOKENS.refresh, MATRIX_TOKENS.presented, CLIENT_SECRET, 'ct-'];
const NOW_S = 1_800_000_000;
const CURRENT_ACCESS_S = 100;
const DEFAULT_ACCESS_S = 1234;
const TIMEOUT_MS = 3000;
/** The hang row waits out the whole deadline; keep it short. */
const HANG_TIMEOUT_MS = 800;

/** A 10 MB body that is a complete, valid token set. */
const HUGE_BODY = JSON.stringify({
  access_token: MATRIX_TOKENS.access,
  refresh_token: MATRIX_TOKENS.refresh,
  expires_in: 3600,
  padding: 'x'.repeat(10 * 1024 * 1024),
});

/** The matrix IdP: client tokens on /oidc/token, the row under test on both refresh paths. */
class MatrixServer {
  url = '';
  reply: MatrixReply = { kind: 'http', status: 599 };
  refreshRequests = 0;
  #issued = 0;
  readonly #server: Server = createServer((request, response) => this.#handle(request, response));

  async start(): Promise<void> {
    this.#server.on('clientError', (_error, socket) => socket.destroy());
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  #handle(request: IncomingMessage, response: ServerResponse): void {
    response.on('error', () => undefined);
    request.resume();
    request.once('end', () => {
      if (request.url === CLIENT_TOKEN_PATH) {
        this.#issued += 1;
        sendJson(response, 200, {
          access_token: `ct-${this.#issued}`,
          token_type: 'Bearer',
          expires_in: 3600,
        });
        return;
      }
      this.refreshRequests += 1;
      this.#answer(request, response, this.reply);
    });
  }

  #answer(request: IncomingMessage, response: ServerResponse, reply: MatrixReply): void {
    switch (reply.kind) {
      case 'http': {
        const isText = typeof reply.body === 'string';
        const payload =
          reply.body === undefined ? '' : isText ? (reply.body as string) : JSON.stringify(reply.body);
        response.writeHead(reply.status, {
          ...(reply.body !== undefined && !isText ? { 'content-type': 'application/json' } : {}),
          ...reply.headers,
        });
        response.end(payload);
        return;
      }
      case 'truncated':
        response.writeHead(200, { 'content-type': 'application/json', 'content-length': '4096' });
        response.write(`{"access_token":"${MATRIX_TOKENS.access}","refresh_tok`, () =>
          request.socket.destroy(),
        );
        return;
      case 'huge':
        // Chunked, with no content-length: the client must stop reading on its own.
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(HUGE_BODY);
        return;
      case 'reset':
        request.socket.resetAndDestroy();
        return;
      case 'hang':
      case 'refused':
        return;
    }
  }
}

function sendJson(response: ServerResponse, status: number, body: object): void {
  const payload = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json' }).end(payload);
}

/** A loopback port on which nothing listens. */
async function closedPort(): Promise<number> {
  const probe = createTcpServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

interface Observed {
  readonly outcome: ConformanceOutcome;
  readonly retryAfterSeconds?: number | undefined;
  readonly accessLifetime?: number | 'default' | 'kept';
  readonly error?: Error;
}

/** Runs one refresh and reads it the way the core does. */
async function observe(idp: IdentityProvider, timeoutMs: number): Promise<Observed> {
  try {
    const answer = await idp.refresh(new Secret(MATRIX_TOKENS.presented), { timeoutMs });
    const merged = tokensFromAnswer(
      answer,
      { accessToken: new Secret('at-current-0000'), refreshToken: new Secret(MATRIX_TOKENS.presented) },
      { tokenType: 'Bearer', accessExpiresAt: NOW_S + CURRENT_ACCESS_S },
      NOW_S,
      DEFAULT_ACCESS_S,
    );
    if (merged.kind === 'unusable') return { outcome: 'unusable' };
    const seconds = merged.accessExpiresAt - NOW_S;
    const accessLifetime =
      seconds === DEFAULT_ACCESS_S
        ? 'default'
        : seconds === CURRENT_ACCESS_S && !answer.accessToken
          ? 'kept'
          : seconds;
    return { outcome: merged.rotated ? 'rotated' : 'rotated-kept-refresh', accessLifetime };
  } catch (caughtError) {
    const error = caughtError as Error;
    if (error instanceof IdpPermanentError) return { outcome: 'reauth', error };
    if (error instanceof IdpConfigurationError) return { outcome: 'configuration', error };
    if (error instanceof IdpTransientError) {
      return {
        outcome: error.notConsumed ? 'transient (not consumed)' : 'transient',
        retryAfterSeconds: error.retryAfterSeconds,
        error,
      };
    }
    throw error;
  }
}

function expected(row: ConformanceRow, outcome: ConformanceOutcome): Observed {
  return {
    outcome,
    ...(row.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: row.retryAfterSeconds }),
    ...(row.accessLifetime === undefined ? {} : { accessLifetime: row.accessLifetime }),
  };
}

describe('IdP conformance matrix', () => {
  const server = new MatrixServer();
  let deadUrl: string;

  beforeAll(async () => {
    await server.start();
    deadUrl = `http://127.0.0.1:${await closedPort()}`;
  });

  afterAll(async () => {
    await server.close();
  });

  const credentials = () => new RotatingCredentials('matrix-app', [CLIENT_SECRET]);

  const flavours = {
    transmit: (row: ConformanceRow): IdentityProvider => {
      // Refused: the client token still comes (its endpoint is up); only the refresh finds nothing.
      const fetchFn: FetchFn = (input, init) =>
        fetch(
          row.reply.kind === 'refused' && String(input).endsWith(TRANSMIT_REFRESH_PATH)
            ? String(input).replace(server.url, deadUrl)
            : input,
          init,
        );
      return new TransmitIdentityProvider({
        baseUrl: server.url,
        credentials: credentials(),
        clock: new ManualClock(),
        fetch: fetchFn,
      });
    },
    oauth2: (row: ConformanceRow): IdentityProvider =>
      new OAuth2IdentityProvider({
        tokenEndpoint: `${row.reply.kind === 'refused' ? deadUrl : server.url}${OAUTH2_TOKEN_PATH}`,
        credentials: credentials(),
        clock: new ManualClock(),
      }),
  } as const;

  for (const flavour of ['transmit', 'oauth2'] as const) {
    describe(`Flavour: ${flavour}`, () => {
      it.each(CONFORMANCE_MATRIX.map((row) => [row.answer, row] as const))('%s', async (_answer, row) => {
        // Prepare
        server.reply = row.reply;
        server.refreshRequests = 0;
        const idp = flavours[flavour](row);

        // Act
        const observed = await observe(idp, row.reply.kind === 'hang' ? HANG_TIMEOUT_MS : TIMEOUT_MS);

        // Assess
        const { error, ...rest } = observed;
        expect(rest).toEqual(expected(row, row[flavour]));
        if (error) for (const canary of CANARIES) expect(shown(error)).not.toContain(canary);
        if (row.reply.kind === 'refused') expect(server.refreshRequests).toBe(0);
        else expect(server.refreshRequests).toBeGreaterThanOrEqual(1);
      });
    });
  }

  describe('README', () => {
    const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');

    it('has a section "### IdP conformance matrix" whose table is exactly the tested rows', () => {
      // Assess
      const section = readme.split('\n### IdP conformance matrix\n')[1]?.split(/\n#{2,3} /)[0];
      expect(section, 'README section "### IdP conformance matrix"').toBeDefined();
      expect(section).toContain(conformanceTableMarkdown());
    });

    it('describes every outcome word in that section', () => {
      // Assess
      const section = readme.split('\n### IdP conformance matrix\n')[1]?.split(/\n#{2,3} /)[0];
      expect(section).toContain(outcomeListMarkdown());
    });
  });
});
