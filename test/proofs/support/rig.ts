import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { LocalTokenCipher } from '../../../functions/adapters/cipher/local-cipher';
import { StaticClientCredentials } from '../../../functions/adapters/credentials/client-credentials';
import { DynamoDbTokenStore } from '../../../functions/adapters/dynamodb/dynamodb-token-store';
import { OAuth2IdentityProvider } from '../../../functions/adapters/idp/oauth2';
import { TransmitIdentityProvider } from '../../../functions/adapters/idp/transmit';
import { buildRuntime, type Runtime } from '../../../functions/adapters/runtime';
import { loadConfig } from '../../../functions/config';
import type { AppEvent, IdentityProvider } from '../../../functions/core/ports';
import { Secret } from '../../../functions/core/secret';
import type { ServedAccessToken } from '../../../functions/core/token-service';
import { sha256Hex } from '../../../local/transmit/state';
import {
  startTransmitServer,
  type TransmitServer,
  type TransmitServerOptions,
} from '../../../local/transmit-server';
import { type FaultProxy, startFaultProxy } from '../../support/fault-proxy';
import { ample, createTable, localDynamoClient } from '../../support/harness';
import { InMemoryMetrics, MemoryLogger, RecordingEventPublisher } from '../../support/observability';
import type { OidcServer, OidcSignInTokens } from '../../support/oidc-server';
import { type IdpLedger, oidcLedger, type Served, transmitLedger } from './invariants';
import { ProofIdp } from './proof-idp';
import { ProofStore } from './proof-store';
import { SimClock } from './sim-clock';

/** The app's client at the Transmit emulator. */
const CLIENT_ID = 'local-client';
const CLIENT_SECRET = 'local-secret';

/** Options of {@link startRig}. */
export interface RigOptions {
  /** Settings on top of the rig's own (lifetimes, timeouts, ...), as the functions read them. */
  readonly env?: Readonly<Record<string, string>>;
  /** Options of the Transmit emulator (its clock is the rig's). */
  readonly transmit?: Omit<TransmitServerOptions, 'clock'>;
  /** Use this oauth2 server instead of the Transmit emulator (its clock is real time). */
  readonly oidc?: OidcServer;
  /** How the service sleeps. @default the clock's virtual sleep */
  readonly sleep?: (ms: number) => Promise<void>;
  /** The service's random source. @default Math.random */
  readonly random?: () => number;
  /** How long ago each sign-in happened when its tokens are stored. @default 0 */
  readonly signInAgeSeconds?: number;
  /**
   * Run the service's DynamoDB calls through a fault proxy with the production client and the
   * configured deadlines, and inject the store faults there (below the SDK) instead of as thrown
   * errors. @default false
   */
  readonly wire?: boolean;
}

/**
 * The service on real local components (DynamoDB Local, the Transmit emulator or oidc-provider
 * over HTTP), with the proof wrappers around its store and IdP and a virtual clock that the
 * emulator shares.
 */
export interface Rig {
  readonly clock: SimClock;
  /** The Transmit emulator (absent in oauth2 rigs). */
  readonly transmit: TransmitServer | undefined;
  readonly store: ProofStore;
  /** The proxy in front of DynamoDB Local when the rig runs on the wire. */
  readonly dynamoProxy: FaultProxy | undefined;
  readonly idp: ProofIdp;
  readonly runtime: Runtime;
  readonly metrics: InMemoryMetrics;
  readonly logger: MemoryLogger;
  readonly events: RecordingEventPublisher;
  readonly tableName: string;
  /** Access tokens handed out by {@link Rig.get}. */
  readonly served: Served[];
  /** Environment for another process running the service against the same table and IdP. */
  readonly env: Readonly<Record<string, string>>;
  /** Signs a user in at the IdP and stores the tokens, as the app's auth backend does. */
  signIn(userId: string): Promise<void>;
  /** getAccessToken for the default resource; what it hands out is recorded in `served`. */
  get(userId: string, minValiditySeconds?: number): Promise<ServedAccessToken>;
  /** The IdP's log from now on. */
  ledger(): IdpLedger;
  /** Events published for a user, by type. */
  eventsOf(userId: string): AppEvent['type'][];
  close(): Promise<void>;
}

