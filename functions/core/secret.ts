import { createHash } from 'node:crypto';

const REDACTED = '[redacted]';
const inspectSymbol = Symbol.for('nodejs.util.inspect.custom');

/**
 * A piece of token material. The value lives in a private field, so it never shows up in
 * JSON, `util.inspect`, string interpolation or a structured log; it must be asked for with
 * `reveal()` at the one place that sends it somewhere.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  /** The raw value. Call only where the value is sent to the IdP, encrypted, or returned to the caller. */
  reveal(): string {
    return this.#value;
  }

  /** A short, non-reversible fingerprint for logs (first 12 hex chars of SHA-256). */
  fingerprint(): string {
    return createHash('sha256').update(this.#value).digest('hex').slice(0, 12);
  }

  /** True when both hold the same value. */
  equals(other: Secret): boolean {
    return this.#value === other.#value;
  }

  toJSON(): string {
    return REDACTED;
  }

  toString(): string {
    return REDACTED;
  }

  [inspectSymbol](): string {
    return `Secret(${REDACTED})`;
  }
}
