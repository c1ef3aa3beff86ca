import { randomBytes, randomUUID } from 'node:crypto';
import { inspect } from 'node:util';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalTokenCipher } from '../../functions/adapters/cipher/local-cipher';
import { DynamoDbTokenStore } from '../../functions/adapters/dynamodb/dynamodb-token-store';
import { buildRuntime, type Runtime, type RuntimeOverrides } from '../../functions/adapters/runtime';
import { loadConfig } from '../../functions/config';
import type { RecordKey, TokenRecord } from '../../functions/core/model';
import type { SessionTerminator, TokenStore } from '../../functions/core/ports';
import { Secret } from '../../functions/core/secret';
import { disconnect } from '../../functions/handlers/disconnect';
import { expiryStream } from '../../functions/handlers/expiry-stream';
import { getAccessToken } from '../../functions/handlers/get-access-token';
import { iso, lambdaHandler } from '../../functions/handlers/lambda';
import { refreshSweep } from '../../functions/handlers/refresh-sweep';
import { storeTokens } from '../../functions/handlers/store-tokens';
import {
  activeRecord,
  DAY,
  FakeClock,
  InMemoryTokenStore,
  ScriptedIdentityProvider,
  seededRandom,
  T0,
} from '../support/fakes';
import { createTable, localDynamoClient } from '../support/harness';
import { fingerprint, registerCanary } from '../support/leak-guard';
import { InMemoryMetrics, MemoryLogger, RecordingEventPublisher } from '../support/observability';

/**
 * Property-based fuzzing of every handler's event, through the real handler wrapper
 * (`lambdaHandler`) and the real core, on in-memory fakes so that thousands of cases run in
 * seconds (plus a smaller run on DynamoDB Local for what only the real store can show).
 *
 * Properties, for every generated event:
 * - it ends in a correct result or a ValidationError: never another error (InternalError is an
 *   unhandled bug), never an exception outside the handler;
 * - a ValidationError wrote nothing (no put, delete or lease in the store's call log);
 * - no response, error, log line, metric or event shows a token given in the event or stored;
 * - Object.prototype (and Array/Function prototypes) are not polluted.
 * Valid events (a separate arbitrary) must succeed: the fuzz cannot pass by rejecting everything.
 */

const CONFIG = loadConfig({
  TOKEN_TABLE_NAME: 'fuzz',
  LOCAL_TOKEN_KEY: randomBytes(32).toString('base64'),
  CLIENT_ID: 'fuzz-client',
  CLIENT_SECRET: 'fuzz-client-secret',
  IDP_RATE_LIMIT_RPS: '10000',
});
const DEFAULT_RESOURCE = 'default';
const SECOND_RESOURCE = 'https://api.example.com/orders';

// ---------------------------------------------------------------------------------------------
// The rig: a runtime on fakes, and the handlers wrapped as Lambda would run them.

type Handler = (event: unknown) => Promise<unknown>;

interface Rig {
  readonly store: InMemoryTokenStore;
  readonly logger: MemoryLogger;
  readonly metrics: InMemoryMetrics;
  readonly events: RecordingEventPublisher;
  readonly handlers: Record<
    'storeTokens' | 'getAccessToken' | 'disconnect' | 'refreshSweep' | 'expiryStream',
    Handler
  >;
}

/** Ends every session it is asked to (disconnect's IdP step). */
const sessions: SessionTerminator = { terminate: async () => 'logged_out' };

function handlersOf(runtime: Runtime): Rig['handlers'] {
  return {
    storeTokens: lambdaHandler(() => runtime, storeTokens),
    getAccessToken: lambdaHandler(() => runtime, getAccessToken),
    disconnect: lambdaHandler(() => runtime, disconnect),
    refreshSweep: lambdaHandler(() => runtime, refreshSweep),
    expiryStream: lambdaHandler(() => runtime, expiryStream),
  };
}

function rig(seed: readonly TokenRecord[] = []): Rig {
  const clock = new FakeClock();
  const store = new InMemoryTokenStore();
  for (const record of seed) store.seed(record);
  const logger = new MemoryLogger();
  const metrics = new InMemoryMetrics();
  const events = new RecordingEventPublisher(logger);
  const overrides: RuntimeOverrides = {
    clock,
    store,
    idp: new ScriptedIdentityProvider().rotateForever(),
    logger,
    metrics,
    events,
    sessions,
    random: seededRandom(7),
    sleep: (ms) => clock.sleep(ms),
  };
  return { store, logger, metrics, events, handlers: handlersOf(buildRuntime(CONFIG, overrides)) };
}

