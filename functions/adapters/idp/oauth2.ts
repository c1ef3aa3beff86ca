import { ConfigurationError, IdpConfigurationError } from '../../core/errors';
import type { RefreshAnswer } from '../../core/model';
import type { Clock, IdentityProvider } from '../../core/ports';
import type { Secret } from '../../core/secret';
import type { ClientCredentials, ClientCredentialsSource } from '../credentials/client-credentials';
import { systemClock } from '../system-clock';
import {
  classifyFailure,
  DEFAULT_DEAD_TOKEN_CODES,
  endpointUrl,
  errorCode,
  type FailurePolicy,
  type FetchFn,
  formBody,
  formEncode,
  type HttpAnswer,
  isSuccess,
  post,
  sendRenewingClientOnce,
} from './http';
import { parseRefreshAnswer } from './token-response';

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
  /** Error codes by which the server says a refresh token is dead. @default ['invalid_grant'] */
  readonly deadTokenCodes?: readonly string[];
  /** @default globalThis.fetch */
  readonly fetch?: FetchFn;
  /** @default the system clock */
  readonly clock?: Clock;
}

/**
 * Any OAuth 2.0 authorization server with rotating refresh tokens: the RFC 6749 section 6
 * refresh grant with client secret authentication, and RFC 7009 revocation. Any 2xx refresh
 * answer resolves; failures are IdpPermanentError (a dead-token code only), IdpConfigurationError
 * (a 401 or `invalid_client` that survives re-read credentials, a 403, a client code) or
 * IdpTransientError.
 */
export class OAuth2IdentityProvider implements IdentityProvider {
  readonly #tokenEndpoint: string;
  readonly #revocationEndpoint: string | undefined;
  readonly #credentials: ClientCredentialsSource;
  readonly #clientAuth: ClientAuthMethod;
  readonly #fetch: FetchFn;
  readonly #clock: Clock;
  readonly #refreshPolicy: FailurePolicy;
  /** A revocation presents the token to end, not to use: nothing it answers proves it dead. */
  readonly #revocationPolicy: FailurePolicy = { deadTokenCodes: new Set() };

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
    this.#refreshPolicy = {
      deadTokenCodes: new Set(options.deadTokenCodes ?? DEFAULT_DEAD_TOKEN_CODES),
    };
  }

  /** True when a revocation endpoint is configured. */
  get supportsRevocation(): boolean {
    return this.#revocationEndpoint !== undefined;
  }

  /** The refresh grant; any 2xx resolves with what was usable in it. */
  async refresh(refreshToken: Secret, options: { timeoutMs: number }): Promise<RefreshAnswer> {
    const what = 'IdP refresh';
    const answer = await this.#postAsClient(
      this.#tokenEndpoint,
      { grant_type: 'refresh_token', refresh_token: refreshToken.reveal() },
      options.timeoutMs,
      what,
    );
    if (isSuccess(answer.status)) return parseRefreshAnswer(answer.json);
    throw classifyFailure(answer, what, this.#clock, this.#refreshPolicy);
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
    if (isSuccess(answer.status)) return;
    throw classifyFailure(answer, what, this.#clock, this.#revocationPolicy);
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
    const refused = (answer: HttpAnswer) => isClientRejected(answer, this.#refreshPolicy.deadTokenCodes);
    const answer = await sendRenewingClientOnce(
      () => this.#credentials.get(),
      (credentials) => this.#send(url, fields, credentials, signal, what),
      refused,
      () => this.#credentials.invalidate(),
    );
    if (!refused(answer)) return answer;
    const code = errorCode(answer.json);
    throw new IdpConfigurationError(
      `${what}: client credentials rejected by the IdP (HTTP ${answer.status}${code ? `, ${code}` : ''})`,
      answer.status,
      code,
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
}

/**
 * The server refused the client's credentials (checked before the grant, so nothing was
 * consumed). A 401 that names a dead-token code is about the token, not the client.
 */
function isClientRejected(answer: HttpAnswer, deadTokenCodes: ReadonlySet<string>): boolean {
  const code = errorCode(answer.json);
  if (code === 'invalid_client') return answer.status === 400 || answer.status === 401;
  return answer.status === 401 && (code === undefined || !deadTokenCodes.has(code));
}
