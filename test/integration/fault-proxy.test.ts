import { randomBytes } from 'node:crypto';
import { setTimeout as pause } from 'node:timers/promises';
import { DynamoDBClient, ScanCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { LocalTokenCipher } from '../../functions/adapters/cipher/local-cipher';
import { StaticClientCredentials } from '../../functions/adapters/credentials/client-credentials';
import { DynamoDbTokenStore } from '../../functions/adapters/dynamodb/dynamodb-token-store';
import { TransmitIdentityProvider } from '../../functions/adapters/idp/transmit';
import type { AwsCallLimits } from '../../functions/config';
import { IdpTransientError, StoreUnavailableError } from '../../functions/core/errors';
import { Secret } from '../../functions/core/secret';
import { startTransmitServer, type TransmitServer } from '../../local/transmit-server';
import { activeRecord, KEY, T0, T0_MS } from '../support/fakes';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy';
import { createTable, localDynamoClient } from '../support/harness';

/** Short deadlines, so a stalled call costs little real time. */
const LIMITS: AwsCallLimits = { requestTimeoutMs: 1000, maxAttempts: 2 };
/** Where a test is not about deadlines: a loaded 2-core machine can take a second for a healthy call. */
const GENEROUS: AwsCallLimits = { requestTimeoutMs: 5000, maxAttempts: 2 };
const LOCAL = { region: 'local', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } };

