import { DecryptCommand, GenerateDataKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import type { AwsCallLimits } from '../../config';
import { ConfigurationError, CorruptRecordError, StoreUnavailableError } from '../../core/errors';
import type { Clock } from '../../core/ports';
import { TOKEN_KEY_ENCRYPTION_CONTEXT } from '../../shared-facts';
import { awsClientConfig } from '../aws-client-config';
import { systemClock } from '../system-clock';
import { DATA_KEY_BYTES, openEnvelope, parseEnvelope, sealEnvelope } from './envelope';
import type { TokenCipher } from './token-cipher';

/** Options of {@link KmsTokenCipher}. */
export interface KmsTokenCipherOptions {
  /** The KMS key (id, ARN or alias) that wraps the data keys. */
  readonly keyId: string;
  /** @default a new KMSClient whose calls are bounded by `limits` */
  readonly client?: KMSClient;
  /** Deadline and attempts of every call of the built client. @default DEFAULT_AWS_CALL_LIMITS */
  readonly limits?: AwsCallLimits;
  /** Sent with every GenerateDataKey and Decrypt. @default { purpose: 'token-keeper' } */
  readonly encryptionContext?: Readonly<Record<string, string>>;
  /** A data key seals nothing once it is this old. @default 300_000 (5 min) */
  readonly dataKeyMaxAgeMs?: number;
  /** A data key seals at most this many values. @default 1000 */
  readonly dataKeyMaxUses?: number;
  /** How many unwrapped data keys are kept for reads (LRU). @default 1000 */
  readonly decryptCacheSize?: number;
  /** @default the system clock */
  readonly clock?: Clock;
}

/** KMS errors that mean "this ciphertext can never be decrypted", not "try later". */
const CORRUPT_KMS_ERRORS = new Set(['InvalidCiphertextException', 'IncorrectKeyException']);

interface DataKey {
  readonly keyref: string;
  readonly plaintext: Buffer;
  readonly createdAtMs: number;
  uses: number;
}

/**
 * Envelope encryption with AWS KMS: values are sealed with AES-256-GCM under a data key, and
 * the envelope carries that data key wrapped by KMS. A data key is reused for a bounded time
 * and number of uses, and unwrapped keys are cached, so steady-state reads make no KMS call.
 */
export class KmsTokenCipher implements TokenCipher {
  readonly #keyId: string;
  readonly #client: KMSClient;
  readonly #context: Record<string, string>;
  readonly #maxAgeMs: number;
  readonly #maxUses: number;
  readonly #cacheSize: number;
  readonly #clock: Clock;
  #current: DataKey | undefined;
  #generating: Promise<DataKey> | undefined;
  /** Unwrapped data keys by keyref; Map order is recency order (oldest first). */
  readonly #unwrapped = new Map<string, Buffer>();
  readonly #unwrapping = new Map<string, Promise<Buffer>>();

  constructor(options: KmsTokenCipherOptions) {
    if (!options.keyId) throw new ConfigurationError('KmsTokenCipher needs a keyId');
    this.#keyId = options.keyId;
    this.#client = options.client ?? new KMSClient(awsClientConfig(options.limits));
    this.#context = { ...(options.encryptionContext ?? TOKEN_KEY_ENCRYPTION_CONTEXT) };
    this.#maxAgeMs = positive(options.dataKeyMaxAgeMs ?? 5 * 60_000, 'dataKeyMaxAgeMs');
    this.#maxUses = positive(options.dataKeyMaxUses ?? 1000, 'dataKeyMaxUses');
    this.#cacheSize = positive(options.decryptCacheSize ?? 1000, 'decryptCacheSize');
    this.#clock = options.clock ?? systemClock;
  }

  /** Encrypts under the current data key (a new one when it is too old or used too often). */
  async seal(plaintext: Uint8Array, aad: Uint8Array): Promise<string> {
    const key = await this.#dataKeyForSeal();
    return sealEnvelope(key.plaintext, key.keyref, plaintext, aad);
  }

  /** Decrypts; throws CorruptRecordError on a malformed envelope, a foreign key, wrong AAD or tampering. */
  async open(sealed: string, aad: Uint8Array): Promise<Uint8Array> {
    const envelope = parseEnvelope(sealed);
    const key = await this.#unwrap(envelope.keyref);
    return openEnvelope(key, envelope, aad);
  }

  async #dataKeyForSeal(): Promise<DataKey> {
    // Loops only when concurrent sealers used up a key that was generated for them.
    for (;;) {
      const current = this.#current;
      if (current && this.#usable(current)) {
        current.uses += 1;
        return current;
      }
      this.#generating ??= this.#generateDataKey().finally(() => {
        this.#generating = undefined;
      });
      await this.#generating;
    }
  }

  #usable(key: DataKey): boolean {
    return key.uses < this.#maxUses && this.#clock.nowMs() - key.createdAtMs < this.#maxAgeMs;
  }

  async #generateDataKey(): Promise<DataKey> {
    let output: { CiphertextBlob?: Uint8Array; Plaintext?: Uint8Array } | undefined;
    try {
      output = await this.#client.send(
        new GenerateDataKeyCommand({
          KeyId: this.#keyId,
          KeySpec: 'AES_256',
          EncryptionContext: this.#context,
        }),
      );
    } catch (error) {
      throw translateKmsError('GenerateDataKey', error);
    }
    if (!output?.CiphertextBlob?.length || output.Plaintext?.length !== DATA_KEY_BYTES) {
      throw new StoreUnavailableError('KMS GenerateDataKey returned an unexpected answer');
    }
    const key: DataKey = {
      keyref: Buffer.from(output.CiphertextBlob).toString('base64url'),
      plaintext: Buffer.from(output.Plaintext),
      createdAtMs: this.#clock.nowMs(),
      uses: 0,
    };
    this.#current = key;
    // Reads of what this instance just wrote need no Decrypt call.
    this.#remember(key.keyref, key.plaintext);
    return key;
  }

  async #unwrap(keyref: string): Promise<Buffer> {
    const cached = this.#unwrapped.get(keyref);
    if (cached) {
      this.#remember(keyref, cached);
      return cached;
    }
    let pending = this.#unwrapping.get(keyref);
    if (!pending) {
      pending = this.#decryptDataKey(keyref).finally(() => this.#unwrapping.delete(keyref));
      this.#unwrapping.set(keyref, pending);
    }
    return pending;
  }

  async #decryptDataKey(keyref: string): Promise<Buffer> {
    let plaintext: Uint8Array | undefined;
    try {
      ({ Plaintext: plaintext } =
        (await this.#client.send(
          new DecryptCommand({
            CiphertextBlob: Buffer.from(keyref, 'base64url'),
            EncryptionContext: this.#context,
            KeyId: this.#keyId,
          }),
        )) ?? {});
    } catch (error) {
      throw translateKmsError('Decrypt', error);
    }
    if (plaintext?.length !== DATA_KEY_BYTES) {
      throw new CorruptRecordError('KMS returned a data key of the wrong size');
    }
    const key = Buffer.from(plaintext);
    this.#remember(keyref, key);
    return key;
  }

  /** Inserts or refreshes an entry and evicts the least recently used beyond the bound. */
  #remember(keyref: string, key: Buffer): void {
    this.#unwrapped.delete(keyref);
    this.#unwrapped.set(keyref, key);
    while (this.#unwrapped.size > this.#cacheSize) {
      const oldest = this.#unwrapped.keys().next().value;
      if (oldest === undefined) break;
      this.#unwrapped.delete(oldest);
    }
  }
}

function translateKmsError(operation: string, error: unknown): Error {
  const name = error instanceof Error ? error.name : 'UnknownError';
  if (CORRUPT_KMS_ERRORS.has(name)) {
    return new CorruptRecordError(`KMS ${operation} refused the data key (${name})`, { cause: error });
  }
  return new StoreUnavailableError(`KMS ${operation} failed (${name})`, { cause: error });
}

function positive(value: number, name: string): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new ConfigurationError(`KmsTokenCipher option ${name} must be a positive number`);
  }
  return value;
}
