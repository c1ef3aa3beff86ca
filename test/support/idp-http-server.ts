import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request as the server saw it. */
export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** A scripted answer: a status with a body (objects are sent as JSON), or no answer at all. */
export type Reply =
  | {
      readonly status: number;
      readonly body?: string | object;
      readonly headers?: Readonly<Record<string, string>>;
    }
  | 'hang';

/** Computes a reply from the request (for routes that answer the same way every time). */
export type Route = (request: RecordedRequest) => Reply;

/** A real HTTP server on 127.0.0.1 that answers from a script and records every request. */
export interface ScriptedServer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly requests: RecordedRequest[];
  /** Requests to `path`, in order. */
  requestsTo(path: string): RecordedRequest[];
  /** Queues one-shot replies for `path`, used before the route. */
  enqueue(path: string, ...replies: Reply[]): void;
  /** Sets the reply used for `path` once its queue is empty. */
  route(path: string, route: Route): void;
  /** Replies queued but never used (a test should end with none). */
  unusedReplies(): number;
  /** Closes the server and every socket, including hanging ones. */
  close(): Promise<void>;
}

/** Starts a scripted server on an ephemeral port. Unscripted paths answer 599 and are recorded. */
export async function startScriptedServer(): Promise<ScriptedServer> {
  const requests: RecordedRequest[] = [];
  const queues = new Map<string, Reply[]>();
  const routes = new Map<string, Route>();

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      const recorded: RecordedRequest = {
        method: req.method ?? '',
        path,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(recorded);
      const queued = queues.get(path)?.shift();
      const route = routes.get(path);
      const reply: Reply = queued ?? (route ? route(recorded) : { status: 599, body: 'unscripted' });
      if (reply === 'hang') return;
      const isText = typeof reply.body === 'string';
      const payload =
        reply.body === undefined ? '' : isText ? (reply.body as string) : JSON.stringify(reply.body);
      res.writeHead(reply.status, {
        ...(reply.body !== undefined && !isText ? { 'content-type': 'application/json' } : {}),
        ...reply.headers,
      });
      res.end(payload);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    requestsTo: (path) => requests.filter((request) => request.path === path),
    enqueue(path, ...replies) {
      queues.set(path, [...(queues.get(path) ?? []), ...replies]);
    },
    route(path, route) {
      routes.set(path, route);
    },
    unusedReplies: () => [...queues.values()].reduce((sum, queue) => sum + queue.length, 0),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

/** A clock the test moves by hand. */
export class ManualClock {
  constructor(private now: number = Date.UTC(2026, 0, 1)) {}

  nowMs(): number {
    return this.now;
  }

  /** Moves time forward. */
  advance(ms: number): void {
    this.now += ms;
  }
}
