import { setTimeout as pause } from 'node:timers/promises';
import type { Scheduler } from 'fast-check';
import type { SimClock } from './sim-clock';

/** Turns with nothing scheduled and nothing in flight after which a run counts as stuck. */
const MAX_STALLS = 2_000;

/**
 * Drives a fast-check scheduler over real I/O. Every store call, IdP call and sleep of the service
 * passes a gate; a gate is a task of the scheduler. Once nothing is in flight (the clock tracks
 * every real call), the scheduler picks one waiting gate at random and lets it through, so each
 * run explores one interleaving of the service's steps, and a failing one can be replayed and
 * shrunk by fast-check. Real calls are atomic here, as DynamoDB's conditional writes are.
 */
export class Interleaver {
  /** Gates released so far: the interleaving decisions taken. */
  steps = 0;

  constructor(
    private readonly scheduler: Scheduler,
    private readonly clock: SimClock,
    private readonly maxSteps = 50_000,
  ) {}

  /** A point where the scheduler decides who goes next. */
  gate = (label: string): Promise<void> => this.scheduler.schedule(Promise.resolve(), label);

  /** Starts every task at once and lets their gated steps through one at a time, in the scheduler's order. */
  async run<T>(tasks: readonly (() => Promise<T>)[]): Promise<PromiseSettledResult<T>[]> {
    const all = Promise.allSettled(tasks.map((task) => task()));
    let done = false;
    void all.then(() => {
      done = true;
    });
    let stalls = 0;
    while (!done) {
      await this.clock.quiet();
      if (done) break;
      if (this.scheduler.count() === 0) {
        // Nothing to release and nothing in flight: something waits on a source the proof does not control.
        if (++stalls > MAX_STALLS)
          throw new Error('interleaving stalled: no gate waiting and no I/O in flight');
        await pause(1);
        continue;
      }
      stalls = 0;
      await this.scheduler.waitNext(1);
      if (++this.steps > this.maxSteps)
        throw new Error(`no progress after ${this.maxSteps} steps (livelock?)`);
    }
    return all;
  }
}
