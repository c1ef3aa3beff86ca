import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { LocalTokenCipher } from '../../../functions/adapters/cipher/local-cipher';
import { ConfigurationError, CorruptRecordError } from '../../../functions/core/errors';

const utf8 = (text: string) => new TextEncoder().encode(text);
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const AAD = utf8('user-1\u0000default');
const CANARY = 'rt-CANARY-7f3a9c';

/** Replaces one character of the envelope part at `index` with another base64url character. */
function flipCharInPart(sealed: string, index: number): string {
  const parts = sealed.split('.');
  const part = parts[index]!;
  const last = part.at(-2)!;
  parts[index] = `${part.slice(0, -2)}${last === 'A' ? 'B' : 'A'}${part.at(-1)}`;
  return parts.join('.');
}

async function expectCorrupt(promise: Promise<unknown>): Promise<CorruptRecordError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(CorruptRecordError);
  return error as CorruptRecordError;
}

describe('Class: LocalTokenCipher', () => {
  describe('Method: fromBase64', () => {
    it('accepts the base64 of exactly 32 bytes', async () => {
      // Prepare
      const b64 = randomBytes(32).toString('base64');

      // Act
      const cipher = LocalTokenCipher.fromBase64(`${b64}\n`);

      // Assess
      expect(text(await cipher.open(await cipher.seal(utf8('x'), AAD), AAD))).toBe('x');
    });

    it.each([
      ['16 bytes', randomBytes(16).toString('base64')],
      ['33 bytes', randomBytes(33).toString('base64')],
      ['empty', ''],
      ['not base64', 'this is not base64 at all, not even close!!'],
    ])('throws ConfigurationError naming LOCAL_TOKEN_KEY for %s', (_label, value) => {
      // Act
      const act = () => LocalTokenCipher.fromBase64(value);

      // Assess
      expect(act).toThrow(ConfigurationError);
      expect(act).toThrow(/LOCAL_TOKEN_KEY/);
    });

    it('does not echo the key value in its error', () => {
      // Prepare
      const value = randomBytes(31).toString('base64');

      // Act
      const act = () => LocalTokenCipher.fromBase64(value);

      // Assess
      expect(act).toThrow(ConfigurationError);
      expect(() => act()).not.toThrow(value);
    });
  });

  describe('Method: constructor', () => {
    it('throws ConfigurationError for a key that is not 32 bytes', () => {
      expect(() => new LocalTokenCipher(randomBytes(24))).toThrow(ConfigurationError);
    });

    it('keeps the key out of JSON and inspection', async () => {
      // Prepare
      const key = randomBytes(32);
      const cipher = new LocalTokenCipher(key);
      const { inspect } = await import('node:util');

      // Act
      const shown = `${JSON.stringify(cipher)} ${inspect(cipher, { showHidden: true })}`;

      // Assess
      expect(shown).not.toContain(key.toString('base64'));
      expect(shown).not.toContain(key.toString('hex'));
    });
  });

  describe('Method: seal', () => {
    it('produces a v1 envelope with keyref local and no plaintext in it', async () => {
      // Prepare
      const cipher = new LocalTokenCipher(randomBytes(32));

      // Act
      const sealed = await cipher.seal(utf8(CANARY), AAD);

      // Assess
      const parts = sealed.split('.');
      expect(parts).toHaveLength(4);
      expect(parts[0]).toBe('v1');
      expect(parts[1]).toBe('local');
      expect(Buffer.from(parts[2]!, 'base64url')).toHaveLength(12);
      expect(sealed).not.toContain(CANARY);
      expect(sealed).not.toContain(Buffer.from(CANARY).toString('base64url'));
    });

    it('uses a fresh IV for every seal', async () => {
      // Prepare
      const cipher = new LocalTokenCipher(randomBytes(32));

      // Act
      const envelopes = await Promise.all(Array.from({ length: 50 }, () => cipher.seal(utf8('same'), AAD)));

      // Assess
      const ivs = new Set(envelopes.map((sealed) => sealed.split('.')[2]));
      expect(ivs.size).toBe(50);
    });
  });

  describe('Method: open', () => {
    it('roundtrips what seal produced, including empty and binary values', async () => {
      // Prepare
      const cipher = new LocalTokenCipher(randomBytes(32));
      const binary = randomBytes(1000);

      // Act
      const openedBinary = await cipher.open(await cipher.seal(binary, AAD), AAD);
      const openedEmpty = await cipher.open(await cipher.seal(new Uint8Array(0), AAD), AAD);

      // Assess
      expect(Buffer.from(openedBinary).equals(binary)).toBe(true);
      expect(openedEmpty).toHaveLength(0);
    });

    it('throws CorruptRecordError when the AAD names another record', async () => {
      // Prepare
      const cipher = new LocalTokenCipher(randomBytes(32));
      const sealed = await cipher.seal(utf8(CANARY), utf8('user-1\u0000default'));

      // Act
      const error = await expectCorrupt(cipher.open(sealed, utf8('user-2\u0000default')));

      // Assess
      expect(error.message).not.toContain(sealed);
      expect(JSON.stringify(error)).not.toContain(CANARY);
    });

    it('throws CorruptRecordError for a value sealed under another key', async () => {
      // Prepare
      const sealed = await new LocalTokenCipher(randomBytes(32)).seal(utf8('x'), AAD);

      // Act & Assess
      await expectCorrupt(new LocalTokenCipher(randomBytes(32)).open(sealed, AAD));
    });

    it.each([
      ['ciphertext', 3],
      ['iv', 2],
    ])('throws CorruptRecordError when the %s is tampered with', async (_label, index) => {
      // Prepare
      const cipher = new LocalTokenCipher(randomBytes(32));
      const sealed = await cipher.seal(utf8(CANARY), AAD);

      // Act & Assess
      await expectCorrupt(cipher.open(flipCharInPart(sealed, index), AAD));
    });

    it.each([
      ['empty string', ''],
      ['wrong version', 'v2.local.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA'],
      ['too few parts', 'v1.local.AAAAAAAAAAAAAAAA'],
      ['too many parts', 'v1.local.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA.x'],
      ['short iv', 'v1.local.AAAA.AAAAAAAAAAAAAAAAAAAAAA'],
      ['body shorter than the tag', 'v1.local.AAAAAAAAAAAAAAAA.AAAA'],
      ['non-base64url characters', 'v1.local.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAA+AAAAA'],
      ['foreign keyref', 'v1.a21zLWJsb2I.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA'],
    ])(
      'throws CorruptRecordError for a malformed envelope (%s) without quoting it',
      async (_label, sealed) => {
        // Prepare
        const cipher = new LocalTokenCipher(randomBytes(32));

        // Act
        const error = await expectCorrupt(cipher.open(sealed, AAD));

        // Assess
        if (sealed.length > 0) expect(error.message).not.toContain(sealed);
      },
    );

    it('throws CorruptRecordError when the keyref is swapped, even to one that decodes', async () => {
      // Prepare
      const cipher = new LocalTokenCipher(randomBytes(32));
      const parts = (await cipher.seal(utf8('x'), AAD)).split('.');
      parts[1] = 'bG9jYWw';

      // Act & Assess
      await expectCorrupt(cipher.open(parts.join('.'), AAD));
    });
  });
});
