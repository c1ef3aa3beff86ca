import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Node } from 'constructs';
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
  TokenKeeperLogLevel,
} from './token-keeper-props';
import type { TokenKeeperStackProps } from './token-keeper-stack';

/** The Transmit sandbox: used when no IdP is given, so `cdk synth` works in CI without context. */
export const TRANSMIT_SANDBOX_URL = 'https://api.sbx.transmitsecurity.io';

/** What `bin/app.ts` needs to build the stack from `-c key=value` / cdk.json context. */
export interface StackFromContext {
  readonly stackId: string;
  readonly props: Omit<TokenKeeperStackProps, 'clientCredentialsSecret' | 'eventBus'>;
  /** Things an operator should know (printed as synth warnings). */
  readonly warnings: readonly string[];
}

/** Reads the stack's settings from context values; throws naming the key of a bad value. */
export function stackFromContext(node: Node): StackFromContext {
  const read = contextReader(node);
  const warnings: string[] = [];

  const tokenEndpoint = read.string('oauth2TokenEndpoint');
  const flavor =
    read.oneOf('idpFlavor', ['transmit', 'oauth2'] as const) ?? (tokenEndpoint ? 'oauth2' : 'transmit');
  let identityProvider: IdentityProviderSettings;
  if (flavor === 'oauth2') {
    if (!tokenEndpoint) throw new Error('context oauth2TokenEndpoint is required when idpFlavor is oauth2');
    identityProvider = {
      flavor,
      tokenEndpoint,
      clientAuth: read.oneOf('oauth2ClientAuth', ['client_secret_basic', 'client_secret_post'] as const),
      revocationEndpoint: read.string('oauth2RevocationEndpoint'),
    };
  } else {
    const baseUrl = read.string('transmitBaseUrl');
    if (!baseUrl) {
      warnings.push(
        `No transmitBaseUrl in context: using the Transmit sandbox (${TRANSMIT_SANDBOX_URL}). ` +
          'Pass -c transmitBaseUrl=https://api.transmitsecurity.io (or your region) for production.',
      );
    }
    identityProvider = { flavor, baseUrl: baseUrl ?? TRANSMIT_SANDBOX_URL };
  }

  const idTokenVerification = idTokenVerificationFrom(read);
  const reauthSoonDays = read.int('reauthSoonDays', SETTING_BOUNDS.reauthSoonDays);

  const removal = read.oneOf('removalPolicy', ['retain', 'destroy'] as const) ?? 'retain';
  const reserved = read.string('sweepReservedConcurrency');
  const sweepMinutes = read.int('sweepIntervalMinutes', SETTING_BOUNDS.sweepIntervalMinutes);
  const retentionDays = read.int('logRetentionDays');
  if (retentionDays !== undefined && !Object.values(logs.RetentionDays).includes(retentionDays)) {
    throw new Error(
      'context logRetentionDays must be a CloudWatch Logs retention (1, 3, 5, 7, 14, 30, 60, 90, ...)',
    );
  }

  return {
    stackId: read.string('stackName') ?? 'TokenKeeper',
    warnings,
    props: {
      identityProvider,
      clientCredentialsSecretArn: read.string('clientCredentialsSecretArn'),
      eventBusName: read.string('eventBusName'),
      idTokenVerification,
      idpRateLimitPerSecond: read.int('idpRateLimitPerSecond', SETTING_BOUNDS.idpRateLimitPerSecond),
      sweepConcurrency: read.int('sweepConcurrency', SETTING_BOUNDS.sweepConcurrency),
      dueShards: read.int('dueShards', SETTING_BOUNDS.dueShards),
      sweepMemorySize: read.int('sweepMemorySize'),
      sweepBacklogAlarmPeriods: read.int(
        'sweepBacklogAlarmPeriods',
        backlogAlarmPeriodsBound(sweepMinutes ?? DEFAULT_SWEEP_INTERVAL_MINUTES),
      ),
      criticalAlarmTopicArn: read.string('criticalAlarmTopicArn'),
      warningAlarmTopicArn: read.string('warningAlarmTopicArn'),
      clientCredentialsSecretKeyArn: read.string('clientCredentialsSecretKeyArn'),
      reauthSoon: reauthSoonDays === undefined ? undefined : Duration.days(reauthSoonDays),
      alarmEmail: read.string('alarmEmail'),
      serviceName: read.string('serviceName'),
      sweepInterval: sweepMinutes === undefined ? undefined : Duration.minutes(sweepMinutes),
      sweepReservedConcurrency:
        reserved === undefined
          ? undefined
          : reserved === 'none'
            ? false
            : inBound(
                'sweepReservedConcurrency',
                parseInteger('sweepReservedConcurrency', reserved),
                SETTING_BOUNDS.sweepReservedConcurrency,
              ),
      logLevel: read.oneOf('logLevel', [
        'DEBUG',
        'INFO',
        'WARN',
        'ERROR',
      ] as const satisfies readonly TokenKeeperLogLevel[]),
      logRetention: retentionDays as logs.RetentionDays | undefined,
      removalPolicy: removal === 'destroy' ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN,
      exampleCaller: read.bool('exampleCaller') ?? false,
      exampleApiUrl: read.string('exampleApiUrl'),
    },
  };
}

