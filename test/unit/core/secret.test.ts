import { format, inspect } from 'node:util';
import { serialize } from 'node:v8';
import { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import { describe, expect, it } from 'vitest';
import { JsonLogger } from '../../../functions/adapters/observability/logger';
import type { StoredTokens, TokenRecord, TokenSet } from '../../../functions/core/model';
import { Secret } from '../../../functions/core/secret';
import { activeRecord, T0 } from '../../support/fakes';
import { capturedOutput, outputMark } from '../../support/leak-guard';

const ACCESS = 'at-CANARY-3c1f0e9a77d2';
const REFRESH = 'rt-CANARY-b84d26e1c0aa';
const ID = 'id-CANARY-5e0b7f1d9c43';
const SESSION = 'sess-CANARY-0d6a9e2b71f8';
const VALUES = [ACCESS, REFRESH, ID, SESSION];

const tokenSet = (): TokenSet => ({
  accessToken: new Secret(ACCESS),
  refreshToken: new Secret(REFRESH),
  idToken: new Secret(ID),
  sessionId: new Secret(SESSION),
  tokenType: 'Bearer',
  expiresIn: 3600,
});
const storedTokens = (): StoredTokens => ({
  accessToken: new Secret(ACCESS),
  refreshToken: new Secret(REFRESH),
  idToken: new Secret(ID),
  sessionId: new Secret(SESSION),
});
const tokenRecord = (): TokenRecord => activeRecord(T0, { tokens: storedTokens() });

/** Every token value that `text` shows. */
const shownValues = (text: string) => VALUES.filter((value) => text.includes(value));

/** The ways a value commonly turns into text on its way to a log, an error or a response. */
const renderings: [string, (value: unknown) => string][] = [
  ['JSON.stringify', (v) => JSON.stringify(v)],
  ['JSON.stringify with an identity replacer', (v) => JSON.stringify(v, (_k, x: unknown) => x, 2)],
  ['util.inspect', (v) => inspect(v)],
  [
    'util.inspect without custom inspection, hidden and deep',
    (v) =>
      inspect(v, { customInspect: false, showHidden: true, depth: Number.POSITIVE_INFINITY, getters: true }),
  ],
  ['util.format %s %o %O %j', (v) => format('%s %o %O %j', v, v, v, v)],
  ['String()', (v) => String(v)],
  ['a template literal', (v) => `${v}`],
  // biome-ignore lint/style/useTemplate: the + operator (default ToPrimitive hint) is the rendering under test
  ['string concatenation', (v) => 'x' + v],
  ['Array.prototype.join', (v) => [v, v].join(',')],
  ['object spread, then JSON', (v) => JSON.stringify({ ...(v as object) })],
  ['Object.entries', (v) => JSON.stringify(Object.entries(v as object))],
  ['Reflect.ownKeys', (v) => String(Reflect.ownKeys(v as object))],
  ['URLSearchParams', (v) => new URLSearchParams({ t: v as string }).toString()],
  ['an Error cause, inspected', (v) => inspect(new Error('failed', { cause: v }), { depth: 10 })],
];

describe('Class: Secret', () => {
  describe('Method: toJSON / toString / inspect', () => {
    it.each(renderings)('shows no value through %s', (_how, render) => {
      // Act
      const shown = render(new Secret(REFRESH));

      // Assess
      expect(shown).not.toContain(REFRESH);
    });

    it('says that something was redacted rather than showing nothing', () => {
      // Prepare
      const secret = new Secret(REFRESH);

      // Act & Assess
      expect(JSON.stringify({ refreshToken: secret })).toBe('{"refreshToken":"[redacted]"}');
      expect(String(secret)).toBe('[redacted]');
      expect(inspect(secret)).toBe('Secret([redacted])');
    });

    it('keeps the value out of every own property (a private field)', () => {
      // Prepare
      const secret = new Secret(REFRESH);

      // Act & Assess
      expect(Reflect.ownKeys(secret)).toEqual([]);
      expect(Object.getOwnPropertyNames(secret)).toEqual([]);
      expect(secret.reveal()).toBe(REFRESH);
    });

    it('fingerprints with 12 hex characters that are not the value', () => {
      // Act
      const fingerprint = new Secret(REFRESH).fingerprint();

      // Assess
      expect(fingerprint).toMatch(/^[0-9a-f]{12}$/);
      expect(REFRESH).not.toContain(fingerprint);
    });
  });

  describe('structuredClone and v8.serialize', () => {
    it('drop the value: the clone is a plain empty object that neither shows nor reveals it', () => {
      // Act
      const clone: unknown = structuredClone(new Secret(REFRESH));
      const bytes = serialize(new Secret(REFRESH));

      // Assess: a private field is not cloned and the prototype is lost, so the value is gone
      // (nothing leaks, and the clone cannot be used as a token either).
      expect(clone).toEqual({});
      expect(clone).not.toBeInstanceOf(Secret);
      expect(bytes.toString('latin1')).not.toContain(REFRESH);
      expect(bytes.toString('utf16le')).not.toContain(REFRESH);
    });
  });
});

describe.each([
  ['TokenSet', tokenSet],
  ['StoredTokens', storedTokens],
  ['TokenRecord', tokenRecord],
] as const)('Type: %s', (_type, make) => {
  it.each(renderings.filter(([how]) => how !== 'URLSearchParams'))(
    'serialises without token values through %s',
    (_how, render) => {
      // Act
      const shown = render(make());

      // Assess
      expect(shownValues(shown)).toEqual([]);
    },
  );

  it('redacts each token field in JSON', () => {
    // Act
    const json = JSON.stringify(make());

    // Assess
    expect(json).toContain('"refreshToken":"[redacted]"');
    expect(json).toContain('"accessToken":"[redacted]"');
  });

  it('loses the token values in structuredClone (each Secret becomes {})', () => {
    // Act
    const clone = structuredClone(make());

    // Assess
    expect(shownValues(JSON.stringify(clone))).toEqual([]);
    expect(shownValues(inspect(clone, { depth: 10, showHidden: true }))).toEqual([]);
    expect(JSON.stringify(clone)).toContain('"refreshToken":{}');
  });

  it('writes no token value through the Powertools logger, even when passed as extra data', () => {
    // Prepare: Powertools itself accepts any object (the project's JsonLogger does not, see below).
    const logger = new PowertoolsLogger({ serviceName: 'secret-test', logLevel: 'DEBUG' });
    const mark = outputMark();

    // Act
    logger.info('holding tokens', { held: make() });
    logger.error('failed', new Error('refresh failed', { cause: make() }));

    // Assess
    const written = capturedOutput(mark);
    expect(written).toContain('holding tokens');
    expect(written).toContain('[redacted]');
    expect(shownValues(written)).toEqual([]);
  });
});

describe('Class: JsonLogger', () => {
  it('does not accept a token-holding value as a field (type barrier), and redacts it at run time anyway', () => {
    // Prepare
    const logger = new JsonLogger({ serviceName: 'secret-test', logLevel: 'DEBUG' });
    const record = tokenRecord();
    const mark = outputMark();

    // Act: the ts-expect-error lines are the proof: LogFields admits plain values only, so these
    // calls do not compile. Were the barrier gone, tsc would flag the unused directives.
    // @ts-expect-error a TokenRecord is not a plain log value
    logger.info('record as a field', { record });
    // @ts-expect-error a Secret is not a plain log value
    logger.warn('secret as a field', { refreshToken: record.tokens!.refreshToken });

    // Assess
    const written = capturedOutput(mark);
    expect(written).toContain('record as a field');
    expect(written).toContain('secret as a field');
    expect(shownValues(written)).toEqual([]);
  });
});
