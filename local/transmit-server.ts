import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Faults, faultStatus, parseFaultCommand, processesFirst } from './transmit/faults';
import {
  basicCredentials,
  bearerToken,
  cisError,
  isLoopback,
  json,
  NO_CONTENT,
  optionalString,
  parseJsonObject,
  type Reply,
  readBody,
  requiredString,
  TOO_LARGE,
} from './transmit/http';
import { JwtSigner } from './transmit/jwt';
import { type RefreshResult, sha256Hex, TransmitState } from './transmit/state';
import type {
  DeadTokenStyle,
  Fault,
  FaultInjector,
  LogoutBehaviour,
  RefreshLogEntry,
  TransmitStats,
  TransmitTokenResponse,
} from './transmit/types';

export type {
  DeadTokenStyle,
  Fault,
  FaultInjector,
  FaultTarget,
  LogoutBehaviour,
  RefreshLogEntry,
  RefreshOutcome,
  TransmitRefreshResponse,
  TransmitStats,
  TransmitTokenResponse,
} from './transmit/types';

const DAY_SECONDS = 86_400;
const MAX_BODY_BYTES = 64 * 1024;
/** How long a `timeout` fault holds a socket: longer than any sane client timeout. */
const HOLD_MS = 30_000;

/** Options of {@link startTransmitServer}. */
export interface TransmitServerOptions {
  /** TCP port on 127.0.0.1. @default 0 (a free port) */
  readonly port?: number;
  /** @default 'local-client' */
  readonly clientId?: string;
  /** @default 'local-secret' */
  readonly clientSecret?: string;
  /** Source of "now" for every lifetime. @default Date.now */
  readonly clock?: { nowMs(): number };
  /** Lifetime of user access and ID tokens. @default 3600 */
  readonly accessTokenTtlSeconds?: number;
  /** Lifetime of client credentials tokens. @default 3600 */
  readonly clientTokenTtlSeconds?: number;
  /** Lifetime of a refresh token from its issue. @default 14 days */
  readonly refreshTokenTtlSeconds?: number;
  /** No refresh after the sign-in plus this. @default 365 days */
  readonly maxRotationSeconds?: number;
  /**
   * A consumed refresh token presented again within this many seconds of its consumption rotates
   * again; after it (or always, with 0) the reuse is rejected and the whole family revoked. @default 0
   */
  readonly reuseGraceSeconds?: number;
  /**
   * Whether a reuse outside the grace revokes the whole family (every token of the sign-in), or
   * only rejects the reused token. @default true
   */
  readonly reuseRevokesFamily?: boolean;
  /** How a dead refresh token is answered (see DeadTokenStyle). @default 'mixed' */
  readonly deadTokenStyle?: DeadTokenStyle;
  /** The `error_code` of the `cis-400` and `cis-401` styles. @default the status (a number) */
  readonly deadTokenErrorCode?: string | number;
  /** How logout answers. @default 204, 404 for an unknown session, client token accepted */
  readonly logout?: LogoutBehaviour;
  /**
   * A second client whose credentials work but whose tokens lack the permissions: refresh, logout
   * and sign-in answer it 403. @default none
   */
  readonly limitedClient?: { readonly clientId: string; readonly clientSecret: string };
  /** The passcode the demo OTP sign-in accepts. @default '123456' */
  readonly demoPasscode?: string;
  /** `iss` of every JWT. @default the server's own base URL */
  readonly issuer?: string;
  /** Random source of `faults.failRate` (pass a seeded one for repeatable runs). @default Math.random */
  readonly random?: () => number;
  /** How injected latency is waited for (tests pass one that does not sleep). @default a timer */
  readonly delay?: (ms: number) => Promise<void>;
}

