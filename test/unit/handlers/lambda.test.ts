import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Context } from 'aws-lambda';
import { build } from 'esbuild';
import { describe, expect, it, vi } from 'vitest';
import { JsonLogger } from '../../../functions/adapters/observability/logger';
import type { Runtime } from '../../../functions/adapters/runtime';
import {
  ConfigurationError,
  CorruptRecordError,
  IdpTransientError,
  ReauthRequiredError,
  RefreshUnavailableError,
  StoreUnavailableError,
  TokenNotFoundError,
  ValidationError,
} from '../../../functions/core/errors';
import type { Budget } from '../../../functions/core/rotation';
import { iso, lambdaHandler, publicError } from '../../../functions/handlers/lambda';
import { nodeFunctionDefaults, PROJECT_ROOT } from '../../../lib/function-defaults';
import { caught, shown } from '../../support/caught';
import { InMemoryMetrics, MemoryLogger } from '../../support/observability';

/** A value that must not leave the handler in any error. */
const CANARY = 'rt-CANARY-0d9e5a';

/** The wrapper uses only `logger`, `metrics` and `flush` of the runtime; the rest is never touched. */
function fakeRuntime() {
  const calls: string[] = [];
  const logger = new MemoryLogger();
  const metrics = new InMemoryMetrics();
  const flush = vi.fn(() => {
    calls.push('flush');
  });
  const runtime = { logger, metrics, flush } satisfies Pick<Runtime, 'logger' | 'metrics' | 'flush'>;
  return { runtime: runtime as unknown as Runtime, logger, metrics, flush, calls };
}

/** A Lambda context with only the one method the wrapper calls. */
function fakeContext(remainingMs: () => number): Context {
  const context: Pick<Context, 'getRemainingTimeInMillis'> = { getRemainingTimeInMillis: remainingMs };
  return context as Context;
}

