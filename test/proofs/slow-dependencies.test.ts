import { randomBytes } from 'node:crypto';
import { setTimeout as pause } from 'node:timers/promises';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { LocalTokenCipher } from '../../functions/adapters/cipher/local-cipher';
import { DynamoDbTokenStore } from '../../functions/adapters/dynamodb/dynamodb-token-store';
import { buildRuntime, type Runtime } from '../../functions/adapters/runtime';
import { loadConfig } from '../../functions/config';
import { StoreUnavailableError } from '../../functions/core/errors';
import type { RecordKey, TokenRecord } from '../../functions/core/model';
import { Secret } from '../../functions/core/secret';
import type { ServedAccessToken } from '../../functions/core/token-service';
import { startTransmitServer, type TransmitServer } from '../../local/transmit-server';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy';
import { ample, createTable, localDynamoClient } from '../support/harness';
import { InMemoryMetrics, MemoryLogger, RecordingEventPublisher } from '../support/observability';

/**
 * Case 1 of the slow-dependency proofs: DynamoDB calls that are slow, hang, or whose answers come
 * late or never, injected below the SDK by a proxy in front of DynamoDB Local (and one in front of
 * the strict Transmit emulator: grace 0, a consumed refresh token presented again revokes the
 * family). The service runs on real time with the production store, SDK clients and the deadlines
 * its configuration sets; every refresh token presentation is counted at the emulator.
 */

const key = (userId: string): RecordKey => ({ userId, resource: 'default' });
/** More than the emulator's access-token lifetime (1 h): every call needs a refresh. */
const FRESH = 7200;

/** What the closing note reports. */
const figures = {
  faultsByKind: {} as Record<string, number>,
  rotations: 0,
  presentedTwice: 0,
  reuseDetections: 0,
};

interface SlowRig {
  readonly transmit: TransmitServer;
  /** In front of DynamoDB Local: every call the service makes goes through it. */
  readonly dynamo: FaultProxy;
  /** In front of the emulator. */
  readonly idp: FaultProxy;
  readonly runtime: Runtime;
  readonly metrics: InMemoryMetrics;
  /** The record as the table holds it (read past the proxy). */
  stored(userId: string): Promise<TokenRecord | undefined>;
  /** Signs a user in at the emulator and stores the tokens; returns the refresh token. */
  signIn(userId: string): Promise<string>;
  /** getAccessToken asking for more validity than the stored token has: it must refresh. */
  get(userId: string): Promise<ServedAccessToken>;
  close(): Promise<void>;
}

async function startSlowRig(env: Record<string, string>): Promise<SlowRig> {
  const transmit = await startTransmitServer({ reuseGraceSeconds: 0 });
  const idp = await startFaultProxy({ upstream: transmit.baseUrl });
  const dynamo = await startFaultProxy({ upstream: inject('dynamoEndpoint') });
  const direct: DynamoDBClient = localDynamoClient();
  const tableName = await createTable(direct);
  const keyBase64 = randomBytes(32).toString('base64');
  const config = loadConfig({
    TOKEN_TABLE_NAME: tableName,
    TRANSMIT_BASE_URL: idp.url,
    CLIENT_ID: 'local-client',
    CLIENT_SECRET: 'local-secret',
    LOCAL_TOKEN_KEY: keyBase64,
    IDP_RATE_LIMIT_RPS: '10000',
    ...env,
  });
  const cipher = LocalTokenCipher.fromBase64(keyBase64);
  const logger = new MemoryLogger();
  const metrics = new InMemoryMetrics();
  // The production store with the configured deadlines; only the endpoint is the proxy's.
  const store = new DynamoDbTokenStore({
    tableName,
    cipher,
    limits: config.aws,
    clientConfig: {
      endpoint: dynamo.url,
      region: 'local',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    },
  });
  const inspect = new DynamoDbTokenStore({ tableName, cipher, client: direct });
  const runtime = buildRuntime(config, {
    store,
    logger,
    metrics,
    events: new RecordingEventPublisher(logger),
  });
  const signIn = async (userId: string) => {
    const tokens = await transmit.signIn(userId);
    await runtime.tokenService.storeTokens({
      key: key(userId),
      authenticatedAt: undefined,
      tokens: {
        accessToken: new Secret(tokens.access_token),
        refreshToken: new Secret(tokens.refresh_token),
        idToken: new Secret(tokens.id_token),
        sessionId: new Secret(tokens.session_id),
        tokenType: tokens.token_type,
        expiresIn: tokens.expires_in,
      },
    });
    return tokens.refresh_token;
  };
  const get = (userId: string) =>
    runtime.tokenService.getAccessToken({ key: key(userId), minValiditySeconds: FRESH }, ample);
  // Warm-up: the first HTTP client, SDK call and client token of a process take far longer than
  // the deadlines here on a loaded machine. One rotation for another user caches the client token.
  await signIn('warm-up');
  await get('warm-up');
  dynamo.clearLog();
  idp.clearLog();
  const rotatedInWarmUp = 1;
  return {
    transmit,
    dynamo,
    idp,
    runtime,
    metrics,
    stored: (userId) => inspect.get(key(userId)),
    signIn,
    get,
    async close() {
      // Bounded: a proxy that cannot account for a request must not hold the suite.
      await Promise.race([dynamo.settled(), pause(10_000)]);
      for (const proxy of [dynamo, idp]) {
        for (const entry of proxy.log) {
          if (entry.action) figures.faultsByKind[entry.kind] = (figures.faultsByKind[entry.kind] ?? 0) + 1;
        }
      }
      figures.rotations +=
        transmit.refreshLog.filter((entry) => entry.outcome === 'rotated').length - rotatedInWarmUp;
      figures.reuseDetections += transmit.reuseDetections;
      await dynamo.close();
      await idp.close();
      await transmit.close();
      direct.destroy();
    },
  };
}