/** A running Transmit-compatible server. */
export interface TransmitServer {
  /** e.g. http://127.0.0.1:43210 */
  readonly baseUrl: string;
  readonly faults: FaultInjector;
  /** Every refresh request with a well-formed body received, in order (after the client token check passed). */
  readonly refreshLog: readonly RefreshLogEntry[];
  /** Issues a token set for a user directly (what a sign-in returns), for tests. */
  signIn(userId: string, options?: { resource?: string }): Promise<TransmitTokenResponse>;
  /** How many times this refresh token value was presented to /refresh (0 if never), faulted requests included. */
  timesPresented(refreshToken: string): number;
  /** The newest refresh token of the family that `anyTokenOfFamily` belongs to, or undefined if the family is revoked/unknown. */
  latestRefreshToken(anyTokenOfFamily: string): string | undefined;
  /** Number of reuse detections (a consumed token presented again outside the grace). */
  readonly reuseDetections: number;
  close(): Promise<void>;
}

/** Starts a strict, in-memory emulator of the Transmit endpoints token-keeper uses, on 127.0.0.1. */
export async function startTransmitServer(options: TransmitServerOptions = {}): Promise<TransmitServer> {
  const server = new LocalTransmitServer(options, await JwtSigner.create());
  await server.listen(options.port ?? 0);
  return server;
}

interface Route {
  readonly method: 'GET' | 'POST';
  readonly handle: (request: IncomingMessage, body: Buffer) => Reply | Promise<Reply>;
}

const UNAUTHORIZED: Reply = json(401, { message: 'Unauthorized', error_code: 401 });
const FORBIDDEN: Reply = json(403, {
  message: 'Forbidden: the client lacks this permission',
  error_code: 403,
});

const INVALID_GRANT_MESSAGES: Readonly<
  Record<Exclude<RefreshResult['outcome'], 'rotated' | 'grace'>, string>
> = {
  unknown: 'Refresh token is not valid',
  expired: 'Refresh token has expired',
  revoked: 'Refresh token has been revoked',
  deadline: 'Refresh token passed its maximum rotation lifetime; the user must authenticate again',
  reuse: 'Refresh token was already used; the session has been revoked',
};

