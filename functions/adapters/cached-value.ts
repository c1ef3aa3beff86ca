import type { Clock } from '../core/ports';

/**
 * One value fetched on demand and kept until it expires (the client credentials, the client
 * token). Concurrent callers share one fetch; a fetch started before {@link invalidate} cannot
 * put its value back, so an invalidated value is never refilled by a stale answer.
 */
export class CachedValue<T> {
  readonly #clock: Clock;
  #cached: { readonly value: T; readonly validUntilMs: number } | undefined;
  #inFlight: Promise<T> | undefined;
  /** Bumped by invalidate(): a fetch started under an older generation does not fill the cache. */
  #generation = 0;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /**
   * The cached value while it is valid, else the fetch in flight, else a new fetch. `fetch`
   * says how long its value stays valid, counted from when it arrives.
   */
  get(fetch: () => Promise<{ readonly value: T; readonly validForMs: number }>): Promise<T> {
    const cached = this.#cached;
    if (cached && this.#clock.nowMs() < cached.validUntilMs) return Promise.resolve(cached.value);
    if (!this.#inFlight) {
      const generation = this.#generation;
      const request = fetch().then(({ value, validForMs }) => {
        if (generation === this.#generation) {
          this.#cached = { value, validUntilMs: this.#clock.nowMs() + validForMs };
        }
        return value;
      });
      this.#inFlight = request;
      const clear = () => {
        if (this.#inFlight === request) this.#inFlight = undefined;
      };
      request.then(clear, clear);
    }
    return this.#inFlight;
  }

  /** Drops the cached value and any fetch in flight; the next get() fetches again. */
  invalidate(): void {
    this.#generation += 1;
    this.#cached = undefined;
    this.#inFlight = undefined;
  }

  /**
   * Drops the cached value only when `test` holds for it (say, it is the token the IdP just
   * refused): a sibling caller may already have replaced it with a fresh one.
   */
  invalidateIf(test: (value: T) => boolean): void {
    if (this.#cached && test(this.#cached.value)) this.#cached = undefined;
  }
}
