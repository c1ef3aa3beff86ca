import {
  type AttributeValue,
  DeleteTableCommand,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ReauthRequiredError } from '../../functions/core/errors';
import type { RecordKey } from '../../functions/core/model';
import { disconnect } from '../../functions/handlers/disconnect';
import { getAccessToken } from '../../functions/handlers/get-access-token';
import { lambdaHandler } from '../../functions/handlers/lambda';
import { refreshSweep } from '../../functions/handlers/refresh-sweep';
import { storeTokens } from '../../functions/handlers/store-tokens';
import { caught } from '../support/caught';
import { createTable, type Harness, localDynamoClient, rawItems, startHarness } from '../support/harness';
import { expectNoCanary, registerCanary } from '../support/leak-guard';
import { auditItem, auditTables, jwtsIn } from './support/at-rest-audit';
import { CanaryIndex } from './support/canary-index';

const DAY = 86_400;
const ALICE: RecordKey = { userId: 'alice', resource: 'default' };

const itemKey = (key: RecordKey): Record<string, AttributeValue> => ({
  pk: { S: `u#${key.userId}` },
  sk: { S: `r#${key.resource}` },
});
const base64url = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
const JWT = `${base64url({ alg: 'RS256', typ: 'JWT' })}.${base64url({ sub: 'alice', exp: 1 })}.c2lnbmF0dXJl`;

/**
 * Proofs about token material at rest: the audit that the run's global teardown applies to every
 * table finds what it must (so its "0 findings" means something), and a ciphertext moved to
 * another record is refused by every handler rather than served, rotated or used to log out.
 */
describe('At-rest audit', () => {
  describe('Function: auditItem', () => {
    const none = new CanaryIndex<{ value: string; origin: string }>([]);

    it.each([
      ['a plain attribute', { accessToken: { S: JWT } }, /attribute accessToken: 1 JWT-shaped/],
      [
        'a nested map',
        { extra: { M: { deep: { L: [{ S: `Bearer ${JWT}` }] } } } },
        /attribute extra\.deep\[0\]/,
      ],
      ['a string set', { all: { SS: ['x', JWT] } }, /attribute all\[1\]/],
      ['a binary attribute', { blob: { B: Buffer.from(JWT) } }, /attribute blob/],
    ])('finds a plaintext JWT in %s, naming the attribute but not the value', (_where, extra, place) => {
      // Act
      const findings = auditItem('t', { ...itemKey(ALICE), ...extra }, none);

      // Assess
      expect(findings).toHaveLength(1);
      expect(findings[0]).toMatch(place);
      expect(findings[0]).not.toContain(JWT);
    });

    it('finds a registered canary (an opaque refresh token is not JWT-shaped)', () => {
      // Prepare
      const canaries = new CanaryIndex([{ value: 'opaque-refresh-token-1f9c2b', origin: 'refresh_token' }]);

      // Act
      const findings = auditItem(
        't',
        { ...itemKey(ALICE), note: { S: 'x opaque-refresh-token-1f9c2b y' } },
        canaries,
      );

      // Assess
      expect(findings).toEqual(['t pk="u#alice" sk="r#default" attribute note: canary (refresh_token)']);
    });

    it('finds token JSON stored in the clear where the envelope belongs', () => {
      // Act
      const findings = auditItem('t', { ...itemKey(ALICE), sealed: { S: '{"a":"x","r":"y"}' } }, none);

      // Assess
      expect(findings).toEqual([
        't pk="u#alice" sk="r#default" attribute sealed: a JSON object, not an envelope (plaintext)',
      ]);
    });

    it('finds nothing in an envelope, even one whose parts start like a JWT', () => {
      // Prepare: base64url parts that happen to start with eyJ but are not base64 of JSON.
      const sealed = 'v1.eyJ9c2Vk3Xq8Yt.eyJxYWJjZGVmZ2hp.eyJsb3JlbWlwc3Vt';

      // Act & Assess
      expect(jwtsIn(sealed)).toBe(0);
      expect(auditItem('t', { ...itemKey(ALICE), sealed: { S: sealed } }, none)).toEqual([]);
    });
  });

  describe('Function: auditTables', () => {
    it('reads every item of every table and reports a plant in its own table', async () => {
      // Prepare
      const client = localDynamoClient();
      const tableName = await createTable(client);
      for (let i = 0; i < 30; i++) {
        await client.send(
          new PutItemCommand({
            TableName: tableName,
            Item: { ...itemKey({ userId: `u${i}`, resource: 'default' }) },
          }),
        );
      }
      await client.send(
        new PutItemCommand({ TableName: tableName, Item: { ...itemKey(ALICE), idToken: { S: JWT } } }),
      );

      // Act
      const report = await auditTables(client, []);

      // Assess
      const mine = report.findings.filter((f) => f.startsWith(tableName));
      expect(mine).toEqual([
        `${tableName} pk="u#alice" sk="r#default" attribute idToken: 1 JWT-shaped value(s)`,
      ]);
      expect(report.items).toBeGreaterThanOrEqual(31);
      expect(report.tables).toBeGreaterThanOrEqual(1);

      // The plant must not outlive the test: the run's teardown audit would (rightly) fail on it.
      await client.send(new DeleteTableCommand({ TableName: tableName }));
      client.destroy();
    });
  });
});

