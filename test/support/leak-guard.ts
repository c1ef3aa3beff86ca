import { createHash, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { format, inspect } from 'node:util';
import { afterAll, inject } from 'vitest';
import { CanaryIndex, MIN_CANARY_LENGTH } from '../security/support/canary-index';

/**
 * The leak guard: a registry of canaries (every token value an IdP handed to the service during
 * this test file), a tee of everything the file writes to stdout, stderr and the console, and
 * the checks that fail a test when a canary shows up where token material must never be. It is
 * a vitest setup file (vitest.config.ts `setupFiles`), so it runs in every test file's process;
 * the harness and the security tests import its helpers from the same module instance.
 *
 * A finding names the place and the canary's origin and fingerprint, never its value.
 */

export { MIN_CANARY_LENGTH };
/** The token fields of an IdP answer (the client token is an `access_token` too). */
export const TOKEN_FIELDS = ['access_token', 'refresh_token', 'id_token', 'session_id'] as const;
/** Bodies larger than this are not read by the collecting fetch (no token answer is that large). */
const MAX_READ_BYTES = 1024 * 1024;

/** One registered canary. */
export interface Canary {
  readonly value: string;
  /** Where the value came from, e.g. `refresh_token from POST /cis/v1/auth/token/refresh`. */
  readonly origin: string;
  /** 12 hex characters of SHA-256: how a finding names the value. */
  readonly fingerprint: string;
}

/** A canary found where it must not be. */
export interface LeakFinding {
  readonly place: string;
  readonly origin: string;
  readonly fingerprint: string;
}

/** One text to search, with the name of where it was found. */
export interface Place {
  readonly place: string;
  readonly text: string;
}

/** Figures of this file's guard, for the run's closing note. */
export interface GuardStats {
  /** Harnesses whose close() ran the leak checks. */
  harnessChecks: number;
  /** Texts searched by all checks. */
  placesSearched: number;
  /** Answers read by the collecting fetch. */
  answersRead: number;
  /** Answers that could not be read (not JSON, no declared length, or too large). */
  answersSkipped: number;
}

/** The guard's state in this process. Kept on globalThis so a second module instance shares it. */
interface GuardState {
  readonly canaries: Map<string, Canary>;
  readonly output: string[];
  outputLength: number;
  /** While true, output is captured but not passed through (see {@link muted}). */
  muted: boolean;
  /** Rebuilt after a registration. */
  index: CanaryIndex<Canary> | undefined;
  readonly stats: GuardStats;
}

/** The error a found leak throws; it names places, never values. */
export class TokenLeakError extends Error {
  override readonly name = 'TokenLeakError';
  constructor(readonly findings: readonly LeakFinding[]) {
    super(describeFindings(findings));
  }
}

const STATE_KEY = Symbol.for('token-keeper.test.leak-guard');
const INSTALLED_KEY = Symbol.for('token-keeper.test.leak-guard.installed');

function state(): GuardState {
  const holder = globalThis as unknown as Record<symbol, GuardState | undefined>;
  holder[STATE_KEY] ??= {
    canaries: new Map(),
    output: [],
    outputLength: 0,
    muted: false,
    index: undefined,
    stats: { harnessChecks: 0, placesSearched: 0, answersRead: 0, answersSkipped: 0 },
  };
  return holder[STATE_KEY];
}

/** 12 hex characters of SHA-256 of a value. */
export function fingerprint(value: string): string {
  return createHash('sha256').update(value).digest('hex').slice(0, 12);
}

/**
 * Registers a token value as a canary. Returns false for a value too short to search for
 * without false alarms (such values are not registered).
 */
export function registerCanary(value: string, origin: string): boolean {
  if (typeof value !== 'string' || value.length < MIN_CANARY_LENGTH) return false;
  const guard = state();
  if (!guard.canaries.has(value)) {
    guard.canaries.set(value, { value, origin, fingerprint: fingerprint(value) });
    guard.index = undefined;
  }
  return true;
}

/** The registered canary of a value, if it is one. */
export function canaryFor(value: string): Canary | undefined {
  return state().canaries.get(value);
}

/** How many canaries this file has registered. */
export function canaryCount(): number {
  return state().canaries.size;
}

/** Every canary of this file (for the run-wide registry). */
export function allCanaries(): readonly Canary[] {
  return [...state().canaries.values()];
}

/** This file's figures. */
export function guardStats(): Readonly<GuardStats> {
  return state().stats;
}

/** Counts one completed harness check (see harness.ts close()). */
export function countHarnessCheck(): void {
  state().stats.harnessChecks += 1;
}

/** Registers the token fields of a parsed IdP answer; returns the values registered. */
export function registerTokenFields(json: unknown, source: string): string[] {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return [];
  const registered: string[] = [];
  for (const field of TOKEN_FIELDS) {
    const value = Object.hasOwn(json, field) ? (json as Record<string, unknown>)[field] : undefined;
    if (typeof value === 'string' && registerCanary(value, `${field} from ${source}`)) registered.push(value);
  }
  return registered;
}

/**
 * Wraps a fetch so that the token fields of every JSON answer become canaries before the caller
 * sees the answer. It reads a clone, and only when the length is declared and small, so a
 * streamed or endless body (some adapter tests serve one) is left alone.
 */
export function collectingFetch(base: typeof fetch, onCanaries?: (canaries: Canary[]) => void): typeof fetch {
  return async (input, init) => {
    const response = await base(input, init);
    const type = response.headers.get('content-type') ?? '';
    const length = Number(response.headers.get('content-length') ?? Number.NaN);
    const stats = state().stats;
    if (!response.body || !type.includes('json') || !(length >= 0 && length <= MAX_READ_BYTES)) {
      if (response.body) stats.answersSkipped += 1;
      return response;
    }
    try {
      const json: unknown = JSON.parse(await response.clone().text());
      stats.answersRead += 1;
      const values = registerTokenFields(json, describeRequest(input, init));
      const canaries = state().canaries;
      if (values.length > 0) onCanaries?.(values.map((value) => canaries.get(value)!));
    } catch {
      // Not JSON after all, or the body failed: the caller will see the same failure.
      stats.answersSkipped += 1;
    }
    return response;
  };
}

function describeRequest(input: Parameters<typeof fetch>[0], init: Parameters<typeof fetch>[1]): string {
  const url = typeof input === 'string' || input instanceof URL ? String(input) : input.url;
  const method = init?.method ?? (typeof input === 'object' && 'method' in input ? input.method : 'GET');
  let path = url;
  try {
    path = new URL(url).pathname;
  } catch {
    // keep the raw text
  }
  return `${method} ${path}`;
}

// ---------------------------------------------------------------------------------------------
// Searching

function canaryIndex(): CanaryIndex<Canary> {
  const guard = state();
  guard.index ??= new CanaryIndex(guard.canaries.values());
  return guard.index;
}

/** Searches every place for every registered canary (plus `extra` values, searched plainly). */
export function findLeaks(places: Iterable<Place>, extra: Iterable<string> = []): LeakFinding[] {
  const index = canaryIndex();
  const extras = [...extra].filter((value) => typeof value === 'string' && value.length > 0);
  const findings: LeakFinding[] = [];
  const seen = new Set<string>();
  for (const { place, text } of places) {
    state().stats.placesSearched += 1;
    for (const { canary } of index.find(text)) {
      const id = `${place}\u0000${canary.fingerprint}`;
      if (seen.has(id)) continue;
      seen.add(id);
      findings.push({ place, origin: canary.origin, fingerprint: canary.fingerprint });
    }
    for (const value of extras) {
      if (text.includes(value))
        findings.push({ place, origin: 'a value given to the test', fingerprint: fingerprint(value) });
    }
  }
  return findings;
}

/** Throws TokenLeakError when any place holds a canary. */
export function assertNoLeaks(places: Iterable<Place>, extra: Iterable<string> = []): void {
  const findings = findLeaks(places, extra);
  if (findings.length > 0) throw new TokenLeakError(findings);
}

/**
 * Flattens a value into searchable places: every string (and every key) at its path, through
 * own enumerable properties, arrays and Maps (a Secret has no own property, so it shows nothing).
 */
export function placesOf(label: string, value: unknown): Place[] {
  const places: Place[] = [];
  const visit = (path: string, node: unknown, depth: number, seen: Set<object>): void => {
    if (typeof node === 'string') {
      places.push({ place: path, text: node });
      return;
    }
    if (typeof node === 'bigint' || typeof node === 'number' || typeof node === 'boolean') return;
    if (node instanceof Uint8Array) {
      places.push({ place: `${path} (bytes as UTF-8)`, text: Buffer.from(node).toString('utf8') });
      return;
    }
    if (typeof node !== 'object' || node === null || depth > 12 || seen.has(node)) return;
    seen.add(node);
    const entries =
      node instanceof Map ? [...node.entries()] : Object.entries(node as Record<string, unknown>);
    for (const [key, child] of entries) {
      const childPath = `${path}.${String(key)}`;
      if (typeof key === 'string') places.push({ place: `${childPath} (key)`, text: key });
      visit(childPath, child, depth + 1, seen);
    }
  };
  visit(label, value, 0, new Set());
  return places;
}

/** Every way a caught error or value could be shown: message, JSON, util.inspect, String(). */
export function renderings(label: string, value: unknown): Place[] {
  const places: Place[] = [];
  const attempt = (how: string, render: () => string) => {
    try {
      places.push({ place: `${label} (${how})`, text: render() });
    } catch {
      // A value that cannot be rendered this way cannot leak this way either.
    }
  };
  if (value instanceof Error) {
    attempt('message', () => value.message);
    attempt('stack', () => value.stack ?? '');
  }
  attempt('JSON.stringify', () => JSON.stringify(value) ?? '');
  attempt('util.inspect', () => inspect(value, { depth: 10, showHidden: true, getters: false }));
  attempt('String()', () => String(value));
  return places;
}

/**
 * Fails when a caught error (or any value) shows a canary through its message, JSON,
 * util.inspect or String(). `extra` adds values known to the test (e.g. tokens of an event).
 */
export function expectNoCanary(value: unknown, extra: Iterable<string> = []): void {
  assertNoLeaks(renderings('value', value), extra);
}

function describeFindings(findings: readonly LeakFinding[]): string {
  const lines = findings
    .slice(0, 20)
    .map((f) => `  - ${f.origin} [sha256 ${f.fingerprint}] found in ${f.place}`);
  const more = findings.length > 20 ? `\n  ... and ${findings.length - 20} more` : '';
  return `token material leaked (values not shown):\n${lines.join('\n')}${more}`;
}

// ---------------------------------------------------------------------------------------------
// Output capture

/** Where the captured output currently ends (pass to {@link capturedOutput} later). */
export function outputMark(): number {
  return state().outputLength;
}

/** Everything written to stdout, stderr and the console since `from` (an {@link outputMark}). */
export function capturedOutput(from = 0): string {
  const guard = state();
  const all = guard.output.join('');
  // Keep one chunk: the next call need not join everything again.
  guard.output.splice(0, guard.output.length, all);
  return all.slice(from);
}

/**
 * Drops what was captured since `mark`: only for the guard's own tests, which plant a canary in
 * the output on purpose to show that the check finds it.
 */
export function discardOutputSince(mark: number): void {
  const guard = state();
  const kept = capturedOutput().slice(0, mark);
  guard.output.splice(0, guard.output.length, kept);
  guard.outputLength = kept.length;
}

/**
 * Runs `plant` with output captured but not passed through: only for the guard's own tests, so
 * that a canary written on purpose does not reach the terminal.
 */
export async function muted<T>(plant: () => T | Promise<T>): Promise<T> {
  const guard = state();
  guard.muted = true;
  try {
    return await plant();
  } finally {
    guard.muted = false;
  }
}

/**
 * The captured output as places for the checks. A finding's place shows the offset and a short
 * excerpt around it in which every canary, and anything that looks like a token, is masked.
 */
export function outputPlaces(from = 0): Place[] {
  const text = capturedOutput(from);
  if (text.length === 0) return [];
  const index = canaryIndex();
  const hits = index.find(text);
  if (hits.length === 0) return [{ place: 'stdout/stderr/console', text }];
  return hits.map(({ at, canary }) => ({
    place: `stdout/stderr/console at offset ${from + at}: ${maskedExcerpt(text, at, index)}`,
    text: canary.value,
  }));
}

function maskedExcerpt(text: string, at: number, index: CanaryIndex<Canary>): string {
  const start = Math.max(0, at - 80);
  let excerpt = text.slice(start, at + 160);
  for (const { canary } of index.find(excerpt)) {
    excerpt = excerpt.split(canary.value).join(`[canary ${canary.fingerprint}]`);
  }
  // Fragments of tokens cut by the excerpt's edges, and tokens that are not canaries, stay hidden.
  return JSON.stringify(excerpt.replace(/[A-Za-z0-9_\-+/=.~]{24,}/g, '[…]'));
}

type Write = (chunk: unknown, ...rest: unknown[]) => boolean;

function record(text: string): void {
  const guard = state();
  guard.output.push(text);
  guard.outputLength += text.length;
}

/** Tees process.stdout/stderr writes and console calls into the capture, passing them through. */
function installCapture(): void {
  const holder = globalThis as unknown as Record<symbol, boolean | undefined>;
  if (holder[INSTALLED_KEY]) return;
  holder[INSTALLED_KEY] = true;
  for (const stream of [process.stdout, process.stderr]) {
    const original = stream.write.bind(stream) as Write;
    const tee: Write = (chunk, ...rest) => {
      record(typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8'));
      if (state().muted) {
        const done = rest.find((arg) => typeof arg === 'function') as (() => void) | undefined;
        done?.();
        return true;
      }
      return original(chunk, ...rest);
    };
    stream.write = tee as typeof stream.write;
  }
  // Vitest replaces the console in its workers with one that does not write to process.stdout.
  const console = globalThis.console as unknown as Record<string, (...args: unknown[]) => void>;
  for (const method of ['log', 'info', 'warn', 'error', 'debug', 'trace']) {
    const original = console[method];
    if (typeof original !== 'function') continue;
    console[method] = (...args: unknown[]) => {
      record(`${format(...args)}\n`);
      if (!state().muted) original.apply(globalThis.console, args);
    };
  }
  const dir = console.dir;
  if (typeof dir === 'function') {
    console.dir = (...args: unknown[]) => {
      record(`${inspect(args[0], args[1] as object)}\n`);
      if (!state().muted) dir.apply(globalThis.console, args);
    };
  }
  // Every IdP client that is not given a fetch uses the global one: collect from it too.
  const globalFetch = globalThis.fetch;
  globalThis.fetch = collectingFetch(globalFetch);
}

// ---------------------------------------------------------------------------------------------
// Setup-file hooks

/** The run's shared folder (see global-setup.ts), or undefined outside a full vitest run. */
function runDirectory(): string | undefined {
  try {
    return inject('securityRunDir') || undefined;
  } catch {
    return undefined;
  }
}

/**
 * At the end of each test file: the file's own output must hold no canary (this covers output
 * after the last harness closed, and files that use no harness, like the embedded runtime's), and
 * the file's canaries and figures go to the run's folder for the global teardown.
 */
function registerFileHooks(): void {
  afterAll(() => {
    const dir = runDirectory();
    const guard = state();
    if (dir && (guard.canaries.size > 0 || guard.stats.harnessChecks > 0)) {
      const entry = {
        pid: process.pid,
        canaries: [...guard.canaries.values()].map(({ value, origin }) => ({ value, origin })),
        stats: guard.stats,
      };
      writeFileSync(join(dir, `canaries-${process.pid}-${randomUUID()}.json`), JSON.stringify(entry), {
        mode: 0o600,
      });
    }
    assertNoLeaks(outputPlaces());
  });
}

installCapture();
registerFileHooks();
