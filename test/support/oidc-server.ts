import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One confidential client registered at the test server. */
export interface OidcClientCredentials {
  readonly id: string;
  readonly secret: string;
}

/** The token response of a sign-in, as an OAuth 2.0 / OIDC provider would answer it. */
export interface OidcSignInTokens {
  readonly access_token: string;
  readonly refresh_token: string;
  readonly id_token?: string;
  readonly expires_in: number;
  readonly token_type: string;
}

/** One `grant_type=refresh_token` request seen by the server; never the raw token. */
export interface RefreshLogEntry {
  /** SHA-256 hex of the presented refresh token. */
  readonly tokenHash: string;
  /** HTTP status the server answered. */
  readonly status: number;
}

/** Options of `signIn`. */
export interface OidcSignInOptions {
  /**
   * Client the tokens are issued to; a refresh token only works for the client it was issued to.
   * @default the client_secret_basic client (`clients.basic.id`)
   */
  readonly clientId?: string;
}

/** A running, independent OAuth 2.0 / OIDC server (oidc-provider) with rotating refresh tokens. */
export interface OidcServer {
  /** `http://127.0.0.1:<port>` */
  readonly issuer: string;
  /** Token endpoint URL, from discovery. */
  readonly tokenEndpoint: string;
  /** Revocation endpoint URL (RFC 7009), from discovery. */
  readonly revocationEndpoint: string;
  /** Where the server publishes its ID token signing keys (`jwks_uri`), from discovery. */
  readonly jwksUri: string;
  /** Id of the client_secret_basic client (same as `clients.basic.id`). */
  readonly clientId: string;
  /** Secret of the client_secret_basic client (same as `clients.basic.secret`). */
  readonly clientSecret: string;
  /**
   * Both confidential clients: one registered for client_secret_basic, one for client_secret_post.
   * oidc-provider accepts either secret transport from either of them, so only the client's own
   * code decides which one is exercised.
   */
  readonly clients: { readonly basic: OidcClientCredentials; readonly post: OidcClientCredentials };
  /** Mints an initial refresh token (and access token) for an account without a browser, as a sign-in would. */
  signIn(accountId: string, options?: OidcSignInOptions): Promise<OidcSignInTokens>;
  /** Every refresh_token grant request observed: sha256 hex of the presented token + status answered. */
  readonly refreshLog: readonly RefreshLogEntry[];
  /** Stops the server and drops open keep-alive connections; calling it again does nothing. */
  close(): Promise<void>;
}

/** Options of `startOidcServer`. */
export interface OidcServerOptions {
  /**
   * Lifetime of each refresh token, counted from its issue; every rotation issues a token with a
   * fresh lifetime (sliding), as Transmit does.
   * @default 1_209_600 (14 days)
   */
  readonly refreshTokenTtlSeconds?: number;
  /**
   * The algorithm the server signs ID tokens with (it holds an RSA and a P-256 key).
   * @default 'RS256'
   */
  readonly idTokenAlg?: 'RS256' | 'ES256';
}

const DEFAULT_REFRESH_TOKEN_TTL_SECONDS = 14 * 24 * 60 * 60;
const ACCESS_TOKEN_TTL_SECONDS = 60 * 60;
/** The grant outlives its refresh tokens so rotation, not grant expiry, decides (Transmit's 1-year cap). */
const GRANT_TTL_SECONDS = 365 * 24 * 60 * 60;
const SCOPE = 'openid offline_access';
const SIGN_IN_GRANT_TYPE = 'authorization_code';

// --- The slice of oidc-provider's API this harness uses. The package ships no type declarations,
// --- so these describe just what is called here (see node_modules/oidc-provider/lib).

interface ProviderClient {
  readonly clientId: string;
}

interface ProviderToken {
  readonly expiration: number;
  save(): Promise<string>;
}

interface ProviderTokenInit {
  readonly accountId: string;
  readonly grantId: string;
  readonly client: ProviderClient;
  readonly gty: string;
  readonly scope: string;
  readonly authTime?: number;
  readonly rotations?: number;
}

interface ProviderGrant {
  addOIDCScope(scope: string): void;
  save(): Promise<string>;
}

interface ProviderIdToken {
  scope: string;
  issue(options: { use: 'idtoken' }): Promise<string>;
}

interface ProviderContext {
  status: number;
  readonly oidc?: { readonly route?: string; readonly params?: Readonly<Record<string, unknown>> };
}

interface RevocableToken {
  readonly clientId?: string;
}

