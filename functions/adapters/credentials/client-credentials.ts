import { ConfigurationError } from '../../core/errors';
import { Secret } from '../../core/secret';

/** The app's OAuth client at the IdP. */
export interface ClientCredentials {
  readonly clientId: string;
  readonly clientSecret: Secret;
}

/** Where client credentials come from; cached by the implementation. */
export interface ClientCredentialsSource {
  /** The current credentials. */
  get(): Promise<ClientCredentials>;
  /** Drops any cached value (after a 401). */
  invalidate(): void;
}

/** Fixed credentials (local use: the CLIENT_ID / CLIENT_SECRET values passed in). */
export class StaticClientCredentials implements ClientCredentialsSource {
  readonly #credentials: ClientCredentials;

  constructor(clientId: string, clientSecret: Secret | string) {
    const secret = typeof clientSecret === 'string' ? new Secret(clientSecret) : clientSecret;
    if (typeof clientId !== 'string' || clientId.length === 0) {
      throw new ConfigurationError('CLIENT_ID is missing or empty');
    }
    if (secret.reveal().length === 0) throw new ConfigurationError('CLIENT_SECRET is missing or empty');
    this.#credentials = Object.freeze({ clientId, clientSecret: secret });
  }

  /** Returns the fixed credentials. */
  async get(): Promise<ClientCredentials> {
    return this.#credentials;
  }

  /** Nothing is cached: there is nothing newer to read. */
  invalidate(): void {}
}
