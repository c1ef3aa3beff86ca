import { createPublicKey, type JsonWebKey, type KeyObject, verify } from 'node:crypto';
import { ConfigurationError, RefreshUnavailableError, ValidationError } from '../../core/errors';
import type { Clock, IdTokenVerifier } from '../../core/ports';
import type { Secret } from '../../core/secret';
import { endpointUrl, type FetchFn, readCapped, systemClock } from './http';

/** Options of {@link JwksIdTokenVerifier}. */
export interface JwksIdTokenVerifierOptions {
  /** Where the IdP publishes its signing keys, e.g. `{host}/cis/oidc/jwks`. */
  readonly jwksUrl: string;
  /** The exact `iss` of the IdP's ID tokens. */
  readonly issuer: string;
  /** This app's client id: it must be among the token's `aud`. */
  readonly audience: string;
  /** @default globalThis.fetch */
  readonly fetch?: FetchFn;
  /** @default the system clock */
  readonly clock?: Clock;
  /** How long a fetched JWKS is used before it is fetched again. @default 3_600_000 (1 h) */
  readonly cacheTtlMs?: number;
  /** At most one refetch per this many ms when a token names a kid the cached JWKS lacks. @default 60_000 */
  readonly refetchCooldownMs?: number;
  /** Clock difference with the IdP tolerated on `exp`, `nbf` and `iat`. @default 60 */
  readonly clockSkewSeconds?: number;
  /** Deadline of one JWKS request, body included. @default 5000 */
  readonly timeoutMs?: number;
}

/** The signature algorithms accepted; `none`, HS* (a public key is no HMAC secret) and the rest are refused. */
type Algorithm = 'RS256' | 'ES256';

/** A verification key from the JWKS, ready to use. */
interface VerificationKey {
  readonly kid: string | undefined;
  readonly alg: Algorithm;
  readonly key: KeyObject;
}

/** A compact JWS taken apart; the payload is parsed only after its signature checks out. */
interface ParsedJws {
  readonly alg: Algorithm;
  readonly kid: string | undefined;
  readonly signingInput: Buffer;
  readonly payload: Buffer;
  readonly signature: Buffer;
}

/** ID tokens are a few KB; refuse to parse megabytes. */
const MAX_TOKEN_CHARS = 32 * 1024;
/** A JWKS is a handful of keys; a larger body is not one. */
const MAX_JWKS_BYTES = 512 * 1024;
/** Smaller RSA keys are breakable (NIST SP 800-131A). */
const MIN_RSA_BITS = 2048;
const BASE64URL = /^[A-Za-z0-9_-]*$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Verifies OIDC ID tokens against the IdP's JWKS with node:crypto alone: RS256 or ES256
 * signature, then `iss`, `aud` (and `azp` when present), `exp`, `nbf`, `iat` and `sub`. The
 * JWKS is cached for `cacheTtlMs`; concurrent callers share one fetch; a kid the cache lacks
 * (key rotation) triggers at most one refetch per `refetchCooldownMs`, so forged kids cannot
 * turn the verifier into a load generator against the IdP.
 */
export class JwksIdTokenVerifier implements IdTokenVerifier {
  readonly #jwksUrl: string;
  readonly #issuer: string;
  readonly #audience: string;
  readonly #fetch: FetchFn;
  readonly #clock: Clock;
  readonly #cacheTtlMs: number;
  readonly #refetchCooldownMs: number;
  readonly #skewSeconds: number;
  readonly #timeoutMs: number;
  #cache: { readonly keys: readonly VerificationKey[]; readonly fetchedAtMs: number } | undefined;
  #inflight: Promise<readonly VerificationKey[]> | undefined;
  #lastRefetchMs = Number.NEGATIVE_INFINITY;

  constructor(options: JwksIdTokenVerifierOptions) {
    this.#jwksUrl = endpointUrl(options.jwksUrl, 'jwksUrl');
    this.#issuer = nonEmpty(options.issuer, 'issuer');
    this.#audience = nonEmpty(options.audience, 'audience');
    this.#fetch = options.fetch ?? ((input, init) => fetch(input, init));
    this.#clock = options.clock ?? systemClock;
    this.#cacheTtlMs = nonNegative(options.cacheTtlMs, 3_600_000, 'cacheTtlMs');
    this.#refetchCooldownMs = nonNegative(options.refetchCooldownMs, 60_000, 'refetchCooldownMs');
    this.#skewSeconds = nonNegative(options.clockSkewSeconds, 60, 'clockSkewSeconds');
    this.#timeoutMs = nonNegative(options.timeoutMs, 5000, 'timeoutMs');
  }

  /** Resolves when the token is valid for this app and `expectedSubject`; throws ValidationError naming the failed check otherwise. */
  async verify(idToken: Secret, expectedSubject: string): Promise<void> {
    const jws = parseCompactJws(idToken.reveal());
    const key = await this.#keyFor(jws);
    if (!signatureIsValid(jws, key)) throw invalid('id_token signature is invalid');
    this.#checkClaims(parseJsonObject(jws.payload, 'id_token payload is not a JSON object'), expectedSubject);
  }