/** Seeded token values: canaries for every property. */
const seededTokens = (label: string) => ({
  accessToken: new Secret(`seed-at-${label}-${randomUUID()}`),
  refreshToken: new Secret(`seed-rt-${label}-${randomUUID()}`),
  idToken: new Secret(`seed-id-${label}-${randomUUID()}`),
  sessionId: new Secret(`seed-sid-${label}-${randomUUID()}`),
});
const key = (userId: string, resource = DEFAULT_RESOURCE): RecordKey => ({ userId, resource });
const SEED_TOKENS = {
  alice: seededTokens('alice'),
  aliceOrders: seededTokens('alice-orders'),
  bob: seededTokens('bob'),
};
/** alice (two resources), bob: ACTIVE; carol: REAUTH_REQUIRED; dave: corrupt ciphertext. */
const SEEDED: readonly TokenRecord[] = [
  activeRecord(T0, { key: key('alice'), tokens: SEED_TOKENS.alice }),
  activeRecord(T0, { key: key('alice', SECOND_RESOURCE), tokens: SEED_TOKENS.aliceOrders }),
  activeRecord(T0, { key: key('bob'), tokens: SEED_TOKENS.bob }),
  activeRecord(T0, {
    key: key('carol'),
    status: 'REAUTH_REQUIRED',
    tokens: undefined,
    reauthReason: 'refresh_rejected',
    dueShard: undefined,
    dueAt: undefined,
  }),
  activeRecord(T0, { key: key('dave'), tokens: undefined, corrupt: true }),
];
const SEEDED_VALUES = Object.values(SEED_TOKENS).flatMap((t) => Object.values(t).map((s) => s.reveal()));
const SEEDED_SECRETS = Object.values(SEED_TOKENS).flatMap((t) => [t.refreshToken, t.idToken, t.sessionId]);

// ---------------------------------------------------------------------------------------------
// Running a case and checking what every case must satisfy.

type Outcome =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: unknown };

const counts: Record<string, number> = {};
const WRITES = new Set(['put', 'delete', 'acquireLease']);

async function run(r: Rig, handler: keyof Rig['handlers'], event: unknown, label: string): Promise<Outcome> {
  counts[label] = (counts[label] ?? 0) + 1;
  try {
    return { ok: true, value: await r.handlers[handler](event) };
  } catch (error) {
    return { ok: false, error };
  }
}

const errorName = (outcome: Outcome) =>
  outcome.ok ? 'none' : outcome.error instanceof Error ? outcome.error.name : typeof outcome.error;

/** Every way the outcome and the rig's logs, metrics and events could show a value. */
function shownBy(r: Rig, outcome: Outcome): string[] {
  const shown = outcome.ok
    ? [JSON.stringify(outcome.value) ?? '', inspect(outcome.value, { depth: 5 })]
    : [
        String((outcome.error as Error)?.message),
        JSON.stringify(outcome.error) ?? '',
        inspect(outcome.error, { depth: 5, showHidden: true }),
      ];
  shown.push(
    JSON.stringify(r.logger.lines),
    JSON.stringify(r.metrics.points),
    JSON.stringify(r.events.published),
  );
  return shown;
}

/** The checks of every case: allowed outcome, no write on rejection, no token shown, no pollution. */
function expectInvariants(
  r: Rig,
  outcome: Outcome,
  options: {
    readonly allowed: readonly string[];
    readonly tokens: readonly string[];
    readonly callsBefore?: number;
  },
): void {
  const name = errorName(outcome);
  if (!outcome.ok && !options.allowed.includes(name)) {
    throw new Error(`unexpected ${name}: ${(outcome.error as Error)?.message}`);
  }
  if (name === 'ValidationError') {
    const writes = r.store.calls.slice(options.callsBefore ?? 0).filter((call) => WRITES.has(call.method));
    expect(writes, 'a rejected event wrote to the store').toEqual([]);
  }
  const texts = shownBy(r, outcome);
  for (const token of options.tokens) {
    if (token.length < 8) continue;
    for (const text of texts) {
      if (text.includes(token))
        throw new Error('a token value shows in the response, error, logs, metrics or events');
    }
  }
  expectNoPollution();
}

function expectNoPollution(): void {
  for (const property in {}) throw new Error(`Object.prototype was polluted with "${property}"`);
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
}

/** Compares two token values by fingerprint, so that a failure does not print them. */
function expectSame(actual: unknown, expected: unknown): void {
  const show = (v: unknown) => (typeof v === 'string' ? `token ${fingerprint(v)}` : String(v));
  expect(show(actual)).toBe(show(expected));
}

const own = (value: unknown, field: string): unknown =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && Object.hasOwn(value, field)
    ? (value as Record<string, unknown>)[field]
    : undefined;

// ---------------------------------------------------------------------------------------------
// Arbitraries

