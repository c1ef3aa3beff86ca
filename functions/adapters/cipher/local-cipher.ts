import { ConfigurationError, CorruptRecordError } from '../../core/errors';
import { DATA_KEY_BYTES, openEnvelope, parseEnvelope, sealEnvelope } from './envelope';
import type { TokenCipher } from './token-cipher';

const KEYREF = 'local';
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** AES-256-GCM with one static key, for the embedded runtime and tests (no KMS). */
export class LocalTokenCipher implements TokenCipher {
  // A private field keeps the key out of JSON, util.inspect and any structured log.
  readonly #key: Buffer;

  constructor(key: Uint8Array) {
    if (key.length !== DATA_KEY_BYTES) {
      throw new ConfigurationError(`local token key must be ${DATA_KEY_BYTES} bytes`);
    }
    this.#key = Buffer.from(key);
  }

  /** Builds the cipher from the base64 value of `LOCAL_TOKEN_KEY` (32 bytes). */
  static fromBase64(b64: string): LocalTokenCipher {
    const text = typeof b64 === 'string' ? b64.trim() : '';
    const key = BASE64.test(text) ? Buffer.from(text, 'base64') : Buffer.alloc(0);
    if (key.length !== DATA_KEY_BYTES) {
      throw new ConfigurationError(
        `LOCAL_TOKEN_KEY must be the base64 encoding of exactly ${DATA_KEY_BYTES} bytes`,
      );
    }
    return new LocalTokenCipher(key);
  }

  /** Encrypts with a fresh random IV. */
  async seal(plaintext: Uint8Array, aad: Uint8Array): Promise<string> {
    return sealEnvelope(this.#key, KEYREF, plaintext, aad);
  }

  /** Decrypts; throws CorruptRecordError on a malformed envelope, a foreign key, wrong AAD or tampering. */
  async open(sealed: string, aad: Uint8Array): Promise<Uint8Array> {
    const envelope = parseEnvelope(sealed);
    if (envelope.keyref !== KEYREF) {
      throw new CorruptRecordError('sealed value was not made by the local cipher');
    }
    return openEnvelope(this.#key, envelope, aad);
  }
}