describe('Function: startFaultProxy', () => {
  describe('in front of DynamoDB Local, with the production store and bounded clients', () => {
    let direct: DynamoDBClient;
    let tableName: string;
    let proxy: FaultProxy;
    const cipher = new LocalTokenCipher(randomBytes(32));

    /** A store whose client goes through the proxy. */
    const storeVia = (limits: AwsCallLimits = GENEROUS) =>
      new DynamoDbTokenStore({ tableName, cipher, limits, clientConfig: { endpoint: proxy.url, ...LOCAL } });
    /** The same table seen without the proxy. */
    const directStore = () => new DynamoDbTokenStore({ tableName, cipher, client: direct });
    /** The calls on user records (not the sweep's state). */
    const onRecords = () => proxy.log.filter((entry) => entry.kind !== 'other');
    const record = () => activeRecord(T0, { version: 7, dueShard: 0, dueAt: T0 - 1 });

    beforeEach(async () => {
      direct = localDynamoClient();
      tableName = await createTable(direct);
      proxy = await startFaultProxy({ upstream: inject('dynamoEndpoint') });
    });
    afterEach(async () => {
      await proxy.close();
      direct.destroy();
    });

    it('classifies each store call by kind and forwards it untouched when no rule applies', async () => {
      // Prepare
      const store = storeVia();

      // Act
      await store.put(record(), { version: undefined });
      await store.get(KEY);
      await store.acquireLease(KEY, 7, 'lease-a', T0_MS + 30_000, T0_MS);
      await store.queryDue(0, T0, 10);
      await store.delete(KEY);

      // Assess
      // The store also registers the record's due shard in the sweep state: an `other` call.
      expect(onRecords().map((entry) => entry.kind)).toEqual(['commit', 'read', 'lease', 'query', 'delete']);
      expect(proxy.log.every((entry) => entry.landed && entry.action === undefined)).toBe(true);
      expect(await directStore().get(KEY)).toBeUndefined();
    });

    it('fails a stalled call within its deadline: every attempt is given up by the client, and the record is untouched', async () => {
      // Prepare
      await directStore().put(record(), { version: undefined });
      const rule = proxy.add({ kind: 'read', action: { kind: 'stall' } });
      // The same call on the SDK's defaults (no throwOnRequestTimeout) would wait for minutes.
      const unbounded = new DynamoDbTokenStore({
        tableName,
        cipher,
        client: new DynamoDBClient({
          endpoint: proxy.url,
          ...LOCAL,
          requestHandler: { requestTimeout: 1000 },
        }),
      });

      // Act
      const failed = await storeVia(LIMITS)
        .get(KEY)
        .catch((error: unknown) => error);
      const pending = unbounded.get(KEY).then(
        () => 'answered',
        () => 'failed',
      );
      await pause(LIMITS.requestTimeoutMs * 1.5);
      const unboundedState = await Promise.race([pending, Promise.resolve('still waiting')]);
      rule.remove();

      // Assess
      expect(failed).toBeInstanceOf(StoreUnavailableError);
      expect((failed as Error).cause).toMatchObject({ name: 'TimeoutError' });
      // The bounded client made its two attempts and gave up on each.
      const bounded = proxy.log.slice(0, 2);
      expect(bounded).toMatchObject([
        { kind: 'read', action: 'stall', landed: false, clientGaveUp: true },
        { kind: 'read', action: 'stall', landed: false, clientGaveUp: true },
      ]);
      expect(unboundedState).toBe('still waiting');
      expect((await directStore().get(KEY))?.version).toBe(7);
    });

    it('drops the answer after the upstream processed it: the write landed, the caller saw a failure', async () => {
      // Prepare
      proxy.add({ kind: 'commit', action: { kind: 'dropAnswer' } });

      // Act
      const failed = await storeVia({ ...GENEROUS, maxAttempts: 1 })
        .put(record(), { version: undefined })
        .catch((error: unknown) => error);

      // Assess
      expect(failed).toBeInstanceOf(StoreUnavailableError);
      expect(onRecords()).toMatchObject([{ kind: 'commit', action: 'dropAnswer', landed: true }]);
      expect((await directStore().get(KEY))?.version).toBe(7);
    });

    it('holds an answer after the upstream applied it (the lease answer arrives late)', async () => {
      // Prepare
      await directStore().put(record(), { version: undefined });
      proxy.add({ kind: 'lease', action: { kind: 'delayAnswer', ms: 300 } });

      // Act: while the answer is held, the lease is already in the table.
      const leasing = storeVia({ requestTimeoutMs: 2000, maxAttempts: 1 }).acquireLease(
        KEY,
        7,
        'lease-a',
        T0_MS + 30_000,
        T0_MS,
      );
      let seen: string | undefined;
      for (let i = 0; i < 100 && seen === undefined; i++) {
        await pause(10);
        seen = (await directStore().get(KEY))?.lease?.id;
      }
      const answer = await leasing;

      // Assess
      expect(seen).toBe('lease-a');
      expect(answer).toBe('ok');
      expect(onRecords()).toMatchObject([
        { kind: 'lease', action: 'delayAnswer', landed: true, clientGaveUp: false },
      ]);
    });

    it('lands a delayed write after the client gave up on it', async () => {
      // Prepare
      proxy.add({ kind: 'commit', action: { kind: 'delay', ms: 1500 } });

      // Act
      const failed = await storeVia({ requestTimeoutMs: 300, maxAttempts: 1 })
        .put(record(), { version: undefined })
        .catch((error: unknown) => error);
      const before = await directStore().get(KEY);
      await proxy.settled();
      const after = await directStore().get(KEY);

      // Assess
      expect(failed).toBeInstanceOf(StoreUnavailableError);
      expect(before).toBeUndefined();
      expect(after?.version).toBe(7);
      expect(onRecords()).toMatchObject([{ kind: 'commit', landed: true, clientGaveUp: true }]);
    });

    it('resets before forwarding: the upstream never sees the request', async () => {
      // Prepare
      proxy.add({ kind: 'commit', action: { kind: 'reset' }, times: 2 });

      // Act
      const failed = await storeVia()
        .put(record(), { version: undefined })
        .catch((error: unknown) => error);

      // Assess: the SDK retried the reset once (two attempts), nothing landed.
      expect(failed).toBeInstanceOf(StoreUnavailableError);
      expect(proxy.faulted('commit')).toBe(2);
      expect(onRecords().some((entry) => entry.landed)).toBe(false);
      expect(await directStore().get(KEY)).toBeUndefined();
    });

    it.each([
      ['ProvisionedThroughputExceededException', { kind: 'throttle' }],
      ['ThrottlingException', { kind: 'throttle', code: 'ThrottlingException' }],
      ['HTTP 500', { kind: 'status', status: 500 }],
    ] as const)(
      'answers %s in the upstream place; the SDK retries it within its attempts',
      async (_name, action) => {
        // Prepare
        const once = proxy.add({ kind: 'read', action, times: 1 });
        const store = storeVia();
        await directStore().put(record(), { version: undefined });

        // Act: one fault is absorbed by the retry; two exhaust both attempts.
        const read = await store.get(KEY);
        once.remove();
        proxy.add({ kind: 'read', action, times: 2 });
        const failed = await store.get(KEY).catch((error: unknown) => error);

        // Assess
        expect(read?.version).toBe(7);
        expect(failed).toBeInstanceOf(StoreUnavailableError);
        expect(proxy.count('read')).toBe(4);
        expect(proxy.faulted('read')).toBe(3);
      },
    );

    it('applies a rule to the nth matching call only, or to calls that a predicate picks', async () => {
      // Prepare
      const store = storeVia({ ...GENEROUS, maxAttempts: 1 });
      await directStore().put(record(), { version: undefined });
      const second = proxy.add({ kind: 'read', nth: 2, action: { kind: 'throttle' } });
      const otherUser = proxy.add({
        kind: ['read', 'commit'],
        when: (request) => JSON.stringify(request.body).includes('u#bob'),
        action: { kind: 'status', status: 500 },
      });

      // Act
      const outcomes = [];
      for (let i = 0; i < 3; i++)
        outcomes.push(
          await store.get(KEY).then(
            () => 'ok',
            () => 'failed',
          ),
        );
      const bob = await store.get({ userId: 'bob', resource: 'default' }).then(
        () => 'ok',
        () => 'failed',
      );

      // Assess
      expect(outcomes).toEqual(['ok', 'failed', 'ok']);
      expect(bob).toBe('failed');
      expect([second.seen, second.hits, otherUser.seen, otherUser.hits]).toEqual([4, 1, 1, 1]);
    });

    it('classifies an UpdateItem that does not touch the lease, and other operations, as other', async () => {
      // Prepare
      await directStore().put(record(), { version: undefined });
      const viaProxy = new DynamoDBClient({ endpoint: proxy.url, ...LOCAL });

      // Act
      await viaProxy.send(
        new UpdateItemCommand({
          TableName: tableName,
          Key: { pk: { S: 'u#user-1' }, sk: { S: 'r#default' } },
          UpdateExpression: 'SET failures = :f',
          ExpressionAttributeValues: { ':f': { N: '1' } },
        }),
      );
      await viaProxy.send(new ScanCommand({ TableName: tableName }));
      viaProxy.destroy();

      // Assess
      expect(proxy.log.map((entry) => entry.kind)).toEqual(['other', 'other']);
    });
  });

  describe('in front of an IdP', () => {
    let transmit: TransmitServer;
    let proxy: FaultProxy;

    beforeEach(async () => {
      transmit = await startTransmitServer();
      proxy = await startFaultProxy({ upstream: transmit.baseUrl });
    });
    afterEach(async () => {
      await proxy.close();
      await transmit.close();
    });

    it('classifies client-token, refresh and logout calls and fails the refresh it is told to', async () => {
      // Prepare
      const idp = new TransmitIdentityProvider({
        baseUrl: proxy.url,
        credentials: new StaticClientCredentials('local-client', 'local-secret'),
      });
      const tokens = await transmit.signIn('alice');
      proxy.add({
        kind: 'refresh',
        nth: 1,
        action: { kind: 'status', status: 503, body: '{"message":"down"}' },
      });

      // Act
      const failed = await idp
        .refresh(new Secret(tokens.refresh_token), { timeoutMs: 2000 })
        .catch((error: unknown) => error);
      const rotated = await idp.refresh(new Secret(tokens.refresh_token), { timeoutMs: 2000 });

      // Assess
      expect(failed).toBeInstanceOf(IdpTransientError);
      expect(rotated.refreshToken).toBeDefined();
      expect(proxy.log.map((entry) => [entry.kind, entry.action])).toEqual([
        ['client-token', undefined],
        ['refresh', 'status'],
        ['refresh', undefined],
      ]);
      expect(transmit.timesPresented(tokens.refresh_token)).toBe(1);
    });
  });
});
