import { ConfigurationError, IdpTransientError } from '../../core/errors';
import type { TokenSet } from '../../core/model';
import type { Clock, IdentityProvider } from '../../core/ports';
import type { Secret } from '../../core/secret';
import type { ClientCredentials, ClientCredentialsSource } from '../credentials/client-credentials';
import {
  classifyFailure,
  endpointUrl,
  errorCode,
  type FetchFn,
  formBody,
  formEncode,
  type HttpAnswer,
  post,
  systemClock,
} from './http';
import { parseTokenSet } from './token-response';

/** How the client authenticates at the token endpoint (RFC 6749 section 2.3.1). */
export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post';

/** Options of {@link OAuth2IdentityProvider}. */
export interface OAuth2IdentityProviderOptions {
  /** The token endpoint of the authorization server. */
  readonly tokenEndpoint: string;
  readonly credentials: ClientCredentialsSource;
  /** @default 'client_secret_basic' */
  readonly clientAuth?: ClientAuthMethod;
  /** RFC 7009 revocation endpoint; `revoke()` needs it. @default none */
  readonly revocationEndpoint?: string;
  /** @default globalThis.fetch */
  readonly fetch?: FetchFn;
  /** @default the system clock */
  readonly clock?: Clock;
}

/**
 * 400 codes that describe the client, not the refresh token (RFC 6749 section 5.2): the token
 * was not consumed, and marking every user for re-authentication over a misconfigured client
 * would be a disaster, so these are configuration errors.
 */
const CLIENT_CONFIGURATION_CODES = new Set(['unauthorized_client', 'unsupported_grant_type']);

/**
 * Any OAuth 2.0 authorization server with rotating refresh tokens: the RFC 6749 section 6
 * refresh grant with client secret authentication, and RFC 7009 revocation. Throws
 * IdpPermanentError / IdpTransientError, and ConfigurationError when the client is refused.
 */
export class OAuth2IdentityProvider implements IdentityProvider {
  readonly #tokenEndpoint: string;
  readonly #revocationEndpoint: string | undefined;
  readonly #credentials: ClientCredentialsSource;
  readonly #clientAuth: ClientAuthMethod;
  readonly #fetch: FetchFn;
  readonly #clock: Clock;

  constructor(options: OAuth2IdentityProviderOptions) {
    this.#tokenEndpoint = endpointUrl(options.tokenEndpoint, 'tokenEndpoint');
    this.#revocationEndpoint =
      options.revocationEndpoint === undefined
        ? undefined
        : endpointUrl(options.revocationEndpoint, 'revocationEndpoint');
    this.#credentials = options.credentials;
    this.#clientAuth = options.clientAuth ?? 'client_secret_basic';
    if (this.#clientAuth !== 'client_secret_basic' && this.#clientAuth !== 'client_secret_post') {
      throw new ConfigurationError('clientAuth must be client_secret_basic or client_secret_post');
    }
    this.#fetch = options.fetch ?? ((input, init) => fetch(input, init));
    this.#clock = options.clock ?? systemClock;
  }

  /** True when a revocation endpoint is configured. */
  get supportsRevocation(): boolean {
    return this.#revocationEndpoint !== undefined;
  }

  /** The refresh grant: exchanges a refresh token for a new token set. */
  async refresh(refreshToken: Secret, options: { timeoutMs: number }): Promise<TokenSet> {
    const what = 'IdP refresh';
    const answer = await this.#postAsClient(
      this.#tokenEndpoint,
      { grant_type: 'refresh_token', refresh_token: refreshToken.reveal() },
      options.timeoutMs,
      what,
    );
    if (answer.status === 200) {
      const tokens = parseTokenSet(answer.json);
      if (!tokens) throw new IdpTransientError('malformed refresh response', 200, undefined);
      return tokens;
    }
    throw this.#failure(answer, what);
  }

  /** RFC 7009 revocation of a refresh (or access) token; an unknown token counts as revoked. */
  async revoke(
    token: Secret,
    options: { timeoutMs: number; tokenTypeHint?: 'refresh_token' | 'access_token' },
  ): Promise<void> {
    if (this.#revocationEndpoint === undefined) {
      throw new ConfigurationError('revoke() needs the revocationEndpoint option');
    }
    const what = 'IdP revocation';
    const answer = await this.#postAsClient(
      this.#revocationEndpoint,
      { token: token.reveal(), token_type_hint: options.tokenTypeHint ?? 'refresh_token' },
      options.timeoutMs,
      what,
    );
    if (answer.status === 200) return;
    throw this.#failure(answer, what);
  }

  /**
   * POSTs a form with client authentication. `invalid_client` is checked before the grant is
   * processed, so the token was not consumed: re-read the credentials (rotated secret) and
   * try once more; a second refusal is a configuration error.
   */
  async #postAsClient(
    url: string,
    fields: Readonly<Record<string, string>>,
    timeoutMs: number,
    what: string,
  ): Promise<HttpAnswer> {
    const signal = AbortSignal.timeout(timeoutMs);
    let answer = await this.#send(url, fields, await this.#credentials.get(), signal, what);
    if (!isClientRejected(answer)) return answer;
    this.#credentials.invalidate();
    answer = await this.#send(url, fields, await this.#credentials.get(), signal, what);
    if (!isClientRejected(answer)) return answer;
    const code = errorCode(answer.json);
    throw new ConfigurationError(
      `client credentials rejected by the IdP (HTTP ${answer.status}${code ? `, ${code}` : ''})`,
      { cause: classifyFailure(answer, what, this.#clock) },
    );
  }

  #send(
    url: string,
    fields: Readonly<Record<string, string>>,
    credentials: ClientCredentials,
    signal: AbortSignal,
    what: string,
  ): Promise<HttpAnswer> {
    const headers: Record<string, string> = {
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    };
    let body = fields;
    if (this.#clientAuth === 'client_secret_basic') {
      const userPass = `${formEncode(credentials.clientId)}:${formEncode(credentials.clientSecret.reveal())}`;
      headers.authorization = `Basic ${Buffer.from(userPass, 'utf8').toString('base64')}`;
    } else {
      body = { ...fields, client_id: credentials.clientId, client_secret: credentials.clientSecret.reveal() };
    }
    return post(this.#fetch, url, { headers, body: formBody(body) }, signal, what);
  }

  #failure(answer: HttpAnswer, what: string): Error {
    const code = errorCode(answer.json);
    if (answer.status === 400 && code !== undefined && CLIENT_CONFIGURATION_CODES.has(code)) {
      return new ConfigurationError(`${what} refused for this client (HTTP 400, ${code})`, {
        cause: classifyFailure(answer, what, this.#clock),
      });
    }
    return classifyFailure(answer, what, this.#clock);
  }
}

function isClientRejected(answer: HttpAnswer): boolean {
  return answer.status === 401 || (answer.status === 400 && errorCode(answer.json) === 'invalid_client');
}
