import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import {
  DecryptCommand,
  GenerateDataKeyCommand,
  IncorrectKeyException,
  InvalidCiphertextException,
  KMSClient,
  KMSInternalException,
} from '@aws-sdk/client-kms';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { KmsTokenCipher, type KmsTokenCipherOptions } from '../../../functions/adapters/cipher/kms-cipher';
import {
  ConfigurationError,
  CorruptRecordError,
  StoreUnavailableError,
} from '../../../functions/core/errors';
import { ManualClock } from '../../support/idp-http-server';

const KEY_ID = 'arn:aws:kms:eu-west-1:111122223333:key/test';
const utf8 = (text: string) => new TextEncoder().encode(text);
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const AAD = utf8('user-1\u0000default');
const CANARY = 'at-CANARY-1b9e44';

const kmsClient = new KMSClient({
  region: 'eu-west-1',
  credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
});
const kms = mockClient(kmsClient);

/** A tiny KMS: data keys it generated can be decrypted with the same encryption context. */
const issued = new Map<string, { plaintext: Buffer; context: string }>();

function generateDataKey(input: GenerateDataKeyCommand['input']) {
  const plaintext = randomBytes(32);
  const blob = randomBytes(64);
  issued.set(blob.toString('hex'), { plaintext, context: JSON.stringify(input.EncryptionContext) });
  return { CiphertextBlob: new Uint8Array(blob), Plaintext: new Uint8Array(plaintext), KeyId: KEY_ID };
}

function decrypt(input: DecryptCommand['input']) {
  const entry = issued.get(Buffer.from(input.CiphertextBlob ?? []).toString('hex'));
  if (!entry || entry.context !== JSON.stringify(input.EncryptionContext)) {
    throw new InvalidCiphertextException({ message: 'invalid', $metadata: {} });
  }
  return { Plaintext: new Uint8Array(entry.plaintext), KeyId: KEY_ID };
}

function fakeKms(): void {
  issued.clear();
  kms.reset();
  kms.on(GenerateDataKeyCommand).callsFake(generateDataKey);
  kms.on(DecryptCommand).callsFake(decrypt);
}

function cipher(options: Partial<KmsTokenCipherOptions> = {}): KmsTokenCipher {
  return new KmsTokenCipher({ keyId: KEY_ID, client: kmsClient, ...options });
}

const generateCalls = () => kms.commandCalls(GenerateDataKeyCommand).length;
const decryptCalls = () => kms.commandCalls(DecryptCommand).length;
const keyrefOf = (sealed: string) => sealed.split('.')[1];

async function caught(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => error,
  );
}

