import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../functions/core/errors';
import {
  DEFAULT_MIN_VALIDITY_SECONDS,
  MAX_EXPIRES_IN_SECONDS,
  MAX_MIN_VALIDITY_SECONDS,
  parseGetAccessTokenEvent,
  parseKey,
  parseStoreTokensEvent,
} from '../../../functions/core/validation';

const CANARY = 'rt-CANARY-5d1e';

/** A valid storeTokens event; `tokens` and the top level can be changed per test. */
function storeEvent(
  overrides: Record<string, unknown> = {},
  tokenOverrides: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    userId: 'user-1',
    tokens: {
      access_token: 'at-1',
      refresh_token: CANARY,
      id_token: 'id-1',
      token_type: 'Bearer',
      expires_in: 3600,
      session_id: 'sess-1',
      ...tokenOverrides,
    },
    ...overrides,
  };
}

/** The ValidationError that `act` throws. */
function validationErrorOf(act: () => unknown): ValidationError {
  try {
    act();
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return error as ValidationError;
  }
  throw new Error('expected a ValidationError');
}

const badStrings: [string, unknown][] = [
  ['a number', 42],
  ['a boolean', true],
  ['an object', { value: 'x' }],
  ['an array', ['x']],
  ['empty', ''],
  ['only whitespace', '   '],
  ['leading whitespace', ' x'],
  ['trailing whitespace', 'x\u00a0'],
  ['a NUL', 'a\u0000b'],
  ['a newline', 'a\nb'],
  ['a tab', 'a\tb'],
  ['an escape', 'a\u001bb'],
  ['a DEL', 'a\u007fb'],
];

