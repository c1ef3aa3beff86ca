import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A Lambda-style handler: an event in, a JSON-able result or a thrown error out. */
export type LocalHandler = (event: unknown) => Promise<unknown>;

/** HTTP status for each public error name; the body is what Lambda would return. */
const STATUS_BY_ERROR: Readonly<Record<string, number>> = {
  ValidationError: 400,
  TokenNotFoundError: 404,
  ReauthRequiredError: 409,
  RefreshUnavailableError: 503,
  ConfigurationError: 500,
};

const MAX_BODY_BYTES = 256 * 1024;

/** A running handler server. */
export interface HandlerServer {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serves handlers on loopback: `POST /<name>` with the event as JSON body invokes the handler
 * and answers its result as JSON, or `{ errorType, errorMessage }` (the shape of a Lambda
 * function error) with a status that fits the error.
 */
export async function startHandlerServer(
  handlers: Readonly<Record<string, LocalHandler>>,
  options: { port?: number } = {},
): Promise<HandlerServer> {
  const server: Server = createServer((request, response) => {
    void route(handlers, request, response);
  });
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(options.port ?? 0, '127.0.0.1', () => done());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}

async function route(
  handlers: Readonly<Record<string, LocalHandler>>,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  const name = (request.url ?? '/').split('?')[0]!.replace(/^\/+|\/+$/g, '');
  if (request.method === 'GET' && name === 'health') return send(response, 200, { ok: true });
  const handler = Object.hasOwn(handlers, name) ? handlers[name] : undefined;
  if (!handler || request.method !== 'POST') {
    return send(response, 404, {
      errorType: 'NotFound',
      errorMessage: `POST one of: /${Object.keys(handlers).join(', /')}`,
    });
  }
  let event: unknown;
  try {
    const body = await readBody(request);
    event = body.length === 0 ? {} : JSON.parse(body);
  } catch {
    return send(response, 400, {
      errorType: 'ValidationError',
      errorMessage: 'the body must be JSON (at most 256 KiB)',
    });
  }
  try {
    send(response, 200, await handler(event));
  } catch (error) {
    const errorType = error instanceof Error ? error.name : 'Error';
    const errorMessage = error instanceof Error ? error.message : 'unknown error';
    send(response, STATUS_BY_ERROR[errorType] ?? 500, { errorType, errorMessage });
  }
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((done, fail) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        fail(new Error('body too large'));
        request.destroy();
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => done(Buffer.concat(chunks).toString('utf8')));
    request.on('error', fail);
  });
}

function send(response: ServerResponse, status: number, body: unknown): void {
  if (response.headersSent) return;
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(JSON.stringify(body));
}
