import type { Context } from 'aws-lambda';
import { isInvocationLogger } from '../adapters/observability/logger';
import type { Runtime } from '../adapters/runtime';
import { PUBLIC_ERROR_NAMES, type PublicErrorName, RefreshUnavailableError } from '../core/errors';
import type { Budget } from '../core/rotation';
import { parseCorrelationId } from '../core/validation';

/** What a handler is made of: the runtime it runs on (built lazily) and its body. */
export type HandlerBody<T> = (runtime: Runtime, event: unknown, budget: Budget) => Promise<T>;

/** Time budget when there is no Lambda context (embedded runtime, tests). */
const DEFAULT_BUDGET_MS = 30_000;

/**
 * Wraps a handler body: builds the runtime on first call, tells the logger which invocation it
 * logs for (the Lambda context and the caller's `correlationId`), counts the instance's cold
 * start, flushes metrics after every call, and lets only the public error names out. Anything
 * else becomes a retryable or internal error without its original message, which could say more
 * than a caller should see.
 */
export function lambdaHandler<T>(runtime: () => Runtime, body: HandlerBody<T>) {
  let coldStart = true;
  return async (event: unknown, context?: Context): Promise<T> => {
    const startedMs = Date.now();
    const budget: Budget = context
      ? { remainingMs: () => context.getRemainingTimeInMillis() }
      : { remainingMs: () => DEFAULT_BUDGET_MS - (Date.now() - startedMs) };
    let current: Runtime | undefined;
    try {
      current = runtime();
      if (context && coldStart) current.metrics.count('ColdStart');
      coldStart = false;
      // Parsed once; a malformed id is refused before any work, and its lines go without it.
      let correlationId: string | undefined;
      let refused: unknown;
      try {
        correlationId = parseCorrelationId(event);
      } catch (error) {
        refused = error;
      }
      if (isInvocationLogger(current.logger)) current.logger.startInvocation(context, correlationId);
      if (refused !== undefined) throw refused;
      return await body(current, event, budget);
    } catch (error) {
      if (current) countError(current, error);
      throw publicError(error, current ?? { logger: consoleLogger });
    } finally {
      current?.flush();
      if (current && isInvocationLogger(current.logger)) current.logger.endInvocation();
    }
  };
}

/** Used only when the runtime itself could not be built: a JSON line with the error's name. */
const consoleLogger: Pick<Runtime, 'logger'>['logger'] = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: (message, fields) =>
    process.stderr.write(`${JSON.stringify({ level: 'ERROR', message, ...fields })}\n`),
};

/**
 * Counts what a call ended with: a typed answer (an unknown user, a sign-in needed, bad input, a
 * dependency down right now) is expected and counted by name, never alarmed; anything else is an
 * unexpected error, which the UnexpectedErrors alarm watches. Error names are a few class names.
 */
export function countError(runtime: Pick<Runtime, 'metrics'>, error: unknown): void {
  const name = error instanceof Error ? error.name : typeof error;
  if (error instanceof Error && (PUBLIC_ERROR_NAMES as readonly string[]).includes(name)) {
    runtime.metrics.count('ErrorAnswered', 1, { error: name });
  } else {
    runtime.metrics.count('UnexpectedError', 1, {
      error: /^[A-Za-z0-9_]{1,64}$/.test(name) ? name : 'Other',
    });
  }
}

/** Maps an error to one that may cross the handler boundary. */
export function publicError(error: unknown, runtime: Pick<Runtime, 'logger'>): Error {
  if (error instanceof Error && (PUBLIC_ERROR_NAMES as readonly string[]).includes(error.name)) {
    return error;
  }
  const retryable = error instanceof Error && (error as { retryable?: boolean }).retryable === true;
  runtime.logger.error('unexpected error', { error: error instanceof Error ? error.name : typeof error });
  // A domain error keeps its cause non-enumerable (see TokenKeeperError); an unknown error is not
  // carried at all, since what it says is unknown. Its name was logged above.
  if (retryable) {
    return new RefreshUnavailableError('a dependency is unavailable right now; retry later', {
      cause: error,
    });
  }
  const internal = new Error('internal error (see the function log)');
  internal.name = 'InternalError';
  return internal;
}

/** An epoch-seconds time as ISO 8601. */
export function iso(epochSeconds: number): string {
  return new Date(epochSeconds * 1000).toISOString();
}

export type { PublicErrorName };