describe('Function: lambdaHandler', () => {
  describe('Metrics: how a call ended', () => {
    it.each([
      [new TokenNotFoundError('no tokens'), 'ErrorAnswered', 'TokenNotFoundError'],
      [new ReauthRequiredError('sign in again', 'deadline'), 'ErrorAnswered', 'ReauthRequiredError'],
      [new ValidationError('bad'), 'ErrorAnswered', 'ValidationError'],
      [new RefreshUnavailableError('later'), 'ErrorAnswered', 'RefreshUnavailableError'],
      [new StoreUnavailableError('throttled'), 'UnexpectedError', 'StoreUnavailableError'],
      [new TypeError('x is undefined'), 'UnexpectedError', 'TypeError'],
    ] as const)('counts %s as %s by its name, once', async (error, metric, name) => {
      // Prepare
      const { runtime, metrics } = fakeRuntime();
      const handler = lambdaHandler(
        () => runtime,
        async () => {
          throw error;
        },
      );

      // Act
      await caught(handler({}));

      // Assess
      expect(metrics.points).toEqual([{ name: metric, value: 1, dimensions: { error: name } }]);
    });

    it('counts nothing when the call succeeds', async () => {
      // Prepare
      const { runtime, metrics } = fakeRuntime();

      // Act
      await lambdaHandler(
        () => runtime,
        async () => 'ok',
      )({});

      // Assess
      expect(metrics.points).toEqual([]);
    });
  });

  it('returns what the body returns and hands it the runtime and the event', async () => {
    // Prepare
    const { runtime } = fakeRuntime();
    const body = vi.fn(async (_runtime: Runtime, event: unknown) => ({ echoed: event }));
    const handler = lambdaHandler(() => runtime, body);

    // Act
    const result = await handler({ userId: 'alice' });

    // Assess
    expect(result).toEqual({ echoed: { userId: 'alice' } });
    expect(body).toHaveBeenCalledOnce();
    expect(body.mock.calls[0]?.[0]).toBe(runtime);
  });

  it('builds the runtime on each call through the given factory', async () => {
    // Prepare
    const { runtime } = fakeRuntime();
    const factory = vi.fn(() => runtime);
    const handler = lambdaHandler(factory, async () => 'ok');

    // Act
    await handler({});
    await handler({});

    // Assess
    expect(factory).toHaveBeenCalledTimes(2);
  });

  it('flushes metrics once, after the body succeeded', async () => {
    // Prepare
    const { runtime, flush, calls } = fakeRuntime();
    const handler = lambdaHandler(
      () => runtime,
      async () => {
        calls.push('body');
        return 'ok';
      },
    );

    // Act
    await handler({});

    // Assess
    expect(flush).toHaveBeenCalledOnce();
    expect(calls).toEqual(['body', 'flush']);
  });

  it('flushes metrics once, after the body failed', async () => {
    // Prepare
    const { runtime, flush, calls } = fakeRuntime();
    const handler = lambdaHandler(
      () => runtime,
      async () => {
        calls.push('body');
        throw new StoreUnavailableError('down');
      },
    );

    // Act
    await caught(handler({}));

    // Assess
    expect(flush).toHaveBeenCalledOnce();
    expect(calls).toEqual(['body', 'flush']);
  });

  it.each([
    ['ValidationError', () => new ValidationError('userId is required')],
    ['TokenNotFoundError', () => new TokenNotFoundError('no tokens for alice')],
    ['ReauthRequiredError', () => new ReauthRequiredError('sign in again', 'refresh_rejected')],
    ['RefreshUnavailableError', () => new RefreshUnavailableError('retry later')],
    ['ConfigurationError', () => new ConfigurationError('TOKEN_TABLE_NAME is required')],
  ])('lets a %s out unchanged', async (_name, make) => {
    // Prepare
    const { runtime } = fakeRuntime();
    const thrown = make();
    const handler = lambdaHandler(
      () => runtime,
      async () => {
        throw thrown;
      },
    );

    // Act
    const error = await caught(handler({}));

    // Assess
    expect(error).toBe(thrown);
  });

  it.each([
    ['StoreUnavailableError', () => new StoreUnavailableError(`table down ${CANARY}`)],
    ['IdpTransientError', () => new IdpTransientError(`idp down ${CANARY}`, 503, 5)],
  ])('turns a retryable internal %s into RefreshUnavailableError without its message', async (_n, make) => {
    // Prepare
    const { runtime } = fakeRuntime();
    const original = make();
    const handler = lambdaHandler(
      () => runtime,
      async () => {
        throw original;
      },
    );

    // Act
    const error = await caught(handler({}));

    // Assess
    expect(error).toBeInstanceOf(RefreshUnavailableError);
    expect(error.name).toBe('RefreshUnavailableError');
    expect((error as RefreshUnavailableError).retryable).toBe(true);
    expect(error.message).not.toContain(CANARY);
    expect(JSON.stringify(error)).not.toContain(CANARY);
    expect(error.cause).toBe(original);
  });

  it('turns an unknown Error into InternalError whose message and JSON do not carry the original message', async () => {
    // Prepare
    const { runtime } = fakeRuntime();
    const handler = lambdaHandler(
      () => runtime,
      async () => {
        throw new TypeError(`cannot read ${CANARY}`);
      },
    );

    // Act
    const error = await caught(handler({}));

    // Assess
    expect(error.name).toBe('InternalError');
    expect(error.message).not.toContain(CANARY);
    expect(JSON.stringify(error)).not.toContain(CANARY);
    expect(error.stack ?? '').not.toContain(CANARY);
  });

  it('turns a non-retryable internal error (CorruptRecordError) into InternalError', async () => {
    // Prepare
    const { runtime } = fakeRuntime();
    const handler = lambdaHandler(
      () => runtime,
      async () => {
        throw new CorruptRecordError(`bad record ${CANARY}`);
      },
    );

    // Act
    const error = await caught(handler({}));

    // Assess
    expect(error.name).toBe('InternalError');
    expect(error.message).not.toContain(CANARY);
  });

  it('turns a thrown non-Error value into InternalError', async () => {
    // Prepare
    const { runtime } = fakeRuntime();
    const handler = lambdaHandler(
      () => runtime,
      async () => {
        throw CANARY;
      },
    );

    // Act
    const error = await caught(handler({}));

    // Assess
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('InternalError');
    expect(error.message).not.toContain(CANARY);
  });

  it('logs the name of an unexpected error, never its message', async () => {
    // Prepare
    const { runtime, logger } = fakeRuntime();
    const handler = lambdaHandler(
      () => runtime,
      async () => {
        throw new StoreUnavailableError(`table down ${CANARY}`);
      },
    );

    // Act
    await caught(handler({}));

    // Assess
    expect(logger.lines).toEqual([
      { level: 'error', message: 'unexpected error', fields: { error: 'StoreUnavailableError' } },
    ]);
    expect(JSON.stringify(logger.lines)).not.toContain(CANARY);
  });

  it('lets no non-public error out when building the runtime fails', async () => {
    // Prepare
    const handler = lambdaHandler(
      () => {
        throw new TypeError(`bad setting ${CANARY}`);
      },
      async () => 'ok',
    );

    // Act
    const error = await caught(handler({}));

    // Assess
    expect(shown(error)).not.toContain(CANARY);
    expect(['InternalError', 'ConfigurationError']).toContain(error.name);
  });

  it('reads the budget from context.getRemainingTimeInMillis() when a context is given', async () => {
    // Prepare
    const { runtime } = fakeRuntime();
    let remaining = 12_345;
    const getRemaining = vi.fn(() => remaining);
    const seen: number[] = [];
    const handler = lambdaHandler(
      () => runtime,
      async (_runtime, _event, budget: Budget) => {
        seen.push(budget.remainingMs());
        remaining = 2_000;
        seen.push(budget.remainingMs());
      },
    );

    // Act
    await handler({}, fakeContext(getRemaining));

    // Assess
    expect(seen).toEqual([12_345, 2_000]);
    expect(getRemaining).toHaveBeenCalledTimes(2);
  });

  it('gives a 30 s budget that shrinks with the wall clock when there is no context', async () => {
    // Prepare
    vi.useFakeTimers({ now: Date.UTC(2026, 0, 1), toFake: ['Date'] });
    const { runtime } = fakeRuntime();
    const seen: number[] = [];
    const handler = lambdaHandler(
      () => runtime,
      async (_runtime, _event, budget: Budget) => {
        seen.push(budget.remainingMs());
        vi.setSystemTime(Date.UTC(2026, 0, 1) + 4_000);
        seen.push(budget.remainingMs());
      },
    );

    // Act
    try {
      await handler({});
    } finally {
      vi.useRealTimers();
    }

    // Assess
    expect(seen).toEqual([30_000, 26_000]);
  });
});

