import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { RetryErrorInfo, RetryStrategyV2, RetryToken } from '@smithy/types';
import { AWS_RETRY_BASE_MS, AWS_RETRY_CAP_MS, type AwsCallLimits, DEFAULT_AWS_CALL_LIMITS } from '../config';

/** The part of an AWS SDK v3 client's configuration that bounds how long its calls take. */
export interface BoundedClientConfig {
  readonly requestHandler: NodeHttpHandler;
  readonly retryStrategy: RetryStrategyV2;
  readonly maxAttempts: number;
}

/**
 * Client configuration whose calls end within `awsCallBoundMs(limits)`: each attempt has a request
 * timeout that fails the attempt (the SDK only logs a warning unless `throwOnRequestTimeout` is set,
 * and its default socket timeout is minutes long), and the retries are counted and their backoff
 * capped, so the whole call fits the budget that the configuration check proved.
 */
export function awsClientConfig(limits: AwsCallLimits = DEFAULT_AWS_CALL_LIMITS): BoundedClientConfig {
  return {
    requestHandler: new NodeHttpHandler({
      // Fail fast on an endpoint that does not accept the connection; the retry may reach another host.
      connectionTimeout: Math.min(1000, limits.requestTimeoutMs),
      requestTimeout: limits.requestTimeoutMs,
      throwOnRequestTimeout: true,
      // An answer whose body stalls after its headers: the request timeout no longer runs then.
      socketTimeout: limits.requestTimeoutMs,
    }),
    retryStrategy: new BoundedRetryStrategy(limits.maxAttempts),
    maxAttempts: limits.maxAttempts,
  };
}

/**
 * The SDK's standard retry rules (throttling and transient errors are retried) with a fixed number
 * of attempts and a capped, jittered backoff: unlike the standard strategy it never stretches a
 * delay to honour a `Retry-After` hint, so a call cannot outlive its bound.
 */
export class BoundedRetryStrategy implements RetryStrategyV2 {
  readonly mode = 'standard';

  constructor(
    private readonly maxAttempts: number,
    private readonly random: () => number = Math.random,
  ) {}

  async acquireInitialRetryToken(): Promise<RetryToken> {
    return retryToken(0, 0);
  }

  async refreshRetryTokenForRetry(token: RetryToken, errorInfo: RetryErrorInfo): Promise<RetryToken> {
    const retry = token.getRetryCount() + 1;
    const retryable = errorInfo.errorType === 'THROTTLING' || errorInfo.errorType === 'TRANSIENT';
    if (!retryable || retry >= this.maxAttempts) throw errorInfo.error;
    const ceilingMs = Math.min(AWS_RETRY_CAP_MS, AWS_RETRY_BASE_MS * 2 ** (retry - 1));
    // Equal jitter: between half and all of the ceiling, so retries of many callers spread out.
    return retryToken(retry, Math.floor(ceilingMs * (0.5 + this.random() / 2)));
  }

  recordSuccess(): void {}
}

function retryToken(count: number, delayMs: number): RetryToken {
  return { getRetryCount: () => count, getRetryDelay: () => delayMs };
}
