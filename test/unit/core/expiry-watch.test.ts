import type { DynamoDBRecord } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { removedRecords } from '../../../functions/adapters/dynamodb/stream';
import { ExpiryWatch } from '../../../functions/core/expiry-watch';
import { InMemoryMetrics, MemoryLogger, RecordingEventPublisher } from '../../support/observability';

const NOW = 1_800_000_000;

function removal(
  userId: string,
  options: { status?: string; refreshExpiresAt?: number; rotationDeadline?: number; byTtl?: boolean } = {},
): DynamoDBRecord {
  return {
    eventName: 'REMOVE',
    ...(options.byTtl === false
      ? {}
      : { userIdentity: { type: 'Service', principalId: 'dynamodb.amazonaws.com' } }),
    dynamodb: {
      OldImage: {
        pk: { S: `u#${userId}` },
        sk: { S: 'r#default' },
        status: { S: options.status ?? 'ACTIVE' },
        refreshExpiresAt: { N: String(options.refreshExpiresAt ?? NOW - 10) },
        rotationDeadline: { N: String(options.rotationDeadline ?? NOW + 100_000) },
        sealed: { S: 'v1.local.iv.ciphertext' },
      },
    },
  } as DynamoDBRecord;
}

describe('Function: removedRecords', () => {
  it('reads key, status and lifetimes of REMOVE records and tells TTL deletions apart', () => {
    // Act
    const removed = removedRecords({
      Records: [
        removal('a'),
        removal('b', { byTtl: false }),
        { eventName: 'MODIFY', dynamodb: {} } as DynamoDBRecord,
      ],
    });

    // Assess
    expect(removed).toEqual([
      {
        key: { userId: 'a', resource: 'default' },
        status: 'ACTIVE',
        refreshExpiresAt: NOW - 10,
        rotationDeadline: NOW + 100_000,
        removedByTtl: true,
      },
      expect.objectContaining({ key: { userId: 'b', resource: 'default' }, removedByTtl: false }),
    ]);
    expect(JSON.stringify(removed)).not.toContain('ciphertext');
  });

  it('skips records without a usable old image', () => {
    const broken = { eventName: 'REMOVE', dynamodb: { OldImage: { pk: { S: 'u#x' } } } } as DynamoDBRecord;
    expect(
      removedRecords({
        Records: [broken, null, 5, { eventName: 'REMOVE', dynamodb: { OldImage: { pk: { S: 7 } } } }],
      }),
    ).toEqual([]);
  });

  it('refuses an event that is not a stream batch with ValidationError', () => {
    for (const event of [null, 5, {}, { Records: 0 }, { Records: {} }]) {
      expect(() => removedRecords(event)).toThrow(expect.objectContaining({ name: 'ValidationError' }));
    }
  });
});

describe('Class: ExpiryWatch', () => {
  const setup = () => {
    const metrics = new InMemoryMetrics();
    const logger = new MemoryLogger();
    const events = new RecordingEventPublisher(logger);
    const watch = new ExpiryWatch({ metrics, logger, events, clock: { nowMs: () => NOW * 1000 } });
    return { metrics, logger, events, watch };
  };

  it('counts an ACTIVE record deleted by TTL before its deadline as a lost token, and tells the app', async () => {
    // Prepare
    const { metrics, events, watch } = setup();

    // Act
    const summary = await watch.onRemoved(removedRecords({ Records: [removal('lost')] }));

    // Assess
    expect(summary).toEqual({ tokensExpired: 1, deadlineReached: 0, ignored: 0 });
    expect(metrics.total('TokensExpired')).toBe(1);
    expect(events.published).toEqual([
      { type: 'Tokens Expired', key: { userId: 'lost', resource: 'default' }, at: NOW },
    ]);
  });

  it('reports a record deleted at its rotation deadline as Reauth Required (deadline), not as lost', async () => {
    const { metrics, events, watch } = setup();
    const summary = await watch.onRemoved(
      removedRecords({ Records: [removal('old', { refreshExpiresAt: NOW - 5, rotationDeadline: NOW - 5 })] }),
    );
    expect(summary).toEqual({ tokensExpired: 0, deadlineReached: 1, ignored: 0 });
    expect(metrics.total('TokensExpired')).toBe(0);
    expect(events.published[0]).toMatchObject({ type: 'Reauth Required', reason: 'deadline' });
  });

  it('ignores disconnects, operator deletes and REAUTH_REQUIRED records leaving after their retention', async () => {
    const { metrics, events, watch } = setup();
    const summary = await watch.onRemoved(
      removedRecords({
        Records: [removal('gone', { byTtl: false }), removal('kept', { status: 'REAUTH_REQUIRED' })],
      }),
    );
    expect(summary).toEqual({ tokensExpired: 0, deadlineReached: 0, ignored: 2 });
    expect(metrics.points).toHaveLength(0);
    expect(events.published).toHaveLength(0);
  });
});
