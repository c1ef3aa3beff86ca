import {
  createRemoteJWKSet,
  customFetch,
  decodeProtectedHeader,
  errors,
  type JWTPayload,
  type JWTVerifyGetKey,
  jwtVerify,
} from 'jose';
import type { IdTokenConfig } from '../../config';
import { ConfigurationError, RefreshUnavailableError, ValidationError } from '../../core/errors';
import type { Clock, IdTokenVerifier } from '../../core/ports';
import type { Secret } from '../../core/secret';
import { systemClock } from '../system-clock';
import { endpointUrl, type FetchFn, readCapped } from './http';

/** Options of {@link JwksIdTokenVerifier}. */
export interface JwksIdTokenVerifierOptions {
  /** Where the IdP publishes its signing keys, e.g. `{host}/cis/oidc/jwks`. */
  readonly jwksUrl: string;
  /** The exact `iss` of the IdP's ID tokens. */
  readonly issuer: string;
  /** This app's client id: it must be among the token's `aud`, and equal `azp` when present. */
  readonly audience: string;
  /** @default globalThis.fetch */
  readonly fetch?: FetchFn;
  /** The clock `exp`, `nbf` and `iat` are checked against. The JWKS cache and cooldown follow the system clock. @default the system clock */
  readonly clock?: Clock;
  /** How long a fetched JWKS is used before it is fetched again. @default 3_600_000 (1 h) */
  readonly cacheTtlMs?: number;
  /** A token naming a kid the cached JWKS lacks refetches it only when the last fetch is older than this. @default 60_000 */
  readonly refetchCooldownMs?: number;
  /** Clock difference with the IdP tolerated on `exp`, `nbf` and `iat`. @default 60 */
  readonly clockSkewSeconds?: number;
  /** Deadline of one JWKS request, body included. @default 5000 */
  readonly timeoutMs?: number;
}

/** The signature algorithms accepted; `none`, HS* (a public key is no HMAC secret) and the rest are refused. */
const ALGORITHMS: readonly string[] = ['RS256', 'ES256'];
/** ID tokens are a few KB; refuse to look at megabytes. */
const MAX_TOKEN_CHARS = 32 * 1024;
/** A JWKS is a handful of keys; a larger body is not one. */
const MAX_JWKS_BYTES = 512 * 1024;
/** Smaller RSA keys are breakable (NIST SP 800-131A). */
const MIN_RSA_BITS = 2048;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/**
 * Verifies OIDC ID tokens with `jose`: `jwtVerify` against the IdP's JWKS
 * (`createRemoteJWKSet`: cached, one fetch shared by concurrent callers, a refetch for an unknown
 * kid at most once per cooldown), RS256 or ES256 only, `iss`, `aud`, `sub`, `exp` and `nbf` with an
 * explicit clock tolerance. What this adapter adds: a token that cannot be a JWS costs no JWKS
 * fetch, `azp` (when present) must be this client, `iat` must not be in the future, the JWKS is
 * fetched without redirects, capped in size and reduced to public signing keys, and every failure
 * becomes a ValidationError (the token is bad) or RefreshUnavailableError (the keys cannot be had
 * now) whose message names the failed check and nothing of the token: jose's own errors, which
 * carry the claims, are never passed on.
 */
export class JwksIdTokenVerifier implements IdTokenVerifier {
  readonly #jwksUrl: string;
  readonly #issuer: string;
  readonly #audience: string;
  readonly #fetch: FetchFn;
  readonly #clock: Clock;
  readonly #skewSeconds: number;
  readonly #keys: JWTVerifyGetKey;