const LONE_SURROGATES = ['\ud800', '\udbff', '\udc00', '\udfff'];
const ODD_CHARACTERS = [
  '\u0000',
  '\u0007',
  '\u001b',
  '\u007f',
  '\u0085',
  '\u009f',
  '\t',
  '\n',
  '\u00a0',
  '\u200b',
  '\u200d',
  '\u200e',
  '\u200f',
  '\u202e',
  '\u2066',
  '\u2028',
  '\ufeff',
  '\ufffd',
  'ب',
  'א',
  '😀',
  'e\u0301',
  '"',
  '\\',
  '#',
];

const nastyUnit = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  { weight: 3, arbitrary: fc.constantFrom(...LONE_SURROGATES, ...ODD_CHARACTERS) },
);

/** Up to ~200 KB, around every length limit, in 1- to 4-byte characters and lone surrogates. */
const bigString = fc
  .tuple(
    fc.constantFrom(
      255,
      256,
      257,
      1023,
      1024,
      1025,
      2047,
      2048,
      2049,
      16_383,
      16_384,
      16_385,
      65_536,
      200_000,
    ),
    fc.constantFrom('a', 'é', '中', '😀', '\ud800', '\u202e', ' '),
  )
  .map(([length, unit]) => unit.repeat(Math.ceil(length / unit.length)).slice(0, length));

const nastyString = fc.oneof(
  { weight: 5, arbitrary: fc.string({ unit: nastyUnit, maxLength: 24 }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '',
      ' ',
      ' alice',
      'alice ',
      'alice\n',
      '__proto__',
      'constructor',
      'prototype',
      'toString',
      'hasOwnProperty',
      'default',
      'Bearer',
      'null',
      'NaN',
      '{}',
      '1e308',
      '2026-01-01T00:00:00Z',
      '0001-01-01T00:00:00Z',
      '9999-12-31T23:59:59Z',
      '2026-13-45T99:99:99Z',
      'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.',
    ),
  },
  { weight: 1, arbitrary: bigString },
);

const nastyNumber = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(
    0,
    -0,
    -1,
    0.5,
    1.5,
    59.999,
    3600.000001,
    86_400,
    86_401,
    604_800,
    604_801,
    1e10,
    99_999_999_999,
    1e11,
    1e308,
    -1e308,
    Number.MAX_VALUE,
    Number.MIN_VALUE,
    Number.EPSILON,
    Number.MAX_SAFE_INTEGER,
    Number.MAX_SAFE_INTEGER + 2,
    Number.MIN_SAFE_INTEGER,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    T0 - 15 * DAY,
    T0 + 301,
    T0 * 1000,
  ),
);

/** Own `__proto__` / `constructor` / `prototype` keys, as JSON.parse makes them (a Lambda event is parsed JSON). */
const prototypeKeys = fc
  .constantFrom(
    '{"__proto__":{"polluted":"yes"}}',
    '{"constructor":{"prototype":{"polluted":"yes"}}}',
    '{"prototype":{"polluted":"yes"}}',
    '{"__proto__":{"userId":"alice","tokens":{"access_token":"proto-access-token-xx","refresh_token":"proto-refresh-token-x","token_type":"Bearer","expires_in":60}}}',
    '{"__proto__":[],"length":1}',
  )
  .map((json) => JSON.parse(json) as unknown);

/** Values no JSON event has, for callers that invoke the handler directly. */
const nonJson = fc.constantFrom<unknown>(
  undefined,
  Symbol('s'),
  () => 'f',
  10n,
  new Date(Number.NaN),
  new Map([['userId', 'alice']]),
  new Set(['alice']),
  /alice/,
  Buffer.from('alice'),
  new Uint8Array(4),
);

const junk: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: nastyString },
  { weight: 3, arbitrary: nastyNumber },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(null, true, false, [], [null], {}) },
  { weight: 1, arbitrary: prototypeKeys },
  { weight: 1, arbitrary: nonJson },
  {
    weight: 2,
    arbitrary: fc.anything({
      maxDepth: 2,
      withNullPrototype: true,
      withBigInt: true,
      withBoxedValues: true,
      withDate: true,
      withMap: true,
      withSet: true,
      withTypedArray: true,
      withSparseArray: true,
      withUnicodeString: true,
    }),
  },
);

const extraKey = fc.oneof(
  fc.constantFrom(
    '__proto__',
    'constructor',
    'prototype',
    'toString',
    'hasOwnProperty',
    'userId ',
    'USERID',
    '\u202euserId',
    'userId\u200b',
    'access_token',
    'minValiditySeconds',
  ),
  fc.string({ unit: nastyUnit, maxLength: 8 }),
);

type Event = Record<string, unknown>;
type Path = readonly string[];

