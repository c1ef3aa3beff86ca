import { ConfigurationError } from './core/errors';
import type { LifetimePolicy } from './core/model';
import { SETTING_BOUNDS as B, type IntegerBound } from './settings-bounds';

const DAY = 86_400;

/** Where the functions find the IdP. */
export type IdpConfig =
  | { readonly flavor: 'transmit'; readonly baseUrl: string }
  | {
      readonly flavor: 'oauth2';
      readonly tokenEndpoint: string;
      readonly clientAuth: 'client_secret_basic' | 'client_secret_post';
      readonly revocationEndpoint: string | undefined;
    };

/** Where the client credentials come from: Secrets Manager in AWS, plain values locally. */
export type CredentialsConfig =
  | { readonly source: 'secretsManager'; readonly secretId: string }
  | { readonly source: 'static'; readonly clientId: string; readonly clientSecret: string };

/** Which key encrypts token material: KMS in AWS, a local AES key in embedded mode. */
export type CipherConfig =
  | { readonly kind: 'kms'; readonly keyId: string }
  | { readonly kind: 'local'; readonly keyBase64: string };

/** How storeTokens verifies ID tokens; undefined when it does not. */
export interface IdTokenConfig {
  readonly jwksUrl: string;
  readonly issuer: string;
  readonly audience: string;
}

/** The deadline of every AWS SDK call (DynamoDB, KMS, Secrets Manager, EventBridge). */
export interface AwsCallLimits {
  /** One attempt, from sending the request to the answer's headers; an attempt past it fails. */
  readonly requestTimeoutMs: number;
  /** Attempts per call, the first included: the SDK retries throttling and transient errors. */
  readonly maxAttempts: number;
}

/** Defaults of {@link AwsCallLimits}: `AWS_REQUEST_TIMEOUT_MS` and `AWS_MAX_ATTEMPTS`. */
export const DEFAULT_AWS_CALL_LIMITS: AwsCallLimits = Object.freeze({
  requestTimeoutMs: 2000,
  maxAttempts: 2,
});

/** The SDK's backoff before retry n (1-based) is at most min(cap, base x 2^(n-1)), jittered down. */
export const AWS_RETRY_BASE_MS = 100;
/** The longest backoff between two attempts of one AWS call. */
export const AWS_RETRY_CAP_MS = 1000;

/**
 * Time kept on a lease beyond the IdP timeout and the bounded commit: leases are written with one
 * instance's clock and judged with another's (NTP keeps Lambda clocks well under 100 ms apart), and
 * an instance can stall briefly between steps (garbage collection, sealing the tokens).
 */
export const LEASE_MARGIN_MS = 1000;

/** The longest one AWS call can take under `limits`: every attempt times out, every backoff is the longest. */
export function awsCallBoundMs(limits: AwsCallLimits): number {
  let backoffMs = 0;
  for (let retry = 1; retry < limits.maxAttempts; retry++) {
    backoffMs += Math.min(AWS_RETRY_CAP_MS, AWS_RETRY_BASE_MS * 2 ** (retry - 1));
  }
  return limits.maxAttempts * limits.requestTimeoutMs + backoffMs;
}

/**
 * The longest one commit write can take: sealing the tokens (a KMS GenerateDataKey when the data
 * key is due, with KMS) and the conditional PutItem, each bounded by `limits`.
 */
export function commitBoundMs(limits: AwsCallLimits, cipher: CipherConfig['kind']): number {
  return (cipher === 'kms' ? 2 : 1) * awsCallBoundMs(limits);
}

