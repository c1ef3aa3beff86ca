import { IdpTransientError } from '../../core/errors';
import type { RefreshAnswer } from '../../core/model';
import type { Clock, IdentityProvider } from '../../core/ports';
import type { Secret } from '../../core/secret';
import type { ClientCredentialsSource } from '../credentials/client-credentials';
import { systemClock } from '../system-clock';
import { ClientTokenProvider } from './client-token';
import {
  classifyFailure,
  DEFAULT_DEAD_TOKEN_CODES,
  endpointUrl,
  type FailurePolicy,
  type FetchFn,
  type HttpAnswer,
  isSuccess,
  post,
  sendRenewingClientOnce,
} from './http';
import { parseRefreshAnswer } from './token-response';

/** Options of {@link TransmitIdentityProvider}. */
export interface TransmitIdentityProviderOptions {
  /** The regional host, e.g. `https://api.transmitsecurity.io`. */
  readonly baseUrl: string;
  /** The app's client credentials (for the client token). */
  readonly credentials: ClientCredentialsSource;
  /**
   * Error codes (`error` or CIS `error_code`) by which the tenant says a refresh token is dead.
   * @default ['invalid_grant']
   */
  readonly deadTokenCodes?: readonly string[];
  /** @default globalThis.fetch */
  readonly fetch?: FetchFn;
  /** @default the system clock */
  readonly clock?: Clock;
}

/** What a logout did: the session was ended now, or it was already gone. */
export type LogoutOutcome = 'logged_out' | 'already_gone';

/** Ends a user's session at the IdP (which revokes its refresh tokens). */
export interface SessionLogout {
  /** Logs the session out; a session that no longer exists counts as success. */
  logout(sessionId: Secret, options: { timeoutMs: number }): Promise<LogoutOutcome>;
}

/**
 * Transmit Security: refresh at `/cis/v1/auth/token/refresh` and logout at
 * `/cis/v1/auth/session/logout`, both with the client token as Bearer. Any 2xx refresh answer
 * resolves; failures are IdpPermanentError (a dead-token code only), IdpConfigurationError (403,
 * a client code, a 401 that survives a fresh client token, the client token refused) or
 * IdpTransientError.
 */
export class TransmitIdentityProvider implements IdentityProvider, SessionLogout {
  readonly #baseUrl: string;
  readonly #fetch: FetchFn;
  readonly #clock: Clock;
  readonly #clientTokens: ClientTokenProvider;
  readonly #refreshPolicy: FailurePolicy;
  /** A logout presents no refresh token, so nothing it answers proves one dead. */
  readonly #logoutPolicy: FailurePolicy = { deadTokenCodes: new Set() };

  constructor(options: TransmitIdentityProviderOptions) {
    this.#baseUrl = endpointUrl(options.baseUrl, 'baseUrl').replace(/\/+$/, '');
    this.#fetch = options.fetch ?? ((input, init) => fetch(input, init));
    this.#clock = options.clock ?? systemClock;
    this.#refreshPolicy = {
      deadTokenCodes: new Set(options.deadTokenCodes ?? DEFAULT_DEAD_TOKEN_CODES),
    };
    this.#clientTokens = new ClientTokenProvider({
      tokenUrl: `${this.#baseUrl}/oidc/token`,
      credentials: options.credentials,
      fetch: this.#fetch,
      clock: this.#clock,
    });
  }

  /** Exchanges a refresh token; any 2xx resolves with what was usable in it. */
  async refresh(refreshToken: Secret, options: { timeoutMs: number }): Promise<RefreshAnswer> {
    const what = 'IdP refresh';
    const answer = await this.#postWithClientToken(
      '/cis/v1/auth/token/refresh',
      { refresh_token: refreshToken.reveal() },
      options.timeoutMs,
      what,
    );
    if (isSuccess(answer.status)) return parseRefreshAnswer(answer.json);
    throw classifyFailure(answer, what, this.#clock, this.#refreshPolicy);
  }

  /** Ends the session at Transmit; 200/204 and 404 (already gone) succeed. */
  async logout(sessionId: Secret, options: { timeoutMs: number }): Promise<LogoutOutcome> {
    const what = 'IdP logout';
    const answer = await this.#postWithClientToken(
      '/cis/v1/auth/session/logout',
      { session_id: sessionId.reveal() },
      options.timeoutMs,
      what,
    );
    if (isSuccess(answer.status)) return 'logged_out';
    if (answer.status === 404) return 'already_gone';
    throw classifyFailure(answer, what, this.#clock, this.#logoutPolicy);
  }

  /**
   * POSTs JSON with the client token. A 401 means the door refused the client token (the
   * request was not processed, so the refresh token was not consumed): drop that client token
   * and try once more with a fresh one. One deadline covers all of it.
   */
  async #postWithClientToken(
    path: string,
    body: Readonly<Record<string, string>>,
    timeoutMs: number,
    what: string,
  ): Promise<HttpAnswer> {
    const signal = AbortSignal.timeout(timeoutMs);
    const send = async (clientToken: Secret) =>
      post(
        this.#fetch,
        `${this.#baseUrl}${path}`,
        {
          headers: {
            'content-type': 'application/json',
            accept: 'application/json',
            authorization: `Bearer ${clientToken.reveal()}`,
          },
          body: JSON.stringify(body),
        },
        signal,
        what,
      );
    return sendRenewingClientOnce(
      (retry) => this.#clientToken(signal, !retry),
      send,
      (answer) => answer.status === 401,
      (refused) => this.#clientTokens.invalidate(refused),
    );
  }

  /**
   * The client token. When it cannot be had before the user's request was ever sent, the
   * failure says so (`notConsumed`), so the caller may try again at once.
   */
  async #clientToken(signal: AbortSignal, nothingSentYet: boolean): Promise<Secret> {
    try {
      return await this.#clientTokens.token({ signal });
    } catch (error) {
      if (!(error instanceof IdpTransientError) || error.notConsumed === nothingSentYet) throw error;
      throw new IdpTransientError(error.message, error.status, error.retryAfterSeconds, {
        cause: error,
        notConsumed: nothingSentYet,
      });
    }
  }
}