/** Defines an own, enumerable property: `__proto__` included (plain assignment would set the prototype). */
function defineOwn(target: object, field: string, value: unknown): void {
  Object.defineProperty(target, field, { value, enumerable: true, writable: true, configurable: true });
}

/** A shallow copy of an event and of its `tokens` object, so that mutations stay in the case. */
function copyEvent(event: Event): Event {
  const copy: Event = { ...event };
  if (typeof event.tokens === 'object' && event.tokens !== null)
    copy.tokens = { ...(event.tokens as object) };
  return copy;
}

function parentOf(event: Event, path: Path): Record<string, unknown> | undefined {
  let node: unknown = event;
  for (const step of path.slice(0, -1)) node = own(node, step);
  return typeof node === 'object' && node !== null ? (node as Record<string, unknown>) : undefined;
}

/** One mutation of a valid event: a field set to junk, removed, an extra field, or the whole event replaced. */
const mutation = (paths: readonly Path[]): fc.Arbitrary<(event: Event) => unknown> =>
  fc.oneof(
    {
      weight: 5,
      arbitrary: fc
        .record({ path: fc.constantFrom(...paths), value: junk })
        .map(({ path, value }) => (event: Event) => {
          const parent = parentOf(event, path);
          if (parent) defineOwn(parent, path.at(-1)!, value);
          return event;
        }),
    },
    {
      weight: 2,
      arbitrary: fc.constantFrom(...paths).map((path) => (event: Event) => {
        const parent = parentOf(event, path);
        if (parent) delete parent[path.at(-1)!];
        return event;
      }),
    },
    {
      weight: 2,
      arbitrary: fc
        .record({ at: fc.constantFrom<Path>([], ['tokens']), field: extraKey, value: junk })
        .map(({ at, field, value }) => (event: Event) => {
          const target = at.length === 0 ? event : own(event, 'tokens');
          if (typeof target === 'object' && target !== null) defineOwn(target, field, value);
          return event;
        }),
    },
    { weight: 1, arbitrary: junk.map((value) => () => value) },
  );

/** A valid event with one to three mutations applied. */
const mutated = (valid: fc.Arbitrary<Event>, paths: readonly Path[]) =>
  fc.tuple(valid, fc.array(mutation(paths), { minLength: 1, maxLength: 3 })).map(([event, changes]) => {
    const copy = copyEvent(event);
    // Once the whole event was replaced, later changes are skipped: they would change a shared constant.
    return changes.reduce<unknown>((e, change) => (e === copy ? change(copy) : e), copy);
  });

/** A token value that is a canary: unique, long, sometimes with non-ASCII characters. */
const canaryToken = (kind: string) =>
  fc
    .tuple(fc.uuid(), fc.constantFrom('', '-é', '-😀', '-مرحبا', '-\u200b-x', '.eyJ', '-"\\'))
    .map(([id, suffix]) => `${kind}-${id}${suffix}`);

// biome-ignore lint/suspicious/noControlCharactersInRegex: the characters a valid id must not have
const ID_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;
const validId = (maxLength: number) =>
  fc.oneof(
    fc.constantFrom('alice', 'bob', 'bob@example.com', 'user:42', 'Zoë', 'مستخدم', '用户', '😀', 'x y'),
    fc
      .string({ unit: 'grapheme', minLength: 1, maxLength: 30 })
      .filter((s) => s.length <= maxLength && s.trim() === s && !ID_CHARACTERS.test(s)),
  );

const validResource = fc.option(
  fc.oneof(fc.constantFrom(DEFAULT_RESOURCE, SECOND_RESOURCE, 'urn:x:y'), fc.webUrl(), validId(2048)),
  { nil: undefined },
);

const validAuthenticatedAt = fc.option(
  fc.oneof(
    fc.integer({ min: T0 - 13 * DAY, max: T0 + 299 }),
    fc.double({ min: T0 - 13 * DAY, max: T0 + 299, noNaN: true }),
    fc.integer({ min: T0 - 13 * DAY, max: T0 + 299 }).map((s) => new Date(s * 1000).toISOString()),
  ),
  { nil: undefined },
);

const validStoreEvent: fc.Arbitrary<Event> = fc
  .record(
    {
      userId: validId(256),
      resource: validResource,
      authenticatedAt: validAuthenticatedAt,
      tokens: fc.record(
        {
          access_token: canaryToken('at'),
          refresh_token: canaryToken('rt'),
          id_token: fc.option(canaryToken('id'), { nil: null }),
          session_id: canaryToken('sid'),
          token_type: fc.oneof(
            fc.constantFrom('Bearer', 'bearer', 'DPoP'),
            fc.stringMatching(/^[A-Za-z][A-Za-z0-9_-]{0,31}$/),
          ),
          expires_in: fc.integer({ min: 1, max: 7 * DAY }),
        },
        { requiredKeys: ['access_token', 'refresh_token', 'token_type', 'expires_in'] },
      ),
    },
    { requiredKeys: ['userId', 'tokens'] },
  )
  .map((event) => event as Event);

