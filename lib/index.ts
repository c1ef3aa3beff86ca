/**
 * The CDK side of token-keeper, as the package exports it (`token-keeper`, `token-keeper/cdk`):
 * the construct, its monitoring, the stack and the example caller. The app of this repository
 * (lib/app.ts, with cdk-nag) is not part of it.
 */

export { DISCONNECT_FUNCTION_ENV } from '../functions/client/env';
export { type StackFromContext, stackFromContext, TRANSMIT_SANDBOX_URL } from './context';
export { ExampleCaller, type ExampleCallerProps } from './example-caller';
export { TokenKeeper } from './token-keeper';
export {
  type AlarmDestination,
  type AlarmSeverity,
  METRICS_NAMESPACE,
  type TokenKeeperMetricName,
  TokenKeeperMonitoring,
  type TokenKeeperMonitoringProps,
} from './token-keeper-monitoring';
export {
  EVENT_SOURCE,
  STREAM_READ_ACTIONS,
  TABLE_ACTIONS,
  TOKEN_KEY_ENCRYPTION_CONTEXT,
} from './token-keeper-permissions';
export type {
  CallableFunction,
  IdentityProviderSettings,
  IdTokenVerificationSettings,
  ResourceLifetimeOverrides,
  TokenKeeperGrantee,
  TokenKeeperLogLevel,
  TokenKeeperProps,
} from './token-keeper-props';
export { FUNCTION_TIMEOUTS } from './token-keeper-settings';
export { TokenKeeperStack, type TokenKeeperStackProps } from './token-keeper-stack';