/** Starts a rig with its own table and IdP emulator. */
export async function startRig(options: RigOptions = {}): Promise<Rig> {
  const clock = options.oidc ? new SimClock(Date.now(), () => Date.now()) : new SimClock();
  const dynamo = localDynamoClient();
  const tableName = await createTable(dynamo);
  const transmit = options.oidc ? undefined : await startTransmitServer({ clock, ...options.transmit });
  const keyBase64 = randomBytes(32).toString('base64');
  const env: Record<string, string> = {
    TOKEN_TABLE_NAME: tableName,
    LOCAL_TOKEN_KEY: keyBase64,
    ...(options.oidc
      ? {
          IDP_FLAVOR: 'oauth2',
          OAUTH2_TOKEN_ENDPOINT: options.oidc.tokenEndpoint,
          CLIENT_ID: options.oidc.clientId,
          CLIENT_SECRET: options.oidc.clientSecret,
        }
      : { TRANSMIT_BASE_URL: transmit!.baseUrl, CLIENT_ID, CLIENT_SECRET }),
    ...options.env,
  };
  const config = loadConfig(env);

  const track = clock.track.bind(clock);
  const cipher = LocalTokenCipher.fromBase64(keyBase64);
  const dynamoProxy = options.wire
    ? await startFaultProxy({ upstream: inject('dynamoEndpoint') })
    : undefined;
  const store = new ProofStore(
    new DynamoDbTokenStore({ tableName, cipher, client: dynamo }),
    track,
    dynamoProxy && {
      proxy: dynamoProxy,
      store: new DynamoDbTokenStore({
        tableName,
        cipher,
        limits: config.aws,
        clientConfig: {
          endpoint: dynamoProxy.url,
          region: 'local',
          credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
        },
      }),
    },
  );
  const credentials = new StaticClientCredentials(env.CLIENT_ID!, env.CLIENT_SECRET!);
  const realIdp: IdentityProvider = options.oidc
    ? new OAuth2IdentityProvider({ tokenEndpoint: options.oidc.tokenEndpoint, credentials, clock })
    : new TransmitIdentityProvider({ baseUrl: transmit!.baseUrl, credentials, clock });
  const idp = new ProofIdp(realIdp, track);
  const metrics = new InMemoryMetrics();
  const logger = new MemoryLogger();
  const events = new RecordingEventPublisher(logger);
  const runtime = buildRuntime(config, {
    clock,
    metrics,
    logger,
    events,
    store,
    idp,
    sleep: options.sleep ?? clock.sleep,
    ...(options.random ? { random: options.random } : {}),
  });
  const served: Served[] = [];

  return {
    clock,
    transmit,
    store,
    dynamoProxy,
    idp,
    runtime,
    metrics,
    logger,
    events,
    tableName,
    served,
    env: { ...env, PROOF_DYNAMO_ENDPOINT: inject('dynamoEndpoint') },
    async signIn(userId) {
      const tokens: OidcSignInTokens & { readonly session_id?: string } = options.oidc
        ? await track(() => options.oidc!.signIn(userId))
        : await transmit!.signIn(userId);
      idp.signedIn(userId, tokens.access_token, tokens.refresh_token);
      await runtime.tokenService.storeTokens({
        key: { userId, resource: 'default' },
        authenticatedAt: clock.nowSeconds() - (options.signInAgeSeconds ?? 0),
        tokens: {
          accessToken: new Secret(tokens.access_token),
          refreshToken: new Secret(tokens.refresh_token),
          ...(tokens.id_token ? { idToken: new Secret(tokens.id_token) } : {}),
          ...(tokens.session_id ? { sessionId: new Secret(tokens.session_id) } : {}),
          tokenType: tokens.token_type,
          expiresIn: tokens.expires_in,
        },
      });
    },
    async get(userId, minValiditySeconds = 60) {
      const result = await runtime.tokenService.getAccessToken(
        { key: { userId, resource: 'default' }, minValiditySeconds },
        ample,
      );
      served.push({
        userId,
        accessHash: sha256Hex(result.accessToken.reveal()),
        source: result.source,
        validitySeconds: result.expiresAt - clock.nowSeconds(),
        minValiditySeconds,
      });
      return result;
    },
    ledger: () => (options.oidc ? oidcLedger(options.oidc, idp) : transmitLedger(transmit!)),
    eventsOf: (userId) => events.published.filter((e) => e.key.userId === userId).map((e) => e.type),
    async close() {
      await transmit?.close();
      await dynamoProxy?.close();
      dynamo.destroy();
    },
  };
}
