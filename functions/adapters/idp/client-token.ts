import { IdpConfigurationError, IdpTransientError } from '../../core/errors';
import type { Clock } from '../../core/ports';
import { Secret } from '../../core/secret';
import { CachedValue } from '../cached-value';
import type { ClientCredentials, ClientCredentialsSource } from '../credentials/client-credentials';
import { systemClock } from '../system-clock';
import {
  classifyFailure,
  endpointUrl,
  errorCode,
  type FailurePolicy,
  type FetchFn,
  formBody,
  type HttpAnswer,
  isSuccess,
  post,
  sendRenewingClientOnce,
} from './http';

/** Options of {@link ClientTokenProvider}. */
export interface ClientTokenProviderOptions {
  /** The token endpoint (Transmit: `{baseUrl}/oidc/token`). */
  readonly tokenUrl: string;
  readonly credentials: ClientCredentialsSource;
  /** @default globalThis.fetch */
  readonly fetch?: FetchFn;
  /** @default the system clock */
  readonly clock?: Clock;
  /** A token is renewed this long before it expires. @default 60_000 */
  readonly expirySkewMs?: number;
}

/** How long one token request may take: a deadline of its own or the caller's signal. */
export interface ClientTokenRequestOptions {
  /** @default 5000 */
  readonly timeoutMs?: number;
  /** The caller's deadline; when given it bounds the request instead of `timeoutMs`. */
  readonly signal?: AbortSignal;
}

const WHAT = 'IdP client token request';
/** The client credentials grant presents no refresh token: nothing it answers proves one dead. */
const POLICY: FailurePolicy = { deadTokenCodes: new Set() };

/**
 * The app's own access token from the client credentials grant, cached until shortly before it
 * expires; concurrent callers share one request. Throws IdpConfigurationError when the IdP refuses
 * the client (after re-reading the credentials once) and IdpTransientError when it cannot answer.
 * Neither says anything about a user's refresh token.
 */
export class ClientTokenProvider {
  readonly #tokenUrl: string;
  readonly #credentials: ClientCredentialsSource;
  readonly #fetch: FetchFn;
  readonly #clock: Clock;
  readonly #skewMs: number;
  readonly #cache: CachedValue<Secret>;

  constructor(options: ClientTokenProviderOptions) {
    this.#tokenUrl = endpointUrl(options.tokenUrl, 'tokenUrl');
    this.#credentials = options.credentials;
    this.#fetch = options.fetch ?? ((input, init) => fetch(input, init));
    this.#clock = options.clock ?? systemClock;
    this.#skewMs = options.expirySkewMs ?? 60_000;
    this.#cache = new CachedValue(this.#clock);
  }

  /** A client access token that is valid for at least the skew. */
  token(options: ClientTokenRequestOptions = {}): Promise<Secret> {
    return this.#cache.get(async () => {
      const signal = options.signal ?? AbortSignal.timeout(options.timeoutMs ?? 5000);
      const { token, expiresInS } = await this.#fetchToken(signal);
      const lifetimeMs = expiresInS * 1000;
      // A token shorter-lived than the skew is still worth reusing for half its life.
      return { value: token, validForMs: Math.max(lifetimeMs - this.#skewMs, lifetimeMs / 2) };
    });
  }

  /**
   * Drops the cached token. With `rejected`, only when the cache still holds that token: a
   * sibling caller may already have replaced it with a fresh one.
   */
  invalidate(rejected?: Secret): void {
    if (rejected) this.#cache.invalidateIf((cached) => cached.equals(rejected));
    else this.#cache.invalidate();
  }

  async #fetchToken(signal: AbortSignal): Promise<{ token: Secret; expiresInS: number }> {
    // The secret may have been rotated since it was cached: a refused client re-reads it, once.
    const answer = await sendRenewingClientOnce(
      () => this.#credentials.get(),
      (credentials) => this.#request(credentials, signal),
      isClientRejected,
      () => this.#credentials.invalidate(),
    );
    if (isClientRejected(answer)) {
      throw new IdpConfigurationError(
        `client credentials rejected by the IdP (${detail(answer)})`,
        answer.status,
        errorCode(answer.json),
      );
    }
    if (isSuccess(answer.status)) {
      const parsed = parseClientToken(answer.json);
      if (!parsed) {
        throw new IdpTransientError('malformed client token response', answer.status, undefined, {
          notConsumed: true,
        });
      }
      return parsed;
    }
    throw classifyFailure(answer, WHAT, this.#clock, POLICY);
  }

  #request(credentials: ClientCredentials, signal: AbortSignal): Promise<HttpAnswer> {
    return post(
      this.#fetch,
      this.#tokenUrl,
      {
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: formBody({
          grant_type: 'client_credentials',
          client_id: credentials.clientId,
          client_secret: credentials.clientSecret.reveal(),
        }),
      },
      signal,
      WHAT,
    );
  }
}

function isClientRejected(answer: HttpAnswer): boolean {
  return answer.status === 401 || (answer.status === 400 && errorCode(answer.json) === 'invalid_client');
}

function detail(answer: HttpAnswer): string {
  const code = errorCode(answer.json);
  return `HTTP ${answer.status}${code ? `, ${code}` : ''}`;
}

function parseClientToken(json: HttpAnswer['json']): { token: Secret; expiresInS: number } | undefined {
  const accessToken = json?.access_token;
  const expiresIn = json?.expires_in;
  if (typeof accessToken !== 'string' || accessToken.length === 0) return undefined;
  if (typeof expiresIn !== 'number' || !Number.isFinite(expiresIn) || expiresIn <= 0) return undefined;
  return { token: new Secret(accessToken), expiresInS: expiresIn };
}
