import type { RefreshAnswer } from '../../../functions/core/model';
import type { IdentityProvider } from '../../../functions/core/ports';
import type { Secret } from '../../../functions/core/secret';
import { sha256Hex } from '../../../local/transmit/state';
import type { Track } from './proof-store';

/** Hooks a proof installs around every refresh. */
export interface IdpHooks {
  /** Awaited before the request is sent: a scheduler decides when it goes. */
  before?(label: string): Promise<void> | void;
  /** Called with the answer before the service sees it (a crash worker dies here). */
  after?(label: string): void;
}

/** What the proof knows about one refresh token, by hash. */
interface TokenLineage {
  readonly userId: string;
  /** The sign-in the token descends from. */
  readonly family: number;
}

/**
 * An IdentityProvider around the real HTTP client that keeps the lineage of every token it saw
 * (sign-in -> rotation -> rotation ...), by hash: which user and sign-in each refresh token
 * belongs to, the newest one of each sign-in, and which refresh token each access token came with.
 * For IdPs that expose no such view (oidc-provider), this is the proof's record of what was issued.
 */
export class ProofIdp implements IdentityProvider {
  hooks: IdpHooks = {};
  /** Refresh calls made (answered or not). */
  attempts = 0;
  /** Refresh calls that returned a token set. */
  rotations = 0;
  /** The user of each refresh call that returned a token set, in order ('?' for a token of unknown lineage). */
  readonly rotatedFor: string[] = [];
  /** access token hash -> the refresh token hash issued with it. */
  readonly issuedWith = new Map<string, string>();
  readonly #lineage = new Map<string, TokenLineage>();
  readonly #latest = new Map<number, string>();
  #families = 0;

  constructor(
    private readonly inner: IdentityProvider,
    private readonly track: Track = (work) => work(),
  ) {}

  /** Registers the tokens of a sign-in as the start of a new family. */
  signedIn(userId: string, accessToken: string, refreshToken: string): void {
    const family = ++this.#families;
    const refreshHash = sha256Hex(refreshToken);
    this.#lineage.set(refreshHash, { userId, family });
    this.#latest.set(family, refreshHash);
    this.issuedWith.set(sha256Hex(accessToken), refreshHash);
  }

  /** The newest refresh token hash of the family that `refreshHash` belongs to. */
  latestOfFamily(refreshHash: string): string | undefined {
    const lineage = this.#lineage.get(refreshHash);
    return lineage && this.#latest.get(lineage.family);
  }

  /** The user a refresh token hash was issued for (through its sign-in). */
  userOf(refreshHash: string): string | undefined {
    return this.#lineage.get(refreshHash)?.userId;
  }

  /** Every refresh token hash this proof saw issued. */
  knownRefreshHashes(): string[] {
    return [...this.#lineage.keys()];
  }

  async refresh(refreshToken: Secret, options: { timeoutMs: number }): Promise<RefreshAnswer> {
    const presented = sha256Hex(refreshToken.reveal());
    const lineage = this.#lineage.get(presented);
    const label = `idp.refresh ${lineage?.userId ?? '?'}`;
    await this.hooks.before?.(label);
    this.attempts++;
    const tokens = await this.track(() => this.inner.refresh(refreshToken, options));
    this.rotations++;
    this.rotatedFor.push(lineage?.userId ?? '?');
    // A non-rotating answer keeps the presented token in use.
    const issued = tokens.refreshToken ? sha256Hex(tokens.refreshToken.reveal()) : presented;
    if (lineage) {
      this.#lineage.set(issued, lineage);
      this.#latest.set(lineage.family, issued);
    }
    if (tokens.accessToken) this.issuedWith.set(sha256Hex(tokens.accessToken.reveal()), issued);
    this.hooks.after?.(label);
    return tokens;
  }
}
