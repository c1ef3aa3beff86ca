import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** How long the proxy waits for its upstream before it fails the request. */
const UPSTREAM_TIMEOUT_MS = 20_000;
/** The longest a stalled request is held when its client never gives up. */
const MAX_STALL_MS = 20_000;

/**
 * What a request is, as far as faults go. DynamoDB: `read` (GetItem), `query` (Query), `lease`
 * (an UpdateItem that sets leaseId/leaseUntil), `commit` (PutItem: the rotation's commit, a failed
 * refresh's record, a REAUTH_REQUIRED mark, storeTokens), `delete` (DeleteItem), `other`.
 * Calls on items that are not a user's record (the sweep's state, the breaker) are `other`.
 * IdP: `refresh`, `client-token`, `logout` (logout or revocation), `other`.
 */
export type CallKind =
  | 'read'
  | 'query'
  | 'lease'
  | 'commit'
  | 'delete'
  | 'refresh'
  | 'client-token'
  | 'logout'
  | 'other';

/** Every kind, for counters. */
export const CALL_KINDS: readonly CallKind[] = [
  'read',
  'query',
  'lease',
  'commit',
  'delete',
  'refresh',
  'client-token',
  'logout',
  'other',
];

/** What the proxy does to a request that a rule matched. */
export type FaultAction =
  /** Forwards it `ms` late; it still lands when the client gave up meanwhile (a write applied late). */
  | { readonly kind: 'delay'; readonly ms: number }
  /** Forwards it at once and holds the upstream's answer `ms` before passing it on (the answer arrives late). */
  | { readonly kind: 'delayAnswer'; readonly ms: number }
  /** Never forwards it and never answers: holds the connection until the client gives up. */
  | { readonly kind: 'stall' }
  /** Forwards it, lets the upstream process it, then resets the client's connection (the answer is lost). */
  | { readonly kind: 'dropAnswer' }
  /** Resets the client's connection before forwarding: the upstream never sees it. */
  | { readonly kind: 'reset' }
  /** Answers in the upstream's place with a DynamoDB throttling error (HTTP 400). */
  | {
      readonly kind: 'throttle';
      /** @default 'ProvisionedThroughputExceededException' */
      readonly code?: 'ProvisionedThroughputExceededException' | 'ThrottlingException';
    }
  /** Answers in the upstream's place with this status and body (a DynamoDB 500 when no body is given). */
  | { readonly kind: 'status'; readonly status: number; readonly body?: string };

/** One request as the proxy classified it. */
export interface ClassifiedRequest {
  readonly kind: CallKind;
  /** 1 for the first request of its kind since the proxy started (or was reset), 2 for the second... */
  readonly seq: number;
  readonly method: string;
  readonly path: string;
  /** `X-Amz-Target` of a DynamoDB request, e.g. `DynamoDB_20120810.PutItem`. */
  readonly target: string | undefined;
  /** The body parsed as JSON (DynamoDB) or form/JSON fields (IdP); undefined when it does not parse. */
  readonly body: unknown;
  /** The AWS SDK's `amz-sdk-invocation-id`: the same on every attempt (retry) of one SDK call. */
  readonly invocationId: string | undefined;
}

/** A fault to apply to the requests that match. */
export interface FaultRule {
  /** Kinds the rule applies to. */
  readonly kind: CallKind | readonly CallKind[];
  readonly action: FaultAction;
  /** Only the nth matching request after the rule was added (1-based). */
  readonly nth?: number;
  /** How many requests the rule applies to at most. @default 1 with `nth`, else unlimited */
  readonly times?: number;
  /** Further condition on the request. */
  readonly when?: (request: ClassifiedRequest) => boolean;
}

/** A rule added to the proxy, with what it did so far. */
export interface ActiveRule {
  readonly rule: FaultRule;
  /** Requests of the rule's kinds (and predicate) seen since it was added. */
  readonly seen: number;
  /** Requests it applied its action to. */
  readonly hits: number;
  /** Takes the rule off; requests from then on pass. */
  remove(): void;
}

/** What happened to one request. */
export interface ProxyLogEntry {
  readonly kind: CallKind;
  readonly seq: number;
  /** The action applied, or undefined when it passed untouched. */
  readonly action: FaultAction['kind'] | undefined;
  /** True once the request reached the upstream (a delayed one may land after the client gave up). */
  landed: boolean;
  /** True when the client closed the connection before it had an answer. */
  clientGaveUp: boolean;
  readonly atMs: number;
}

/** Options of {@link startFaultProxy}. */
export interface FaultProxyOptions {
  /** Where requests go, e.g. DynamoDB Local's endpoint or an IdP's base URL (http only). */
  readonly upstream: string;
}

