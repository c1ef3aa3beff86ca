import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { type Config, configFromEnvironment, type IdTokenConfig } from '../config';
import { ConfigurationError } from '../core/errors';
import { ExpiryWatch } from '../core/expiry-watch';
import { DEFAULT_SCHEDULE } from '../core/lifetimes';
import type { LifetimePolicy } from '../core/model';
import type {
  Clock,
  EventPublisher,
  IdentityProvider,
  IdTokenVerifier,
  Logger,
  Metrics,
  SessionTerminator,
  TokenStore,
} from '../core/ports';
import type { LifetimeSettings } from '../core/reindex';
import { Restore } from '../core/restore';
import type { RotationDeps, RotationSettings } from '../core/rotation';
import { Sweep } from '../core/sweep';
import { TokenService } from '../core/token-service';
import { awsClientConfig } from './aws-client-config';
import { KmsTokenCipher } from './cipher/kms-cipher';
import { LocalTokenCipher } from './cipher/local-cipher';
import type { TokenCipher } from './cipher/token-cipher';
import { type ClientCredentialsSource, StaticClientCredentials } from './credentials/client-credentials';
import { SecretsManagerClientCredentials } from './credentials/secrets-manager-credentials';
import { DynamoDbTokenStore } from './dynamodb/dynamodb-token-store';
import { OAuth2IdentityProvider } from './idp/oauth2';
import { OAuth2SessionTerminator, TransmitSessionTerminator } from './idp/session-terminator';
import { TransmitIdentityProvider } from './idp/transmit';
import { EventBridgePublisher, LogEventPublisher } from './observability/events';
import { JsonLogger } from './observability/logger';
import { EmfMetrics } from './observability/metrics';
import { systemClock } from './system-clock';

/** Everything a handler needs, built once per Lambda instance. */
export interface Runtime {
  readonly config: Config;
  readonly tokenService: TokenService;
  readonly sweep: Sweep;
  /** The operator's restore of quarantined records. */
  readonly restore: Restore;
  readonly store: TokenStore;
  /** The IdP client, built on first call (throws ConfigurationError when its settings are missing). */
  idp(): IdentityProvider;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly events: EventPublisher;
  readonly clock: Clock;
  /** Watches TTL removals for lost tokens. */
  readonly expiryWatch: ExpiryWatch;
  /** Writes buffered metrics; handlers call it at the end of every invocation. */
  flush(): void;
}

/** Parts a test or the embedded runtime may replace. */
export interface RuntimeOverrides {
  readonly store?: TokenStore;
  readonly cipher?: TokenCipher;
  readonly idp?: IdentityProvider;
  readonly credentials?: ClientCredentialsSource;
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly metrics?: Metrics & { flush?(): void };
  readonly events?: EventPublisher;
  readonly sessions?: SessionTerminator;
  readonly idTokens?: IdTokenVerifier;
  /**
   * Builds the ID token verifier when the configuration asks for one. Only storeTokens verifies,
   * so only its handler passes this and only its bundle carries the verifier and its library;
   * without it, a configured verification fails closed (ConfigurationError on the first token).
   */
  readonly idTokenVerifierFor?: IdTokenVerifierFactory;
  readonly random?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly fetch?: typeof fetch;
  /** @default 100 */
  readonly sweepPageSize?: number;
}

/** Builds an ID token verifier from its settings, the runtime's clock and, in tests, its fetch. */
export type IdTokenVerifierFactory = (
  settings: IdTokenConfig,
  parts: { readonly clock: Clock; readonly fetch?: typeof fetch },
) => IdTokenVerifier;

/** Stands in for a verifier the configuration asks for but this function was not built with. */
const verifierNotBuilt: IdTokenVerifier = {
  verify: async () => {
    throw new ConfigurationError('ID token verification is configured but this function cannot verify');
  },
};

/** Builds the adapters that the configuration names and the two core services on top of them. */
export function buildRuntime(config: Config, overrides: RuntimeOverrides = {}): Runtime {
  const clock = overrides.clock ?? systemClock;
  const logger =
    overrides.logger ?? new JsonLogger({ serviceName: config.serviceName, logLevel: config.logLevel });
  const metrics =
    overrides.metrics ??
    new EmfMetrics({
      namespace: config.metricsNamespace,
      serviceName: config.serviceName,
      disabled: config.metricsDisabled,
    });
  const events =
    overrides.events ??
    (config.eventBusName
      ? new EventBridgePublisher(config.eventBusName, new EventBridgeClient(awsClientConfig(config.aws)))
      : new LogEventPublisher(logger));
  const store =
    overrides.store ??
    new DynamoDbTokenStore({
      tableName: config.tableName,
      limits: config.aws,
      dueShards: config.dueShards,
      cipher: overrides.cipher ?? cipherFor(config, clock),
    });
  // storeTokens never calls the IdP, so it needs no IdP settings: build the client on first use.
  let built: IdentityProvider | undefined = overrides.idp;
  const idpClient = (): IdentityProvider => {
    built ??= identityProviderFor(config, overrides, clock);
    return built;
  };
  const idp: IdentityProvider = { refresh: (token, options) => idpClient().refresh(token, options) };
  const sessions = overrides.sessions ?? sessionTerminatorFor(config, idpClient);
  const idTokens =
    overrides.idTokens ??
    (config.idToken
      ? (overrides.idTokenVerifierFor?.(config.idToken, {
          clock,
          ...(overrides.fetch ? { fetch: overrides.fetch } : {}),
        }) ?? verifierNotBuilt)
      : undefined);

  const deps: RotationDeps = {
    store,
    idp,
    clock,
    metrics,
    logger,
    events,
    random: overrides.random ?? Math.random,
    newLeaseId: randomUUID,
    sleep: overrides.sleep ?? ((ms) => sleep(ms)),
    settings: rotationSettings(config),
    sessions,
    ...(idTokens ? { idTokens } : {}),
  };
  return {
    config,
    tokenService: new TokenService(deps),
    sweep: new Sweep(deps, {
      concurrency: config.sweepConcurrency,
      pageSize: overrides.sweepPageSize ?? 100,
      idpRequestsPerSecond: config.idpRequestsPerSecond,
      reindex: { lifetimes: lifetimeSettings(config) },
    }),
    restore: new Restore(deps),
    store,
    idp: idpClient,
    logger,
    metrics,
    events,
    clock,
    expiryWatch: new ExpiryWatch({ metrics, logger, events, clock }),
    flush: () => metrics.flush?.(),
  };
}