const STORE_PATHS: readonly Path[] = [
  ['userId'],
  ['resource'],
  ['authenticatedAt'],
  ['tokens'],
  ['tokens', 'access_token'],
  ['tokens', 'refresh_token'],
  ['tokens', 'id_token'],
  ['tokens', 'session_id'],
  ['tokens', 'token_type'],
  ['tokens', 'expires_in'],
];

const knownOrNot = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('alice', 'bob', 'carol', 'dave') },
  { weight: 1, arbitrary: validId(256) },
);
const validGetEvent: fc.Arbitrary<Event> = fc
  .record(
    {
      userId: knownOrNot,
      resource: fc.option(fc.constantFrom(DEFAULT_RESOURCE, SECOND_RESOURCE, 'https://unknown.example'), {
        nil: undefined,
      }),
      minValiditySeconds: fc.option(fc.integer({ min: 0, max: DAY }), { nil: undefined }),
    },
    { requiredKeys: ['userId'] },
  )
  .map((event) => event as Event);
const validKeyEvent: fc.Arbitrary<Event> = fc
  .record(
    {
      userId: knownOrNot,
      resource: fc.option(fc.constantFrom(DEFAULT_RESOURCE, SECOND_RESOURCE), { nil: undefined }),
    },
    { requiredKeys: ['userId'] },
  )
  .map((event) => event as Event);
const KEY_PATHS: readonly Path[] = [['userId'], ['resource'], ['minValiditySeconds']];

/** The tokens an event carries (for the canary check). */
function tokensIn(event: unknown): string[] {
  const tokens = own(event, 'tokens');
  return ['access_token', 'refresh_token', 'id_token', 'session_id']
    .map((field) => own(tokens, field))
    .filter((value): value is string => typeof value === 'string');
}

/** The record key an event names, when its fields are strings (what a correct handler would use). */
function keyOf(event: unknown): RecordKey | undefined {
  const userId = own(event, 'userId');
  const resource = own(event, 'resource') ?? DEFAULT_RESOURCE;
  return typeof userId === 'string' && typeof resource === 'string' ? { userId, resource } : undefined;
}

// ---------------------------------------------------------------------------------------------
// The properties

const RUNS = {
  valid: 300,
  storeTokens: 2000,
  getAccessToken: 1200,
  disconnect: 800,
  refreshSweep: 300,
  expiryStream: 1500,
};
const prototypes = () =>
  [Object.prototype, Array.prototype, Function.prototype, String.prototype].map((p) =>
    Reflect.ownKeys(p).map(String).sort(),
  );

let prototypesBefore: string[][];
beforeAll(() => {
  prototypesBefore = prototypes();
  for (const value of SEEDED_VALUES) registerCanary(value, 'a seeded token of the fuzz');
});
afterAll(() => {
  // Nothing any case did reached a prototype (a per-case check runs too, see expectNoPollution).
  expect(prototypes()).toEqual(prototypesBefore);
  const total = Object.values(counts).reduce((n, c) => n + c, 0);
  console.log(
    `handler fuzz: ${total} cases (${Object.entries(counts)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ')})`,
  );
});

