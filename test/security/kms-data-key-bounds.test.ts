import { randomBytes } from 'node:crypto';
import {
  DecryptCommand,
  GenerateDataKeyCommand,
  InvalidCiphertextException,
  KMSClient,
} from '@aws-sdk/client-kms';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { KmsTokenCipher } from '../../functions/adapters/cipher/kms-cipher';
import { ManualClock } from '../support/idp-http-server';

/**
 * The data-key bounds as the KmsTokenCipher documents its defaults: a data key seals at most
 * 1000 values and for at most 5 minutes, and at most 1000 unwrapped keys are kept for reads.
 * test/unit/adapters/kms-cipher.test.ts proves the mechanisms with small explicit bounds; this
 * file proves the stated defaults themselves, and that a retired key still opens what it sealed.
 */

const KEY_ID = 'arn:aws:kms:eu-west-1:111122223333:key/bounds';
const AAD = new TextEncoder().encode('token-keeper/v1\u0000alice\u0000default');
const utf8 = (text: string) => new TextEncoder().encode(text);
const keyrefOf = (sealed: string) => sealed.split('.')[1];

const kmsClient = new KMSClient({
  region: 'eu-west-1',
  credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
});
const kms = mockClient(kmsClient);
const issued = new Map<string, Buffer>();

beforeEach(() => {
  issued.clear();
  kms.reset();
  kms.on(GenerateDataKeyCommand).callsFake(() => {
    const plaintext = randomBytes(32);
    const blob = randomBytes(48);
    issued.set(blob.toString('hex'), plaintext);
    return { CiphertextBlob: new Uint8Array(blob), Plaintext: new Uint8Array(plaintext), KeyId: KEY_ID };
  });
  kms.on(DecryptCommand).callsFake((input: DecryptCommand['input']) => {
    const plaintext = issued.get(Buffer.from(input.CiphertextBlob ?? []).toString('hex'));
    if (!plaintext) throw new InvalidCiphertextException({ message: 'invalid', $metadata: {} });
    return { Plaintext: new Uint8Array(plaintext), KeyId: KEY_ID };
  });
});

const generated = () => kms.commandCalls(GenerateDataKeyCommand).length;
const decrypted = () => kms.commandCalls(DecryptCommand).length;

describe('Class: KmsTokenCipher (stated data-key bounds)', () => {
  describe('Method: seal', () => {
    it('seals 1000 values with one data key by default, and takes a new one for the 1001st', async () => {
      // Prepare
      const cipher = new KmsTokenCipher({ keyId: KEY_ID, client: kmsClient, clock: new ManualClock() });

      // Act
      const keyrefs: string[] = [];
      for (let i = 0; i < 1001; i++) keyrefs.push(keyrefOf(await cipher.seal(utf8(`v${i}`), AAD))!);

      // Assess
      expect(new Set(keyrefs.slice(0, 1000)).size).toBe(1);
      expect(keyrefs[1000]).not.toBe(keyrefs[0]);
      expect(generated()).toBe(2);
    });

    it('seals with one data key for 5 minutes by default, and takes a new one at 5 minutes', async () => {
      // Prepare
      const clock = new ManualClock();
      const cipher = new KmsTokenCipher({ keyId: KEY_ID, client: kmsClient, clock });
      const first = keyrefOf(await cipher.seal(utf8('a'), AAD));

      // Act
      clock.advance(5 * 60_000 - 1);
      const justBefore = keyrefOf(await cipher.seal(utf8('b'), AAD));
      clock.advance(1);
      const atFiveMinutes = keyrefOf(await cipher.seal(utf8('c'), AAD));

      // Assess
      expect(justBefore).toBe(first);
      expect(atFiveMinutes).not.toBe(first);
      expect(generated()).toBe(2);
    });

    it('retires a data key at whichever bound comes first', async () => {
      // Prepare: 3 uses or 1 minute.
      const clock = new ManualClock();
      const cipher = new KmsTokenCipher({
        keyId: KEY_ID,
        client: kmsClient,
        clock,
        dataKeyMaxUses: 3,
        dataKeyMaxAgeMs: 60_000,
      });

      // Act: the first key dies of age after 2 uses, the second of use after 3 in no time.
      const a = [await cipher.seal(utf8('1'), AAD), await cipher.seal(utf8('2'), AAD)].map(keyrefOf);
      clock.advance(60_000);
      const b = [1, 2, 3].map(async (i) => keyrefOf(await cipher.seal(utf8(`${i}`), AAD)));
      const bKeys = await Promise.all(b);
      const c = keyrefOf(await cipher.seal(utf8('4'), AAD));

      // Assess
      expect(new Set(a).size).toBe(1);
      expect(new Set(bKeys).size).toBe(1);
      expect(bKeys[0]).not.toBe(a[0]);
      expect(c).not.toBe(bKeys[0]);
      expect(generated()).toBe(3);
    });
  });

  describe('Method: open', () => {
    it('still opens what a retired data key sealed (retirement bounds sealing, not reading)', async () => {
      // Prepare
      const clock = new ManualClock();
      const writer = new KmsTokenCipher({ keyId: KEY_ID, client: kmsClient, clock, dataKeyMaxUses: 1 });
      const old = await writer.seal(utf8('old value'), AAD);
      await writer.seal(utf8('new value'), AAD);
      clock.advance(60 * 60_000);

      // Act
      const opened = new TextDecoder().decode(
        await new KmsTokenCipher({ keyId: KEY_ID, client: kmsClient }).open(old, AAD),
      );

      // Assess
      expect(opened).toBe('old value');
      expect(generated()).toBe(2);
    });

    it('keeps 1000 unwrapped data keys for reads by default, and unwraps the least recent again after that', async () => {
      // Prepare: 1001 envelopes under 1001 data keys.
      const writer = new KmsTokenCipher({ keyId: KEY_ID, client: kmsClient, dataKeyMaxUses: 1 });
      const envelopes: string[] = [];
      for (let i = 0; i < 1001; i++) envelopes.push(await writer.seal(utf8(`${i}`), AAD));
      const reader = new KmsTokenCipher({ keyId: KEY_ID, client: kmsClient });
      for (const envelope of envelopes) await reader.open(envelope, AAD);
      expect(decrypted()).toBe(1001);

      // Act: the newest 1000 are cached; the first was evicted by the 1001st.
      for (const envelope of envelopes.slice(1)) await reader.open(envelope, AAD);
      const cachedReads = decrypted();
      await reader.open(envelopes[0]!, AAD);

      // Assess
      expect(cachedReads).toBe(1001);
      expect(decrypted()).toBe(1002);
    });
  });
});