/** The rotation settings that follow from the configuration. */
export function rotationSettings(config: Config): RotationSettings {
  return {
    idpTimeoutMs: config.idpTimeoutMs,
    leaseMs: config.leaseSeconds * 1000,
    // The configuration check proved that the lease covers the IdP timeout plus this.
    commitReserveMs: config.commitBoundMs,
    dueShards: config.dueShards,
    retryBaseSeconds: DEFAULT_SCHEDULE.retryBaseSeconds,
    retryCapSeconds: DEFAULT_SCHEDULE.retryCapSeconds,
    reauthRetentionSeconds: 30 * 86_400,
    reauthSoonSeconds: config.reauthSoonSeconds,
    defaultAccessTokenSeconds: config.defaultAccessTokenSeconds,
    rejectionBreaker: { threshold: config.rejectionBreakerThreshold, windowSeconds: 600 },
    lifetimesFor: (resource: string): LifetimePolicy => ({
      ...config.lifetimes,
      ...config.resourceLifetimes[resource],
    }),
  };
}

/** The lifetime settings stored records follow: a change that lowers one re-indexes them. */
export function lifetimeSettings(config: Config): LifetimeSettings {
  const resources: Record<string, LifetimePolicy> = {};
  for (const [resource, override] of Object.entries(config.resourceLifetimes)) {
    resources[resource] = { ...config.lifetimes, ...override };
  }
  return { defaults: config.lifetimes, resources, reauthSoonSeconds: config.reauthSoonSeconds };
}

function cipherFor(config: Config, clock: Clock): TokenCipher {
  const { cipher } = config;
  return cipher.kind === 'kms'
    ? new KmsTokenCipher({ keyId: cipher.keyId, clock, limits: config.aws })
    : LocalTokenCipher.fromBase64(cipher.keyBase64);
}

function identityProviderFor(config: Config, overrides: RuntimeOverrides, clock: Clock): IdentityProvider {
  const credentials = overrides.credentials ?? credentialsFor(config);
  const fetchFn = overrides.fetch;
  if (config.idp.flavor === 'transmit') {
    return new TransmitIdentityProvider({
      baseUrl: config.idp.baseUrl,
      credentials,
      deadTokenCodes: config.idpDeadTokenCodes,
      clock,
      ...(fetchFn ? { fetch: fetchFn } : {}),
    });
  }
  return new OAuth2IdentityProvider({
    tokenEndpoint: config.idp.tokenEndpoint,
    clientAuth: config.idp.clientAuth,
    credentials,
    deadTokenCodes: config.idpDeadTokenCodes,
    clock,
    ...(config.idp.revocationEndpoint ? { revocationEndpoint: config.idp.revocationEndpoint } : {}),
    ...(fetchFn ? { fetch: fetchFn } : {}),
  });
}

/** Logout (Transmit) or revocation (OAuth 2.0) through the same lazily built IdP client. */
function sessionTerminatorFor(config: Config, idpClient: () => IdentityProvider): SessionTerminator {
  const typed =
    <T>(kind: abstract new (...args: never[]) => T) =>
    (): T => {
      const client = idpClient();
      if (!(client instanceof kind)) throw new ConfigurationError('the IdP client cannot end sessions');
      return client;
    };
  return config.idp.flavor === 'transmit'
    ? new TransmitSessionTerminator(typed(TransmitIdentityProvider))
    : new OAuth2SessionTerminator(typed(OAuth2IdentityProvider));
}

function credentialsFor(config: Config): ClientCredentialsSource {
  const credentials = config.credentials;
  if (!credentials) {
    throw new ConfigurationError(
      'CLIENT_CREDENTIALS_SECRET_ARN is required (or CLIENT_ID and CLIENT_SECRET locally)',
    );
  }
  return credentials.source === 'secretsManager'
    ? new SecretsManagerClientCredentials({ secretId: credentials.secretId, limits: config.aws })
    : new StaticClientCredentials(credentials.clientId, credentials.clientSecret);
}

/** What a Lambda function does; the ones that call the IdP check its settings at start. */
export type FunctionRole =
  | 'storeTokens'
  | 'getAccessToken'
  | 'refreshSweep'
  | 'disconnect'
  | 'expiryStream'
  | 'restore'
  | 'tokenStatus';

/** The functions that never call the IdP, so need none of its settings. */
const WITHOUT_IDP: readonly FunctionRole[] = ['storeTokens', 'expiryStream', 'tokenStatus', 'restore'];

const instances = new Map<FunctionRole, Runtime>();

/** The runtime of this Lambda instance, built from the environment on first use. */
export function lambdaRuntime(role: FunctionRole, parts: RuntimeOverrides = {}): Runtime {
  let runtime = instances.get(role);
  if (!runtime) {
    runtime = buildRuntime(configFromEnvironment(), parts);
    if (!WITHOUT_IDP.includes(role)) runtime.idp();
    instances.set(role, runtime);
  }
  return runtime;
}
