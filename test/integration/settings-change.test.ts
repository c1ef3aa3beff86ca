import { GetItemCommand, QueryCommand } from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalTokenCipher } from '../../functions/adapters/cipher/local-cipher';
import { DynamoDbTokenStore } from '../../functions/adapters/dynamodb/dynamodb-token-store';
import { removedRecords } from '../../functions/adapters/dynamodb/stream';
import { TOKEN_TABLE } from '../../functions/adapters/dynamodb/table-schema';
import { buildRuntime, type Runtime } from '../../functions/adapters/runtime';
import { loadConfig } from '../../functions/config';
import { shardOf } from '../../functions/core/lifetimes';
import { Secret } from '../../functions/core/secret';
import { ample, type Harness, startHarness } from '../support/harness';
import { InMemoryMetrics, MemoryLogger } from '../support/observability';

const DAY = 86_400;
const T0 = Date.UTC(2026, 0, 1) / 1000;

/**
 * Settings that change under stored records, on DynamoDB Local with the real store and the
 * Transmit emulator: records are stored by a runtime on the old settings (the instances before a
 * redeploy), then swept by the harness's runtime on the new ones, sharing table, key and clock.
 */
describe('Settings that change under stored records (DynamoDB Local)', () => {
  let h: Harness;

  afterEach(async () => {
    await h.close();
  });

  /** A runtime on the same table, key and clock as the harness, with `env` as its settings. */
  function runtimeWith(env: Record<string, string>): Runtime {
    const { config } = h.runtime;
    if (config.cipher.kind !== 'local') throw new Error('expected the local cipher');
    const old = loadConfig({
      TOKEN_TABLE_NAME: h.tableName,
      TRANSMIT_BASE_URL: h.transmit.baseUrl,
      CLIENT_ID: 'local-client',
      CLIENT_SECRET: 'local-secret',
      LOCAL_TOKEN_KEY: config.cipher.keyBase64,
      ...env,
    });
    const cipher = LocalTokenCipher.fromBase64(config.cipher.keyBase64);
    return buildRuntime(old, {
      clock: h.clock,
      logger: new MemoryLogger(),
      metrics: new InMemoryMetrics(),
      store: new DynamoDbTokenStore({ tableName: h.tableName, cipher, client: h.dynamo }),
      // The old runtime never calls the IdP here; the harness's runtime does every refresh.
      idp: { refresh: () => Promise.reject(new Error('the old runtime must not refresh')) },
    });
  }

  /** Signs `userId` in at the emulator and stores the tokens through `runtime`. */
  async function signInWith(runtime: Runtime, userId: string): Promise<string> {
    const tokens = await h.transmit.signIn(userId);
    await runtime.tokenService.storeTokens({
      key: { userId, resource: 'default' },
      authenticatedAt: undefined,
      tokens: {
        accessToken: new Secret(tokens.access_token),
        refreshToken: new Secret(tokens.refresh_token),
        sessionId: new Secret(tokens.session_id),
        tokenType: tokens.token_type,
        expiresIn: tokens.expires_in,
      },
    });
    return tokens.refresh_token;
  }

  it('DUE_SHARDS lowered from 8 to 4: records in shards 4-7 are still rotated on time and move under 4', async () => {
    // Prepare
    h = await startHarness({ env: { DUE_SHARDS: '4' } });
    const old = runtimeWith({ DUE_SHARDS: '8' });
    const users = Array.from({ length: 12 }, (_, i) => `user-${i}`);
    for (const user of users) await signInWith(old, user);
    const high = users.filter((u) => shardOf({ userId: u, resource: 'default' }, 8) >= 4);
    expect(high.length).toBeGreaterThan(0);

    // Act: past every record's due time (refresh TTL 14 d, ahead 3 d), before any expires.
    h.clock.advanceSeconds(11 * DAY + 60);
    const summary = await h.runtime.sweep.run(ample);

    // Assess
    expect(summary).toMatchObject({ due: 12, rotated: 12, failed: 0, reauthRequired: 0 });
    for (const user of users) {
      const record = await h.runtime.store.get({ userId: user, resource: 'default' });
      expect(record).toMatchObject({ status: 'ACTIVE', rotations: 1 });
      expect(record!.dueShard!).toBeLessThan(4);
    }
    expect(h.metrics.total('TokensExpired')).toBe(0);
  });

  it('REFRESH_TOKEN_TTL_SECONDS lowered from 14 to 7 days: records are rotated before the IdP lets them die', async () => {
    // Prepare: the IdP's refresh tokens now live 7 days; the records were stored under 14.
    h = await startHarness({
      env: { REFRESH_TOKEN_TTL_SECONDS: String(7 * DAY) },
      transmit: { refreshTokenTtlSeconds: 7 * DAY },
    });
    const old = runtimeWith({});
    await old.sweep.run(ample);
    const users = ['ann', 'ben', 'cid'];
    const firstTokens = new Map<string, string>();
    for (const user of users) firstTokens.set(user, await signInWith(old, user));
    h.clock.advanceSeconds(3600);
    await old.sweep.run(ample); // the old settings' own pass: every record is scheduled under them

    // Act: the new settings are deployed a day later; sweeps run hourly for the first hours.
    h.clock.advanceSeconds(DAY);
    await h.runtime.sweep.run(ample); // sees the change, waits for the old writers to finish
    h.clock.advanceSeconds(3600);
    const reindexed = await h.runtime.sweep.run(ample); // Scans and lowers
    const lowered = await h.runtime.store.get({ userId: 'ann', resource: 'default' });
    h.clock.advanceSeconds(T0 + 4 * DAY + 60 - h.clock.nowMs() / 1000);
    const rotated = await h.runtime.sweep.run(ample);

    // Assess
    expect(rotated).toMatchObject({ rotated: 3, failed: 0, reauthRequired: 0 });
    expect(lowered).toMatchObject({ refreshExpiresAt: T0 + 7 * DAY, expiresAt: T0 + 7 * DAY });
    expect(lowered!.dueAt!).toBeLessThanOrEqual(T0 + 4 * DAY);
    expect(reindexed.rescheduled).toBe(3);
    for (const user of users) {
      const record = await h.runtime.store.get({ userId: user, resource: 'default' });
      expect(record).toMatchObject({ status: 'ACTIVE', rotations: 1 });
      // The IdP accepted the rotation: the family lives on, with the stored token as its newest.
      expect(h.transmit.latestRefreshToken(firstTokens.get(user)!)).toBe(
        record!.tokens!.refreshToken.reveal(),
      );
    }
    expect(h.transmit.refreshLog.every((e) => e.outcome === 'rotated')).toBe(true);
  });

  it('keeps the sweep state out of the due index, the expiry stream and TTL', async () => {
    // Prepare
    h = await startHarness({ env: { DUE_SHARDS: '2' } });
    await signInWith(h.runtime, 'dora');
    await h.runtime.sweep.run(ample);

    // Act
    const state = await h.dynamo.send(
      new GetItemCommand({ TableName: h.tableName, Key: { pk: { S: '#meta' }, sk: { S: '#sweep' } } }),
    );
    const indexed = [];
    for (let shard = 0; shard < 2; shard++) {
      const page = await h.dynamo.send(
        new QueryCommand({
          TableName: h.tableName,
          IndexName: TOKEN_TABLE.dueIndex.name,
          KeyConditionExpression: 'dueShard = :s',
          ExpressionAttributeValues: { ':s': { N: String(shard) } },
        }),
      );
      indexed.push(...(page.Items ?? []));
    }
    const removal = removedRecords({
      Records: [{ eventName: 'REMOVE', dynamodb: { OldImage: state.Item } }],
    });

    // Assess
    expect(state.Item).toBeDefined();
    expect(state.Item!.shardsUsed?.NS).toBeDefined();
    expect(state.Item!.dueShard).toBeUndefined();
    expect(state.Item![TOKEN_TABLE.ttlAttribute]).toBeUndefined();
    expect(state.Item!.sealed).toBeUndefined();
    expect(indexed.map((item) => item.pk?.S)).toEqual(['u#dora']);
    expect(removal).toEqual([]);
    expect(
      (await h.runtime.store.scanRecords({ status: 'ACTIVE' }, 100)).records.map((r) => r.key.userId),
    ).toEqual(['dora']);
  });
});