describe('Handler events under fuzzing (fast-check)', () => {
  describe('Handler: storeTokens', () => {
    /** Checks a stored result against the event it came from. */
    const expectStored = (r: Rig, event: unknown, value: unknown) => {
      const result = value as Record<string, unknown>;
      const tokens = own(event, 'tokens');
      const expectedKey = keyOf(event)!;
      expect({ userId: result.userId, resource: result.resource }).toEqual(expectedKey);
      const stored = r.store.peek(expectedKey)!;
      expectSame(stored.tokens?.accessToken.reveal(), own(tokens, 'access_token'));
      expectSame(stored.tokens?.refreshToken.reveal(), own(tokens, 'refresh_token'));
      const idToken = own(tokens, 'id_token');
      expectSame(stored.tokens?.idToken?.reveal(), typeof idToken === 'string' ? idToken : undefined);
      expect(stored.accessExpiresAt - Math.min(T0, stored.authenticatedAt)).toBe(own(tokens, 'expires_in'));
      expect(stored.rotationDeadline).toBe(stored.authenticatedAt + 365 * DAY);
      expect(stored.refreshExpiresAt).toBeGreaterThan(T0);
      expect(result).toEqual({
        userId: expectedKey.userId,
        resource: expectedKey.resource,
        version: stored.version,
        accessTokenExpiresAt: iso(stored.accessExpiresAt),
        refreshTokenExpiresAt: iso(stored.refreshExpiresAt),
        rotationDeadline: iso(stored.rotationDeadline),
      });
    };

    it('stores every valid event exactly as given, and shows none of its tokens', async () => {
      await fc.assert(
        fc.asyncProperty(validStoreEvent, async (event) => {
          const r = rig();
          const outcome = await run(r, 'storeTokens', event, 'storeTokens');
          for (const token of tokensIn(event)) registerCanary(token, 'a token in a fuzzed event');
          expectInvariants(r, outcome, { allowed: [], tokens: tokensIn(event) });
          expectStored(r, event, outcome.ok ? outcome.value : undefined);
        }),
        { numRuns: RUNS.valid },
      );
    });

    it('ends every mutated event in ValidationError (nothing written) or a correct store', async () => {
      await fc.assert(
        fc.asyncProperty(mutated(validStoreEvent, STORE_PATHS), async (event) => {
          const r = rig(SEEDED);
          const callsBefore = r.store.calls.length;
          const outcome = await run(r, 'storeTokens', event, 'storeTokens');
          expectInvariants(r, outcome, {
            allowed: ['ValidationError'],
            tokens: [...tokensIn(event), ...SEEDED_VALUES],
            callsBefore,
          });
          if (outcome.ok) expectStored(r, event, outcome.value);
        }),
        { numRuns: RUNS.storeTokens },
      );
    });
  });

  describe('Handler: getAccessToken', () => {
    /** What a correct getAccessToken does for the key: serve its token, or say why not. */
    const expectServedOrRefused = (
      r: Rig,
      event: unknown,
      existed: TokenRecord | undefined,
      outcome: Outcome,
    ) => {
      const name = errorName(outcome);
      if (name === 'ValidationError') return;
      const expectedKey = keyOf(event)!;
      if (!existed) {
        expect(name).toBe('TokenNotFoundError');
      } else if (existed.status === 'REAUTH_REQUIRED' || existed.corrupt) {
        expect(name).toBe('ReauthRequiredError');
      } else {
        expect(name).toBe('none');
        const stored = r.store.peek(expectedKey)!;
        const { accessToken, ...rest } = (outcome.ok ? outcome.value : {}) as Record<string, unknown>;
        expectSame(accessToken, stored.tokens?.accessToken.reveal());
        expect(rest).toEqual({
          tokenType: stored.tokenType,
          expiresAt: iso(stored.accessExpiresAt),
          stale: expect.any(Boolean),
        });
      }
    };

    it.each([
      ['valid', () => validGetEvent, RUNS.valid],
      ['mutated', () => mutated(validGetEvent, KEY_PATHS), RUNS.getAccessToken],
    ] as const)(
      'serves the right token or refuses correctly for %s events, never leaking the others',
      async (kind, events, numRuns) => {
        await fc.assert(
          fc.asyncProperty(events(), async (event) => {
            const r = rig(SEEDED);
            const k = keyOf(event);
            const existed = k ? r.store.peek(k) : undefined;
            const callsBefore = r.store.calls.length;
            const outcome = await run(r, 'getAccessToken', event, 'getAccessToken');
            expectInvariants(r, outcome, {
              allowed:
                kind === 'valid'
                  ? ['TokenNotFoundError', 'ReauthRequiredError']
                  : ['ValidationError', 'TokenNotFoundError', 'ReauthRequiredError'],
              tokens: SEEDED_SECRETS.map((s) => s.reveal()),
              callsBefore,
            });
            expectServedOrRefused(r, event, existed, outcome);
            // The served access token is in the response only: never in logs, metrics or events.
            const logs = JSON.stringify([r.logger.lines, r.metrics.points, r.events.published]);
            for (const value of SEEDED_VALUES) expect(logs.includes(value)).toBe(false);
          }),
          { numRuns },
        );
      },
    );
  });

  describe('Handler: disconnect', () => {
    it.each([
      ['valid', () => validKeyEvent, RUNS.valid],
      ['mutated', () => mutated(validKeyEvent, KEY_PATHS), RUNS.disconnect],
    ] as const)(
      'deletes exactly the named record or rejects without writing, for %s events',
      async (kind, events, numRuns) => {
        await fc.assert(
          fc.asyncProperty(events(), async (event) => {
            const r = rig(SEEDED);
            const k = keyOf(event);
            const existed = k ? r.store.peek(k) : undefined;
            const callsBefore = r.store.calls.length;
            const outcome = await run(r, 'disconnect', event, 'disconnect');
            expectInvariants(r, outcome, {
              allowed: kind === 'valid' ? [] : ['ValidationError'],
              tokens: SEEDED_VALUES,
              callsBefore,
            });
            if (!outcome.ok) return;
            expect(outcome.value).toEqual({
              ...k,
              deleted: existed !== undefined,
              superseded: false,
              idpLogout: existed?.tokens ? 'logged_out' : 'skipped',
            });
            expect(r.store.peek(k!)).toBeUndefined();
            const others = SEEDED.filter((s) => s.key.userId !== k!.userId || s.key.resource !== k!.resource);
            for (const other of others) expect(r.store.peek(other.key)).toBeDefined();
          }),
          { numRuns },
        );
      },
    );
  });

  describe('Handler: refreshSweep', () => {
    it('ignores whatever event it is given and rotates what is due', async () => {
      const due = SEEDED.filter((s) => s.status === 'ACTIVE' && !s.corrupt).map((s) => ({
        ...s,
        dueAt: T0 - 1,
      }));
      await fc.assert(
        fc.asyncProperty(junk, async (event) => {
          const r = rig(due);
          const outcome = await run(r, 'refreshSweep', event, 'refreshSweep');
          expectInvariants(r, outcome, { allowed: [], tokens: SEEDED_VALUES });
          expect(outcome.ok && outcome.value).toEqual({
            due: due.length,
            rotated: due.length,
            failed: 0,
            reauthRequired: 0,
            skipped: 0,
            backlog: 0,
            rescheduled: 0,
          });
        }),
        { numRuns: RUNS.refreshSweep },
      );
    });
  });

  describe('Handler: expiryStream', () => {
    const TTL = { type: 'Service', principalId: 'dynamodb.amazonaws.com' };
    const attribute = (values: fc.Arbitrary<string>, type: 'S' | 'N') => values.map((v) => ({ [type]: v }));
    const wellFormedImage = fc.record({
      pk: attribute(fc.constantFrom('u#alice', 'u#bob', 'u#'), 'S'),
      sk: attribute(fc.constantFrom('r#default', `r#${SECOND_RESOURCE}`), 'S'),
      status: attribute(fc.constantFrom('ACTIVE', 'REAUTH_REQUIRED'), 'S'),
      refreshExpiresAt: attribute(fc.integer({ min: T0, max: T0 + 400 * DAY }).map(String), 'N'),
      rotationDeadline: attribute(fc.integer({ min: T0, max: T0 + 400 * DAY }).map(String), 'N'),
    });
    const wellFormedRecord = fc.record({
      eventName: fc.constantFrom('REMOVE', 'INSERT', 'MODIFY'),
      dynamodb: fc.record({ OldImage: wellFormedImage }),
      userIdentity: fc.option(fc.constant(TTL), { nil: undefined }),
    });
    const validStreamEvent = fc.record({ Records: fc.array(wellFormedRecord, { maxLength: 5 }) });
    const orJunk = <T>(arbitrary: fc.Arbitrary<T>) =>
      fc.oneof({ weight: 3, arbitrary }, { weight: 1, arbitrary: junk });
    const fuzzedImage = fc.record(
      {
        pk: orJunk(attribute(fc.constantFrom('u#alice', 'u#bob'), 'S')),
        sk: orJunk(attribute(fc.constantFrom('r#default'), 'S')),
        status: orJunk(attribute(fc.constantFrom('ACTIVE', 'REAUTH_REQUIRED'), 'S')),
        refreshExpiresAt: orJunk(attribute(fc.constantFrom(String(T0), 'NaN', '1e400', '-1', 'x'), 'N')),
        rotationDeadline: orJunk(attribute(fc.constantFrom(String(T0 + DAY), ''), 'N')),
      },
      { requiredKeys: [] },
    );
    const fuzzedRecord = orJunk(
      fc.record(
        {
          eventName: orJunk(fc.constantFrom('REMOVE', 'INSERT')),
          dynamodb: orJunk(fc.record({ OldImage: orJunk(fuzzedImage) }, { requiredKeys: [] })),
          userIdentity: orJunk(fc.constant(TTL)),
        },
        { requiredKeys: [] },
      ),
    );
    const fuzzedStreamEvent = fc.oneof(
      { weight: 4, arbitrary: fc.record({ Records: fc.array(fuzzedRecord, { maxLength: 5 }) }) },
      { weight: 1, arbitrary: fc.record({ Records: junk }) },
      { weight: 1, arbitrary: junk },
    );

    it.each([
      ['valid', () => validStreamEvent, RUNS.valid],
      ['fuzzed', () => fuzzedStreamEvent, RUNS.expiryStream],
    ] as const)(
      'summarises %s stream batches or rejects them with ValidationError',
      async (kind, events, numRuns) => {
        await fc.assert(
          fc.asyncProperty(events(), async (event) => {
            const r = rig();
            const outcome = await run(r, 'expiryStream', event, 'expiryStream');
            expectInvariants(r, outcome, {
              allowed: kind === 'valid' ? [] : ['ValidationError'],
              tokens: [],
            });
            if (!outcome.ok) return;
            const summary = outcome.value as {
              tokensExpired: number;
              deadlineReached: number;
              ignored: number;
            };
            const records = own(event, 'Records');
            expect(summary.tokensExpired + summary.deadlineReached + summary.ignored).toBeLessThanOrEqual(
              Array.isArray(records) ? records.length : 0,
            );
            expect(r.metrics.total('TokensExpired')).toBe(summary.tokensExpired);
            expect(r.events.published).toHaveLength(summary.tokensExpired + summary.deadlineReached);
          }),
          { numRuns },
        );
      },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// What only the real store shows: DynamoDB's key limits and its handling of ill-formed strings.

describe('Handler events under fuzzing, on DynamoDB Local', () => {
  let store: TokenStore;
  let handlers: Rig['handlers'];
  let client: ReturnType<typeof localDynamoClient>;

  beforeAll(async () => {
    client = localDynamoClient();
    const tableName = await createTable(client);
    const cipher = LocalTokenCipher.fromBase64(randomBytes(32).toString('base64'));
    store = new DynamoDbTokenStore({ tableName, cipher, client });
    const logger = new MemoryLogger();
    const runtime = buildRuntime(CONFIG, {
      clock: new FakeClock(),
      store,
      idp: new ScriptedIdentityProvider().rotateForever(),
      logger,
      metrics: new InMemoryMetrics(),
      events: new RecordingEventPublisher(logger),
      sessions,
    });
    handlers = handlersOf(runtime);
  });
  afterAll(() => {
    client.destroy();
  });

  const tokens = (label: string) => ({
    access_token: `at-${label}-${randomUUID()}`,
    refresh_token: `rt-${label}-${randomUUID()}`,
    token_type: 'Bearer',
    expires_in: 3600,
  });
  const multiByte = fc.string({ unit: nastyUnit, minLength: 1, maxLength: 8 });
  /** Keys near every limit: up to 256 (user) and 2048 (resource) UTF-16 units of 1- to 4-byte characters. */
  const longKey = (max: number) =>
    fc
      .tuple(fc.constantFrom('a', 'é', '中', '😀', 'x\ud800'), fc.integer({ min: 1, max }))
      .map(([unit, length]) => unit.repeat(Math.ceil(length / unit.length)).slice(0, length));

  it('stores every key the validator accepts, or rejects it with ValidationError (never InternalError)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(longKey(256), multiByte),
        fc.oneof(longKey(2048), multiByte),
        async (userId, resource) => {
          counts['storeTokens on DynamoDB Local'] = (counts['storeTokens on DynamoDB Local'] ?? 0) + 1;
          const event = { userId, resource, tokens: tokens('limits') };
          const outcome = await handlers.storeTokens(event).then(
            (value) => ({ ok: true as const, value }),
            (error: unknown) => ({ ok: false as const, error }),
          );
          if (!outcome.ok) expect((outcome.error as Error).name).toBe('ValidationError');
        },
      ),
      { numRuns: 60 },
    );
  });

  /** Short ids over characters that an encoding step could merge: lone surrogates, U+FFFD, '?'. */
  const confusable = fc.string({
    unit: fc.constantFrom('a', 'é', '?', '\ufffd', ...LONE_SURROGATES),
    minLength: 1,
    maxLength: 3,
  });

  it('never lets one user id read the record of another (distinct ids stay distinct records)', async () => {
    await fc.assert(
      fc.asyncProperty(confusable, confusable, async (a, b) => {
        fc.pre(a !== b);
        counts['isolation on DynamoDB Local'] = (counts['isolation on DynamoDB Local'] ?? 0) + 1;
        const userA = `iso-${a}`;
        const userB = `iso-${b}`;
        const given = tokens('isolation');
        const stored = await handlers.storeTokens({ userId: userA, tokens: given }).then(
          () => true,
          () => false,
        );
        fc.pre(stored);
        const read = await handlers.getAccessToken({ userId: userB }).then(
          (value) => value as { accessToken: string },
          () => undefined,
        );
        await handlers.disconnect({ userId: userA }).catch(() => undefined);
        expect(
          read?.accessToken === given.access_token,
          `user ${JSON.stringify(userB)} was served the access token of ${JSON.stringify(userA)}`,
        ).toBe(false);
      }),
      { numRuns: 80 },
    );
  });
});
