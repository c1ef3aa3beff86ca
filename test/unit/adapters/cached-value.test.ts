import { describe, expect, it } from 'vitest';
import { CachedValue } from '../../../functions/adapters/cached-value';
import { FakeClock } from '../../support/fakes';

/** A fetch whose answers the test releases one by one. */
function controlledFetch<T>() {
  const pending: {
    resolve: (answer: { value: T; validForMs: number }) => void;
    reject: (e: Error) => void;
  }[] = [];
  let calls = 0;
  const fetch = () =>
    new Promise<{ value: T; validForMs: number }>((resolve, reject) => {
      calls += 1;
      pending.push({ resolve, reject });
    });
  return {
    fetch,
    get calls() {
      return calls;
    },
    answer(index: number, value: T, validForMs = 60_000) {
      pending[index]!.resolve({ value, validForMs });
    },
    fail(index: number) {
      pending[index]!.reject(new Error('fetch failed'));
    },
  };
}

describe('Class: CachedValue', () => {
  it('shares one fetch between concurrent callers and serves the value until it expires', async () => {
    // Prepare
    const clock = new FakeClock();
    const cache = new CachedValue<string>(clock);
    const source = controlledFetch<string>();

    // Act
    const first = cache.get(source.fetch);
    const second = cache.get(source.fetch);
    source.answer(0, 'v1', 1000);
    const values = await Promise.all([first, second]);
    clock.advance(999);
    const stillCached = await cache.get(source.fetch);
    clock.advance(1);
    const refetch = cache.get(source.fetch);
    source.answer(1, 'v2');

    // Assess
    expect(values).toEqual(['v1', 'v1']);
    expect(stillCached).toBe('v1');
    expect(await refetch).toBe('v2');
    expect(source.calls).toBe(2);
  });

  it('does not let a fetch started before invalidate() put its value back', async () => {
    // Prepare
    const cache = new CachedValue<string>(new FakeClock());
    const source = controlledFetch<string>();
    const stale = cache.get(source.fetch);

    // Act: invalidated while the first fetch is in flight; a new caller starts a fresh fetch.
    cache.invalidate();
    const fresh = cache.get(source.fetch);
    source.answer(1, 'new');
    source.answer(0, 'old');
    await Promise.all([stale, fresh]);
    const later = await cache.get(source.fetch);

    // Assess
    expect(await stale).toBe('old');
    expect(await fresh).toBe('new');
    expect(later).toBe('new');
    expect(source.calls).toBe(2);
  });

  it('caches no failure: the next caller fetches again', async () => {
    // Prepare
    const cache = new CachedValue<string>(new FakeClock());
    const source = controlledFetch<string>();

    // Act
    const failed = cache.get(source.fetch).catch((error: Error) => error.message);
    source.fail(0);
    const message = await failed;
    const retry = cache.get(source.fetch);
    source.answer(1, 'v');

    // Assess
    expect(message).toBe('fetch failed');
    expect(await retry).toBe('v');
  });

  it('invalidateIf drops the value only when the test holds for it', async () => {
    // Prepare
    const cache = new CachedValue<string>(new FakeClock());
    const source = controlledFetch<string>();
    const first = cache.get(source.fetch);
    source.answer(0, 'current');
    await first;

    // Act
    cache.invalidateIf((value) => value === 'refused-earlier');
    const kept = await cache.get(source.fetch);
    cache.invalidateIf((value) => value === 'current');
    const refetched = cache.get(source.fetch);
    source.answer(1, 'replacement');

    // Assess
    expect(kept).toBe('current');
    expect(await refetched).toBe('replacement');
    expect(source.calls).toBe(2);
  });
});