/** Everything the functions read from the environment, read once. */
export interface Config {
  readonly tableName: string;
  readonly idp: IdpConfig;
  readonly credentials: CredentialsConfig | undefined;
  readonly cipher: CipherConfig;
  readonly lifetimes: LifetimePolicy;
  readonly resourceLifetimes: Readonly<Record<string, Partial<LifetimePolicy>>>;
  readonly idpTimeoutMs: number;
  /** Error codes (`error` or CIS `error_code`) that prove a refresh token dead; `npm run probe-idp` tells them. */
  readonly idpDeadTokenCodes: readonly string[];
  readonly leaseSeconds: number;
  /** Deadline and attempts of every AWS SDK call. */
  readonly aws: AwsCallLimits;
  /** The longest a commit write can take ({@link commitBoundMs}); the rotation keeps this much of its lease for it. */
  readonly commitBoundMs: number;
  readonly dueShards: number;
  readonly sweepConcurrency: number;
  readonly idpRequestsPerSecond: number;
  readonly reauthSoonSeconds: number;
  /** Access-token lifetime assumed when a refresh answer omits `expires_in`. */
  readonly defaultAccessTokenSeconds: number;
  /** Refresh tokens rejected (any users) within 10 minutes that open the rejection circuit breaker. */
  readonly rejectionBreakerThreshold: number;
  readonly metricsNamespace: string;
  /** POWERTOOLS_METRICS_DISABLED=true: no EMF records (local runs). */
  readonly metricsDisabled: boolean;
  readonly serviceName: string;
  readonly eventBusName: string | undefined;
  readonly logLevel: string;
  readonly idToken: IdTokenConfig | undefined;
}

type Env = Readonly<Record<string, string | undefined>>;