describe('Function: lambdaHandler (the invocation in the logs)', () => {
  /** Every JSON line written while `act` runs (Powertools writes through a Console on stdout and stderr). */
  async function linesWritten(act: () => Promise<unknown>): Promise<Record<string, unknown>[]> {
    const chunks: string[] = [];
    const sink = ((chunk: string | Uint8Array) => {
      chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
      return true;
    }) as typeof process.stdout.write;
    const spies = [
      vi.spyOn(process.stdout, 'write').mockImplementation(sink),
      vi.spyOn(process.stderr, 'write').mockImplementation(sink),
    ];
    try {
      await act().catch(() => undefined);
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
    return chunks
      .join('')
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  /** A runtime whose logger is the production one. */
  function runtimeWithJsonLogger() {
    const logger = new JsonLogger({ serviceName: 'context-test' });
    const metrics = new InMemoryMetrics();
    const runtime = { logger, metrics, flush: () => {} } satisfies Pick<
      Runtime,
      'logger' | 'metrics' | 'flush'
    >;
    return { runtime: runtime as unknown as Runtime, metrics };
  }

  function lambdaContext(requestId: string): Context {
    return {
      awsRequestId: requestId,
      functionName: 'token-keeper-getAccessToken',
      functionVersion: '$LATEST',
      invokedFunctionArn: 'arn:aws:lambda:eu-west-1:111122223333:function:token-keeper-getAccessToken',
      memoryLimitInMB: '256',
      getRemainingTimeInMillis: () => 10_000,
    } as Context;
  }

  it("puts the request id, the function and the caller's correlation id on every line of the call, and only of that call", async () => {
    // Prepare
    const { runtime } = runtimeWithJsonLogger();
    const handler = lambdaHandler(
      () => runtime,
      async (rt) => {
        rt.logger.info('first line');
        rt.logger.warn('second line', { userId: 'alice' });
        return 'ok';
      },
    );

    // Act
    const withId = await linesWritten(() =>
      handler({ userId: 'alice', correlationId: 'req-7f3a.checkout:42' }, lambdaContext('request-1')),
    );
    const without = await linesWritten(() => handler({ userId: 'alice' }, lambdaContext('request-2')));

    // Assess
    expect(withId).toHaveLength(2);
    for (const line of withId) {
      expect(line).toMatchObject({
        correlation_id: 'req-7f3a.checkout:42',
        function_request_id: 'request-1',
        function_name: 'token-keeper-getAccessToken',
      });
      expect(typeof line.cold_start).toBe('boolean');
    }
    expect(without).toHaveLength(2);
    for (const line of without) {
      expect(line).toMatchObject({ function_request_id: 'request-2' });
      expect(line).not.toHaveProperty('correlation_id');
    }
  });

  it.each([
    ['a number', 42],
    ['an empty string', ''],
    ['a newline', 'abc\ndef'],
    ['spaces', 'two words'],
    ['129 characters', 'a'.repeat(129)],
  ])(
    'refuses a correlation id that is %s with a ValidationError, before the body runs',
    async (_what, value) => {
      // Prepare
      const { runtime } = runtimeWithJsonLogger();
      const body = vi.fn(async () => 'ok');
      const handler = lambdaHandler(() => runtime, body);

      // Act
      let error: unknown;
      const lines = await linesWritten(async () => {
        error = await caught(handler({ userId: 'alice', correlationId: value }, lambdaContext('request-3')));
      });

      // Assess
      expect(error).toBeInstanceOf(ValidationError);
      expect(body).not.toHaveBeenCalled();
      for (const line of lines) expect(line).not.toHaveProperty('correlation_id');
    },
  );

  it('counts ColdStart once per instance, on its first invocation in Lambda', async () => {
    // Prepare
    const { runtime, metrics } = runtimeWithJsonLogger();
    const handler = lambdaHandler(
      () => runtime,
      async () => 'ok',
    );

    // Act
    await linesWritten(async () => {
      await handler({}, lambdaContext('request-4'));
      await handler({}, lambdaContext('request-5'));
      await handler({}, lambdaContext('request-6'));
    });

    // Assess
    expect(metrics.total('ColdStart')).toBe(1);
  });

  it('counts no ColdStart outside Lambda (no context: the embedded runtime, tests)', async () => {
    // Prepare
    const { runtime, metrics } = runtimeWithJsonLogger();
    const handler = lambdaHandler(
      () => runtime,
      async () => 'ok',
    );

    // Act
    await handler({});

    // Assess
    expect(metrics.total('ColdStart')).toBe(0);
  });
});

describe('Function: publicError', () => {
  it('returns a public error itself and logs nothing', () => {
    // Prepare
    const logger = new MemoryLogger();
    const original = new TokenNotFoundError('no tokens');

    // Act
    const mapped = publicError(original, { logger });

    // Assess
    expect(mapped).toBe(original);
    expect(logger.lines).toEqual([]);
  });

  it('maps a plain Error with retryable: true to RefreshUnavailableError', () => {
    // Prepare
    const original = Object.assign(new Error(`socket hang up ${CANARY}`), { retryable: true });

    // Act
    const mapped = publicError(original, { logger: new MemoryLogger() });

    // Assess
    expect(mapped).toBeInstanceOf(RefreshUnavailableError);
    expect(mapped.message).not.toContain(CANARY);
  });

  it('keeps public error names through the production bundle (minified by esbuild)', async () => {
    // Prepare: bundle errors + publicError with the functions' own bundling options.
    const { bundling } = nodeFunctionDefaults();
    const entry = [
      "import { ValidationError, ReauthRequiredError } from './functions/core/errors';",
      "import { publicError } from './functions/handlers/lambda';",
      'const logger = { debug() {}, info() {}, warn() {}, error() {} };',
      'console.log(JSON.stringify([',
      "  publicError(new ValidationError('bad'), { logger }).name,",
      "  publicError(new ReauthRequiredError('again', 'deadline'), { logger }).name,",
      ']));',
    ].join('\n');
    const bundled = await build({
      stdin: { contents: entry, resolveDir: PROJECT_ROOT, loader: 'ts' },
      bundle: true,
      write: false,
      platform: 'node',
      format: 'esm',
      target: bundling?.target ?? 'node20',
      minify: bundling?.minify ?? false,
      keepNames: bundling?.keepNames ?? false,
      logLevel: 'silent',
    });
    const dir = mkdtempSync(join(tmpdir(), 'tk-bundle-'));
    const file = join(dir, 'entry.mjs');

    // Act
    let names: string[];
    try {
      writeFileSync(file, bundled.outputFiles[0]!.text);
      names = JSON.parse(execFileSync(process.execPath, [file], { encoding: 'utf8' })) as string[];
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }

    // Assess
    expect(names).toEqual(['ValidationError', 'ReauthRequiredError']);
  });
});

describe('Function: iso', () => {
  it('formats epoch seconds as ISO 8601 UTC', () => {
    // Act
    const text = iso(Date.UTC(2026, 0, 1, 12, 30, 5) / 1000);

    // Assess
    expect(text).toBe('2026-01-01T12:30:05.000Z');
  });

  it('formats epoch 0', () => {
    // Act
    const text = iso(0);

    // Assess
    expect(text).toBe('1970-01-01T00:00:00.000Z');
  });
});
