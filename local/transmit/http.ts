import type { IncomingMessage } from 'node:http';

/** What a route answers: a value the server turns into bytes (or into a held or reset socket). */
export type Reply =
  | {
      readonly kind: 'json';
      readonly status: number;
      readonly body: unknown;
      readonly headers?: Readonly<Record<string, string>>;
    }
  | { readonly kind: 'noContent' }
  | { readonly kind: 'hold' }
  | { readonly kind: 'reset' };

/** A JSON answer. */
export function json(status: number, body: unknown, headers?: Readonly<Record<string, string>>): Reply {
  return headers ? { kind: 'json', status, body, headers } : { kind: 'json', status, body };
}

/** A 204 answer. */
export const NO_CONTENT: Reply = { kind: 'noContent' };

/** The CIS error shape: `{ message, error_code }` (plus `error` where OAuth clients expect one). */
export function cisError(status: number, message: string, error?: string): Reply {
  return json(
    status,
    error === undefined ? { message, error_code: status } : { message, error_code: status, error },
  );
}

/** Marker returned by {@link readBody} when the body exceeds the limit. */
export const TOO_LARGE = Symbol('too large');

/** Reads the whole request body, giving up (without buffering the rest) once it exceeds `limit` bytes. */
export function readBody(request: IncomingMessage, limit: number): Promise<Buffer | typeof TOO_LARGE> {
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.resolve(TOO_LARGE);
  return new Promise((done, fail) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        request.off('data', onData);
        // Keep draining so the socket stays readable, but hold nothing more in memory.
        request.resume();
        done(TOO_LARGE);
        return;
      }
      chunks.push(chunk);
    };
    request.on('data', onData);
    request.once('end', () => done(Buffer.concat(chunks)));
    request.once('error', fail);
  });
}

/** Parses a JSON object body; undefined when it is not one. */
export function parseJsonObject(body: Buffer): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(body.toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** A required non-empty string field, or undefined. */
export function requiredString(body: Record<string, unknown>, field: string): string | undefined {
  const value = body[field];
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

/** An optional string field: `null` when present but not a non-empty string (malformed). */
export function optionalString(body: Record<string, unknown>, field: string): string | undefined | null {
  const value = body[field];
  if (value === undefined) return undefined;
  return typeof value === 'string' && value.length > 0 ? value : null;
}

/** The token of an `Authorization: Bearer` header. */
export function bearerToken(request: IncomingMessage): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
  return match?.[1];
}

/** Client id and secret of an `Authorization: Basic` header (RFC 6749 section 2.3.1 form-encodes both). */
export function basicCredentials(request: IncomingMessage): { id: string; secret: string } | undefined {
  const match = /^Basic\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  try {
    return {
      id: decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' ')),
      secret: decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, ' ')),
    };
  } catch {
    return undefined;
  }
}

/** True for a peer on the loopback interface. */
export function isLoopback(address: string | undefined): boolean {
  return address === '127.0.0.1' || address === '::1' || address === '::ffff:127.0.0.1';
}