describe('Ciphertext bound to its record (handlers on DynamoDB Local and the Transmit emulator)', () => {
  let h: Harness;
  let handlers: {
    get: (event: unknown) => Promise<unknown>;
    store: (event: unknown) => Promise<unknown>;
    sweep: (event: unknown) => Promise<unknown>;
    disconnect: (event: unknown) => Promise<unknown>;
  };

  beforeEach(async () => {
    h = await startHarness();
    handlers = {
      get: lambdaHandler(() => h.runtime, getAccessToken),
      store: lambdaHandler(() => h.runtime, storeTokens),
      sweep: lambdaHandler(() => h.runtime, refreshSweep),
      disconnect: lambdaHandler(() => h.runtime, disconnect),
    };
  });
  afterEach(async () => {
    await h.close();
  });

  const sealedOf = async (key: RecordKey): Promise<string> => {
    const { Item } = await h.dynamo.send(new GetItemCommand({ TableName: h.tableName, Key: itemKey(key) }));
    const sealed = Item?.sealed?.S;
    if (!sealed) throw new Error('no sealed attribute');
    return sealed;
  };
  const setSealed = async (key: RecordKey, sealed: string) => {
    await h.dynamo.send(
      new UpdateItemCommand({
        TableName: h.tableName,
        Key: itemKey(key),
        UpdateExpression: 'SET sealed = :s',
        ExpressionAttributeValues: { ':s': { S: sealed } },
      }),
    );
  };
  const served = () => h.metrics.total('AccessTokenServed');

  /** Expects the handler call to fail as a corrupted record, showing no token. */
  const expectCorrupted = async (call: Promise<unknown>) => {
    const error = await caught(call);
    expect(error).toBeInstanceOf(ReauthRequiredError);
    expect((error as ReauthRequiredError).reason).toBe('corrupted');
    expectNoCanary(error);
  };

  it.each([
    ['another user', { userId: 'bob', resource: 'default' }],
    ['another resource of the same user', { userId: 'alice', resource: 'https://api.example.com/b' }],
  ] as const)(
    'refuses a ciphertext copied from alice to %s: not served, not refreshed',
    async (_who, victim) => {
      // Prepare
      const alice = await h.signInAndStore(ALICE.userId);
      const before = await h.signInAndStore(victim.userId, victim.resource);
      await setSealed(victim, await sealedOf(ALICE));
      const servedBefore = served();

      // Act
      // Both at once, each observed from the start (a rejection must not wait unhandled).
      const [cached, forcedRefresh] = await Promise.allSettled([
        handlers.get({ ...victim }),
        handlers.get({ ...victim, minValiditySeconds: 7200 }),
      ]);

      // Assess: neither alice's token nor the victim's own is handed out, and no refresh token was
      // presented (a refresh would have spent alice's token on the victim's behalf).
      for (const outcome of [cached, forcedRefresh]) {
        await expectCorrupted(
          outcome.status === 'rejected' ? Promise.reject(outcome.reason) : Promise.resolve(),
        );
      }
      expect(served()).toBe(servedBefore);
      expect(h.transmit.refreshLog).toHaveLength(0);
      expect(h.transmit.timesPresented(alice.refresh_token)).toBe(0);
      expect(h.transmit.timesPresented(before.refresh_token)).toBe(0);
      expect(await handlers.get({ userId: 'alice' })).toMatchObject({ accessToken: alice.access_token });
    },
  );

  it('refuses a whole item copied under another key (pk and sk rewritten)', async () => {
    // Prepare
    await h.signInAndStore(ALICE.userId);
    const { Item } = await h.dynamo.send(new GetItemCommand({ TableName: h.tableName, Key: itemKey(ALICE) }));
    const bob: RecordKey = { userId: 'bob', resource: 'default' };
    await h.dynamo.send(
      new PutItemCommand({
        TableName: h.tableName,
        Item: { ...Item, ...itemKey(bob), userId: { S: 'bob' } },
      }),
    );

    // Act & Assess
    await expectCorrupted(handlers.get({ userId: 'bob', minValiditySeconds: 7200 }));
    expect(h.transmit.refreshLog).toHaveLength(0);
  });

  it('does not rotate a due record with a copied ciphertext, counts it, and leaves it in place', async () => {
    // Prepare: both records due (12 of 14 days passed); bob holds a copy of alice's ciphertext.
    const alice = await h.signInAndStore(ALICE.userId);
    await h.signInAndStore('bob');
    const bob: RecordKey = { userId: 'bob', resource: 'default' };
    await setSealed(bob, await sealedOf(ALICE));
    h.clock.advanceSeconds(12 * DAY);

    // Act
    const summary = await handlers.sweep({ source: 'aws.events' });

    // Assess: alice's token was presented once (for alice); never again on bob's behalf.
    expect(summary).toMatchObject({ rotated: 1 });
    expect(h.transmit.timesPresented(alice.refresh_token)).toBe(1);
    expect(h.transmit.refreshLog).toHaveLength(1);
    expect(h.transmit.reuseDetections).toBe(0);
    expect(h.metrics.total('CorruptRecordFound')).toBe(1);
    expect(await userItems(h.dynamo, h.tableName)).toHaveLength(2);
  });

  it("disconnects a record with a copied ciphertext without ending anyone's session at the IdP", async () => {
    // Prepare
    await h.signInAndStore(ALICE.userId);
    await h.signInAndStore('bob');
    await setSealed({ userId: 'bob', resource: 'default' }, await sealedOf(ALICE));

    // Act
    const result = await handlers.disconnect({ userId: 'bob' });

    // Assess: bob is gone; alice's session (whose id the copy holds) still refreshes.
    expect(result).toEqual({
      userId: 'bob',
      resource: 'default',
      deleted: true,
      superseded: false,
      idpLogout: 'skipped',
    });
    await expect(handlers.get({ userId: 'alice', minValiditySeconds: 7200 })).resolves.toMatchObject({
      tokenType: 'Bearer',
    });
    expect(await userItems(h.dynamo, h.tableName)).toHaveLength(1);
  });

  it('serves again after a new sign-in replaces the corrupted record', async () => {
    // Prepare
    await h.signInAndStore(ALICE.userId);
    await h.signInAndStore('bob');
    await setSealed({ userId: 'bob', resource: 'default' }, await sealedOf(ALICE));
    const fresh = await h.transmit.signIn('bob');
    registerCanary(fresh.refresh_token, 'a test sign-in');

    // Act
    await handlers.store({ userId: 'bob', tokens: fresh });
    const answer = await handlers.get({ userId: 'bob' });

    // Assess
    expect(answer).toMatchObject({ accessToken: fresh.access_token });
  });
});

/** Raw items of token records (keys `u#...`), the service's own items left out. */
async function userItems(...args: Parameters<typeof rawItems>): Promise<Record<string, unknown>[]> {
  const items = await rawItems(...args);
  return items.filter((item) => (item.pk as { S?: string } | undefined)?.S?.startsWith('u#'));
}