  #checkClaims(claims: Readonly<Record<string, unknown>>, expectedSubject: string): void {
    if (claims.iss !== this.#issuer) throw invalid('id_token iss does not match the issuer');
    const { aud, azp } = claims;
    const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
    if (!audiences.includes(this.#audience)) throw invalid('id_token aud does not include the audience');
    // OIDC Core 3.1.3.7: when present, azp names the party the token was issued to.
    if (azp !== undefined && azp !== this.#audience)
      throw invalid('id_token azp does not match the audience');

    const nowSeconds = this.#clock.nowMs() / 1000;
    const exp = numericDate(claims, 'exp', true);
    if (exp === undefined || exp <= nowSeconds - this.#skewSeconds) throw invalid('id_token has expired');
    const nbf = numericDate(claims, 'nbf', false);
    if (nbf !== undefined && nbf > nowSeconds + this.#skewSeconds)
      throw invalid('id_token is not yet valid (nbf)');
    const iat = numericDate(claims, 'iat', false);
    if (iat !== undefined && iat > nowSeconds + this.#skewSeconds)
      throw invalid('id_token iat is in the future');

    if (typeof claims.sub !== 'string' || claims.sub.length === 0 || claims.sub !== expectedSubject) {
      throw invalid('id_token sub does not match userId');
    }
  }

  /** The key the token names, from the cache, a fresh JWKS, or one refetch when the kid is new. */
  async #keyFor(jws: ParsedJws): Promise<VerificationKey> {
    const cached = this.#cache;
    if (cached === undefined || this.#clock.nowMs() - cached.fetchedAtMs >= this.#cacheTtlMs) {
      // Just fetched: a refetch could not know more.
      const key = pickKey(await this.#load(), jws);
      if (key) return key;
      throw unknownKey();
    }
    const key = pickKey(cached.keys, jws);
    if (key) return key;
    if (jws.kid !== undefined) {
      // Join a fetch already under way (a sibling saw the same new kid) before spending the cooldown.
      const refetch = this.#inflight ?? (this.#mayRefetch() ? this.#load() : undefined);
      const rotated = refetch && pickKey(await refetch, jws);
      if (rotated) return rotated;
    }
    throw unknownKey();
  }

  #mayRefetch(): boolean {
    const nowMs = this.#clock.nowMs();
    if (nowMs - this.#lastRefetchMs < this.#refetchCooldownMs) return false;
    this.#lastRefetchMs = nowMs;
    return true;
  }

  /** One JWKS fetch shared by every caller that needs it now; a failure is not cached. */
  #load(): Promise<readonly VerificationKey[]> {
    this.#inflight ??= this.#fetchKeys()
      .then((keys) => {
        this.#cache = { keys, fetchedAtMs: this.#clock.nowMs() };
        return keys;
      })
      .finally(() => {
        this.#inflight = undefined;
      });
    return this.#inflight;
  }

  async #fetchKeys(): Promise<readonly VerificationKey[]> {
    const signal = AbortSignal.timeout(this.#timeoutMs);
    let response: Response;
    let body: string | undefined;
    try {
      // Redirects are not followed: the keys come from the configured URL or not at all.
      response = await this.#fetch(this.#jwksUrl, {
        method: 'GET',
        headers: { accept: 'application/json' },
        signal,
        redirect: 'manual',
      });
      if (response.status !== 200) {
        await response.body?.cancel();
      } else {
        body = await readCapped(response, MAX_JWKS_BYTES);
      }
    } catch (error) {
      const reason = signal.aborted ? 'timed out' : 'network error';
      throw new RefreshUnavailableError(`JWKS fetch failed: ${reason}`, {
        cause: signal.aborted ? signal.reason : error,
      });
    }
    if (response.status !== 200) {
      throw new RefreshUnavailableError(`JWKS fetch failed: HTTP ${response.status}`, { cause: response });
    }
    if (body === undefined) throw new RefreshUnavailableError('JWKS is malformed: body too large');
    return parseJwks(body);
  }
}

function parseJwks(body: string): readonly VerificationKey[] {
  let document: unknown;
  try {
    document = JSON.parse(body);
  } catch (error) {
    throw new RefreshUnavailableError('JWKS is malformed: not JSON', { cause: error });
  }
  const entries = isObject(document) ? document.keys : undefined;
  if (!Array.isArray(entries)) throw new RefreshUnavailableError('JWKS is malformed: no keys array');
  // Entries this verifier cannot use (encryption keys, other curves, weak RSA) are skipped, not fatal.
  const keys = entries.map(importKey).filter((key) => key !== undefined);
  if (keys.length === 0) throw new RefreshUnavailableError('JWKS is malformed: no usable signing key');
  return keys;
}

function importKey(jwk: unknown): VerificationKey | undefined {
  if (!isObject(jwk)) return undefined;
  if (jwk.use !== undefined && jwk.use !== 'sig') return undefined;
  if (jwk.key_ops !== undefined && !(Array.isArray(jwk.key_ops) && jwk.key_ops.includes('verify'))) {
    return undefined;
  }
  if (jwk.kid !== undefined && typeof jwk.kid !== 'string') return undefined;
  let alg: Algorithm;
  let material: JsonWebKey;
  // Only the public members are imported: a JWKS that leaks a private `d` must not make us hold it.
  if (jwk.kty === 'RSA' && typeof jwk.n === 'string' && typeof jwk.e === 'string') {
    alg = 'RS256';
    material = { kty: 'RSA', n: jwk.n, e: jwk.e };
  } else if (
    jwk.kty === 'EC' &&
    jwk.crv === 'P-256' &&
    typeof jwk.x === 'string' &&
    typeof jwk.y === 'string'
  ) {
    alg = 'ES256';
    material = { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y };
  } else {
    return undefined;
  }
  if (jwk.alg !== undefined && jwk.alg !== alg) return undefined;
  let key: KeyObject;
  try {
    key = createPublicKey({ key: material, format: 'jwk' });
  } catch {
    return undefined;
  }
  if (alg === 'RS256' && (key.asymmetricKeyDetails?.modulusLength ?? 0) < MIN_RSA_BITS) return undefined;
  return { kid: jwk.kid, alg, key };
}

/** The key named by kid for the token's alg; with no kid, the JWKS's only key for that alg. */
function pickKey(keys: readonly VerificationKey[], jws: ParsedJws): VerificationKey | undefined {
  const usable = keys.filter((key) => key.alg === jws.alg);
  if (jws.kid === undefined) return usable.length === 1 ? usable[0] : undefined;
  return usable.find((key) => key.kid === jws.kid);
}

function signatureIsValid(jws: ParsedJws, { alg, key }: VerificationKey): boolean {
  try {
    if (alg === 'ES256') {
      // JWS carries r || s (RFC 7518 section 3.4), not DER.
      return (
        jws.signature.length === 64 &&
        verify('sha256', jws.signingInput, { key, dsaEncoding: 'ieee-p1363' }, jws.signature)
      );
    }
    return verify('sha256', jws.signingInput, key, jws.signature);
  } catch {
    return false;
  }
}

/** Splits and decodes a compact JWS and checks its header; nothing here trusts a header key (`jwk`, `jku`, `x5u`). */
function parseCompactJws(token: string): ParsedJws {
  if (token.length === 0 || token.length > MAX_TOKEN_CHARS) throw invalid('id_token is not a compact JWS');
  const parts = token.split('.');
  if (parts.length !== 3) throw invalid('id_token is not a compact JWS (three parts)');
  const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
  const headerBytes = decodeSegment(headerPart);
  const payload = decodeSegment(payloadPart);
  const signature = decodeSegment(signaturePart);
  const header = parseJsonObject(headerBytes, 'id_token header is not a JSON object');
  if (header.alg !== 'RS256' && header.alg !== 'ES256') throw invalid('id_token alg is not allowed');
  // RFC 7515 section 4.1.11: extensions we do not understand must make the token invalid.
  if (header.crit !== undefined) throw invalid('id_token header has unsupported crit parameters');
  if (header.kid !== undefined && typeof header.kid !== 'string')
    throw invalid('id_token kid is not a string');
  return {
    alg: header.alg,
    kid: header.kid,
    signingInput: Buffer.from(`${headerPart}.${payloadPart}`, 'ascii'),
    payload,
    signature,
  };
}

/** Strict base64url: no padding, no stray characters, canonical trailing bits (Buffer alone is lenient). */
function decodeSegment(segment: string): Buffer {
  const bytes = BASE64URL.test(segment) ? Buffer.from(segment, 'base64url') : undefined;
  if (bytes === undefined || bytes.toString('base64url') !== segment) {
    throw invalid('id_token is not valid base64url');
  }
  return bytes;
}

/** A JSON object from UTF-8 bytes. The parser's own error is dropped: its message quotes the input. */
function parseJsonObject(bytes: Buffer, failure: string): Readonly<Record<string, unknown>> {
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(bytes));
  } catch {
    throw invalid(failure);
  }
  if (!isObject(value)) throw invalid(failure);
  return value;
}

/** A NumericDate claim (RFC 7519 section 2); a present non-number fails the check it belongs to. */
function numericDate(
  claims: Readonly<Record<string, unknown>>,
  name: 'exp' | 'nbf' | 'iat',
  required: boolean,
): number | undefined {
  const value = claims[name];
  if (value === undefined && !required) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw invalid(`id_token ${name} is missing or not a number`);
  }
  return value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(message: string): ValidationError {
  return new ValidationError(message);
}

function unknownKey(): ValidationError {
  return invalid('id_token kid is not in the JWKS');
}

function nonEmpty(value: string, option: string): string {
  if (typeof value !== 'string' || value.length === 0) throw new ConfigurationError(`${option} is required`);
  return value;
}

function nonNegative(value: number | undefined, fallback: number, option: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0) {
    throw new ConfigurationError(`${option} must be a non-negative number`);
  }
  return value;
}
