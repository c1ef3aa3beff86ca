/** Which endpoint a fault applies to. */
export type FaultTarget = 'refresh' | 'token' | 'both';

/**
 * How a faulted request misbehaves. `processFirst` handles the request normally (the refresh
 * token is consumed) and only then fails the answer: the "IdP answered but we never saw it" case.
 * Without it the request is rejected before the refresh token is looked at.
 */
export type Fault = (
  | { kind: 'status'; status: 500 | 502 | 503 | 504 | 403; processFirst?: boolean }
  | { kind: 'rateLimit'; retryAfterSeconds: number }
  | { kind: 'timeout'; processFirst?: boolean }
  | { kind: 'reset'; processFirst?: boolean }
  /**
   * Answers `400 invalid_grant` without looking at the token, as a wrong tenant or region would:
   * the token is not consumed, and every user looks revoked.
   */
  | { kind: 'deadToken' }
) & {
  /** Which endpoint the fault applies to. @default 'refresh' */
  target?: FaultTarget;
};

/** Controls the failures the emulator injects into the refresh (and optionally token) endpoint. */
export interface FaultInjector {
  /** Added latency in ms for every refresh (and token) request. */
  latencyMs: number;
  /** Fail the next `count` refresh requests with this behaviour, then behave normally. */
  failNext(count: number, fault: Fault): void;
  /** Fail each refresh request with this probability (uses an injectable/seeded random: Math.random by default). */
  failRate(rate: number, fault: Fault): void;
  /** Back to normal: no latency, no queued or random faults. */
  reset(): void;
}

/** What happened to one refresh request. */
export type RefreshOutcome = 'rotated' | 'grace' | 'reuse' | 'unknown' | 'expired' | 'revoked' | 'deadline';

/**
 * One refresh request as the emulator saw it. `status` is what the client was sent (0 when the
 * connection was held or reset); `outcome` is `fault` when a fault rejected the request before the
 * token was looked at, otherwise what processing did (so a `processFirst` fault reads
 * `outcome: 'rotated'` with a 5xx or 0 `status`).
 */
export interface RefreshLogEntry {
  readonly tokenHash: string;
  readonly familyId: string | undefined;
  readonly status: number;
  readonly outcome: RefreshOutcome | 'fault';
  readonly atMs: number;
}

/** What a Transmit backend authentication returns. */
export interface TransmitTokenResponse {
  access_token: string;
  id_token: string;
  refresh_token: string;
  token_type: 'Bearer';
  expires_in: number;
  session_id: string;
}

/** What a Transmit refresh returns: a token set without `session_id`. */
export type TransmitRefreshResponse = Omit<TransmitTokenResponse, 'session_id'>;

/** What the client credentials grant returns. */
export interface ClientTokenResponse {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  scope: string;
}

/** Counters of `GET /local/stats`: numbers only, never token material. */
export interface TransmitStats {
  readonly refreshRequests: number;
  readonly rotated: number;
  readonly reuseDetections: number;
  readonly families: number;
  readonly revokedFamilies: number;
}

/**
 * How the emulator answers a dead refresh token (unknown, expired, revoked, reused, past the
 * rotation deadline). Transmit's public documentation does not say, so each form is offered:
 * - `mixed`: `400 {"message","error_code":400,"error":"invalid_grant"}` (the default);
 * - `oauth`: `400 {"error":"invalid_grant","error_description"}` (RFC 6749 section 5.2);
 * - `cis-400`: `400 {"message","error_code":<deadTokenErrorCode>}` (CIS style, no `error`);
 * - `cis-401`: `401 {"message","error_code":<deadTokenErrorCode>}` (CIS style, no `error`).
 */
export type DeadTokenStyle = 'mixed' | 'oauth' | 'cis-400' | 'cis-401';

/** How the emulator answers a logout (also undocumented). */
export interface LogoutBehaviour {
  /** The status of a successful logout. @default 204 */
  readonly loggedOut?: 200 | 204;
  /** The status for a session that does not exist (or no longer does). @default 404 */
  readonly unknownSession?: 404 | 400 | 204;
  /**
   * Whether the app's client token may log a session out. When false only the user's own access
   * token (of that session) may, and a client token is answered 403. @default true
   */
  readonly acceptsClientToken?: boolean;
}
