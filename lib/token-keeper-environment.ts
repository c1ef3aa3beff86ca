import { METRICS_NAMESPACE } from './token-keeper-monitoring';
import type {
  IdentityProviderSettings,
  IdTokenVerificationSettings,
  ResourceLifetimeOverrides,
  TokenKeeperProps,
} from './token-keeper-props';
import type { ResolvedSettings } from './token-keeper-settings';

/*
 * The environment of each function: what functions/config.ts reads, from the construct's settings.
 * README "Configuration" names each variable beside its prop.
 */

/** The environments the functions are given, from the least to the most a function needs. */
export interface FunctionEnvironments {
  /**
   * What every function needs to build its runtime (functions/config.ts requires the table and the
   * key ARN even where they are unused) and to log and count.
   */
  readonly base: Readonly<Record<string, string>>;
  /** The bus of the functions that publish. */
  readonly events: Readonly<Record<string, string>>;
  /** `base` plus the lifetimes, due shards and re-auth notice of the functions that write records. */
  readonly common: Readonly<Record<string, string>>;
  /** `common` plus the IdP, its secret, timeout and lease, and the bus: the functions that refresh. */
  readonly refresh: Readonly<Record<string, string>>;
  /** `common` plus the ID-token verification: storeTokens. */
  readonly storeTokens: Readonly<Record<string, string>>;
}

/** The deployed names and ARNs the environments carry. */
export interface EnvironmentResources {
  readonly tableName: string;
  readonly tokenKeyArn: string;
  readonly eventBusName: string;
  readonly clientCredentialsSecretArn: string;
}

/** Builds every function's environment; throws at synth on a dead-token code or threshold the functions would refuse. */
export function functionEnvironments(
  settings: ResolvedSettings,
  props: TokenKeeperProps,
  r: EnvironmentResources,
): FunctionEnvironments {
  const base: Record<string, string> = {
    TOKEN_TABLE_NAME: r.tableName,
    TOKEN_KEY_ARN: r.tokenKeyArn,
    METRICS_NAMESPACE,
    POWERTOOLS_SERVICE_NAME: settings.serviceName,
    LOG_LEVEL: settings.logLevel,
    NODE_OPTIONS: '--enable-source-maps',
  };
  const events = { EVENT_BUS_NAME: r.eventBusName };
  const common: Record<string, string> = {
    ...base,
    REFRESH_TOKEN_TTL_SECONDS: String(settings.refreshTokenTtl.toSeconds()),
    MAX_ROTATION_SECONDS: String(settings.maxRotation.toSeconds()),
    REFRESH_AHEAD_SECONDS: String(settings.refreshAhead.toSeconds()),
    DUE_SHARDS: String(settings.dueShards),
    REAUTH_SOON_DAYS: String(settings.reauthSoon.toDays()),
    ...(props.resourceLifetimes !== undefined && Object.keys(props.resourceLifetimes).length > 0
      ? { RESOURCE_LIFETIMES: JSON.stringify(resourceLifetimesJson(props.resourceLifetimes)) }
      : {}),
  };
  const refresh: Record<string, string> = {
    ...common,
    ...identityProviderEnv(props.identityProvider),
    ...(props.idpDeadTokenCodes !== undefined
      ? { IDP_DEAD_TOKEN_CODES: deadTokenCodes(props.idpDeadTokenCodes) }
      : {}),
    ...(props.rejectionBreakerThreshold !== undefined
      ? { REJECTION_BREAKER_THRESHOLD: String(breakerThreshold(props.rejectionBreakerThreshold)) }
      : {}),
    CLIENT_CREDENTIALS_SECRET_ARN: r.clientCredentialsSecretArn,
    IDP_TIMEOUT_MS: String(settings.idpTimeout.toMilliseconds()),
    LEASE_SECONDS: String(settings.leaseDuration.toSeconds()),
    ...events,
  };
  const storeTokens = { ...common, ...idTokenEnv(props.idTokenVerification, props.identityProvider) };
  return { base, events, common, refresh, storeTokens };
}

function identityProviderEnv(idp: IdentityProviderSettings): Record<string, string> {
  if (idp.flavor === 'transmit') {
    return { IDP_FLAVOR: 'transmit', TRANSMIT_BASE_URL: idp.baseUrl };
  }
  return {
    IDP_FLAVOR: 'oauth2',
    OAUTH2_TOKEN_ENDPOINT: idp.tokenEndpoint,
    OAUTH2_CLIENT_AUTH: idp.clientAuth ?? 'client_secret_basic',
    ...(idp.revocationEndpoint ? { OAUTH2_REVOCATION_ENDPOINT: idp.revocationEndpoint } : {}),
  };
}

/** storeTokens' ID-token settings: none unless verification is configured (the issuer cannot be guessed). */
function idTokenEnv(
  v: IdTokenVerificationSettings | undefined,
  idp: IdentityProviderSettings,
): Record<string, string> {
  if (v === undefined) return {};
  const jwksUrl =
    v.jwksUrl ?? (idp.flavor === 'transmit' ? `${idp.baseUrl.replace(/\/+$/, '')}/cis/oidc/jwks` : '');
  return {
    ID_TOKEN_VERIFICATION: 'on',
    ID_TOKEN_JWKS_URL: jwksUrl,
    ID_TOKEN_ISSUER: v.issuer,
    ID_TOKEN_AUDIENCE: v.audience,
  };
}

/** The RESOURCE_LIFETIMES value: resource URI -> lifetimes in seconds, only those set. */
function resourceLifetimesJson(
  overrides: Readonly<Record<string, ResourceLifetimeOverrides>>,
): Record<string, Record<string, number>> {
  const result: Record<string, Record<string, number>> = {};
  for (const [resource, o] of Object.entries(overrides)) {
    result[resource] = {
      ...(o.refreshTokenTtl ? { refreshTokenTtlSeconds: o.refreshTokenTtl.toSeconds() } : {}),
      ...(o.maxRotation ? { maxRotationSeconds: o.maxRotation.toSeconds() } : {}),
      ...(o.refreshAhead ? { refreshAheadSeconds: o.refreshAhead.toSeconds() } : {}),
    };
  }
  return result;
}

/** `IDP_DEAD_TOKEN_CODES` from the prop; throws at synth on a code the functions would refuse. */
function deadTokenCodes(codes: readonly string[]): string {
  for (const code of codes) {
    if (!/^[a-z_]{1,64}$/.test(code)) {
      throw new Error(`idpDeadTokenCodes: "${code}" is not an OAuth error code (lower case and underscores)`);
    }
  }
  return [...new Set(['invalid_grant', ...codes])].join(',');
}

/** `REJECTION_BREAKER_THRESHOLD` from the prop; throws at synth outside 1..1,000,000. */
function breakerThreshold(threshold: number): number {
  if (!Number.isInteger(threshold) || threshold < 1 || threshold > 1_000_000) {
    throw new Error('rejectionBreakerThreshold must be an integer between 1 and 1000000');
  }
  return threshold;
}
