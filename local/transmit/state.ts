import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { JwtSigner } from './jwt';
import type {
  ClientTokenResponse,
  RefreshOutcome,
  TransmitRefreshResponse,
  TransmitStats,
  TransmitTokenResponse,
} from './types';

/** Token lifetimes of the emulated tenant, in seconds. */
export interface Lifetimes {
  readonly accessTokenTtlSeconds: number;
  readonly clientTokenTtlSeconds: number;
  readonly refreshTokenTtlSeconds: number;
  readonly maxRotationSeconds: number;
  readonly reuseGraceSeconds: number;
}

/** What the state needs to mint tokens. */
export interface MintContext {
  readonly signer: JwtSigner;
  readonly clientId: string;
  readonly lifetimes: Lifetimes;
  /** Read at signing time: the default issuer is the base URL, known only once the server listens. */
  issuer(): string;
  /** Whether a reuse outside the grace revokes the whole family, or rejects only that token. */
  readonly reuseRevokesFamily: boolean;
}

/** What a client token may do: a limited client's token is valid but lacks the permissions. */
interface ClientTokenRecord {
  readonly expiresAtMs: number;
  readonly limited: boolean;
}

/**
 * The result of presenting a refresh token: a new token set, or why not (a value, not an exception).
 * The outcome is decided, and the state changed, at once; only the signing of the new JWTs is pending.
 */
export type RefreshResult =
  | {
      readonly outcome: 'rotated' | 'grace';
      readonly familyId: string;
      readonly tokens: Promise<TransmitRefreshResponse>;
    }
  | { readonly outcome: Exclude<RefreshOutcome, 'rotated' | 'grace'>; readonly familyId: string | undefined };

/** One sign-in: a session and the family of refresh tokens descending from it. */
interface Family {
  readonly id: string;
  readonly userId: string;
  /** Kept raw because every token minted for the session carries it as the `sid` claim. */
  readonly sessionId: string;
  readonly authenticatedAtMs: number;
  revoked: boolean;
  /** Kept raw only to answer the test helper `latestRefreshToken`. */
  latestRefreshToken: string;
}

interface RefreshRecord {
  readonly familyId: string;
  readonly resource: string | undefined;
  readonly expiresAtMs: number;
  consumedAtMs: number | undefined;
}

