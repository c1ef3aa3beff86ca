import { setImmediate as turn } from 'node:timers/promises';
import type { Clock } from '../../../functions/core/ports';

/** 2026-01-01T00:00:00Z, where every proof starts. */
export const START_MS = Date.UTC(2026, 0, 1);

/** Event-loop turns with nothing in flight before the system counts as waiting. */
const CALM_TURNS = 3;

interface Timer {
  readonly atMs: number;
  readonly seq: number;
  readonly wake: () => void;
}

/**
 * Virtual time for the proofs, shared by the service and the IdP emulator. Real I/O (DynamoDB
 * Local, HTTP to the IdP) takes no virtual time: it is wrapped in {@link SimClock.track}, and the
 * clock stands still while any of it is under way. Sleeps are virtual timers: once every task is
 * waiting on one, time jumps to the earliest and wakes it. So leases never expire under a call that
 * is still running (as the IdP timeout guarantees in AWS), yet a caller that waits for a sibling
 * sees time pass, and concurrent sleeps overlap as real ones do.
 */
export class SimClock implements Clock {
  #ms: number;
  #inFlight = 0;
  #timers: Timer[] = [];
  #seq = 0;
  #pumping = false;

  constructor(
    startMs = START_MS,
    /** A real time source instead of virtual time, for an IdP that keeps real time (oidc-provider). */
    private readonly realNow?: () => number,
  ) {
    this.#ms = startMs;
  }

  nowMs(): number {
    return this.realNow ? this.realNow() : this.#ms;
  }

  /** Current time in epoch seconds. */
  nowSeconds(): number {
    return Math.floor(this.#ms / 1000);
  }

  /** Moves time forward (between steps of a test, when nothing is in flight). */
  advanceSeconds(seconds: number): void {
    this.#ms += seconds * 1000;
  }

  /** Real I/O under way right now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Runs real I/O; virtual time stands still until it settles. */
  async track<T>(work: () => Promise<T>): Promise<T> {
    this.#inFlight++;
    try {
      return await work();
    } finally {
      this.#inFlight--;
    }
  }

  /** Resolves once nothing has been in flight for a few event-loop turns. */
  async quiet(): Promise<void> {
    let calm = 0;
    while (calm < CALM_TURNS) {
      await turn();
      calm = this.#inFlight === 0 ? calm + 1 : 0;
    }
  }

  /** A virtual sleep: resolves when virtual time reaches now + ms (at least 1 ms, like setTimeout). */
  sleep = (ms: number): Promise<void> =>
    new Promise((wake) => {
      this.#timers.push({ atMs: this.#ms + Math.max(1, ms), seq: this.#seq++, wake });
      if (!this.#pumping) {
        this.#pumping = true;
        void this.#pump();
      }
    });

  async #pump(): Promise<void> {
    while (this.#timers.length > 0) {
      await this.quiet();
      this.#timers.sort((a, b) => a.atMs - b.atMs || a.seq - b.seq);
      const next = this.#timers.shift()!;
      this.#ms = Math.max(this.#ms, next.atMs);
      next.wake();
    }
    this.#pumping = false;
  }
}

/** A seeded random source (mulberry32), so a run with jitter can be repeated exactly. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
