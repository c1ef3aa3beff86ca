import { Duration, Token } from 'aws-cdk-lib';
import {
  backlogAlarmPeriodsBound,
  boundMessage,
  type IntegerBound,
  SETTING_BOUNDS,
  withinBound,
} from '../functions/settings-bounds';
import type {
  IdentityProviderSettings,
  IdTokenVerificationSettings,
  ResourceLifetimeOverrides,
  TokenKeeperLogLevel,
  TokenKeeperProps,
} from './token-keeper-props';

/** Fixed function timeouts: the lease and IdP timeout are validated against them. */
export const FUNCTION_TIMEOUTS = {
  storeTokens: Duration.seconds(10),
  getAccessToken: Duration.seconds(30),
  refreshSweep: Duration.seconds(300),
  disconnect: Duration.seconds(30),
  // A batch of up to 100 removals, one PutEvents call each.
  expiryStream: Duration.seconds(60),
  // One consistent GetItem with a projection.
  tokenStatus: Duration.seconds(10),
} as const;

/** What Lambda accepts as a function's memory, in MB. */
const SWEEP_MEMORY_BOUND: IntegerBound = { min: 128, max: 10_240 };

/** The sweep's memory when not set: 16 MB per IdP call in flight, 512 to 3008 MB. */
export function defaultSweepMemorySize(sweepConcurrency: number): number {
  return Math.min(3008, Math.max(512, 16 * sweepConcurrency));
}

/** Time a function needs besides the IdP call: lease, KMS, the commit and its retries. */
const COMMIT_BUDGET_MS = 10_000;

/** Settings with their defaults applied. */
export interface ResolvedSettings {
  readonly serviceName: string;
  readonly refreshTokenTtl: Duration;
  readonly maxRotation: Duration;
  readonly refreshAhead: Duration;
  readonly idpTimeout: Duration;
  readonly leaseDuration: Duration;
  readonly dueShards: number;
  readonly sweepConcurrency: number;
  readonly idpRateLimitPerSecond: number;
  readonly reauthSoon: Duration;
  readonly idTokenVerification: IdTokenVerificationSettings | undefined;
  readonly sweepInterval: Duration;
  readonly sweepReservedConcurrency: number | undefined;
  readonly sweepMemorySize: number | undefined;
  readonly sweepBacklogAlarmPeriods: number;
  readonly logLevel: TokenKeeperLogLevel;
  readonly resourceLifetimes: Readonly<Record<string, ResourceLifetimeOverrides>>;
}

/** The props with their defaults applied. */
export function resolveSettings(props: TokenKeeperProps): ResolvedSettings {
  return {
    serviceName: props.serviceName ?? 'token-keeper',
    refreshTokenTtl: props.refreshTokenTtl ?? Duration.days(14),
    maxRotation: props.maxRotation ?? Duration.days(365),
    refreshAhead: props.refreshAhead ?? Duration.days(3),
    idpTimeout: props.idpTimeout ?? Duration.seconds(5),
    leaseDuration: props.leaseDuration ?? Duration.seconds(30),
    dueShards: props.dueShards ?? 4,
    sweepConcurrency: props.sweepConcurrency ?? 8,
    idpRateLimitPerSecond: props.idpRateLimitPerSecond ?? 20,
    reauthSoon: props.reauthSoon ?? Duration.days(14),
    idTokenVerification: props.idTokenVerification,
    sweepInterval: props.sweepInterval ?? Duration.minutes(15),
    sweepReservedConcurrency:
      props.sweepReservedConcurrency === false ? undefined : props.sweepReservedConcurrency,
    sweepMemorySize: props.sweepMemorySize,
    sweepBacklogAlarmPeriods: props.sweepBacklogAlarmPeriods ?? 2,
    logLevel: props.logLevel ?? 'INFO',
    resourceLifetimes: props.resourceLifetimes ?? {},
  };
}

/**
 * Throws at synth when settings break an invariant of docs/architecture.md, so a prop change cannot
 * deploy a service whose lease may expire during an IdP call, or whose tokens expire between sweeps.
 */
