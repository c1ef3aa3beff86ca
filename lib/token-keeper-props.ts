import type { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type * as events from 'aws-cdk-lib/aws-events';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { AlarmDestination } from './token-keeper-monitoring';

/** The identity provider the functions refresh tokens with. */
export type IdentityProviderSettings =
  | {
      readonly flavor: 'transmit';
      /** Regional Transmit host, e.g. `https://api.transmitsecurity.io`. */
      readonly baseUrl: string;
    }
  | {
      readonly flavor: 'oauth2';
      /** RFC 6749 token endpoint used for the refresh grant. */
      readonly tokenEndpoint: string;
      /**
       * How the client authenticates at the token endpoint.
       * @default 'client_secret_basic'
       */
      readonly clientAuth?: 'client_secret_basic' | 'client_secret_post';
      /**
       * RFC 7009 revocation endpoint, used when a user is disconnected.
       * @default - refresh tokens are not revoked at the IdP on disconnect
       */
      readonly revocationEndpoint?: string;
    };

/**
 * How storeTokens verifies the ID token of a sign-in (signature against the IdP's JWKS, issuer,
 * audience, expiry, and `sub` equal to the userId), so tokens cannot be filed under the wrong user.
 */
export interface IdTokenVerificationSettings {
  /**
   * The IdP's JWKS (https).
   * @default - transmit: `{baseUrl}/cis/oidc/jwks`; required with the oauth2 flavour
   */
  readonly jwksUrl?: string;
  /**
   * The exact `iss` of the ID tokens (https URL). Transmit: `https://userid.security` (US), a
   * regional variant such as `https://eu.userid.security`, or the app's own subdomain when
   * app-specific signing keys are on: check the `iss` of one of your ID tokens.
   */
  readonly issuer: string;
  /** This app's client id: it must be among the token's `aud`. */
  readonly audience: string;
}

/** Lifetimes of one resource that differ from the defaults (Transmit sets them per resource). */
export interface ResourceLifetimeOverrides {
  /** @default - the construct's `refreshTokenTtl` */
  readonly refreshTokenTtl?: Duration;
  /** @default - the construct's `maxRotation` */
  readonly maxRotation?: Duration;
  /** @default - the construct's `refreshAhead` */
  readonly refreshAhead?: Duration;
}

/** Log levels the functions understand. */
export type TokenKeeperLogLevel = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';

/** Properties of {@link TokenKeeper}. */
export interface TokenKeeperProps {
  /** The IdP that issued the tokens. */
  readonly identityProvider: IdentityProviderSettings;
  /**
   * An existing secret holding `{"client_id","client_secret"}`.
   * @default - a new secret with a placeholder value, to be set after deploy
   */
  readonly clientCredentialsSecret?: secretsmanager.ISecret;
  /**
   * Service name: the `service` metric dimension and log field.
   * @default 'token-keeper'
   */
  readonly serviceName?: string;
  /**
   * A refresh token dies this long after it was issued unless rotated.
   * @default Duration.days(14)
   */
  readonly refreshTokenTtl?: Duration;
  /**
   * No rotation extends access beyond authentication plus this.
   * @default Duration.days(365)
   */
  readonly maxRotation?: Duration;
  /**
   * Rotate this long before a refresh token would expire. Also the longest IdP outage the
   * tokens survive, so keep it well above the sweep interval.
   * @default Duration.days(3)
   */
  readonly refreshAhead?: Duration;
  /**
   * Lifetimes per resource URI that differ from the defaults.
   * @default - none
   */
  readonly resourceLifetimes?: Readonly<Record<string, ResourceLifetimeOverrides>>;
  /**
   * Timeout of one IdP call. `leaseDuration` must exceed it by more than 10 s.
   * @default Duration.seconds(5)
   */
  readonly idpTimeout?: Duration;
  /**
   * How long a refresh lease lasts: it must outlive an IdP call plus the commit.
   * @default Duration.seconds(30)
   */
  readonly leaseDuration?: Duration;
  /**
   * Shards of the due index (spreads the sweep's queries).
   * @default 4
   */
  readonly dueShards?: number;
  /**
   * Rotations one sweep runs at the same time.
   * @default 8
   */
  readonly sweepConcurrency?: number;
  /**
   * Requests per second the sweep sends to the IdP at most, shared by its workers (an integer,
   * 1-10,000); a 429 slows it down further. getAccessToken is not limited: it refreshes on demand.
   * @default 20
   */
  readonly idpRateLimitPerSecond?: number;
  /**
   * The `Reauth Soon` event goes out once, this long before a record's absolute rotation deadline,
   * so the app can ask the user to sign in again ahead of time (whole days, 0-365).
   * @default Duration.days(14)
   */
  readonly reauthSoon?: Duration;
  /**
   * Error codes of a refresh answer that prove a refresh token dead, besides `invalid_grant`
   * (`IDP_DEAD_TOKEN_CODES`). Add what `npm run probe-idp` reports for your tenant; any other
   * refusal is retried, never taken as a dead token.
   * @default ['invalid_grant']
   */
  readonly idpDeadTokenCodes?: readonly string[];
  /**
   * Dead-token rejections (of any users) within 10 minutes that open the rejection circuit
   * breaker (`REJECTION_BREAKER_THRESHOLD`): past it nobody more is marked.
   * @default 10
   */
  readonly rejectionBreakerThreshold?: number;
  /**
   * Verify the ID token in storeTokens. Off unless given: the issuer is specific to the app's
   * Transmit tenant and region, so it cannot be guessed.
   * @default - ID tokens are not verified
   */
  readonly idTokenVerification?: IdTokenVerificationSettings;
  /**
   * How often the sweep runs (whole minutes).
   * @default Duration.minutes(15)
   */
  readonly sweepInterval?: Duration;
  /**
   * Reserved concurrency of the sweep (1-1000), so overlapping sweeps cannot multiply the IdP load.
   * None by default: a new account has 10 concurrent executions, all of which must stay unreserved,
   * so any reservation fails its first deploy. Overlapping sweeps are harmless (leases), only busier.
   * @default false - none reserved
   */
  readonly sweepReservedConcurrency?: number | false;
  /**
   * Memory of the sweep in MB (128-10240). Lambda gives CPU in proportion to memory, and the sweep's
   * work (TLS to the IdP, KMS, DynamoDB) grows with its concurrency.
   * @default - 16 MB per unit of sweepConcurrency, at least 512 and at most 3008
   */
  readonly sweepMemorySize?: number;
  /**
   * Log level of the functions.
   * @default 'INFO'
   */
  readonly logLevel?: TokenKeeperLogLevel;
  /**
   * Retention of the functions' log groups.
   * @default logs.RetentionDays.THREE_MONTHS
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * What happens to the table, keys, created secret and log groups when the stack is deleted.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * DynamoDB deletion protection of the table.
   * @default - true unless `removalPolicy` is DESTROY
   */
  readonly deletionProtection?: boolean;
  /**
   * The EventBridge bus for the app's events (`Reauth Required`, `Reauth Soon`, `Tokens Expired`,
   * `Rotation Recovered`, `Disconnected`; source `token-keeper`). The publishing functions may put
   * events with that source on this bus only.
   * @default - the account's default bus
   */
  readonly eventBus?: events.IEventBus;
  /**
   * E-mail address subscribed to the alarm topics this construct creates.
   * @default - no subscription
   */
  readonly alarmEmail?: string;
  /**
   * Where critical alarms go (tokens at risk: page someone): an existing topic, or actions.
   * @default - a topic of the construct's own
   */
  readonly criticalAlarms?: AlarmDestination;
  /**
   * Where warnings go (look within a working day): an existing topic, or actions.
   * @default - a topic of the construct's own
   */
  readonly warningAlarms?: AlarmDestination;
  /**
   * Run the alarm actions also when an alarm returns to OK.
   * @default true
   */
  readonly notifyOnOk?: boolean;
  /**
   * Consecutive sweeps that must leave a backlog before the backlog alarm fires (1 up to a day of sweeps).
   * @default 2
   */
  readonly sweepBacklogAlarmPeriods?: number;
  /**
   * Whether to create the CloudWatch dashboard.
   * @default true
   */
  readonly dashboard?: boolean;
}

/** A principal to grant, optionally with an environment to receive the function name (a Lambda). */
export interface TokenKeeperGrantee extends iam.IGrantable {
  /** Sets an environment variable; `lambda.Function` has it. */
  addEnvironment?(key: string, value: string): unknown;
}

/** The functions a caller may be granted. */
export type CallableFunction = 'GetAccessToken' | 'StoreTokens' | 'Disconnect' | 'TokenStatus';