/** Reads and validates the configuration; throws ConfigurationError naming the first bad setting. */
export function loadConfig(env: Env): Config {
  const read = reader(env);
  const flavor = read.oneOf('IDP_FLAVOR', ['transmit', 'oauth2'] as const, 'transmit');
  const idp: IdpConfig =
    flavor === 'transmit'
      ? { flavor, baseUrl: read.url('TRANSMIT_BASE_URL', 'https://api.transmitsecurity.io') }
      : {
          flavor,
          tokenEndpoint: read.url('OAUTH2_TOKEN_ENDPOINT'),
          clientAuth: read.oneOf(
            'OAUTH2_CLIENT_AUTH',
            ['client_secret_basic', 'client_secret_post'] as const,
            'client_secret_basic',
          ),
          revocationEndpoint: read.optionalUrl('OAUTH2_REVOCATION_ENDPOINT'),
        };

  const secretId = read.optional('CLIENT_CREDENTIALS_SECRET_ARN');
  const clientId = read.optional('CLIENT_ID');
  let credentials: CredentialsConfig | undefined;
  if (secretId) credentials = { source: 'secretsManager', secretId };
  else if (clientId)
    credentials = { source: 'static', clientId, clientSecret: read.required('CLIENT_SECRET') };

  const keyId = read.optional('TOKEN_KEY_ARN');
  const localKey = read.optional('LOCAL_TOKEN_KEY');
  if (!keyId && !localKey) {
    throw new ConfigurationError('TOKEN_KEY_ARN is required (or LOCAL_TOKEN_KEY for local use only)');
  }
  const cipher: CipherConfig = keyId ? { kind: 'kms', keyId } : { kind: 'local', keyBase64: localKey! };

  const lifetimes: LifetimePolicy = {
    refreshTokenTtlSeconds: read.int('REFRESH_TOKEN_TTL_SECONDS', 14 * DAY, 60),
    maxRotationSeconds: read.int('MAX_ROTATION_SECONDS', 365 * DAY, 60),
    refreshAheadSeconds: read.int('REFRESH_AHEAD_SECONDS', 3 * DAY, 1),
  };
  checkLifetimes('', lifetimes);
  const resourceLifetimes = parseResourceLifetimes(read.optional('RESOURCE_LIFETIMES'), lifetimes);

  const idpTimeoutMs = read.int('IDP_TIMEOUT_MS', 5000, ...range(B.idpTimeoutMs));
  const leaseSeconds = read.int('LEASE_SECONDS', 30, 1);
  const aws: AwsCallLimits = Object.freeze({
    requestTimeoutMs: read.int(
      'AWS_REQUEST_TIMEOUT_MS',
      DEFAULT_AWS_CALL_LIMITS.requestTimeoutMs,
      50,
      60_000,
    ),
    maxAttempts: read.int('AWS_MAX_ATTEMPTS', DEFAULT_AWS_CALL_LIMITS.maxAttempts, 1, 10),
  });
  const commitMs = commitBoundMs(aws, cipher.kind);
  // A lease must outlive the IdP call and the commit after it, or a waiting caller may take it over
  // and present the refresh token the IdP just consumed.
  const neededMs = idpTimeoutMs + commitMs + LEASE_MARGIN_MS;
  if (leaseSeconds * 1000 <= neededMs) {
    throw new ConfigurationError(
      `LEASE_SECONDS must be longer than IDP_TIMEOUT_MS + the bounded commit (AWS_MAX_ATTEMPTS x AWS_REQUEST_TIMEOUT_MS + backoff${cipher.kind === 'kms' ? ', for KMS and DynamoDB' : ''}) + ${LEASE_MARGIN_MS} ms: ${leaseSeconds * 1000} ms <= ${idpTimeoutMs} + ${commitMs} + ${LEASE_MARGIN_MS} ms`,
    );
  }
  // On by default once a JWKS is named; ID_TOKEN_VERIFICATION=off is the explicit way out.
  const jwksUrl = read.optionalUrl('ID_TOKEN_JWKS_URL');
  const verification = read.oneOf('ID_TOKEN_VERIFICATION', ['on', 'off'] as const, jwksUrl ? 'on' : 'off');
  let idToken: IdTokenConfig | undefined;
  if (verification === 'on') {
    if (!jwksUrl)
      throw new ConfigurationError('ID_TOKEN_JWKS_URL is required when ID_TOKEN_VERIFICATION is on');
    const audience = read.optional('ID_TOKEN_AUDIENCE') ?? clientId;
    if (!audience) throw new ConfigurationError("ID_TOKEN_AUDIENCE is required (the app's client id)");
    idToken = Object.freeze({ jwksUrl, issuer: read.required('ID_TOKEN_ISSUER'), audience });
  }

  return Object.freeze({
    idToken,
    tableName: read.required('TOKEN_TABLE_NAME'),
    idp: Object.freeze(idp),
    credentials: credentials ? Object.freeze(credentials) : undefined,
    cipher: Object.freeze(cipher),
    lifetimes: Object.freeze(lifetimes),
    resourceLifetimes,
    idpTimeoutMs,
    leaseSeconds,
    aws,
    commitBoundMs: commitMs,
    dueShards: read.int('DUE_SHARDS', 4, ...range(B.dueShards)),
    sweepConcurrency: read.int('SWEEP_CONCURRENCY', 8, ...range(B.sweepConcurrency)),
    idpRequestsPerSecond: read.int('IDP_RATE_LIMIT_RPS', 20, ...range(B.idpRateLimitPerSecond)),
    idpDeadTokenCodes: parseDeadTokenCodes(read.optional('IDP_DEAD_TOKEN_CODES')),
    reauthSoonSeconds: read.int('REAUTH_SOON_DAYS', 14, ...range(B.reauthSoonDays)) * DAY,
    defaultAccessTokenSeconds: read.int(
      'ACCESS_TOKEN_DEFAULT_SECONDS',
      3600,
      ...range(B.accessTokenDefaultSeconds),
    ),
    rejectionBreakerThreshold: read.int('REJECTION_BREAKER_THRESHOLD', 10, 1, 1_000_000),
    metricsNamespace: read.optional('METRICS_NAMESPACE') ?? 'TokenKeeper',
    metricsDisabled: read.optional('POWERTOOLS_METRICS_DISABLED')?.toLowerCase() === 'true',
    serviceName: read.optional('POWERTOOLS_SERVICE_NAME') ?? 'token-keeper',
    eventBusName: read.optional('EVENT_BUS_NAME'),
    logLevel: read.oneOf('LOG_LEVEL', ['DEBUG', 'INFO', 'WARN', 'ERROR', 'SILENT'] as const, 'INFO'),
  });
}

/** A bound as the (min, max) arguments of `read.int`. */
function range(bound: IntegerBound): [number, number] {
  return [bound.min, bound.max];
}

/** Rejects lifetimes that cannot work together. */
function checkLifetimes(where: string, policy: LifetimePolicy): void {
  if (policy.refreshAheadSeconds >= policy.refreshTokenTtlSeconds) {
    throw new ConfigurationError(
      `REFRESH_AHEAD_SECONDS${where} must be shorter than REFRESH_TOKEN_TTL_SECONDS${where}`,
    );
  }
}

