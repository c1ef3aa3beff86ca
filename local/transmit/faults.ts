import type { Fault, FaultInjector, FaultTarget } from './types';

/** The endpoint a request arrived at, as far as faults are concerned. */
export type FaultedEndpoint = 'refresh' | 'token';

interface QueuedFault {
  remaining: number;
  readonly fault: Fault;
}

/** The emulator's fault injector: a FIFO of `failNext` batches, then one `failRate` rule. */
export class Faults implements FaultInjector {
  latencyMs = 0;
  #queue: QueuedFault[] = [];
  #rate: { readonly rate: number; readonly fault: Fault } | undefined;
  readonly #random: () => number;

  constructor(random: () => number = Math.random) {
    this.#random = random;
  }

  /** Fail the next `count` requests of the fault's target with this behaviour, then behave normally. */
  failNext(count: number, fault: Fault): void {
    if (!Number.isInteger(count) || count < 0) throw new RangeError('count must be a non-negative integer');
    assertFault(fault);
    if (count > 0) this.#queue.push({ remaining: count, fault });
  }

  /** Fail each request of the fault's target with probability `rate`; a rate of 0 turns it off. */
  failRate(rate: number, fault: Fault): void {
    if (!Number.isFinite(rate) || rate < 0 || rate > 1) throw new RangeError('rate must be between 0 and 1');
    assertFault(fault);
    this.#rate = rate > 0 ? { rate, fault } : undefined;
  }

  /** Back to normal: no latency, no queued or random faults. */
  reset(): void {
    this.latencyMs = 0;
    this.#queue = [];
    this.#rate = undefined;
  }

  /** Decides the fault for one request: queued faults first, then the random rule. */
  take(endpoint: FaultedEndpoint): Fault | undefined {
    const queued = this.#queue.find((entry) => applies(entry.fault, endpoint));
    if (queued) {
      queued.remaining -= 1;
      if (queued.remaining === 0) this.#queue = this.#queue.filter((entry) => entry !== queued);
      return queued.fault;
    }
    // The random source is only drawn from when a rule applies, so a seeded sequence stays predictable.
    if (this.#rate && applies(this.#rate.fault, endpoint) && this.#random() < this.#rate.rate) {
      return this.#rate.fault;
    }
    return undefined;
  }
}

function applies(fault: Fault, endpoint: FaultedEndpoint): boolean {
  const target: FaultTarget = fault.target ?? 'refresh';
  return target === 'both' || target === endpoint;
}

/** The HTTP status a client sees for a fault; 0 when it sees no answer at all. */
export function faultStatus(fault: Fault): number {
  switch (fault.kind) {
    case 'status':
      return fault.status;
    case 'rateLimit':
      return 429;
    case 'deadToken':
      return 400;
    default:
      return 0;
  }
}

/** True when the fault lets the request be processed before it fails the answer. */
export function processesFirst(fault: Fault): boolean {
  return fault.kind !== 'rateLimit' && fault.kind !== 'deadToken' && fault.processFirst === true;
}

function assertFault(fault: Fault): void {
  if (parseFault(fault) === undefined) throw new TypeError('not a valid fault');
}

// 403: the IdP refuses the app's client (a configuration fault, not a user's).
const FAULT_STATUSES: readonly number[] = [500, 502, 503, 504, 403];
const TARGETS: readonly unknown[] = ['refresh', 'token', 'both', undefined];

/** Validates a fault received as JSON (the admin endpoint); undefined when it is not one. */
export function parseFault(value: unknown): Fault | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const candidate = value as Record<string, unknown>;
  const { kind, processFirst, target } = candidate;
  if (!TARGETS.includes(target)) return undefined;
  if (processFirst !== undefined && typeof processFirst !== 'boolean') return undefined;
  const common = { ...(target === undefined ? {} : { target: target as FaultTarget }) };
  const first = processFirst === undefined ? {} : { processFirst };
  switch (kind) {
    case 'status': {
      const status = candidate.status;
      if (typeof status !== 'number' || !FAULT_STATUSES.includes(status)) return undefined;
      return { kind, status: status as 500 | 502 | 503 | 504, ...first, ...common };
    }
    case 'rateLimit': {
      const retryAfterSeconds = candidate.retryAfterSeconds;
      if (!Number.isInteger(retryAfterSeconds) || (retryAfterSeconds as number) < 0) return undefined;
      return { kind, retryAfterSeconds: retryAfterSeconds as number, ...common };
    }
    case 'timeout':
    case 'reset':
      return { kind, ...first, ...common };
    case 'deadToken':
      return { kind, ...common };
    default:
      return undefined;
  }
}

/** A validated `POST /local/faults` body. */
export interface FaultCommand {
  readonly reset: boolean;
  readonly latencyMs: number | undefined;
  readonly failNext: { readonly count: number; readonly fault: Fault } | undefined;
  readonly failRate: { readonly rate: number; readonly fault: Fault } | undefined;
}

/** Validates a `POST /local/faults` body completely, so applying it cannot fail halfway; undefined when invalid. */
export function parseFaultCommand(body: Record<string, unknown>): FaultCommand | undefined {
  const { reset, latencyMs, failNext, failRate } = body;
  if (reset !== undefined && reset !== true) return undefined;
  if (latencyMs !== undefined && !(Number.isInteger(latencyMs) && (latencyMs as number) >= 0))
    return undefined;
  let next: FaultCommand['failNext'];
  if (failNext !== undefined) {
    const { count, fault } = (typeof failNext === 'object' && failNext !== null ? failNext : {}) as Record<
      string,
      unknown
    >;
    const parsed = parseFault(fault);
    if (!Number.isInteger(count) || (count as number) < 0 || !parsed) return undefined;
    next = { count: count as number, fault: parsed };
  }
  let rate: FaultCommand['failRate'];
  if (failRate !== undefined) {
    const candidate = (typeof failRate === 'object' && failRate !== null ? failRate : {}) as Record<
      string,
      unknown
    >;
    const parsed = parseFault(candidate.fault);
    const value = candidate.rate;
    if (typeof value !== 'number' || !(value >= 0 && value <= 1) || !parsed) return undefined;
    rate = { rate: value, fault: parsed };
  }
  return {
    reset: reset === true,
    latencyMs: latencyMs as number | undefined,
    failNext: next,
    failRate: rate,
  };
}