/** ID-token verification from context: issuer and audience together, or none of the three keys. */
function idTokenVerificationFrom(read: ContextReader): IdTokenVerificationSettings | undefined {
  const jwksUrl = read.string('idTokenJwksUrl');
  const issuer = read.string('idTokenIssuer');
  const audience = read.string('idTokenAudience');
  if (jwksUrl === undefined && issuer === undefined && audience === undefined) return undefined;
  if (issuer === undefined || audience === undefined) {
    throw new Error(
      'context idTokenIssuer and idTokenAudience are both required to verify ID tokens (idTokenJwksUrl defaults for transmit)',
    );
  }
  return { issuer, audience, ...(jwksUrl === undefined ? {} : { jwksUrl }) };
}

type ContextReader = ReturnType<typeof contextReader>;

/** Context values arrive as strings from `-c`, or as JSON values from cdk.json. */
function contextReader(node: Node) {
  const raw = (key: string): unknown => {
    const value: unknown = node.tryGetContext(key);
    return value === '' ? undefined : value;
  };
  const string = (key: string): string | undefined => {
    const value = raw(key);
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'string') throw new Error(`context ${key} must be a string`);
    return value.trim() || undefined;
  };
  return {
    string,
    int(key: string, bound?: IntegerBound): number | undefined {
      const value = raw(key);
      if (value === undefined || value === null) return undefined;
      const parsed = parseInteger(key, String(value));
      return bound ? inBound(key, parsed, bound) : parsed;
    },
    bool(key: string): boolean | undefined {
      const value = raw(key);
      if (value === undefined || value === null) return undefined;
      if (value === true || value === 'true') return true;
      if (value === false || value === 'false') return false;
      throw new Error(`context ${key} must be true or false`);
    },
    oneOf<T extends string>(key: string, allowed: readonly T[]): T | undefined {
      const value = string(key);
      if (value === undefined) return undefined;
      if (!(allowed as readonly string[]).includes(value)) {
        throw new Error(`context ${key} must be one of ${allowed.join(', ')}`);
      }
      return value as T;
    },
  };
}

/** The construct's default sweep interval, for the backlog bound when none is given. */
const DEFAULT_SWEEP_INTERVAL_MINUTES = 15;

function inBound(key: string, value: number, bound: IntegerBound): number {
  if (!withinBound(value, bound)) throw new Error(`context ${boundMessage(key, bound)}`);
  return value;
}

function parseInteger(key: string, value: string): number {
  if (!/^\d+$/.test(value.trim())) throw new Error(`context ${key} must be a positive integer`);
  return Number(value.trim());
}
