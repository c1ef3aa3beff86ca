import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Context } from 'aws-lambda';
import { build } from 'esbuild';
import { describe, expect, it, vi } from 'vitest';
import { MemoryLogger } from '../../../functions/adapters/observability/logger';
import { InMemoryMetrics } from '../../../functions/adapters/observability/metrics';
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