describe('Class: KmsTokenCipher', () => {
  beforeEach(() => {
    fakeKms();
  });

  describe('Method: constructor', () => {
    it.each([
      ['dataKeyMaxUses', { dataKeyMaxUses: 0 }],
      ['dataKeyMaxAgeMs', { dataKeyMaxAgeMs: -1 }],
      ['decryptCacheSize', { decryptCacheSize: Number.NaN }],
    ])('throws ConfigurationError naming %s when it is not positive', (name, options) => {
      expect(() => cipher(options)).toThrow(new RegExp(name));
      expect(() => cipher(options)).toThrow(ConfigurationError);
    });
  });

  describe('Method: seal', () => {
    it('asks KMS for an AES_256 data key with the default encryption context', async () => {
      // Act
      await cipher().seal(utf8('x'), AAD);

      // Assess
      expect(kms.commandCalls(GenerateDataKeyCommand)[0]?.args[0].input).toEqual({
        KeyId: KEY_ID,
        KeySpec: 'AES_256',
        EncryptionContext: { purpose: 'token-keeper' },
      });
    });

    it('sends a configured encryption context to both GenerateDataKey and Decrypt', async () => {
      // Prepare
      const context = { purpose: 'token-keeper', stage: 'prod' };
      const sealed = await cipher({ encryptionContext: context }).seal(utf8('x'), AAD);

      // Act
      await cipher({ encryptionContext: context }).open(sealed, AAD);

      // Assess
      expect(kms.commandCalls(GenerateDataKeyCommand)[0]?.args[0].input.EncryptionContext).toEqual(context);
      expect(kms.commandCalls(DecryptCommand)[0]?.args[0].input).toEqual({
        CiphertextBlob: expect.any(Uint8Array),
        EncryptionContext: context,
        KeyId: KEY_ID,
      });
    });

    it('carries the KMS-wrapped data key as keyref, never the plaintext key or the value', async () => {
      // Act
      const sealed = await cipher().seal(utf8(CANARY), AAD);

      // Assess
      const [blobHex, { plaintext }] = [...issued.entries()][0]!;
      expect(sealed.startsWith('v1.')).toBe(true);
      expect(Buffer.from(keyrefOf(sealed)!, 'base64url').toString('hex')).toBe(blobHex);
      expect(sealed).not.toContain(plaintext.toString('base64url'));
      expect(sealed).not.toContain(CANARY);
    });

    it('reuses one data key until it has been used dataKeyMaxUses times', async () => {
      // Prepare
      const sealer = cipher({ dataKeyMaxUses: 3 });

      // Act
      const envelopes: string[] = [];
      for (let i = 0; i < 7; i += 1) envelopes.push(await sealer.seal(utf8(`v${i}`), AAD));

      // Assess
      expect(generateCalls()).toBe(3);
      const keyrefs = envelopes.map(keyrefOf);
      expect(new Set(keyrefs.slice(0, 3)).size).toBe(1);
      expect(new Set(keyrefs.slice(3, 6)).size).toBe(1);
      expect(keyrefs[3]).not.toBe(keyrefs[0]);
      expect(keyrefs[6]).not.toBe(keyrefs[3]);
    });

    it('renews the data key once it is dataKeyMaxAgeMs old', async () => {
      // Prepare
      const clock = new ManualClock();
      const sealer = cipher({ dataKeyMaxAgeMs: 60_000, clock });
      const first = await sealer.seal(utf8('a'), AAD);

      // Act
      clock.advance(59_999);
      const second = await sealer.seal(utf8('b'), AAD);
      clock.advance(1);
      const third = await sealer.seal(utf8('c'), AAD);

      // Assess
      expect(keyrefOf(second)).toBe(keyrefOf(first));
      expect(keyrefOf(third)).not.toBe(keyrefOf(first));
      expect(generateCalls()).toBe(2);
    });

    it('makes one GenerateDataKey call for many concurrent seals', async () => {
      // Prepare
      const sealer = cipher();

      // Act
      const envelopes = await Promise.all(
        Array.from({ length: 20 }, (_, i) => sealer.seal(utf8(`${i}`), AAD)),
      );

      // Assess
      expect(generateCalls()).toBe(1);
      expect(new Set(envelopes.map(keyrefOf)).size).toBe(1);
    });

    it('never uses a data key more than dataKeyMaxUses times, even under concurrency', async () => {
      // Prepare
      const sealer = cipher({ dataKeyMaxUses: 2 });

      // Act
      const envelopes = await Promise.all(
        Array.from({ length: 9 }, (_, i) => sealer.seal(utf8(`${i}`), AAD)),
      );

      // Assess
      const uses = new Map<string, number>();
      for (const keyref of envelopes.map(keyrefOf)) uses.set(keyref!, (uses.get(keyref!) ?? 0) + 1);
      expect(Math.max(...uses.values())).toBeLessThanOrEqual(2);
      expect(generateCalls()).toBe(5);
    });

    it('throws StoreUnavailableError with the SDK error as cause when GenerateDataKey fails, then recovers', async () => {
      // Prepare
      const sdkError = new KMSInternalException({ message: 'boom', $metadata: {} });
      kms.on(GenerateDataKeyCommand).rejectsOnce(sdkError).callsFake(generateDataKey);
      const sealer = cipher();

      // Act
      const error = await caught(sealer.seal(utf8('x'), AAD));
      const sealed = await sealer.seal(utf8('x'), AAD);

      // Assess
      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect((error as StoreUnavailableError).retryable).toBe(true);
      expect((error as StoreUnavailableError).cause).toBe(sdkError);
      expect((error as Error).message).toContain('KMSInternalException');
      expect(text(await sealer.open(sealed, AAD))).toBe('x');
    });

    it('throws StoreUnavailableError when KMS returns an unexpected answer', async () => {
      // Prepare
      kms
        .on(GenerateDataKeyCommand)
        .resolves({ CiphertextBlob: new Uint8Array(8), Plaintext: new Uint8Array(16) });

      // Act
      const error = await caught(cipher().seal(utf8('x'), AAD));

      // Assess
      expect(error).toBeInstanceOf(StoreUnavailableError);
    });
  });

  describe('Method: open', () => {
    it('roundtrips within one instance without calling Decrypt', async () => {
      // Prepare
      const instance = cipher();
      const sealed = await instance.seal(utf8(CANARY), AAD);

      // Act
      const opened = await instance.open(sealed, AAD);

      // Assess
      expect(text(opened)).toBe(CANARY);
      expect(decryptCalls()).toBe(0);
    });

    it('decrypts a data key once, then serves later opens from the cache', async () => {
      // Prepare
      const sealer = cipher();
      const first = await sealer.seal(utf8('one'), AAD);
      const second = await sealer.seal(utf8('two'), AAD);
      const reader = cipher();

      // Act
      const a = await reader.open(first, AAD);
      const b = await reader.open(first, AAD);
      const c = await reader.open(second, AAD);

      // Assess
      expect([text(a), text(b), text(c)]).toEqual(['one', 'one', 'two']);
      expect(decryptCalls()).toBe(1);
      expect(Buffer.from(kms.commandCalls(DecryptCommand)[0]!.args[0].input.CiphertextBlob!)).toEqual(
        Buffer.from(keyrefOf(first)!, 'base64url'),
      );
    });

    it('makes one Decrypt call for concurrent cold opens of the same data key', async () => {
      // Prepare
      const sealed = await cipher().seal(utf8('x'), AAD);
      const reader = cipher();

      // Act
      await Promise.all(Array.from({ length: 10 }, () => reader.open(sealed, AAD)));

      // Assess
      expect(decryptCalls()).toBe(1);
    });

    it('keeps at most decryptCacheSize data keys, evicting the least recently used', async () => {
      // Prepare
      const sealer = cipher({ dataKeyMaxUses: 1 });
      const [a, b, c] = [
        await sealer.seal(utf8('a'), AAD),
        await sealer.seal(utf8('b'), AAD),
        await sealer.seal(utf8('c'), AAD),
      ];
      const reader = cipher({ decryptCacheSize: 2 });
      await reader.open(a!, AAD);
      await reader.open(b!, AAD);
      await reader.open(a!, AAD); // a is now more recent than b
      expect(decryptCalls()).toBe(2);

      // Act
      await reader.open(c!, AAD); // evicts b
      await reader.open(a!, AAD); // still cached
      const beforeB = decryptCalls();
      await reader.open(b!, AAD); // evicted: decrypted again

      // Assess
      expect(beforeB).toBe(3);
      expect(decryptCalls()).toBe(4);
    });

    it('throws CorruptRecordError when the AAD names another record', async () => {
      // Prepare
      const instance = cipher();
      const sealed = await instance.seal(utf8(CANARY), utf8('user-1\u0000default'));

      // Act
      const error = await caught(instance.open(sealed, utf8('user-1\u0000other-resource')));

      // Assess
      expect(error).toBeInstanceOf(CorruptRecordError);
      expect(JSON.stringify(error)).not.toContain(CANARY);
    });

    it('throws CorruptRecordError when the ciphertext is tampered with', async () => {
      // Prepare
      const instance = cipher();
      const parts = (await instance.seal(utf8(CANARY), AAD)).split('.');
      const body = Buffer.from(parts[3]!, 'base64url');
      body[0] = (body[0] ?? 0) ^ 0x01;
      parts[3] = body.toString('base64url');

      // Act
      const error = await caught(instance.open(parts.join('.'), AAD));

      // Assess
      expect(error).toBeInstanceOf(CorruptRecordError);
    });

    it('throws CorruptRecordError for a malformed envelope without calling KMS', async () => {
      // Act
      const error = await caught(cipher().open('v1.only-three.parts', AAD));

      // Assess
      expect(error).toBeInstanceOf(CorruptRecordError);
      expect((error as Error).message).not.toContain('only-three');
      expect(decryptCalls()).toBe(0);
    });

    it.each([
      ['InvalidCiphertextException', () => new InvalidCiphertextException({ message: 'm', $metadata: {} })],
      ['IncorrectKeyException', () => new IncorrectKeyException({ message: 'm', $metadata: {} })],
    ])('translates %s from Decrypt into CorruptRecordError', async (_name, makeError) => {
      // Prepare
      const sealed = await cipher().seal(utf8('x'), AAD);
      const sdkError = makeError();
      kms.on(DecryptCommand).rejects(sdkError);

      // Act
      const error = await caught(cipher().open(sealed, AAD));

      // Assess
      expect(error).toBeInstanceOf(CorruptRecordError);
      expect((error as CorruptRecordError).cause).toBe(sdkError);
    });

    it('translates a throttled Decrypt into a retryable StoreUnavailableError and does not cache the failure', async () => {
      // Prepare
      const sealed = await cipher().seal(utf8('x'), AAD);
      const throttled = Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
      kms.on(DecryptCommand).rejectsOnce(throttled).callsFake(decrypt);
      const reader = cipher();

      // Act
      const error = await caught(reader.open(sealed, AAD));
      const opened = await reader.open(sealed, AAD);

      // Assess
      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect((error as StoreUnavailableError).retryable).toBe(true);
      expect((error as StoreUnavailableError).cause).toBe(throttled);
      expect(text(opened)).toBe('x');
    });

    it('throws CorruptRecordError when the keyref is swapped for another data key', async () => {
      // Prepare
      const sealer = cipher({ dataKeyMaxUses: 1 });
      const victim = (await sealer.seal(utf8('a'), AAD)).split('.');
      const other = (await sealer.seal(utf8('b'), AAD)).split('.');
      victim[1] = other[1]!;

      // Act
      const error = await caught(cipher().open(victim.join('.'), AAD));

      // Assess
      expect(error).toBeInstanceOf(CorruptRecordError);
    });
  });

  describe('Key hygiene', () => {
    it('keeps data keys out of JSON and inspection of the cipher and of its errors', async () => {
      // Prepare
      const instance = cipher();
      const sealed = await instance.seal(utf8('x'), AAD);
      const error = await caught(instance.open(sealed, utf8('other')));
      const { plaintext } = [...issued.values()][0]!;

      // Act
      const shown = [
        JSON.stringify(instance),
        inspect(instance, { showHidden: true, depth: 5 }),
        JSON.stringify(error),
        inspect(error, { showHidden: true, depth: 5 }),
      ].join(' ');

      // Assess
      expect(shown).not.toContain(plaintext.toString('base64'));
      expect(shown).not.toContain(plaintext.toString('hex'));
    });
  });
});
