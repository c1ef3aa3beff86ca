import { ConfigurationError } from './core/errors';
import type { LifetimePolicy } from './core/model';

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

/** Everything the functions read from the environment, read once. */
export interface Config {
  readonly tableName: string;
  readonly idp: IdpConfig;
  readonly credentials: CredentialsConfig | undefined;
  readonly cipher: CipherConfig;
  readonly lifetimes: LifetimePolicy;
  readonly resourceLifetimes: Readonly<Record<string, Partial<LifetimePolicy>>>;
  readonly idpTimeoutMs: number;
  readonly leaseSeconds: number;
  readonly dueShards: number;
  readonly sweepConcurrency: number;
  readonly idpRequestsPerSecond: number;
  readonly reauthSoonSeconds: number;
  /** Access-token lifetime assumed when a refresh answer omits `expires_in`. */
  readonly defaultAccessTokenSeconds: number;
  readonly metricsNamespace: string;
  /** POWERTOOLS_METRICS_DISABLED=true: no EMF records (local runs). */
  readonly metricsDisabled: boolean;
  readonly serviceName: string;
  readonly eventBusName: string | undefined;
  /**
   * SWEEP_CHAIN_MAX: how many sweeps in a row may continue one another (each invoking the next at
   * once while a backlog remains). 0, the default, waits for the schedule. The stack sets it only
   * where the sweep's reserved concurrency of 1 keeps those runs from overlapping.
   */
  readonly sweepChainMax: number;
  /** AWS_LAMBDA_FUNCTION_NAME: the function's own name (the sweep invokes itself with it). */
  readonly functionName: string | undefined;
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

  const idpTimeoutMs = read.int('IDP_TIMEOUT_MS', 5000, 100);
  const leaseSeconds = read.int('LEASE_SECONDS', 30, 1);
  if (leaseSeconds * 1000 <= idpTimeoutMs * 2) {
    throw new ConfigurationError(
      'LEASE_SECONDS must be longer than twice IDP_TIMEOUT_MS (a lease outlives a call and its commit)',
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
    dueShards: read.int('DUE_SHARDS', 4, 1, 64),
    sweepConcurrency: read.int('SWEEP_CONCURRENCY', 8, 1, 256),
    idpRequestsPerSecond: read.int('IDP_RATE_LIMIT_RPS', 20, 1, 10_000),
    reauthSoonSeconds: read.int('REAUTH_SOON_DAYS', 14, 0, 365) * DAY,
    defaultAccessTokenSeconds: read.int('ACCESS_TOKEN_DEFAULT_SECONDS', 3600, 60, 7 * DAY),
    metricsNamespace: read.optional('METRICS_NAMESPACE') ?? 'TokenKeeper',
    metricsDisabled: read.optional('POWERTOOLS_METRICS_DISABLED')?.toLowerCase() === 'true',
    serviceName: read.optional('POWERTOOLS_SERVICE_NAME') ?? 'token-keeper',
    eventBusName: read.optional('EVENT_BUS_NAME'),
    sweepChainMax: read.int('SWEEP_CHAIN_MAX', 0, 0, 1000),
    functionName: read.optional('AWS_LAMBDA_FUNCTION_NAME'),
    logLevel: read.oneOf('LOG_LEVEL', ['DEBUG', 'INFO', 'WARN', 'ERROR', 'SILENT'] as const, 'INFO'),
  });
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