interface Provider {
  readonly Client: { find(clientId: string): Promise<ProviderClient | undefined> };
  readonly Grant: new (init: { accountId: string; clientId: string }) => ProviderGrant;
  readonly RefreshToken: new (init: ProviderTokenInit) => ProviderToken;
  readonly AccessToken: new (init: ProviderTokenInit) => ProviderToken;
  readonly IdToken: new (
    claims: Record<string, unknown>,
    options: { client: ProviderClient },
  ) => ProviderIdToken;
  use(middleware: (ctx: ProviderContext, next: () => Promise<void>) => Promise<void>): void;
  callback(): RequestListener;
  on(event: 'server_error', listener: (ctx: unknown, error: unknown) => void): void;
}

type ProviderConstructor = new (issuer: string, configuration: Record<string, unknown>) => Provider;

interface OidcProviderModule {
  readonly default: ProviderConstructor;
}

interface DiscoveryDocument {
  readonly token_endpoint?: unknown;
  readonly revocation_endpoint?: unknown;
  readonly jwks_uri?: unknown;
}

/**
 * Notices oidc-provider prints about running outside production (Node 20 instead of 22, the
 * in-memory adapter). They are expected in a test harness and would bury real output; anything
 * else passes through.
 */
const EXPECTED_NOTICES = ['Unsupported runtime', 'quick start development-only'];

async function withoutExpectedNotices<T>(action: () => Promise<T> | T): Promise<T> {
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    const first = args[0];
    if (typeof first === 'string' && EXPECTED_NOTICES.some((notice) => first.includes(notice))) return;
    warn.apply(console, args);
  };
  try {
    return await action();
  } finally {
    console.warn = warn;
  }
}

async function loadProvider(): Promise<ProviderConstructor> {
  // A computed specifier: a literal one would make tsc demand type declarations that the package
  // does not ship; the module's shape is pinned by `OidcProviderModule` above instead.
  const specifier = 'oidc-provider';
  const module = (await import(specifier)) as OidcProviderModule;
  return module.default;
}

