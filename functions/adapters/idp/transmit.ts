import { IdpTransientError } from '../../core/errors';
import type { TokenSet } from '../../core/model';
import type { Clock, IdentityProvider } from '../../core/ports';
import type { Secret } from '../../core/secret';
import type { ClientCredentialsSource } from '../credentials/client-credentials';
import { ClientTokenProvider } from './client-token';
import { classifyFailure, endpointUrl, type FetchFn, type HttpAnswer, post, systemClock } from './http';
import { parseTokenSet } from './token-response';

/** Options of {@link TransmitIdentityProvider}. */
export interface TransmitIdentityProviderOptions {
  /** The regional host, e.g. `https://api.transmitsecurity.io`. */
  readonly baseUrl: string;
  /** The app's client credentials (for the client token). */
  readonly credentials: ClientCredentialsSource;
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
 * `/cis/v1/auth/session/logout`, both with the client token as Bearer. Throws
 * IdpPermanentError / IdpTransientError, and ConfigurationError or RefreshUnavailableError when
 * the client token cannot be had (those say nothing about the user's refresh token).
 */
export class TransmitIdentityProvider implements IdentityProvider, SessionLogout {
  readonly #baseUrl: string;
  readonly #fetch: FetchFn;
  readonly #clock: Clock;
  readonly #clientTokens: ClientTokenProvider;

  constructor(options: TransmitIdentityProviderOptions) {
    this.#baseUrl = endpointUrl(options.baseUrl, 'baseUrl').replace(/\/+$/, '');
    this.#fetch = options.fetch ?? ((input, init) => fetch(input, init));
    this.#clock = options.clock ?? systemClock;
    this.#clientTokens = new ClientTokenProvider({
      tokenUrl: `${this.#baseUrl}/oidc/token`,
      credentials: options.credentials,
      fetch: this.#fetch,
      clock: this.#clock,
    });
  }

  /** Exchanges a refresh token for a new token set (the refresh token rotates). */
  async refresh(refreshToken: Secret, options: { timeoutMs: number }): Promise<TokenSet> {
    const what = 'IdP refresh';
    const answer = await this.#postWithClientToken(
      '/cis/v1/auth/token/refresh',
      { refresh_token: refreshToken.reveal() },
      options.timeoutMs,
      what,
    );
    if (answer.status === 200) {
      const tokens = parseTokenSet(answer.json);
      if (!tokens) throw new IdpTransientError('malformed refresh response', 200, undefined);
      return tokens;
    }
    throw classifyFailure(answer, what, this.#clock);
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
    if (answer.status === 200 || answer.status === 204) return 'logged_out';
    if (answer.status === 404) return 'already_gone';
    throw classifyFailure(answer, what, this.#clock);
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
    const firstToken = await this.#clientTokens.token({ signal });
    const answer = await send(firstToken);
    if (answer.status !== 401) return answer;
    this.#clientTokens.invalidate(firstToken);
    return send(await this.#clientTokens.token({ signal }));
  }
}