/** Hex SHA-256: the only form in which the emulator keys or logs a token. */
export function sha256Hex(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

function opaqueToken(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * The emulated tenant's token state, all in memory and keyed by token hash. Times are passed in
 * (epoch ms from the server's clock) so every lifetime follows the injected clock. Every method
 * decides and changes the state synchronously, before its first await (signing is the only
 * asynchronous step), so concurrent requests cannot interleave inside a decision.
 */
export class TransmitState {
  readonly #mint: MintContext;
  readonly #clientTokens = new Map<string, ClientTokenRecord>();
  /** Hash of each user access token issued, to its session's family. */
  readonly #accessTokens = new Map<string, string>();
  readonly #families = new Map<string, Family>();
  readonly #familyBySession = new Map<string, string>();
  readonly #refreshTokens = new Map<string, RefreshRecord>();
  readonly #presentations = new Map<string, number>();
  #rotated = 0;
  #reuseDetections = 0;

  constructor(mint: MintContext) {
    this.#mint = mint;
  }

  /** Number of consumed refresh tokens presented again outside the grace period. */
  get reuseDetections(): number {
    return this.#reuseDetections;
  }

  /** Issues a client access token (the client credentials grant); `limited` lacks permissions. */
  async issueClientToken(
    resource: string | undefined,
    nowMs: number,
    client: { readonly clientId: string; readonly limited: boolean } = {
      clientId: this.#mint.clientId,
      limited: false,
    },
  ): Promise<ClientTokenResponse> {
    const ttl = this.#mint.lifetimes.clientTokenTtlSeconds;
    const iat = Math.floor(nowMs / 1000);
    const { clientId } = client;
    const accessToken = await this.#mint.signer.sign({
      iss: this.#mint.issuer(),
      sub: clientId,
      aud: resource ?? clientId,
      client_id: clientId,
      iat,
      exp: iat + ttl,
      jti: randomUUID(),
    });
    this.#clientTokens.set(sha256Hex(accessToken), {
      expiresAtMs: nowMs + ttl * 1000,
      limited: client.limited,
    });
    return { access_token: accessToken, token_type: 'Bearer', expires_in: ttl, scope: '' };
  }

  /** `full` or `limited` for a live client token of this server, `invalid` for anything else. */
  clientTokenAccess(token: string, nowMs: number): 'full' | 'limited' | 'invalid' {
    const record = this.#clientTokens.get(sha256Hex(token));
    if (!record || nowMs >= record.expiresAtMs) return 'invalid';
    return record.limited ? 'limited' : 'full';
  }

  /** True when the token is a user access token issued for this session (not checked for expiry). */
  isAccessTokenOfSession(token: string, sessionId: string): boolean {
    const familyId = this.#accessTokens.get(sha256Hex(token));
    return familyId !== undefined && familyId === this.#familyOfSession(sessionId)?.id;
  }

  /** Starts a session (a successful sign-in) and returns its first token set. */
  async signIn(userId: string, resource: string | undefined, nowMs: number): Promise<TransmitTokenResponse> {
    const family: Family = {
      id: `fam_${randomUUID()}`,
      userId,
      sessionId: opaqueToken(),
      authenticatedAtMs: nowMs,
      revoked: false,
      latestRefreshToken: '',
    };
    this.#families.set(family.id, family);
    this.#familyBySession.set(sha256Hex(family.sessionId), family.id);
    return { ...(await this.#issue(family, resource, nowMs)), session_id: family.sessionId };
  }

  /** Records that a refresh token was presented to the refresh endpoint. */
  countPresentation(tokenHash: string): void {
    this.#presentations.set(tokenHash, (this.#presentations.get(tokenHash) ?? 0) + 1);
  }

  /** How many times the token was presented to the refresh endpoint. */
  timesPresented(refreshToken: string): number {
    return this.#presentations.get(sha256Hex(refreshToken)) ?? 0;
  }

  /** The family a refresh token belongs to, if the token is known. */
  familyOf(refreshToken: string): string | undefined {
    return this.#refreshTokens.get(sha256Hex(refreshToken))?.familyId;
  }

  /** Rotates a refresh token, applying expiry, the rotation deadline and reuse detection. */
  refresh(refreshToken: string, nowMs: number): RefreshResult {
    const record = this.#refreshTokens.get(sha256Hex(refreshToken));
    const family = record && this.#families.get(record.familyId);
    if (!record || !family) return { outcome: 'unknown', familyId: undefined };
    const familyId = family.id;
    if (family.revoked) return { outcome: 'revoked', familyId };

    let outcome: 'rotated' | 'grace' = 'rotated';
    if (record.consumedAtMs !== undefined) {
      const graceSeconds = this.#mint.lifetimes.reuseGraceSeconds;
      if (graceSeconds <= 0 || nowMs >= record.consumedAtMs + graceSeconds * 1000) {
        // Strictest IdP behaviour: a replayed token may be stolen, so nothing of the sign-in survives.
        if (this.#mint.reuseRevokesFamily) family.revoked = true;
        this.#reuseDetections += 1;
        return { outcome: 'reuse', familyId };
      }
      outcome = 'grace';
    }
    if (nowMs >= this.#deadlineMs(family)) return { outcome: 'deadline', familyId };
    if (nowMs >= record.expiresAtMs) return { outcome: 'expired', familyId };

    record.consumedAtMs ??= nowMs;
    this.#rotated += 1;
    return { outcome, familyId, tokens: this.#issue(family, record.resource, nowMs) };
  }

  /** A fresh token set for a live session (the user-present path), or undefined when it is not live. */
  async authenticateSession(
    sessionId: string,
    resource: string | undefined,
    nowMs: number,
  ): Promise<TransmitTokenResponse | undefined> {
    const family = this.#familyOfSession(sessionId);
    if (!family || family.revoked || nowMs >= this.#deadlineMs(family)) return undefined;
    return { ...(await this.#issue(family, resource, nowMs)), session_id: family.sessionId };
  }

  /** Ends a session and revokes its refresh tokens; `unknown` when no such session ever existed. */
  logout(sessionId: string): 'revoked' | 'unknown' {
    const family = this.#familyOfSession(sessionId);
    if (!family) return 'unknown';
    family.revoked = true;
    return 'revoked';
  }

  /** The newest refresh token of a live family, given any token of it. */
  latestRefreshToken(anyTokenOfFamily: string): string | undefined {
    const familyId = this.familyOf(anyTokenOfFamily);
    const family = familyId === undefined ? undefined : this.#families.get(familyId);
    return family && !family.revoked ? family.latestRefreshToken : undefined;
  }

  /** Counters for `GET /local/stats`. */
  stats(refreshRequests: number): TransmitStats {
    let revokedFamilies = 0;
    for (const family of this.#families.values()) if (family.revoked) revokedFamilies += 1;
    return {
      refreshRequests,
      rotated: this.#rotated,
      reuseDetections: this.#reuseDetections,
      families: this.#families.size,
      revokedFamilies,
    };
  }

  #familyOfSession(sessionId: string): Family | undefined {
    const familyId = this.#familyBySession.get(sha256Hex(sessionId));
    return familyId === undefined ? undefined : this.#families.get(familyId);
  }

  #deadlineMs(family: Family): number {
    return family.authenticatedAtMs + this.#mint.lifetimes.maxRotationSeconds * 1000;
  }

  /** Records the new refresh token at once, then signs the access and ID tokens. */
  #issue(family: Family, resource: string | undefined, nowMs: number): Promise<TransmitRefreshResponse> {
    const { lifetimes, clientId, signer } = this.#mint;
    const refreshToken = opaqueToken();
    this.#refreshTokens.set(sha256Hex(refreshToken), {
      familyId: family.id,
      resource,
      expiresAtMs: Math.min(nowMs + lifetimes.refreshTokenTtlSeconds * 1000, this.#deadlineMs(family)),
      consumedAtMs: undefined,
    });
    family.latestRefreshToken = refreshToken;

    const iat = Math.floor(nowMs / 1000);
    const common = {
      iss: this.#mint.issuer(),
      sub: family.userId,
      iat,
      exp: iat + lifetimes.accessTokenTtlSeconds,
      sid: family.sessionId,
      auth_time: Math.floor(family.authenticatedAtMs / 1000),
    };
    const signing = Promise.all([
      signer.sign({ ...common, aud: resource ?? clientId, client_id: clientId, jti: randomUUID() }),
      signer.sign({ ...common, aud: clientId, jti: randomUUID() }),
    ]);
    return signing.then(([accessToken, idToken]) => {
      this.#accessTokens.set(sha256Hex(accessToken), family.id);
      return {
        access_token: accessToken,
        id_token: idToken,
        refresh_token: refreshToken,
        token_type: 'Bearer',
        expires_in: lifetimes.accessTokenTtlSeconds,
      };
    });
  }
}