/** A fault-injecting HTTP forwarder on 127.0.0.1. */
export interface FaultProxy {
  /** `http://127.0.0.1:<port>`: point the client here instead of at the upstream. */
  readonly url: string;
  /** Every request, in arrival order. */
  readonly log: readonly ProxyLogEntry[];
  /** Adds a rule; rules are tried in the order they were added and the first that applies wins. */
  add(rule: FaultRule): ActiveRule;
  /** Requests seen of a kind. */
  count(kind: CallKind): number;
  /** Requests of a kind that a rule faulted. */
  faulted(kind: CallKind): number;
  /** Drops every rule (the log and counters stay). */
  clearRules(): void;
  /** Empties the log and restarts the per-kind sequence numbers (after a warm-up, say). */
  clearLog(): void;
  /** Resolves once no request is held or being forwarded (delayed writes have landed). */
  settled(): Promise<void>;
  /** Closes the proxy and every connection, held ones included. */
  close(): Promise<void>;
}

interface RuleState {
  readonly rule: FaultRule;
  seen: number;
  hits: number;
  removed: boolean;
}

/** Starts a proxy in front of `upstream` on an ephemeral port. */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const upstream = new URL(options.upstream);
  if (upstream.protocol !== 'http:') throw new Error('the fault proxy forwards to http upstreams only');
  const upstreamPath = upstream.pathname.replace(/\/+$/, '');
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const rules: RuleState[] = [];
  const log: ProxyLogEntry[] = [];
  const seqs = new Map<CallKind, number>();
  const sockets = new Set<Socket>();
  let inFlight = 0;
  let idle: (() => void)[] = [];

  const pick = (request: ClassifiedRequest): RuleState | undefined => {
    let chosen: RuleState | undefined;
    for (const state of rules) {
      if (state.removed) continue;
      const kinds = typeof state.rule.kind === 'string' ? [state.rule.kind] : state.rule.kind;
      if (!kinds.includes(request.kind)) continue;
      if (state.rule.when && !state.rule.when(request)) continue;
      state.seen++;
      const limit = state.rule.times ?? (state.rule.nth !== undefined ? 1 : Number.POSITIVE_INFINITY);
      const due = state.rule.nth === undefined || state.seen >= state.rule.nth;
      if (!chosen && due && state.hits < limit) chosen = state;
    }
    if (chosen) chosen.hits++;
    return chosen;
  };

  const forward = (
    req: IncomingMessage,
    body: Buffer,
  ): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const headers = { ...req.headers, host: upstream.host };
      const out = httpRequest(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: upstreamPath + (req.url ?? '/'),
          headers,
          agent,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) }),
          );
          res.on('error', reject);
        },
      );
      out.on('error', reject);
      // Bounded: an upstream that never answers fails the request instead of holding the proxy.
      out.setTimeout(UPSTREAM_TIMEOUT_MS, () => out.destroy(new Error('upstream did not answer in time')));
      out.end(body);
    });

  const answer = (res: ServerResponse, status: number, headers: IncomingHttpHeaders, body: Buffer) => {
    if (res.destroyed || res.writableEnded) return;
    const { 'transfer-encoding': _te, connection: _c, 'keep-alive': _ka, ...rest } = headers;
    res.writeHead(status, { ...rest, 'content-length': String(body.length) });
    res.end(body);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, raw: Buffer) => {
    const classified = classify(req, raw, seqs);
    const state = pick(classified);
    const action = state?.rule.action;
    const entry: ProxyLogEntry = {
      kind: classified.kind,
      seq: classified.seq,
      action: action?.kind,
      landed: false,
      clientGaveUp: false,
      atMs: Date.now(),
    };
    log.push(entry);
    res.on('close', () => {
      if (!res.writableFinished) entry.clientGaveUp = true;
    });
    const gaveUp = new Promise<void>((resolve) => {
      if (res.closed) resolve();
      else res.on('close', () => resolve());
    });
    const send = async () => {
      entry.landed = true;
      return forward(req, raw);
    };

    switch (action?.kind) {
      case undefined: {
        const upstreamAnswer = await send();
        answer(res, upstreamAnswer.status, upstreamAnswer.headers, upstreamAnswer.body);
        return;
      }
      case 'delay': {
        await sleep(action.ms);
        const upstreamAnswer = await send();
        answer(res, upstreamAnswer.status, upstreamAnswer.headers, upstreamAnswer.body);
        return;
      }
      case 'delayAnswer': {
        const upstreamAnswer = await send();
        await Promise.race([sleep(action.ms), gaveUp]);
        answer(res, upstreamAnswer.status, upstreamAnswer.headers, upstreamAnswer.body);
        return;
      }
      case 'stall':
        // Until the client gives up; bounded, so a client without a deadline cannot hold the proxy.
        await Promise.race([gaveUp, sleep(MAX_STALL_MS, undefined, { ref: false })]);
        return;
      case 'dropAnswer':
        await send();
        req.socket.destroy();
        return;
      case 'reset':
        req.socket.destroy();
        return;
      case 'throttle': {
        const code = action.code ?? 'ProvisionedThroughputExceededException';
        answer(res, 400, AMZ_JSON, dynamoError(code, 'injected: the request rate is too high'));
        return;
      }
      case 'status': {
        const body =
          action.body !== undefined
            ? Buffer.from(action.body)
            : dynamoError('InternalServerError', 'injected: internal server error');
        answer(res, action.status, action.body !== undefined ? {} : AMZ_JSON, body);
        return;
      }
    }
  };

  const server: Server = createServer((req, res) => {
    inFlight++;
    let counted = true;
    // Every request leaves the count exactly once: when its handling ends, or when its client
    // closes the connection before the body was even read (a deadline that fires mid-request on a
    // loaded machine), in which case it is never handled and `settled()` must not wait for it.
    const done = () => {
      if (!counted) return;
      counted = false;
      inFlight--;
      if (inFlight === 0) {
        const waiting = idle;
        idle = [];
        for (const wake of waiting) wake();
      }
    };
    let handled = false;
    res.on('close', () => {
      if (!handled) done();
    });
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      handled = true;
      handle(req, res, Buffer.concat(chunks))
        .catch(() => {
          // The upstream refused or reset: the client sees its connection reset too.
          req.socket.destroy();
        })
        .finally(done);
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    log,
    add(rule) {
      const state: RuleState = { rule, seen: 0, hits: 0, removed: false };
      rules.push(state);
      return {
        rule,
        get seen() {
          return state.seen;
        },
        get hits() {
          return state.hits;
        },
        remove() {
          state.removed = true;
        },
      };
    },
    count: (kind) => log.filter((entry) => entry.kind === kind).length,
    faulted: (kind) => log.filter((entry) => entry.kind === kind && entry.action !== undefined).length,
    clearRules() {
      for (const state of rules) state.removed = true;
      rules.length = 0;
    },
    clearLog() {
      log.length = 0;
      seqs.clear();
    },
    settled: () => (inFlight === 0 ? Promise.resolve() : new Promise((resolve) => idle.push(resolve))),
    close: () =>
      new Promise<void>((resolve, reject) => {
        for (const socket of sockets) socket.destroy();
        agent.destroy();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

const AMZ_JSON: IncomingHttpHeaders = { 'content-type': 'application/x-amz-json-1.0' };

function dynamoError(code: string, message: string): Buffer {
  return Buffer.from(JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${code}`, message }));
}

/** Classifies a request: DynamoDB by `X-Amz-Target` and body, anything else as an IdP call by path and grant. */
function classify(req: IncomingMessage, raw: Buffer, seqs: Map<CallKind, number>): ClassifiedRequest {
  const target = header(req.headers['x-amz-target']);
  const path = (req.url ?? '/').split('?')[0] ?? '/';
  const text = raw.toString('utf8');
  let body: unknown;
  let kind: CallKind;
  if (target) {
    body = parseJson(text);
    kind = dynamoKind(target.split('.').pop() ?? '', body);
  } else {
    body = parseJson(text) ?? Object.fromEntries(new URLSearchParams(text));
    kind = idpKind(path, body);
  }
  const seq = (seqs.get(kind) ?? 0) + 1;
  seqs.set(kind, seq);
  const invocationId = header(req.headers['amz-sdk-invocation-id']);
  return { kind, seq, method: req.method ?? 'GET', path, target, body, invocationId };
}

function dynamoKind(operation: string, body: unknown): CallKind {
  // Items that are not a user's record (the sweep's state, the breaker) are `other`.
  const pk = field(field(field(body, 'Key') ?? field(body, 'Item'), 'pk'), 'S');
  if (typeof pk === 'string' && !pk.startsWith('u#')) return 'other';
  switch (operation) {
    case 'GetItem':
      return 'read';
    case 'Query':
      return 'query';
    case 'PutItem':
      return 'commit';
    case 'DeleteItem':
      return 'delete';
    case 'UpdateItem': {
      const expression = field(body, 'UpdateExpression');
      return typeof expression === 'string' && /\bleaseId\b|\bleaseUntil\b/.test(expression)
        ? 'lease'
        : 'other';
    }
    default:
      return 'other';
  }
}

function idpKind(path: string, body: unknown): CallKind {
  if (/logout|revoc|revoke/.test(path)) return 'logout';
  if (/token\/refresh$/.test(path)) return 'refresh';
  const grant = field(body, 'grant_type');
  if (grant === 'refresh_token') return 'refresh';
  if (grant === 'client_credentials') return 'client-token';
  return 'other';
}

function field(body: unknown, name: string): unknown {
  return typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[name] : undefined;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
