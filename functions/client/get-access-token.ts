import { LambdaClient } from '@aws-sdk/client-lambda';
import { ConfigurationError, ValidationError } from '../core/errors';
import { DEFAULT_RESOURCE } from '../core/model';
import { Secret } from '../core/secret';
import { MAX_MIN_VALIDITY_SECONDS, parseCorrelationId } from '../core/validation';
import { GET_ACCESS_TOKEN_FUNCTION_ENV, TOKEN_STATUS_FUNCTION_ENV } from './env';
import { invokeForObject, malformedAnswer } from './invoke';
import { invokeTokenStatus, type TokenStatus, type TokenStatusRequest } from './token-status';

/** What a caller asks for. */
export interface GetAccessTokenRequest {
  readonly userId: string;
  /**
   * The resource URI the tokens were issued for.
   * @default 'default'
   */
  readonly resource?: string;
  /**
   * The token must stay valid at least this long.
   * @default 60
   */
  readonly minValiditySeconds?: number;
  /**
   * Carried into every log line of the call at token-keeper (letters, digits and `._:-`, at most
   * 128 characters), so that its logs can be found from the caller's. Concurrent callers that share
   * one invocation share the first caller's id.
   * @default - none
   */
  readonly correlationId?: string;
}

/** A valid access token. */
export interface AccessToken {
  /** The token: call `reveal()` where it goes into the Authorization header, nowhere else. */
  readonly accessToken: Secret;
  /** Usually `Bearer`. */
  readonly tokenType: string;
  /** When the access token expires, ISO 8601. */
  readonly expiresAt: string;
  /**
   * True when the token could not be refreshed now and is the best there is: valid until
   * `expiresAt`, possibly for less than the validity that was asked for.
   */
  readonly stale: boolean;
}

/** Options of {@link createTokenKeeperClient}. */
export interface TokenKeeperClientOptions {
  /**
   * Name or ARN of the getAccessToken function.
   * @default - the TOKEN_KEEPER_GET_ACCESS_TOKEN_FUNCTION environment variable (set by grantGetAccessToken)
   */
  readonly functionName?: string;
  /**
   * Name or ARN of the tokenStatus function.
   * @default - the TOKEN_KEEPER_TOKEN_STATUS_FUNCTION environment variable (set by grantTokenStatus)
   */
  readonly tokenStatusFunctionName?: string;
  /**
   * The Lambda client to invoke with.
   * @default - one client shared by this module
   */
  readonly lambdaClient?: LambdaClient;
  /**
   * Time source of the cache.
   * @default Date.now
   */
  readonly clock?: { nowMs(): number };
  /**
   * Most (user, resource) tokens kept; the least recently used go first.
   * @default 1000
   */
  readonly cacheSize?: number;
}

/** Gets access tokens from token-keeper, with a per-instance cache. */
export interface TokenKeeperClient {
  /** A token valid for at least `minValiditySeconds`; invokes the function only when the cached one is not. */
  getAccessToken(request: GetAccessTokenRequest): Promise<AccessToken>;
  /** Forgets the cached token (e.g. after the API it was sent to answered 401). */
  invalidate(key: { readonly userId: string; readonly resource?: string }): void;
  /**
   * Where the user's offline access stands (`ACTIVE`, or `REAUTH_REQUIRED` with its reason), with
   * the rotation deadline, the last rotation and the failures; never a token, never cached.
   * Throws TokenNotFoundError when nothing is stored for the user.
   */
  getTokenStatus(request: TokenStatusRequest): Promise<TokenStatus>;
}

const DEFAULT_MIN_VALIDITY_SECONDS = 60;

interface CachedToken {
  readonly token: AccessToken;
  readonly expiresAtMs: number;
}

interface InFlight {
  readonly minValiditySeconds: number;
  readonly result: Promise<CachedToken>;
}

/**
 * How long one Invoke may take: the functions run for at most 30 s (their timeout), so an answer
 * later than this is not coming.
 */
export const INVOKE_TIMEOUT_MS = 35_000;