function sha256Hex(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function stop(server: Server): Promise<void> {
  if (!server.listening) return Promise.resolve();
  return new Promise((resolve, reject) => {
    server.close((error) => (error ? reject(error) : resolve()));
    // fetch keeps connections alive; without this, close() waits for them to time out.
    server.closeAllConnections();
  });
}

interface Endpoints {
  readonly tokenEndpoint: string;
  readonly revocationEndpoint: string;
  readonly jwksUri: string;
}

async function discover(issuer: string): Promise<Endpoints> {
  const response = await fetch(`${issuer}/.well-known/openid-configuration`);
  if (!response.ok) throw new Error(`OIDC discovery failed with HTTP ${response.status}`);
  const document = (await response.json()) as DiscoveryDocument;
  const {
    token_endpoint: tokenEndpoint,
    revocation_endpoint: revocationEndpoint,
    jwks_uri: jwksUri,
  } = document;
  if (
    typeof tokenEndpoint !== 'string' ||
    typeof revocationEndpoint !== 'string' ||
    typeof jwksUri !== 'string'
  ) {
    throw new Error('OIDC discovery document lacks token_endpoint, revocation_endpoint or jwks_uri');
  }
  return { tokenEndpoint, revocationEndpoint, jwksUri };
}

function newClient(label: string): OidcClientCredentials {
  return { id: `token-keeper-${label}`, secret: randomBytes(32).toString('base64url') };
}

function clientMetadata(
  client: OidcClientCredentials,
  authMethod: string,
  idTokenAlg: string,
): Record<string, unknown> {
  return {
    id_token_signed_response_alg: idTokenAlg,
    client_id: client.id,
    client_secret: client.secret,
    token_endpoint_auth_method: authMethod,
    grant_types: ['refresh_token', 'client_credentials'],
    response_types: [],
    redirect_uris: [],
  };
}

/**
 * Starts oidc-provider on 127.0.0.1 (random port) with two confidential clients, rotation of the
 * refresh token on every refresh and reuse detection (a consumed refresh token presented again
 * revokes the whole grant). State lives in the provider's in-memory adapter, an LRU of 1000 entries
 * per server: a sign-in takes about 4, a refresh 2, so keep one server to a few hundred operations.
 */
export async function startOidcServer(options: OidcServerOptions = {}): Promise<OidcServer> {
  const refreshTokenTtlSeconds = options.refreshTokenTtlSeconds ?? DEFAULT_REFRESH_TOKEN_TTL_SECONDS;
  const Provider = await withoutExpectedNotices(loadProvider);

  // The issuer must name the port, so the socket is bound before the provider exists.
  const server = createServer();
  const issuer = `http://127.0.0.1:${await listen(server)}`;

  const basic = newClient('basic');
  const post = newClient('post');
  const signingKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const ecSigningKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
    format: 'jwk',
  });
  const idTokenAlg = options.idTokenAlg ?? 'RS256';

  const configuration: Record<string, unknown> = {
    clients: [
      clientMetadata(basic, 'client_secret_basic', idTokenAlg),
      clientMetadata(post, 'client_secret_post', idTokenAlg),
    ],
    jwks: {
      keys: [
        { ...signingKey, kid: 'test-signing-key', alg: 'RS256', use: 'sig' },
        { ...ecSigningKey, kid: 'test-signing-key-ec', alg: 'ES256', use: 'sig' },
      ],
    },
    enabledJWA: { idTokenSigningAlgValues: ['RS256', 'ES256'] },
    scopes: SCOPE.split(' '),
    rotateRefreshToken: true,
    issueRefreshToken: async () => true,
    findAccount: async (_ctx: unknown, sub: string) => ({ accountId: sub, claims: async () => ({ sub }) }),
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      revocation: {
        enabled: true,
        // RFC 7009: a token of another client is not revoked, and the answer is still 200.
        allowedPolicy: async (_ctx: unknown, client: ProviderClient, token: RevocableToken) =>
          token.clientId === client.clientId,
      },
    },
    ttl: {
      AccessToken: ACCESS_TOKEN_TTL_SECONDS,
      ClientCredentials: ACCESS_TOKEN_TTL_SECONDS,
      IdToken: ACCESS_TOKEN_TTL_SECONDS,
      RefreshToken: refreshTokenTtlSeconds,
      Grant: Math.max(GRANT_TTL_SECONDS, refreshTokenTtlSeconds),
      Interaction: 60 * 60,
      Session: 14 * 24 * 60 * 60,
    },
  };

  let provider: Provider;
  try {
    provider = await withoutExpectedNotices(() => new Provider(issuer, configuration));
  } catch (error) {
    await stop(server);
    throw error;
  }

  const refreshLog: RefreshLogEntry[] = [];
  provider.use(async (ctx, next) => {
    await next();
    // Read after the provider answered, so the status is the one the client saw; ctx.oidc exists
    // only on the provider's own routes.
    const oidc = ctx.oidc;
    const presented = oidc?.params?.refresh_token;
    if (
      oidc?.route === 'token' &&
      oidc.params?.grant_type === 'refresh_token' &&
      typeof presented === 'string'
    ) {
      refreshLog.push({ tokenHash: sha256Hex(presented), status: ctx.status });
    }
  });
  // A 500 is a bug in the harness or the provider; make it visible instead of a bare status.
  provider.on('server_error', (_ctx, error) => {
    console.error('oidc-provider server_error', error);
  });
  server.on('request', provider.callback());

  let endpoints: Endpoints;
  try {
    endpoints = await discover(issuer);
  } catch (error) {
    await stop(server);
    throw error;
  }

  async function signIn(accountId: string, signInOptions: OidcSignInOptions = {}): Promise<OidcSignInTokens> {
    const clientId = signInOptions.clientId ?? basic.id;
    const client = await provider.Client.find(clientId);
    if (!client) throw new Error(`unknown client ${clientId}`);

    // What a completed authorization_code flow leaves behind: a grant of the scopes, then tokens bound to it.
    const grant = new provider.Grant({ accountId, clientId });
    grant.addOIDCScope(SCOPE);
    const grantId = await grant.save();

    const init: ProviderTokenInit = { accountId, grantId, client, gty: SIGN_IN_GRANT_TYPE, scope: SCOPE };
    const refreshToken = new provider.RefreshToken({
      ...init,
      authTime: Math.floor(Date.now() / 1000),
      rotations: 0,
    });
    const accessToken = new provider.AccessToken(init);
    const idToken = new provider.IdToken({ sub: accountId }, { client });
    idToken.scope = 'openid';

    return {
      access_token: await accessToken.save(),
      refresh_token: await refreshToken.save(),
      id_token: await idToken.issue({ use: 'idtoken' }),
      expires_in: accessToken.expiration,
      token_type: 'Bearer',
    };
  }

  return {
    issuer,
    tokenEndpoint: endpoints.tokenEndpoint,
    revocationEndpoint: endpoints.revocationEndpoint,
    jwksUri: endpoints.jwksUri,
    clientId: basic.id,
    clientSecret: basic.secret,
    clients: { basic, post },
    signIn,
    refreshLog,
    close: () => stop(server),
  };
}
