import type { Clock } from '../core/ports';

/** The wall clock, for adapters whose caller passes none. */
export const systemClock: Clock = { nowMs: () => Date.now() };