/**
 * The configuration of the client's own Lambda client: every attempt has a deadline that fails it
 * (the SDK only warns unless `throwOnRequestTimeout` is set), and a throttled or failed attempt is
 * retried once. A hung connection then costs a caller at most two deadlines, never its whole run.
 */
export function defaultLambdaClientConfig(
  requestTimeoutMs = INVOKE_TIMEOUT_MS,
): NonNullable<ConstructorParameters<typeof LambdaClient>[0]> {
  return {
    requestHandler: {
      connectionTimeout: Math.min(3000, requestTimeoutMs),
      requestTimeout: requestTimeoutMs,
      throwOnRequestTimeout: true,
    },
    maxAttempts: 2,
  };
}

let sharedLambdaClient: LambdaClient | undefined;

/** One Lambda client for the whole module (connection reuse across invocations). */
function sharedClient(): LambdaClient {
  sharedLambdaClient ??= new LambdaClient(defaultLambdaClientConfig());
  return sharedLambdaClient;
}

/** Creates a client; callers usually keep one per Lambda instance (module scope). */
export function createTokenKeeperClient(options: TokenKeeperClientOptions = {}): TokenKeeperClient {
  const clock = options.clock ?? { nowMs: () => Date.now() };
  const cacheSize = options.cacheSize ?? 1000;
  if (!Number.isInteger(cacheSize) || cacheSize < 1)
    throw new ConfigurationError('cacheSize must be a positive integer');
  const cache = new Map<string, CachedToken>();
  const inFlight = new Map<string, InFlight>();

  // Read at call time, not import time: the caller's module loads before its handler runs.
  const functionName = (): string => {
    const name = options.functionName ?? process.env[GET_ACCESS_TOKEN_FUNCTION_ENV];
    if (!name) {
      throw new ConfigurationError(
        `${GET_ACCESS_TOKEN_FUNCTION_ENV} is not set: grant this function with grantGetAccessToken or pass functionName`,
      );
    }
    return name;
  };

  const invoke = async (request: NormalizedRequest): Promise<CachedToken> => {
    const name = functionName();
    const client = options.lambdaClient ?? sharedClient();
    return parseAccessToken(await invokeForObject(client, name, 'getAccessToken', request));
  };

  const remember = (key: string, entry: CachedToken): void => {
    cache.delete(key);
    cache.set(key, entry);
    while (cache.size > cacheSize) {
      const oldest = cache.keys().next().value;
      if (oldest === undefined) break;
      cache.delete(oldest);
    }
  };

  return {
    async getAccessToken(request: GetAccessTokenRequest): Promise<AccessToken> {
      const normalized = normalize(request);
      const key = cacheKey(normalized.userId, normalized.resource);
      const fresh = (entry: CachedToken | undefined): entry is CachedToken =>
        entry !== undefined && entry.expiresAtMs - clock.nowMs() >= normalized.minValiditySeconds * 1000;

      const cached = cache.get(key);
      if (fresh(cached)) {
        remember(key, cached);
        return cached.token;
      }
      // Concurrent callers for the same user share one invocation, when it asks for enough validity.
      const pending = inFlight.get(key);
      if (pending !== undefined && pending.minValiditySeconds >= normalized.minValiditySeconds) {
        return (await pending.result).token;
      }
      const result = invoke(normalized);
      const own: InFlight = { minValiditySeconds: normalized.minValiditySeconds, result };
      inFlight.set(key, own);
      try {
        const entry = await result;
        remember(key, entry);
        return entry.token;
      } finally {
        if (inFlight.get(key) === own) inFlight.delete(key);
      }
    },

    invalidate(key: { readonly userId: string; readonly resource?: string }): void {
      cache.delete(cacheKey(key.userId, key.resource ?? DEFAULT_RESOURCE));
    },

    async getTokenStatus(request: TokenStatusRequest): Promise<TokenStatus> {
      const name = options.tokenStatusFunctionName ?? process.env[TOKEN_STATUS_FUNCTION_ENV];
      if (!name) {
        throw new ConfigurationError(
          `${TOKEN_STATUS_FUNCTION_ENV} is not set: grant this function with grantTokenStatus or pass tokenStatusFunctionName`,
        );
      }
      return invokeTokenStatus(options.lambdaClient ?? sharedClient(), name, request);
    },
  };
}