  constructor(options: JwksIdTokenVerifierOptions) {
    this.#jwksUrl = endpointUrl(options.jwksUrl, 'jwksUrl');
    this.#issuer = nonEmpty(options.issuer, 'issuer');
    this.#audience = nonEmpty(options.audience, 'audience');
    this.#fetch = options.fetch ?? ((input, init) => fetch(input, init));
    this.#clock = options.clock ?? systemClock;
    this.#skewSeconds = nonNegative(options.clockSkewSeconds, 60, 'clockSkewSeconds');
    this.#keys = createRemoteJWKSet(new URL(this.#jwksUrl), {
      cacheMaxAge: nonNegative(options.cacheTtlMs, 3_600_000, 'cacheTtlMs'),
      cooldownDuration: nonNegative(options.refetchCooldownMs, 60_000, 'refetchCooldownMs'),
      timeoutDuration: Math.ceil(nonNegative(options.timeoutMs, 5000, 'timeoutMs')),
      [customFetch]: (url: string, init: RequestInit) => this.#fetchJwks(url, init),
    });
  }

  /** Resolves when the token is valid for this app and `expectedSubject`; throws ValidationError naming the failed check otherwise. */
  async verify(idToken: Secret, expectedSubject: string): Promise<void> {
    const token = idToken.reveal();
    checkShape(token);
    let claims: JWTPayload;
    try {
      ({ payload: claims } = await jwtVerify(token, this.#keys, {
        algorithms: [...ALGORITHMS],
        issuer: this.#issuer,
        audience: this.#audience,
        subject: expectedSubject,
        requiredClaims: ['exp'],
        clockTolerance: this.#skewSeconds,
        currentDate: new Date(this.#clock.nowMs()),
      }));
    } catch (error) {
      throw translate(error);
    }
    // OIDC Core 3.1.3.7: when present, azp names the party the token was issued to.
    if (claims.azp !== undefined && claims.azp !== this.#audience) {
      throw invalid('id_token azp does not match the audience');
    }
    // jose checks iat in the future only together with a maximum age, which an ID token has no need of.
    if (claims.iat !== undefined && claims.iat > this.#clock.nowMs() / 1000 + this.#skewSeconds) {
      throw invalid('id_token iat is in the future');
    }
  }

  /**
   * jose's fetch: no redirects (the keys come from the configured URL or not at all), a capped
   * body, and only what can verify RS256 or ES256 handed on. Failures are thrown as domain errors,
   * which jose passes through unchanged.
   */
  async #fetchJwks(url: string, init: RequestInit): Promise<Response> {
    let response: Response;
    let body: string | undefined;
    try {
      response = await this.#fetch(url, { ...init, redirect: 'manual' });
      if (response.status !== 200) {
        await response.body?.cancel();
      } else {
        body = await readCapped(response, MAX_JWKS_BYTES);
      }
    } catch (error) {
      const timedOut = init.signal?.aborted === true;
      throw new RefreshUnavailableError(`JWKS fetch failed: ${timedOut ? 'timed out' : 'network error'}`, {
        cause: timedOut ? init.signal?.reason : error,
      });
    }
    if (response.status !== 200) {
      throw new RefreshUnavailableError(`JWKS fetch failed: HTTP ${response.status}`, { cause: response });
    }
    if (body === undefined) throw new RefreshUnavailableError('JWKS is malformed: body too large');
    return Response.json({ keys: signingKeys(body) });
  }
}

/** The verifier of the configured ID token settings (what storeTokens passes to its runtime). */
export function jwksIdTokenVerifierFor(
  settings: IdTokenConfig,
  parts: { readonly clock: Clock; readonly fetch?: FetchFn },
): JwksIdTokenVerifier {
  return new JwksIdTokenVerifier({ ...settings, ...parts });
}

/** The public members of the JWKS's RS256 / ES256 verification keys; anything else is left out. */
function signingKeys(body: string): readonly Record<string, unknown>[] {
  let document: unknown;
  try {
    document = JSON.parse(body);
  } catch (error) {
    throw new RefreshUnavailableError('JWKS is malformed: not JSON', { cause: error });
  }
  const entries = isObject(document) ? document.keys : undefined;
  if (!Array.isArray(entries)) throw new RefreshUnavailableError('JWKS is malformed: no keys array');
  const keys = entries.map(publicSigningKey).filter((key) => key !== undefined);
  if (keys.length === 0) throw new RefreshUnavailableError('JWKS is malformed: no usable signing key');
  return keys;
}

