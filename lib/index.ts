/** The CDK side of token-keeper: the construct, its monitoring, the stack, the app and the example caller. */
export { buildTokenKeeperApp } from './app';
export { type StackFromContext, stackFromContext, TRANSMIT_SANDBOX_URL } from './context';
export { ExampleCaller, type ExampleCallerProps } from './example-caller';
export {
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
  METRICS_NAMESPACE,
  type TokenKeeperMetricName,
  TokenKeeperMonitoring,
  type TokenKeeperMonitoringProps,
} from './token-keeper-monitoring';
export { TokenKeeperStack, type TokenKeeperStackProps } from './token-keeper-stack';