const defaultClients = new Map<string, TokenKeeperClient>();

/**
 * Gets a valid access token for a user from token-keeper. Uses one client (and cache) per
 * function name for the whole Lambda instance.
 */
export function getAccessToken(
  request: GetAccessTokenRequest,
  options: Pick<TokenKeeperClientOptions, 'functionName'> = {},
): Promise<AccessToken> {
  const key = options.functionName ?? '';
  let client = defaultClients.get(key);
  if (client === undefined) {
    client = createTokenKeeperClient(options);
    defaultClients.set(key, client);
  }
  return client.getAccessToken(request);
}

/** Where a user's offline access stands (see {@link TokenKeeperClient.getTokenStatus}), with the module's shared client. */
export function getTokenStatus(
  request: TokenStatusRequest,
  options: Pick<TokenKeeperClientOptions, 'tokenStatusFunctionName'> = {},
): Promise<TokenStatus> {
  const key = `status:${options.tokenStatusFunctionName ?? ''}`;
  let client = defaultClients.get(key);
  if (client === undefined) {
    client = createTokenKeeperClient(options);
    defaultClients.set(key, client);
  }
  return client.getTokenStatus(request);
}

/** A request as the function receives it. */
interface NormalizedRequest {
  readonly userId: string;
  readonly resource: string;
  readonly minValiditySeconds: number;
  readonly correlationId?: string;
}

function normalize(request: GetAccessTokenRequest): NormalizedRequest {
  if (typeof request?.userId !== 'string' || request.userId === '') {
    throw new ValidationError('userId must be a non-empty string');
  }
  if (request.resource !== undefined && (typeof request.resource !== 'string' || request.resource === '')) {
    throw new ValidationError('resource must be a non-empty string when given');
  }
  const minValiditySeconds = request.minValiditySeconds ?? DEFAULT_MIN_VALIDITY_SECONDS;
  if (
    !Number.isInteger(minValiditySeconds) ||
    minValiditySeconds < 0 ||
    minValiditySeconds > MAX_MIN_VALIDITY_SECONDS
  ) {
    throw new ValidationError(`minValiditySeconds must be an integer from 0 to ${MAX_MIN_VALIDITY_SECONDS}`);
  }
  const correlationId = parseCorrelationId(request);
  return {
    userId: request.userId,
    resource: request.resource ?? DEFAULT_RESOURCE,
    minValiditySeconds,
    ...(correlationId === undefined ? {} : { correlationId }),
  };
}

function cacheKey(userId: string, resource: string): string {
  return JSON.stringify([userId, resource]);
}

/** Reads `{ accessToken, tokenType, expiresAt, stale }`; never echoes the answer in an error. */
function parseAccessToken(body: Record<string, unknown>): CachedToken {
  const malformed = () => malformedAnswer('getAccessToken');
  const { accessToken, tokenType, expiresAt, stale } = body;
  if (
    typeof accessToken !== 'string' ||
    accessToken === '' ||
    typeof tokenType !== 'string' ||
    tokenType === ''
  ) {
    throw malformed();
  }
  // ISO 8601 per the contract; epoch seconds accepted too, so a minor format change does not break callers.
  const expiresAtMs =
    typeof expiresAt === 'string'
      ? Date.parse(expiresAt)
      : typeof expiresAt === 'number'
        ? expiresAt * 1000
        : Number.NaN;
  if (!Number.isFinite(expiresAtMs)) throw malformed();
  return {
    token: {
      accessToken: new Secret(accessToken),
      tokenType,
      expiresAt: new Date(expiresAtMs).toISOString(),
      stale: stale === true,
    },
    expiresAtMs,
  };
}
