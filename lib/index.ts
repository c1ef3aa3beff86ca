/**
 * The CDK side of token-keeper, as the package exports it (`token-keeper`, `token-keeper/cdk`):
 * the construct, its monitoring, the stack and the example caller. The app of this repository
 * (lib/app.ts, with cdk-nag) is not part of it.
 */
export { type StackFromContext, stackFromContext, TRANSMIT_SANDBOX_URL } from './context';
export { ExampleCaller, type ExampleCallerProps } from './example-caller';
export {
  type CallableFunction,
  DISCONNECT_FUNCTION_ENV,
  EVENT_SOURCE,
  FUNCTION_TIMEOUTS,
  type IdentityProviderSettings,
  type IdTokenVerificationSettings,
  type ResourceLifetimeOverrides,
  STREAM_READ_ACTIONS,
  TABLE_ACTIONS,
  TOKEN_KEY_ENCRYPTION_CONTEXT,
  TokenKeeper,
  type TokenKeeperGrantee,
  type TokenKeeperLogLevel,
  type TokenKeeperProps,
} from './token-keeper';
export {
  type AlarmDestination,
  type AlarmSeverity,
  METRICS_NAMESPACE,
  type TokenKeeperMetricName,
  TokenKeeperMonitoring,
  type TokenKeeperMonitoringProps,
} from './token-keeper-monitoring';
export { TokenKeeperStack, type TokenKeeperStackProps } from './token-keeper-stack';