describe('Function: parseStoreTokensEvent', () => {
  it('parses a full event into a key, tokens held in Secrets and lifetimes', () => {
    // Act
    const input = parseStoreTokensEvent(
      storeEvent({ resource: 'https://api.example.com', authenticatedAt: 1_767_225_600 }),
    );

    // Assess
    expect(input.key).toEqual({ userId: 'user-1', resource: 'https://api.example.com' });
    expect(input.authenticatedAt).toBe(1_767_225_600);
    expect(input.tokens.accessToken.reveal()).toBe('at-1');
    expect(input.tokens.refreshToken.reveal()).toBe(CANARY);
    expect(input.tokens.idToken?.reveal()).toBe('id-1');
    expect(input.tokens.sessionId?.reveal()).toBe('sess-1');
    expect(input.tokens.tokenType).toBe('Bearer');
    expect(input.tokens.expiresIn).toBe(3600);
    expect(JSON.stringify(input)).not.toContain(CANARY);
  });

  it("uses the 'default' resource and no authenticatedAt when they are absent or null", () => {
    // Act
    const absent = parseStoreTokensEvent(storeEvent());
    const nulls = parseStoreTokensEvent(storeEvent({ resource: null, authenticatedAt: null }));

    // Assess
    expect(absent.key.resource).toBe('default');
    expect(absent.authenticatedAt).toBeUndefined();
    expect(nulls.key.resource).toBe('default');
    expect(nulls.authenticatedAt).toBeUndefined();
  });

  it('leaves out id token and session id when absent or null', () => {
    // Act
    const absent = parseStoreTokensEvent(storeEvent({}, { id_token: undefined, session_id: undefined }));
    const nulls = parseStoreTokensEvent(storeEvent({}, { id_token: null, session_id: null }));

    // Assess
    for (const input of [absent, nulls]) {
      expect(input.tokens).not.toHaveProperty('idToken');
      expect(input.tokens).not.toHaveProperty('sessionId');
    }
  });

  it.each([
    ['undefined', undefined],
    ['null', null],
    ['a string', '{"userId":"u"}'],
    ['a number', 1],
    ['an array', [storeEvent()]],
  ])('rejects an event that is %s', (_label, event) => {
    // Act
    const error = validationErrorOf(() => parseStoreTokensEvent(event));

    // Assess
    expect(error.message).toMatch(/^event must be an object/);
  });

  it.each([
    ['missing', undefined],
    ['null', null],
    ['a string', 'at-1'],
    ['an array', []],
  ])('rejects tokens that are %s', (_label, tokens) => {
    // Act
    const error = validationErrorOf(() => parseStoreTokensEvent({ userId: 'user-1', tokens }));

    // Assess
    expect(error.message).toMatch(/^tokens must be an object/);
  });

  describe.each([
    ['userId', 'userId', 256],
    ['resource', 'resource', 1000],
  ])('field %s', (field, name, max) => {
    it.each(badStrings)(`rejects ${field} that is %s`, (_label, value) => {
      // Act
      const error = validationErrorOf(() => parseStoreTokensEvent(storeEvent({ [field]: value })));

      // Assess
      expect(error.message.startsWith(`${name} must`)).toBe(true);
    });

    it(`accepts ${field} of exactly ${max} characters and rejects ${max + 1}`, () => {
      // Act
      const ok = parseStoreTokensEvent(storeEvent({ [field]: 'x'.repeat(max) }));
      const error = validationErrorOf(() =>
        parseStoreTokensEvent(storeEvent({ [field]: 'x'.repeat(max + 1) })),
      );

      // Assess
      expect(field === 'userId' ? ok.key.userId : ok.key.resource).toHaveLength(max);
      expect(error.message).toBe(`${name} must be at most ${max} characters`);
    });
  });

  it('measures resource in UTF-8 bytes, the unit of the DynamoDB key limit', () => {
    // Act: 334 three-byte characters are 1002 bytes, though only 334 characters.
    const error = validationErrorOf(() =>
      parseStoreTokensEvent(storeEvent({ resource: '\u20ac'.repeat(334) })),
    );

    // Assess
    expect(error.message).toBe('resource must be at most 1000 bytes of UTF-8');
  });

  it('rejects a lone surrogate, which has no UTF-8 form and would merge two ids into one key', () => {
    const error = validationErrorOf(() => parseStoreTokensEvent(storeEvent({ userId: 'iso-\udbff' })));
    expect(error.message).toBe('userId must be well-formed Unicode');
  });

  it('rejects a missing userId', () => {
    // Act
    const error = validationErrorOf(() => parseStoreTokensEvent(storeEvent({ userId: undefined })));

    // Assess
    expect(error.message).toBe('userId must be a non-empty string');
  });

  describe.each([
    ['access_token', 16 * 1024, true],
    ['refresh_token', 16 * 1024, true],
    ['id_token', 16 * 1024, false],
    ['session_id', 1024, false],
  ])('field tokens.%s', (field, max, required) => {
    it.each(badStrings)(`rejects tokens.${field} that is %s`, (_label, value) => {
      // Act
      const error = validationErrorOf(() => parseStoreTokensEvent(storeEvent({}, { [field]: value })));

      // Assess
      expect(error.message.startsWith(`tokens.${field} must`)).toBe(true);
    });

    it(`accepts ${max} characters and rejects ${max + 1}`, () => {
      // Act
      parseStoreTokensEvent(storeEvent({}, { [field]: 'x'.repeat(max) }));
      const error = validationErrorOf(() =>
        parseStoreTokensEvent(storeEvent({}, { [field]: 'x'.repeat(max + 1) })),
      );

      // Assess
      expect(error.message).toBe(`tokens.${field} must be at most ${max} characters`);
    });

    if (required) {
      it('is required', () => {
        // Act
        const error = validationErrorOf(() => parseStoreTokensEvent(storeEvent({}, { [field]: undefined })));

        // Assess
        expect(error.message).toBe(`tokens.${field} must be a non-empty string`);
      });
    }
  });

  it.each([
    ['missing', undefined],
    ['empty', ''],
    ['two words', 'Bearer x'],
    ['starting with a digit', '1Bearer'],
    ['punctuation', 'Bear;er'],
    ['too long', `B${'e'.repeat(32)}`],
    ['a number', 1],
  ])('rejects tokens.token_type that is %s', (_label, value) => {
    // Act
    const error = validationErrorOf(() => parseStoreTokensEvent(storeEvent({}, { token_type: value })));

    // Assess
    expect(error.message.startsWith('tokens.token_type must')).toBe(true);
  });

  it.each(['Bearer', 'bearer', 'DPoP', 'N_A-1'])('accepts token_type %s', (value) => {
    // Act
    const input = parseStoreTokensEvent(storeEvent({}, { token_type: value }));

    // Assess
    expect(input.tokens.tokenType).toBe(value);
  });

  it.each([
    ['missing', undefined],
    ['negative', -1],
    ['zero', 0],
    ['a fraction', 3600.5],
    ['a numeric string', '3600'],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['over 7 days', MAX_EXPIRES_IN_SECONDS + 1],
    ['huge', 1e300],
    ['unsafe', 2 ** 53],
  ])('rejects tokens.expires_in that is %s', (_label, value) => {
    // Act
    const error = validationErrorOf(() => parseStoreTokensEvent(storeEvent({}, { expires_in: value })));

    // Assess
    expect(error.message).toBe(
      `tokens.expires_in must be an integer between 1 and ${MAX_EXPIRES_IN_SECONDS}`,
    );
  });

  it('accepts expires_in of 1 second and of 7 days', () => {
    // Act
    const shortest = parseStoreTokensEvent(storeEvent({}, { expires_in: 1 }));
    const longest = parseStoreTokensEvent(storeEvent({}, { expires_in: 7 * 86_400 }));

    // Assess
    expect([shortest.tokens.expiresIn, longest.tokens.expiresIn]).toEqual([1, 604_800]);
  });

  describe('field authenticatedAt', () => {
    it('accepts epoch seconds and drops a fraction', () => {
      // Act
      const input = parseStoreTokensEvent(storeEvent({ authenticatedAt: 1_767_225_600.9 }));

      // Assess
      expect(input.authenticatedAt).toBe(1_767_225_600);
    });

    it('accepts an ISO 8601 string with an offset and converts it to epoch seconds', () => {
      // Act
      const utc = parseStoreTokensEvent(storeEvent({ authenticatedAt: '2026-01-01T00:00:00.750Z' }));
      const offset = parseStoreTokensEvent(storeEvent({ authenticatedAt: '2026-01-01T01:00:00+01:00' }));

      // Assess
      expect(utc.authenticatedAt).toBe(1_767_225_600);
      expect(offset.authenticatedAt).toBe(1_767_225_600);
    });

    it.each([
      ['epoch milliseconds', 1_767_225_600_000],
      ['zero', 0],
      ['negative', -5],
      ['NaN', Number.NaN],
      ['Infinity', Number.POSITIVE_INFINITY],
      ['a numeric string', '1767225600'],
      ['a date without time', '2026-01-01'],
      ['a non-date string', 'yesterday'],
      ['an invalid ISO date', '2026-13-45T99:00:00Z'],
      ['an over-long string', `2026-01-01T00:00:00Z${' '.repeat(30)}`],
      ['a boolean', true],
      ['an object', { seconds: 1 }],
    ])('rejects %s', (_label, value) => {
      // Act
      const error = validationErrorOf(() => parseStoreTokensEvent(storeEvent({ authenticatedAt: value })));

      // Assess
      expect(error.message).toBe('authenticatedAt must be epoch seconds or an ISO 8601 string');
    });
  });

  describe('prototype keys', () => {
    it('ignores __proto__ from JSON and does not pollute Object.prototype', () => {
      // Prepare
      const event = JSON.parse(
        `{"userId":"user-1","__proto__":{"resource":"evil","polluted":true},"tokens":{"access_token":"a","refresh_token":"r","token_type":"Bearer","expires_in":60,"__proto__":{"id_token":"evil"}}}`,
      ) as unknown;

      // Act
      const input = parseStoreTokensEvent(event);

      // Assess
      expect(input.key.resource).toBe('default');
      expect(input.tokens).not.toHaveProperty('idToken');
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect(({} as Record<string, unknown>).resource).toBeUndefined();
    });

    it('does not read required fields from an inherited prototype', () => {
      // Prepare
      const tokens = Object.create({
        access_token: 'a',
        refresh_token: 'r',
        token_type: 'Bearer',
        expires_in: 60,
      });
      const event = Object.create({ userId: 'inherited' }) as Record<string, unknown>;
      event.tokens = tokens;

      // Act
      const error = validationErrorOf(() => parseStoreTokensEvent(event));

      // Assess
      expect(error.message).toMatch(/^(userId|tokens\.access_token) must be a non-empty string$/);
    });

    it('treats constructor and toString keys as ordinary data, never as the fields they shadow', () => {
      // Prepare
      const event = JSON.parse(
        '{"constructor":{"prototype":{"polluted":true}},"toString":"x","userId":"user-1","tokens":{"access_token":"a","refresh_token":"r","token_type":"Bearer","expires_in":60,"constructor":1}}',
      ) as unknown;

      // Act
      const input = parseStoreTokensEvent(event);

      // Assess
      expect(input.key).toEqual({ userId: 'user-1', resource: 'default' });
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });

    it('accepts "__proto__" as an ordinary user id string', () => {
      // Act
      const input = parseStoreTokensEvent(storeEvent({ userId: '__proto__' }));

      // Assess
      expect(input.key.userId).toBe('__proto__');
    });
  });

  it('never echoes a rejected value in the message', () => {
    // Act
    const messages = [
      validationErrorOf(() => parseStoreTokensEvent(storeEvent({}, { refresh_token: `${CANARY}\n` })))
        .message,
      validationErrorOf(() => parseStoreTokensEvent(storeEvent({}, { refresh_token: ` ${CANARY}` }))).message,
      validationErrorOf(() => parseStoreTokensEvent(storeEvent({}, { refresh_token: CANARY.repeat(5000) })))
        .message,
    ];

    // Assess
    for (const message of messages) expect(message).not.toContain('CANARY');
  });

  it('rejects C1 control characters (U+0080-U+009F) like the C0 ones', () => {
    // Act
    const act = () => parseStoreTokensEvent(storeEvent({ userId: 'user\u00851' }));

    // Assess
    expect(act).toThrow(ValidationError);
  });
});