function parseResourceLifetimes(
  raw: string | undefined,
  defaults: LifetimePolicy,
): Readonly<Record<string, Partial<LifetimePolicy>>> {
  if (!raw) return Object.freeze({});
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ConfigurationError('RESOURCE_LIFETIMES must be a JSON object');
  }
  if (!isPlainObject(parsed)) throw new ConfigurationError('RESOURCE_LIFETIMES must be a JSON object');
  const result: Record<string, Partial<LifetimePolicy>> = Object.create(null);
  const fields = ['refreshTokenTtlSeconds', 'maxRotationSeconds', 'refreshAheadSeconds'] as const;
  for (const [resource, value] of Object.entries(parsed)) {
    if (!isPlainObject(value)) {
      throw new ConfigurationError(`RESOURCE_LIFETIMES["${resource}"] must be an object`);
    }
    const override: { -readonly [K in keyof LifetimePolicy]?: number } = {};
    for (const [field, seconds] of Object.entries(value)) {
      if (!(fields as readonly string[]).includes(field)) {
        throw new ConfigurationError(`RESOURCE_LIFETIMES["${resource}"].${field} is not a known lifetime`);
      }
      if (typeof seconds !== 'number' || !Number.isSafeInteger(seconds) || seconds < 1) {
        throw new ConfigurationError(`RESOURCE_LIFETIMES["${resource}"].${field} must be a positive integer`);
      }
      override[field as (typeof fields)[number]] = seconds;
    }
    checkLifetimes(`["${resource}"]`, { ...defaults, ...override });
    result[resource] = Object.freeze(override);
  }
  return Object.freeze(result);
}

/** `IDP_DEAD_TOKEN_CODES`: comma-separated OAuth-style codes (lower case and underscores). */
function parseDeadTokenCodes(raw: string | undefined): readonly string[] {
  if (raw === undefined) return Object.freeze(['invalid_grant']);
  const codes = raw
    .split(',')
    .map((code) => code.trim())
    .filter((code) => code.length > 0);
  if (codes.length === 0 || codes.some((code) => !/^[a-z_]{1,64}$/.test(code))) {
    throw new ConfigurationError(
      'IDP_DEAD_TOKEN_CODES must be a comma-separated list of error codes (lower case letters and _)',
    );
  }
  return Object.freeze([...new Set(codes)]);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function reader(env: Env) {
  const optional = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value ? value : undefined;
  };
  const required = (name: string): string => {
    const value = optional(name);
    if (value === undefined) throw new ConfigurationError(`${name} is required`);
    return value;
  };
  const optionalUrl = (name: string): string | undefined => {
    const value = optional(name);
    if (value === undefined) return undefined;
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new ConfigurationError(`${name} must be an absolute URL`);
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopback(url.hostname))) {
      throw new ConfigurationError(`${name} must use https (http only for localhost)`);
    }
    return value.replace(/\/+$/, '');
  };
  return {
    optional,
    required,
    optionalUrl,
    url(name: string, fallback?: string): string {
      const value = optionalUrl(name) ?? fallback;
      if (value === undefined) throw new ConfigurationError(`${name} is required`);
      return value;
    },
    int(name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
      const value = optional(name);
      if (value === undefined) return fallback;
      const parsed = Number(value);
      if (!/^\d+$/.test(value) || !Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
        throw new ConfigurationError(`${name} must be an integer between ${min} and ${max}`);
      }
      return parsed;
    },
    oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
      const value = optional(name) ?? fallback;
      if (!(allowed as readonly string[]).includes(value)) {
        throw new ConfigurationError(`${name} must be one of ${allowed.join(', ')}`);
      }
      return value as T;
    },
  };
}

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

let fromEnvironment: Config | undefined;

/** The configuration of this process, read from `process.env` once: the only reader of the environment. */
export function configFromEnvironment(): Config {
  fromEnvironment ??= loadConfig(process.env);
  return fromEnvironment;
}
