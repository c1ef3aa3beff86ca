import { describe, expect, it } from 'vitest';
import { type FetchFn, post } from '../../../functions/adapters/idp/http';
import { IdpTransientError } from '../../../functions/core/errors';
import { caught } from '../../support/caught';

const failingFetch =
  (error: unknown): FetchFn =>
  async () => {
    throw error;
  };

const withCode = (code: string) => Object.assign(new Error(code), { code });

describe('Function: post', () => {
  it.each([
    ['a refused connection', new TypeError('fetch failed', { cause: withCode('ECONNREFUSED') }), true],
    ['an unknown host', new TypeError('fetch failed', { cause: withCode('ENOTFOUND') }), true],
    [
      'every address refused',
      new TypeError('fetch failed', {
        cause: Object.assign(new AggregateError([withCode('ECONNREFUSED'), withCode('ECONNREFUSED')]), {
          code: 'ECONNREFUSED',
        }),
      }),
      true,
    ],
    [
      'one address refused, one reset',
      new TypeError('fetch failed', {
        cause: new AggregateError([withCode('ECONNREFUSED'), withCode('ECONNRESET')]),
      }),
      false,
    ],
    ['a reset', new TypeError('fetch failed', { cause: withCode('ECONNRESET') }), false],
    [
      'a socket closed by the peer',
      new TypeError('fetch failed', { cause: withCode('UND_ERR_SOCKET') }),
      false,
    ],
    ['an error without a code', new TypeError('fetch failed'), false],
  ])(
    'says the token was not consumed only when nothing was sent: %s -> %s',
    async (_label, error, notConsumed) => {
      // Act
      const failure = await caught(
        post(
          failingFetch(error),
          'http://127.0.0.1:1/x',
          { headers: {}, body: '' },
          new AbortController().signal,
          'test',
        ),
      );

      // Assess
      expect(failure).toBeInstanceOf(IdpTransientError);
      expect((failure as IdpTransientError).notConsumed).toBe(notConsumed);
      expect((failure as IdpTransientError).cause).toBe(error);
    },
  );

  it('reads a timeout as maybe consumed', async () => {
    // Prepare
    const controller = new AbortController();
    controller.abort(new DOMException('timed out', 'TimeoutError'));

    // Act
    const failure = await caught(
      post(
        failingFetch(new DOMException('aborted', 'AbortError')),
        'http://127.0.0.1:1/x',
        { headers: {}, body: '' },
        controller.signal,
        'test',
      ),
    );

    // Assess
    expect(failure.message).toBe('test failed: timed out');
    expect((failure as IdpTransientError).notConsumed).toBe(false);
  });
});