describe('Function: parseGetAccessTokenEvent', () => {
  it(`defaults the resource to 'default' and minValiditySeconds to ${DEFAULT_MIN_VALIDITY_SECONDS}`, () => {
    // Act
    const input = parseGetAccessTokenEvent({ userId: 'user-1' });

    // Assess
    expect(input).toEqual({ key: { userId: 'user-1', resource: 'default' }, minValiditySeconds: 60 });
  });

  it('accepts minValiditySeconds from 0 to one day', () => {
    // Act
    const values = [0, 1, MAX_MIN_VALIDITY_SECONDS].map(
      (minValiditySeconds) =>
        parseGetAccessTokenEvent({ userId: 'u', minValiditySeconds }).minValiditySeconds,
    );

    // Assess
    expect(values).toEqual([0, 1, 86_400]);
  });

  it.each([
    ['negative', -1],
    ['a fraction', 1.5],
    ['over a day', 86_401],
    ['a string', '60'],
    ['null', null],
    ['NaN', Number.NaN],
  ])('rejects minValiditySeconds that is %s', (_label, value) => {
    // Act
    const error = validationErrorOf(() =>
      parseGetAccessTokenEvent({ userId: 'u', minValiditySeconds: value }),
    );

    // Assess
    expect(error.message).toBe('minValiditySeconds must be an integer between 0 and 86400');
  });

  it.each(badStrings)('rejects a userId that is %s', (_label, userId) => {
    // Act
    const act = () => parseGetAccessTokenEvent({ userId });

    // Assess
    expect(act).toThrow(ValidationError);
    expect(act).toThrow(/^userId must/);
  });

  it('ignores an inherited minValiditySeconds', () => {
    // Prepare
    const event = Object.assign(Object.create({ minValiditySeconds: -1 }) as object, { userId: 'u' });

    // Act
    const input = parseGetAccessTokenEvent(event);

    // Assess
    expect(input.minValiditySeconds).toBe(60);
  });
});

describe('Function: parseKey', () => {
  it('parses a user id and a resource', () => {
    // Act
    const key = parseKey({ userId: 'u', resource: 'r' });

    // Assess
    expect(key).toEqual({ userId: 'u', resource: 'r' });
  });

  it.each([null, 'u', 7, []])('rejects a body that is not an object (%s)', (body) => {
    // Act
    const act = () => parseKey(body);

    // Assess
    expect(act).toThrow(ValidationError);
  });

  it('keeps unicode ids that have no control characters', () => {
    // Act
    const key = parseKey({ userId: 'Jürgen 李', resource: 'urn:x' });

    // Assess
    expect(key.userId).toBe('Jürgen 李');
  });
});