const STATUS_MESSAGES: Readonly<Record<number, string>> = {
  403: 'Forbidden',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

class LocalTransmitServer implements TransmitServer {
  readonly faults: Faults;
  readonly #options: TransmitServerOptions;
  readonly #clock: { nowMs(): number };
  readonly #signer: JwtSigner;
  readonly #state: TransmitState;
  readonly #server: Server;
  readonly #routes: ReadonlyMap<string, Route>;
  readonly #log: RefreshLogEntry[] = [];
  readonly #sockets = new Set<Socket>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #baseUrl = '';
  #closing: Promise<void> | undefined;

  constructor(options: TransmitServerOptions, signer: JwtSigner) {
    this.#options = options;
    this.#signer = signer;
    this.#clock = options.clock ?? { nowMs: () => Date.now() };
    this.faults = new Faults(options.random);
    this.#state = new TransmitState({
      signer: this.#signer,
      clientId: options.clientId ?? 'local-client',
      issuer: () => options.issuer ?? this.#baseUrl,
      reuseRevokesFamily: options.reuseRevokesFamily ?? true,
      lifetimes: {
        accessTokenTtlSeconds: options.accessTokenTtlSeconds ?? 3600,
        clientTokenTtlSeconds: options.clientTokenTtlSeconds ?? 3600,
        refreshTokenTtlSeconds: options.refreshTokenTtlSeconds ?? 14 * DAY_SECONDS,
        maxRotationSeconds: options.maxRotationSeconds ?? 365 * DAY_SECONDS,
        reuseGraceSeconds: options.reuseGraceSeconds ?? 0,
      },
    });
    this.#routes = new Map<string, Route>([
      ['/oidc/token', { method: 'POST', handle: (req, body) => this.#clientCredentials(req, body) }],
      ['/cis/v1/auth/otp/authenticate', { method: 'POST', handle: (req, body) => this.#otp(req, body) }],
      ['/cis/v1/auth/token/refresh', { method: 'POST', handle: (req, body) => this.#refresh(req, body) }],
      ['/cis/v1/auth/session/logout', { method: 'POST', handle: (req, body) => this.#logout(req, body) }],
      [
        '/cis/v1/auth/session/authenticate',
        { method: 'POST', handle: (req, body) => this.#sessionAuthenticate(req, body) },
      ],
      ['/cis/oidc/jwks', { method: 'GET', handle: () => json(200, this.#signer.jwks()) }],
      ['/local/faults', { method: 'POST', handle: (req, body) => this.#adminFaults(req, body) }],
      ['/local/stats', { method: 'GET', handle: (req) => this.#adminStats(req) }],
    ]);
    this.#server = createServer((request, response) => {
      void this.#dispatch(request, response);
    });
    this.#server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
  }

  get baseUrl(): string {
    return this.#baseUrl;
  }

  get refreshLog(): readonly RefreshLogEntry[] {
    return this.#log;
  }

  get reuseDetections(): number {
    return this.#state.reuseDetections;
  }

  /** Binds to 127.0.0.1 and learns the base URL. */
  listen(port: number): Promise<void> {
    return new Promise((done, fail) => {
      this.#server.once('error', fail);
      this.#server.listen(port, '127.0.0.1', () => {
        this.#server.off('error', fail);
        const address = this.#server.address();
        this.#baseUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : port}`;
        done();
      });
    });
  }

  signIn(userId: string, options?: { resource?: string }): Promise<TransmitTokenResponse> {
    return this.#state.signIn(userId, options?.resource, this.#clock.nowMs());
  }

  timesPresented(refreshToken: string): number {
    return this.#state.timesPresented(refreshToken);
  }

  latestRefreshToken(anyTokenOfFamily: string): string | undefined {
    return this.#state.latestRefreshToken(anyTokenOfFamily);
  }

  close(): Promise<void> {
    this.#closing ??= new Promise<void>((done) => {
      for (const timer of this.#timers) clearTimeout(timer);
      this.#timers.clear();
      this.#server.close(() => done());
      // Held (timeout-fault) and keep-alive sockets would otherwise keep close() waiting.
      for (const socket of this.#sockets) socket.destroy();
    });
    return this.#closing;
  }

  async #dispatch(request: IncomingMessage, response: ServerResponse): Promise<void> {
    let reply: Reply;
    try {
      reply = await this.#route(request);
    } catch {
      // No detail: an error raised while handling a request could carry what the request held.
      reply = cisError(500, 'Internal Server Error');
    }
    this.#send(request, response, reply);
  }

  async #route(request: IncomingMessage): Promise<Reply> {
    const path = new URL(request.url ?? '/', 'http://127.0.0.1').pathname;
    const route = this.#routes.get(path);
    if (!route) return cisError(404, 'Not Found');
    if (request.method !== route.method) {
      return json(405, { message: 'Method Not Allowed', error_code: 405 }, { allow: route.method });
    }
    const body = await readBody(request, MAX_BODY_BYTES);
    if (body === TOO_LARGE) {
      return json(413, { message: 'Payload Too Large', error_code: 413 }, { connection: 'close' });
    }
    return route.handle(request, body);
  }

  #send(request: IncomingMessage, response: ServerResponse, reply: Reply): void {
    if (this.#closing) {
      request.socket.destroy();
      return;
    }
    switch (reply.kind) {
      case 'hold':
        this.#hold(request.socket);
        return;
      case 'reset':
        request.socket.resetAndDestroy();
        return;
      case 'noContent':
        response.writeHead(204).end();
        return;
      case 'json': {
        const payload = JSON.stringify(reply.body);
        response
          .writeHead(reply.status, {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(payload),
            'cache-control': 'no-store',
            ...reply.headers,
          })
          .end(payload);
      }
    }
  }

  /** Never answers; the socket is dropped after HOLD_MS, when the client gives up, or on close(). */
  #hold(socket: Socket): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      socket.destroy();
    }, HOLD_MS);
    this.#timers.add(timer);
    socket.once('close', () => {
      clearTimeout(timer);
      this.#timers.delete(timer);
    });
  }

  async #latency(): Promise<void> {
    const ms = this.faults.latencyMs;
    if (ms <= 0) return;
    if (this.#options.delay) return this.#options.delay(ms);
    await new Promise<void>((done) => {
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        done();
      }, ms);
      this.#timers.add(timer);
    });
  }

  /** Undefined when the client token may call the endpoint, else the refusal to send. */
  #clientRefusal(request: IncomingMessage): Reply | undefined {
    const token = bearerToken(request);
    const access =
      token === undefined ? 'invalid' : this.#state.clientTokenAccess(token, this.#clock.nowMs());
    if (access === 'invalid') return UNAUTHORIZED;
    return access === 'limited' ? FORBIDDEN : undefined;
  }

  /** The answer to a dead refresh token, in the configured style. */
  #deadToken(outcome: Exclude<RefreshResult['outcome'], 'rotated' | 'grace'>): Reply {
    const message = INVALID_GRANT_MESSAGES[outcome];
    switch (this.#options.deadTokenStyle ?? 'mixed') {
      case 'mixed':
        return cisError(400, message, 'invalid_grant');
      case 'oauth':
        return json(400, { error: 'invalid_grant', error_description: message });
      case 'cis-400':
        return json(400, { message, error_code: this.#options.deadTokenErrorCode ?? 400 });
      case 'cis-401':
        return json(401, { message, error_code: this.#options.deadTokenErrorCode ?? 401 });
    }
  }

  async #clientCredentials(request: IncomingMessage, body: Buffer): Promise<Reply> {
    await this.#latency();
    const fault = this.faults.take('token');
    if (fault && !processesFirst(fault)) return faultReply(fault);
    const reply = await this.#issueClientToken(request, body);
    return fault ? faultReply(fault) : reply;
  }

  async #issueClientToken(request: IncomingMessage, body: Buffer): Promise<Reply> {
    const form = new URLSearchParams(body.toString('utf8'));
    const basic = basicCredentials(request);
    const clientId = basic ? basic.id : form.get('client_id');
    const clientSecret = basic ? basic.secret : form.get('client_secret');
    const limited = this.#options.limitedClient;
    const isLimited = limited !== undefined && clientId === limited.clientId;
    const expectedSecret = isLimited
      ? limited.clientSecret
      : clientId === (this.#options.clientId ?? 'local-client')
        ? (this.#options.clientSecret ?? 'local-secret')
        : undefined;
    if (clientId === null || expectedSecret === undefined || clientSecret !== expectedSecret) {
      return json(401, { error: 'invalid_client' });
    }
    const grantType = form.get('grant_type');
    if (!grantType)
      return json(400, { error: 'invalid_request', error_description: 'grant_type is required' });
    if (grantType !== 'client_credentials') return json(400, { error: 'unsupported_grant_type' });
    return json(
      200,
      await this.#state.issueClientToken(form.get('resource') || undefined, this.#clock.nowMs(), {
        clientId,
        limited: isLimited,
      }),
    );
  }

  async #otp(request: IncomingMessage, body: Buffer): Promise<Reply> {
    const refusal = this.#clientRefusal(request);
    if (refusal) return refusal;
    const fields = parseJsonObject(body);
    const identifier = fields && requiredString(fields, 'identifier');
    const passcode = fields && requiredString(fields, 'passcode');
    const resource = fields && optionalString(fields, 'resource');
    if (fields?.identifier_type !== 'email' || !identifier || !passcode || resource === null) {
      return cisError(
        400,
        'Expected { identifier_type: "email", identifier, passcode, resource? }',
        'invalid_request',
      );
    }
    if (passcode !== (this.#options.demoPasscode ?? '123456')) return cisError(401, 'Invalid passcode');
    return json(200, await this.#state.signIn(identifier, resource, this.#clock.nowMs()));
  }

  async #refresh(request: IncomingMessage, body: Buffer): Promise<Reply> {
    await this.#latency();
    const refusal = this.#clientRefusal(request);
    if (refusal) return refusal;
    const fields = parseJsonObject(body);
    const refreshToken = fields && requiredString(fields, 'refresh_token');
    if (!refreshToken) return cisError(400, 'Expected { refresh_token }', 'invalid_request');

    const tokenHash = sha256Hex(refreshToken);
    this.#state.countPresentation(tokenHash);
    const fault = this.faults.take('refresh');
    if (fault && !processesFirst(fault)) {
      this.#logRefresh(tokenHash, this.#state.familyOf(refreshToken), faultStatus(fault), 'fault');
      return faultReply(fault);
    }
    const result = this.#state.refresh(refreshToken, this.#clock.nowMs());
    if (result.outcome !== 'rotated' && result.outcome !== 'grace') {
      const reply = this.#deadToken(result.outcome);
      const status = fault ? faultStatus(fault) : reply.kind === 'json' ? reply.status : 0;
      this.#logRefresh(tokenHash, result.familyId, status, result.outcome);
      return fault ? faultReply(fault) : reply;
    }
    // Logged at once, in the order the refreshes were decided; only the signing of the new set is awaited.
    this.#logRefresh(tokenHash, result.familyId, fault ? faultStatus(fault) : 200, result.outcome);
    const tokens = await result.tokens;
    return fault ? faultReply(fault) : json(200, tokens);
  }

  #logRefresh(
    tokenHash: string,
    familyId: string | undefined,
    status: number,
    outcome: RefreshLogEntry['outcome'],
  ) {
    this.#log.push(Object.freeze({ tokenHash, familyId, status, outcome, atMs: this.#clock.nowMs() }));
  }

  #logout(request: IncomingMessage, body: Buffer): Reply {
    const behaviour = this.#options.logout ?? {};
    const fields = parseJsonObject(body);
    const sessionId = fields && requiredString(fields, 'session_id');
    const token = bearerToken(request);
    const byTheUser =
      sessionId !== undefined && token !== undefined && this.#state.isAccessTokenOfSession(token, sessionId);
    if (!byTheUser) {
      const refusal = this.#clientRefusal(request);
      if (refusal) return refusal;
      if (behaviour.acceptsClientToken === false) return FORBIDDEN;
    }
    if (!sessionId) return cisError(400, 'Expected { session_id }', 'invalid_request');
    if (this.#state.logout(sessionId) === 'unknown') {
      const status = behaviour.unknownSession ?? 404;
      return status === 204 ? NO_CONTENT : cisError(status, 'Session not found');
    }
    return (behaviour.loggedOut ?? 204) === 200 ? json(200, { message: 'Logged out' }) : NO_CONTENT;
  }

  async #sessionAuthenticate(request: IncomingMessage, body: Buffer): Promise<Reply> {
    const refusal = this.#clientRefusal(request);
    if (refusal) return refusal;
    const fields = parseJsonObject(body);
    const sessionId = fields && requiredString(fields, 'session_id');
    const resource = fields && optionalString(fields, 'resource');
    if (!sessionId || resource === null)
      return cisError(400, 'Expected { session_id, resource? }', 'invalid_request');
    const tokens = await this.#state.authenticateSession(sessionId, resource, this.#clock.nowMs());
    return tokens ? json(200, tokens) : cisError(401, 'Session is not valid');
  }

  #adminFaults(request: IncomingMessage, body: Buffer): Reply {
    if (!isLoopback(request.socket.remoteAddress)) return cisError(403, 'Forbidden');
    const fields = parseJsonObject(body);
    const command = fields && parseFaultCommand(fields);
    if (!command) {
      return cisError(
        400,
        'Expected { latencyMs?, failNext?: { count, fault }, failRate?: { rate, fault }, reset?: true }',
        'invalid_request',
      );
    }
    if (command.reset) this.faults.reset();
    if (command.latencyMs !== undefined) this.faults.latencyMs = command.latencyMs;
    if (command.failNext) this.faults.failNext(command.failNext.count, command.failNext.fault);
    if (command.failRate) this.faults.failRate(command.failRate.rate, command.failRate.fault);
    return NO_CONTENT;
  }

  #adminStats(request: IncomingMessage): Reply {
    if (!isLoopback(request.socket.remoteAddress)) return cisError(403, 'Forbidden');
    const stats: TransmitStats = this.#state.stats(this.#log.length);
    return json(200, stats);
  }
}

function faultReply(fault: Fault): Reply {
  switch (fault.kind) {
    case 'deadToken':
      return json(400, { error: 'invalid_grant', error_description: 'refresh token not found' });
    case 'status':
      return cisError(fault.status, STATUS_MESSAGES[fault.status] ?? 'Server Error');
    case 'rateLimit':
      return json(
        429,
        { message: 'Too Many Requests', error_code: 429 },
        { 'retry-after': String(fault.retryAfterSeconds) },
      );
    case 'timeout':
      return { kind: 'hold' };
    case 'reset':
      return { kind: 'reset' };
  }
}