export function validateSettings(s: ResolvedSettings, idp: IdentityProviderSettings): void {
  const fail = (message: string): never => {
    throw new Error(`TokenKeeper: ${message}`);
  };
  const idpMs = s.idpTimeout.toMilliseconds();
  if (idpMs <= 0) fail('idpTimeout must be positive');
  if (s.leaseDuration.toMilliseconds() <= idpMs + COMMIT_BUDGET_MS) {
    fail(
      `leaseDuration (${s.leaseDuration.toMilliseconds()} ms) must exceed idpTimeout + 10 s (${idpMs + COMMIT_BUDGET_MS} ms): ` +
        'the lease has to outlive an IdP call plus the commit',
    );
  }
  // functions/config.ts refuses LEASE_SECONDS <= 2 x IDP_TIMEOUT_MS: fail here, not at the first call.
  if (s.leaseDuration.toMilliseconds() <= 2 * idpMs) {
    fail('leaseDuration must exceed twice idpTimeout (the functions refuse a shorter lease)');
  }
  for (const [name, timeout] of [
    ['getAccessToken', FUNCTION_TIMEOUTS.getAccessToken],
    ['refreshSweep', FUNCTION_TIMEOUTS.refreshSweep],
  ] as const) {
    if (timeout.toMilliseconds() < idpMs + COMMIT_BUDGET_MS) {
      fail(`idpTimeout + 10 s must fit in the ${name} timeout (${timeout.toSeconds()} s)`);
    }
  }
  const check = (name: string, value: number, bound: IntegerBound) => {
    if (!withinBound(value, bound)) fail(boundMessage(name, bound));
  };
  const intervalSeconds = s.sweepInterval.toSeconds({ integral: false });
  const intervalMinutes = intervalSeconds / 60;
  check('sweepInterval (whole minutes)', intervalMinutes, SETTING_BOUNDS.sweepIntervalMinutes);
  check('sweepBacklogAlarmPeriods', s.sweepBacklogAlarmPeriods, backlogAlarmPeriodsBound(intervalMinutes));
  checkLifetimes('defaults', s.refreshTokenTtl, s.refreshAhead, intervalSeconds, fail);
  for (const [resource, overrides] of Object.entries(s.resourceLifetimes)) {
    if (resource === '') fail('resourceLifetimes keys must be resource URIs, not empty');
    checkLifetimes(
      `resource ${resource}`,
      overrides.refreshTokenTtl ?? s.refreshTokenTtl,
      overrides.refreshAhead ?? s.refreshAhead,
      intervalSeconds,
      fail,
    );
  }
  // The same bounds as the functions' configuration module (one module), so a deploy cannot fail at start.
  check('idpTimeout (ms)', idpMs, SETTING_BOUNDS.idpTimeoutMs);
  check('dueShards', s.dueShards, SETTING_BOUNDS.dueShards);
  check('sweepConcurrency', s.sweepConcurrency, SETTING_BOUNDS.sweepConcurrency);
  check('idpRateLimitPerSecond', s.idpRateLimitPerSecond, SETTING_BOUNDS.idpRateLimitPerSecond);
  const reauthSoonDays = s.reauthSoon.toSeconds({ integral: false }) / 86_400;
  check('reauthSoon (whole days)', reauthSoonDays, SETTING_BOUNDS.reauthSoonDays);
  if (s.sweepReservedConcurrency !== undefined) {
    check('sweepReservedConcurrency', s.sweepReservedConcurrency, SETTING_BOUNDS.sweepReservedConcurrency);
  }
  if (s.sweepMemorySize !== undefined) check('sweepMemorySize (MB)', s.sweepMemorySize, SWEEP_MEMORY_BOUND);
  if (s.idTokenVerification !== undefined) checkIdTokenVerification(s.idTokenVerification, idp, fail);
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(s.serviceName)) {
    fail('serviceName must be 1-64 characters of letters, digits, ".", "_" or "-"');
  }
  const urls = idp.flavor === 'transmit' ? [idp.baseUrl] : [idp.tokenEndpoint, idp.revocationEndpoint];
  for (const url of urls) {
    if (url !== undefined && !Token.isUnresolved(url) && !isHttpsUrl(url)) {
      fail(`the IdP URLs must be https URLs (got "${url}")`);
    }
  }
}

/** The ID-token settings the functions' configuration accepts; the JWKS defaults only for Transmit. */
function checkIdTokenVerification(
  v: IdTokenVerificationSettings,
  idp: IdentityProviderSettings,
  fail: (message: string) => never,
): void {
  if (v.jwksUrl === undefined && idp.flavor !== 'transmit') {
    fail('idTokenVerification.jwksUrl is required with the oauth2 flavour');
  }
  for (const [name, url] of [
    ['jwksUrl', v.jwksUrl],
    ['issuer', v.issuer],
  ] as const) {
    if (url !== undefined && !Token.isUnresolved(url) && !isHttpsUrl(url)) {
      fail(`idTokenVerification.${name} must be an https URL (got "${url}")`);
    }
  }
  if (!Token.isUnresolved(v.audience) && v.audience.trim() === '') {
    fail("idTokenVerification.audience must be the app's client id, not empty");
  }
}

/** Refresh-ahead must leave the token alive at rotation time and span at least two sweeps. */
function checkLifetimes(
  what: string,
  refreshTokenTtl: Duration,
  refreshAhead: Duration,
  sweepIntervalSeconds: number,
  fail: (message: string) => never,
): void {
  if (refreshAhead.toSeconds() >= refreshTokenTtl.toSeconds()) {
    fail(`${what}: refreshAhead must be shorter than refreshTokenTtl`);
  }
  if (refreshAhead.toSeconds() < 2 * sweepIntervalSeconds) {
    fail(`${what}: refreshAhead must be at least two sweep intervals, so every due token is seen twice`);
  }
}

function isHttpsUrl(value: string): boolean {
  try {
    return new URL(value).protocol === 'https:';
  } catch {
    return false;
  }
}