/** Only public members are kept: a JWKS that leaks a private `d` must not make us hold it. */
function publicSigningKey(jwk: unknown): Record<string, unknown> | undefined {
  if (!isObject(jwk)) return undefined;
  const { kid, use, key_ops: keyOps, alg } = jwk;
  if (kid !== undefined && typeof kid !== 'string') return undefined;
  if (use !== undefined && use !== 'sig') return undefined;
  if (keyOps !== undefined && !(Array.isArray(keyOps) && keyOps.includes('verify'))) return undefined;
  const named = { ...(kid === undefined ? {} : { kid }), use: 'sig' };
  if (jwk.kty === 'RSA' && typeof jwk.n === 'string' && typeof jwk.e === 'string') {
    if ((alg !== undefined && alg !== 'RS256') || modulusBits(jwk.n) < MIN_RSA_BITS) return undefined;
    return { kty: 'RSA', n: jwk.n, e: jwk.e, alg: 'RS256', ...named };
  }
  if (jwk.kty === 'EC' && jwk.crv === 'P-256' && typeof jwk.x === 'string' && typeof jwk.y === 'string') {
    if (alg !== undefined && alg !== 'ES256') return undefined;
    return { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y, alg: 'ES256', ...named };
  }
  return undefined;
}

function modulusBits(n: string): number {
  const bytes = Buffer.from(n, 'base64url');
  const first = bytes.findIndex((byte) => byte !== 0);
  if (first < 0) return 0;
  return (bytes.length - first) * 8 - (Math.clz32(bytes[first] ?? 0) - 24);
}

/**
 * What can be told without a key, so a token that cannot be a signed JWT of ours costs no JWKS
 * fetch: size, three canonical base64url parts, a JSON header with an allowed `alg`, a string
 * `kid` if any and no `crit` (jose would accept `b64` and find out only after the key).
 */
function checkShape(token: string): void {
  if (token.length === 0 || token.length > MAX_TOKEN_CHARS) throw invalid('id_token is not a compact JWS');
  const parts = token.split('.');
  if (parts.length !== 3) throw invalid('id_token is not a compact JWS (three parts)');
  // Buffer alone is lenient (padding, stray characters, trailing bits); a canonical segment round-trips.
  for (const part of parts) {
    if (!BASE64URL.test(part) || Buffer.from(part, 'base64url').toString('base64url') !== part) {
      throw invalid('id_token is not valid base64url');
    }
  }
  let header: Record<string, unknown>;
  try {
    header = decodeProtectedHeader(token);
  } catch {
    throw invalid('id_token header is not a JSON object');
  }
  if (typeof header.alg !== 'string' || !ALGORITHMS.includes(header.alg)) {
    throw invalid('id_token alg is not allowed');
  }
  if (header.crit !== undefined) throw invalid('id_token header has unsupported crit parameters');
  if (header.kid !== undefined && typeof header.kid !== 'string')
    throw invalid('id_token kid is not a string');
}

const CLAIM_FAILURES: Readonly<Record<string, string>> = {
  iss: 'id_token iss does not match the issuer',
  aud: 'id_token aud does not include the audience',
  sub: 'id_token sub does not match userId',
  nbf: 'id_token is not yet valid (nbf)',
  exp: 'id_token has expired',
};

/**
 * A jose failure as a domain error. jose's claim errors carry the whole claims set in an
 * enumerable `payload`, so none of them is kept as a cause; our own fetch errors pass as they are.
 */
function translate(error: unknown): Error {
  if (error instanceof RefreshUnavailableError) return error;
  if (error instanceof errors.JWTClaimValidationFailed || error instanceof errors.JWTExpired) {
    const { claim, reason } = error;
    if ((claim === 'exp' || claim === 'iat' || claim === 'nbf') && reason !== 'check_failed') {
      return invalid(`id_token ${claim} is missing or not a number`);
    }
    return invalid(CLAIM_FAILURES[claim] ?? 'id_token claims are invalid');
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) return invalid('id_token signature is invalid');
  if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) {
    return invalid('id_token kid is not in the JWKS');
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return invalid('id_token alg is not allowed');
  if (error instanceof errors.JWKSTimeout) {
    return new RefreshUnavailableError('JWKS fetch failed: timed out');
  }
  if (error instanceof errors.JWKSInvalid) return new RefreshUnavailableError('JWKS is malformed');
  if (error instanceof errors.JWTInvalid) return invalid('id_token payload is not a JSON object');
  // Anything else jose refused (a malformed part, a key it could not use) says the token is not ours.
  if (error instanceof errors.JOSEError || error instanceof TypeError) {
    return invalid('id_token could not be verified');
  }
  return error instanceof Error ? error : new Error('unexpected failure while verifying an id_token');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(message: string): ValidationError {
  return new ValidationError(message);
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
