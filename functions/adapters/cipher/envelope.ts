import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { CorruptRecordError } from '../../core/errors';

/**
 * The envelope shared by every TokenCipher: `v1.<keyref>.<iv>.<ciphertext+tag>`, each part
 * base64url. AES-256-GCM; the GCM AAD is the envelope header followed by the caller's AAD, so
 * neither the key reference nor the record binding can be swapped without failing the tag.
 */

const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Key length of AES-256. */
export const DATA_KEY_BYTES = 32;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

/** The parts of a parsed envelope. */
export interface Envelope {
  /** The key reference exactly as it appears in the envelope (base64url text). */
  readonly keyref: string;
  readonly iv: Buffer;
  readonly ciphertext: Buffer;
  readonly tag: Buffer;
}

/** Encrypts under `key` and returns the envelope string. */
export function sealEnvelope(
  key: Uint8Array,
  keyref: string,
  plaintext: Uint8Array,
  aad: Uint8Array,
): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(gcmAad(keyref, aad));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  return [VERSION, keyref, iv.toString('base64url'), body.toString('base64url')].join('.');
}

/** Splits and decodes an envelope; throws CorruptRecordError when it is not one. */
export function parseEnvelope(sealed: string): Envelope {
  if (typeof sealed !== 'string') throw malformed();
  const parts = sealed.split('.');
  if (parts.length !== 4) throw malformed();
  const [version, keyref, ivText, bodyText] = parts as [string, string, string, string];
  if (version !== VERSION) throw malformed();
  if (![keyref, ivText, bodyText].every((part) => BASE64URL.test(part))) throw malformed();
  const iv = Buffer.from(ivText, 'base64url');
  const body = Buffer.from(bodyText, 'base64url');
  if (iv.length !== IV_BYTES || body.length < TAG_BYTES) throw malformed();
  return {
    keyref,
    iv,
    ciphertext: body.subarray(0, body.length - TAG_BYTES),
    tag: body.subarray(body.length - TAG_BYTES),
  };
}

/** Decrypts a parsed envelope under `key`; a wrong key, wrong AAD or any tampering fails the tag. */
export function openEnvelope(key: Uint8Array, envelope: Envelope, aad: Uint8Array): Uint8Array {
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, envelope.iv);
    decipher.setAAD(gcmAad(envelope.keyref, aad));
    decipher.setAuthTag(envelope.tag);
    return Buffer.concat([decipher.update(envelope.ciphertext), decipher.final()]);
  } catch (error) {
    // The crypto error says nothing about the content, but keep it only as the cause.
    throw new CorruptRecordError('sealed value failed authentication (wrong record or tampered)', {
      cause: error,
    });
  }
}

function gcmAad(keyref: string, aad: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(`${VERSION}.${keyref}.`, 'utf8'), aad]);
}

function malformed(): CorruptRecordError {
  return new CorruptRecordError('sealed value is not a valid envelope');
}