/** Resolves once `condition` holds (polled), or fails after `ms`. */
async function until(condition: () => boolean, ms = 10_000): Promise<void> {
  for (let waited = 0; !condition(); waited += 10) {
    if (waited > ms) throw new Error('condition not reached');
    await pause(10);
  }
}

describe('Slow dependencies: DynamoDB calls that are late, hang or lose their answers (real time, through the proxy)', () => {
  let rig: SlowRig;
  afterEach(async () => {
    await rig.close();
  });
  afterAll(() => {
    console.log(`[proofs/slow-dependencies] ${JSON.stringify(figures)}`);
  });

  /** The refresh token was presented at most once, and the IdP never saw a consumed one again. */
  const expectPresentedOnce = (refreshToken: string) => {
    const times = rig.transmit.timesPresented(refreshToken);
    if (times > 1) figures.presentedTwice++;
    expect(times).toBeLessThanOrEqual(1);
    expect(rig.transmit.reuseDetections).toBe(0);
  };

  describe('the lease and the commit against the lease', () => {
    /**
     * One attempt of 3.5 s per AWS call, so an answer can be late by seconds and still arrive.
     * The configuration accepts it: 6000 ms > 1000 (IdP) + 3500 (commit) + 1000 (margin).
     * A held answer keeps 1 s of slack to its deadline: a loaded machine adds hundreds of ms.
     */
    const ENV = {
      LEASE_SECONDS: '6',
      IDP_TIMEOUT_MS: '1000',
      AWS_REQUEST_TIMEOUT_MS: '3500',
      AWS_MAX_ATTEMPTS: '1',
    };

    it('a lease whose answer arrives late (2.5 s of a 6 s lease): nobody calls the IdP under it, a later lease rotates, the token is presented once', async () => {
      // Prepare
      rig = await startSlowRig(ENV);
      const refreshToken = await rig.signIn('alice');
      rig.dynamo.add({ kind: 'lease', nth: 1, action: { kind: 'delayAnswer', ms: 2500 } });

      // Act: 3.5 s are left when the answer comes: less than the IdP timeout and the commit need (4.5 s).
      const first = await rig.get('alice').catch((error: unknown) => error);
      const refreshesByFirst = rig.idp.count('refresh');
      const second = await rig.get('alice');

      // Assess: nobody called the IdP under the late lease. The one refresh came under a lease taken
      // after it: the second caller's, or the first caller's own once it had waited the late lease
      // out (on a loaded machine the answer can even miss its call's deadline: then the caller does
      // not know it holds the lease and waits it out like anyone else).
      const [lateLease, ...laterLeases] = rig.dynamo.log.filter((entry) => entry.kind === 'lease');
      expect(lateLease).toMatchObject({ action: 'delayAnswer', landed: true });
      expect(laterLeases.length).toBeGreaterThanOrEqual(1);
      const refresh = rig.idp.log.find((entry) => entry.kind === 'refresh');
      expect(refresh!.atMs).toBeGreaterThanOrEqual(laterLeases[0]!.atMs);
      if (!lateLease!.clientGaveUp) {
        // The caller saw too little lease left and called nobody under it; it was served the stored
        // token marked stale, or the refreshed one when it outwaited its own lapsed lease.
        expect(rig.metrics.total('RotationFailed', { reason: 'lease_late' })).toBe(1);
        expect(first).not.toBeInstanceOf(Error);
        expect(['stale', 'refreshed']).toContain((first as ServedAccessToken).source);
        if (refreshesByFirst === 0) expect((first as ServedAccessToken).source).toBe('stale');
      }
      // The second caller asks for more validity than any token has, so it rotates again even after
      // the first caller's rotation: each refresh presented a different token, once.
      expect(refreshesByFirst).toBeLessThanOrEqual(1);
      expect(second.source).toBe('refreshed');
      expect(rig.idp.count('refresh')).toBe(refreshesByFirst + 1);
      expectPresentedOnce(refreshToken);
      expect(await rig.stored('alice')).toMatchObject({
        status: 'ACTIVE',
        rotations: refreshesByFirst + 1,
        lease: undefined,
      });
    });

    it('a commit that stalls past the lease while a second caller waits: nobody presents the consumed token', async () => {
      // Prepare: the IdP answers after 0.6 s (within its 1 s timeout, client token included), so the
      // commit starts about 0.8 s into the 6 s lease; its
      // first two attempts hang until their 3.5 s deadline, so the second runs past the lease's end
      // unless the commit renews the lease before it.
      rig = await startSlowRig(ENV);
      const refreshToken = await rig.signIn('alice');
      rig.idp.add({ kind: 'refresh', nth: 1, action: { kind: 'delayAnswer', ms: 600 } });
      const stalls = rig.dynamo.add({ kind: 'commit', action: { kind: 'stall' }, times: 2 });

      // Act: the second caller arrives while the first one holds the lease.
      const first = rig.get('alice');
      await until(() => rig.dynamo.count('lease') >= 1 && rig.idp.count('refresh') >= 1);
      const second = rig.get('alice');
      const results = await Promise.allSettled([first, second]);

      // Assess
      expect(stalls.hits).toBe(2);
      expectPresentedOnce(refreshToken);
      expect(rig.metrics.total('PersistFailed')).toBe(0);
      const record = await rig.stored('alice');
      expect(record).toMatchObject({ status: 'ACTIVE', rotations: 1 });
      // Whoever was served got the committed token (or the stored one while waiting), never an error.
      for (const result of results) expect(result.status).toBe('fulfilled');
    });
  });

  describe('each kind of AWS call hanging fails within its deadline and leaves the record recoverable', () => {
    /** Two attempts of 1 s: a hung call fails after about 2.1 s. 5000 ms > 1000 + 2100 + 1000. */
    const ENV = {
      LEASE_SECONDS: '5',
      IDP_TIMEOUT_MS: '1000',
      AWS_REQUEST_TIMEOUT_MS: '1000',
      AWS_MAX_ATTEMPTS: '2',
    };

    it.each([
      ['read', 'the consistent read of the record'],
      ['lease', 'the lease write (it never lands)'],
    ] as const)(
      '%s hangs (%s): a retryable error, no IdP call, then a normal rotation',
      async (kind, _what) => {
        // Prepare
        rig = await startSlowRig(ENV);
        const refreshToken = await rig.signIn('alice');
        const before = await rig.stored('alice');
        const hang = rig.dynamo.add({ kind, action: { kind: 'stall' } });

        // Act
        const failed = await rig.get('alice').catch((error: unknown) => error);
        hang.remove();
        const untouched = await rig.stored('alice');
        const fresh = await rig.get('alice');

        // Assess: both attempts given up by the client at their deadline.
        expect(failed).toBeInstanceOf(StoreUnavailableError);
        expect((failed as StoreUnavailableError).retryable).toBe(true);
        expect(hang.hits).toBe(2);
        // A stalled call ends when the client closes its socket; the proxy sees that a tick later.
        await rig.dynamo.settled();
        expect(rig.dynamo.log.filter((entry) => entry.action === 'stall').every((e) => e.clientGaveUp)).toBe(
          true,
        );
        expect(untouched).toMatchObject({ version: before!.version, lease: undefined });
        expect(fresh.source).toBe('refreshed');
        expectPresentedOnce(refreshToken);
      },
    );

    it('query hangs: the sweep fails retryably and the next sweep runs', async () => {
      // Prepare
      rig = await startSlowRig(ENV);
      await rig.signIn('alice');
      const hang = rig.dynamo.add({ kind: 'query', action: { kind: 'stall' } });

      // Act
      const failed = await rig.runtime.sweep.run(ample).catch((error: unknown) => error);
      hang.remove();
      const next = await rig.runtime.sweep.run(ample);

      // Assess
      expect(failed).toBeInstanceOf(StoreUnavailableError);
      // Every shard's query, each on both attempts, given up at its deadline.
      expect(hang.hits).toBe(2 * rig.runtime.config.dueShards);
      // The sweep fails at its first failed shard; the other shards' attempts end at their own
      // deadlines, which the proxy sees when their sockets close.
      await rig.dynamo.settled();
      expect(rig.dynamo.log.filter((entry) => entry.action === 'stall').every((e) => e.clientGaveUp)).toBe(
        true,
      );
      expect(next).toMatchObject({ failed: 0 });
      expect(await rig.stored('alice')).toMatchObject({ status: 'ACTIVE', lease: undefined });
    });

    it('a lease write that lands after its caller gave up: the retry leases, and the late write cannot resurrect an old lease', async () => {
      // Prepare: the first attempt is held 2.5 s before it reaches DynamoDB, past both attempts' deadlines.
      rig = await startSlowRig(ENV);
      const refreshToken = await rig.signIn('alice');
      const before = await rig.stored('alice');
      rig.dynamo.add({ kind: 'lease', nth: 1, action: { kind: 'delay', ms: 2500 } });

      // Act
      const fresh = await rig.get('alice');
      await rig.dynamo.settled();
      const after = await rig.stored('alice');

      // Assess: the late write was fenced on the old version and changed nothing.
      expect(fresh.source).toBe('refreshed');
      expect(rig.dynamo.log.find((entry) => entry.action === 'delay')).toMatchObject({
        landed: true,
        clientGaveUp: true,
      });
      expect(after).toMatchObject({ version: before!.version + 1, lease: undefined, rotations: 1 });
      expectPresentedOnce(refreshToken);
    });

    it('commit hangs on both attempts of one call: the rotation retries the commit and stores the new token', async () => {
      // Prepare
      rig = await startSlowRig(ENV);
      const refreshToken = await rig.signIn('alice');
      const hang = rig.dynamo.add({ kind: 'commit', action: { kind: 'stall' }, times: 2 });

      // Act
      const fresh = await rig.get('alice');

      // Assess
      expect(hang.hits).toBe(2);
      expect(fresh.source).toBe('refreshed');
      expect(rig.metrics.total('PersistFailed')).toBe(0);
      expect(await rig.stored('alice')).toMatchObject({ status: 'ACTIVE', rotations: 1, lease: undefined });
      expectPresentedOnce(refreshToken);
    });

    it('commit applied but every answer lost: the caller serves what the table holds, nothing is presented again', async () => {
      // Prepare
      rig = await startSlowRig(ENV);
      const refreshToken = await rig.signIn('alice');
      const drops = rig.dynamo.add({ kind: 'commit', action: { kind: 'dropAnswer' }, times: 2 });

      // Act
      const fresh = await rig.get('alice');

      // Assess
      expect(drops.hits).toBe(2);
      expect(['refreshed', 'cached']).toContain(fresh.source);
      expect(await rig.stored('alice')).toMatchObject({ status: 'ACTIVE', rotations: 1 });
      expectPresentedOnce(refreshToken);
    });
  });
});
