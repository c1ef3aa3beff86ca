import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalTokenCipher } from '../../functions/adapters/cipher/local-cipher';
import { DynamoDbTokenStore } from '../../functions/adapters/dynamodb/dynamodb-token-store';
import { RejectionBreaker } from '../../functions/core/rejection-breaker';
import { FakeClock, T0 } from '../support/fakes';
import { createTable, localDynamoClient } from '../support/harness';
import { InMemoryMetrics, MemoryLogger } from '../support/observability';

describe('Class: DynamoDbTokenStore, rejection breaker items (DynamoDB Local)', () => {
  const dynamo = localDynamoClient();
  let store: DynamoDbTokenStore;

  beforeAll(async () => {
    const tableName = await createTable(dynamo);
    store = new DynamoDbTokenStore({
      tableName,
      cipher: new LocalTokenCipher(randomBytes(32)),
      client: dynamo,
    });
  });
  afterAll(() => dynamo.destroy());

  it('counts rejections per window atomically under concurrency', async () => {
    // Act
    const counts = await Promise.all(Array.from({ length: 20 }, () => store.countRejection(T0, T0 + 1200)));
    const other = await store.countRejection(T0 + 600, T0 + 1800);

    // Assess: every count from 1 to 20 was handed out exactly once.
    expect([...counts].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(other).toBe(1);
  });

  it('opens once (the second opener gets conflict), reads back, and closes with a trust period', async () => {
    // Act and assess
    expect(await store.getBreaker()).toEqual({ openedAt: undefined, trustUntil: undefined });
    expect(await store.openBreaker(T0)).toBe('ok');
    expect(await store.openBreaker(T0 + 5)).toBe('conflict');
    expect(await store.getBreaker()).toEqual({ openedAt: T0, trustUntil: undefined });
    await store.closeBreaker(T0 + 3600);
    expect(await store.getBreaker()).toEqual({ openedAt: undefined, trustUntil: T0 + 3600 });
    expect(await store.openBreaker(T0 + 10)).toBe('ok');
    expect(await store.getBreaker()).toEqual({ openedAt: T0 + 10, trustUntil: undefined });
    await store.closeBreaker(T0);
  });

  it('trips once across many concurrent rejections past the threshold (one metric, the rest held)', async () => {
    // Prepare: a fresh window far from the other tests.
    const clock = new FakeClock((T0 + 100 * 600) * 1000);
    const metrics = new InMemoryMetrics();
    const breaker = new RejectionBreaker({
      store,
      clock,
      metrics,
      logger: new MemoryLogger(),
      settings: { threshold: 5, windowSeconds: 600 },
    });

    // Act
    const verdicts = await Promise.all(Array.from({ length: 12 }, () => breaker.admit()));

    // Assess
    expect(verdicts.filter((v) => v === 'mark').length).toBeLessThanOrEqual(5);
    expect(verdicts.filter((v) => v === 'hold').length).toBeGreaterThanOrEqual(7);
    expect(metrics.total('RotationCircuitOpen')).toBe(1);
    expect(await breaker.isOpen()).toBe(true);
  });
});
