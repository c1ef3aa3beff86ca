import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { AwsCallLimits } from '../../config';
import { ConfigurationError, RefreshUnavailableError } from '../../core/errors';
import type { Clock } from '../../core/ports';
import { Secret } from '../../core/secret';
import { awsClientConfig } from '../aws-client-config';
import { CachedValue } from '../cached-value';
import { systemClock } from '../system-clock';
import type { ClientCredentials, ClientCredentialsSource } from './client-credentials';

/** Options of {@link SecretsManagerClientCredentials}. */
export interface SecretsManagerClientCredentialsOptions {
  /** Name or ARN of the secret holding `{"client_id": "...", "client_secret": "..."}`. */
  readonly secretId: string;
  /** @default a new SecretsManagerClient whose calls are bounded by `limits` */
  readonly client?: SecretsManagerClient;
  /** Deadline and attempts of every call of the built client. @default DEFAULT_AWS_CALL_LIMITS */
  readonly limits?: AwsCallLimits;
  /** How long a read value is reused. @default 300_000 (5 min) */
  readonly cacheTtlMs?: number;
  /** @default the system clock */
  readonly clock?: Clock;
}

/** Errors that no retry will fix: the secret or the permission to read it is missing. */
const CONFIGURATION_ERRORS = new Set([
  'ResourceNotFoundException',
  'AccessDeniedException',
  'DecryptionFailure',
]);

/** Client credentials read from a Secrets Manager JSON secret, cached per Lambda instance. */
export class SecretsManagerClientCredentials implements ClientCredentialsSource {
  readonly #secretId: string;
  readonly #client: SecretsManagerClient;
  readonly #ttlMs: number;
  readonly #cache: CachedValue<ClientCredentials>;

  constructor(options: SecretsManagerClientCredentialsOptions) {
    if (!options.secretId) throw new ConfigurationError('SecretsManagerClientCredentials needs a secretId');
    this.#secretId = options.secretId;
    this.#client = options.client ?? new SecretsManagerClient(awsClientConfig(options.limits));
    this.#ttlMs = options.cacheTtlMs ?? 5 * 60_000;
    this.#cache = new CachedValue(options.clock ?? systemClock);
  }

  /** The cached credentials, or one shared read of the secret. */
  get(): Promise<ClientCredentials> {
    return this.#cache.get(async () => ({ value: await this.#read(), validForMs: this.#ttlMs }));
  }

  /** Drops the cached value and any read in flight; the next get() reads the secret again. */
  invalidate(): void {
    this.#cache.invalidate();
  }

  async #read(): Promise<ClientCredentials> {
    let secretString: string | undefined;
    try {
      ({ SecretString: secretString } = await this.#client.send(
        new GetSecretValueCommand({ SecretId: this.#secretId }),
      ));
    } catch (error) {
      const name = error instanceof Error ? error.name : 'UnknownError';
      const message = `cannot read client credentials secret ${this.#secretId} (${name})`;
      throw CONFIGURATION_ERRORS.has(name)
        ? new ConfigurationError(message, { cause: error })
        : new RefreshUnavailableError(message, { cause: error });
    }
    return this.#parse(secretString);
  }

  #parse(secretString: string | undefined): ClientCredentials {
    if (typeof secretString !== 'string') {
      throw new ConfigurationError(`secret ${this.#secretId} has no SecretString`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(secretString);
    } catch {
      // No cause: JSON.parse messages quote the text they choke on, which is the secret.
      throw new ConfigurationError(`secret ${this.#secretId} is not valid JSON`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new ConfigurationError(`secret ${this.#secretId} is not a JSON object`);
    }
    const fields = parsed as Record<string, unknown>;
    const clientId = fields.client_id;
    const clientSecret = fields.client_secret;
    if (typeof clientId !== 'string' || clientId.length === 0) {
      throw new ConfigurationError(
        `secret ${this.#secretId}: field client_id is missing or not a non-empty string`,
      );
    }
    if (typeof clientSecret !== 'string' || clientSecret.length === 0) {
      throw new ConfigurationError(
        `secret ${this.#secretId}: field client_secret is missing or not a non-empty string`,
      );
    }
    return Object.freeze({ clientId, clientSecret: new Secret(clientSecret) });
  }
}
