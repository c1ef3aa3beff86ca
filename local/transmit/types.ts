/** Which endpoint a fault applies to. */
export type FaultTarget = 'refresh' | 'token' | 'both';

/**
 * How a faulted request misbehaves. `processFirst` handles the request normally (the refresh
 * token is consumed) and only then fails the answer: the "IdP answered but we never saw it" case.
 * Without it the request is rejected before the refresh token is looked at.
 */
export type Fault = (
  | { kind: 'status'; status: 500 | 502 | 503 | 504; processFirst?: boolean }
  | { kind: 'rateLimit'; retryAfterSeconds: number }
  | { kind: 'timeout'; processFirst?: boolean }
  | { kind: 'reset'; processFirst?: boolean }
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
