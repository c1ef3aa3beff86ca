import type {
  ClientCredentials,
  ClientCredentialsSource,
} from '../../functions/adapters/credentials/client-credentials';
import { Secret } from '../../functions/core/secret';

/** A credentials source whose secret moves to the next value on each invalidate() (a rotation). */
export class RotatingCredentials implements ClientCredentialsSource {
  invalidations = 0;
  gets = 0;
  #index = 0;

  constructor(
    readonly clientId: string,
    readonly secrets: readonly string[],
  ) {}

  async get(): Promise<ClientCredentials> {
    this.gets += 1;
    const secret = this.secrets[Math.min(this.#index, this.secrets.length - 1)] ?? '';
    return { clientId: this.clientId, clientSecret: new Secret(secret) };
  }

  invalidate(): void {
    this.invalidations += 1;
    this.#index += 1;
  }
}
