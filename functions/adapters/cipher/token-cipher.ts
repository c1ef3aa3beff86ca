/** Seals token material; the AAD binds a ciphertext to one record (user id + resource). */
export interface TokenCipher {
  /** Encrypts `plaintext` bound to `aad`; returns a self-describing envelope string. */
  seal(plaintext: Uint8Array, aad: Uint8Array): Promise<string>;
  /** Decrypts an envelope made by `seal` with the same `aad`; throws CorruptRecordError otherwise. */
  open(sealed: string, aad: Uint8Array): Promise<Uint8Array>;
}
