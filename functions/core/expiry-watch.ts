import { publishSafely } from './events';
import { logKey } from './log-fields';
import type { RecordKey, RecordStatus } from './model';
import type { AppEvent, EventPublisher, Logger, Metrics } from './ports';

/** A record that DynamoDB deleted, as far as the watch needs to know it (never its tokens). */
export interface RemovedRecord {
  readonly key: RecordKey;
  readonly status: RecordStatus;
  readonly refreshExpiresAt: number;
  readonly rotationDeadline: number;
  /** True when DynamoDB's TTL process deleted it (not a disconnect or an operator). */
  readonly removedByTtl: boolean;
}

/** What the watch saw in one batch. */
export interface ExpiryWatchSummary {
  /** ACTIVE records whose refresh token died before the rotation deadline: the service failed. */
  tokensExpired: number;
  /** ACTIVE records that reached the deadline without the sweep marking them. */
  deadlineReached: number;
  ignored: number;
}

/**
 * Lost-access detection. A record that the TTL deletes while still ACTIVE had a refresh token
 * that expired without being rotated or marked REAUTH_REQUIRED: token-keeper failed to keep it.
 * Count it (`TokensExpired`, alarmed) and tell the app; the user must sign in again.
 */
export class ExpiryWatch {
  constructor(
    private readonly deps: {
      readonly metrics: Metrics;
      readonly logger: Logger;
      readonly events: EventPublisher;
      readonly clock: { nowMs(): number };
    },
  ) {}

  /** Handles one batch of removals. */
  async onRemoved(records: readonly RemovedRecord[]): Promise<ExpiryWatchSummary> {
    const summary: ExpiryWatchSummary = { tokensExpired: 0, deadlineReached: 0, ignored: 0 };
    const at = Math.floor(this.deps.clock.nowMs() / 1000);
    for (const record of records) {
      if (!record.removedByTtl || record.status !== 'ACTIVE') {
        summary.ignored++;
        continue;
      }
      if (record.refreshExpiresAt < record.rotationDeadline) {
        summary.tokensExpired++;
        this.deps.metrics.count('TokensExpired');
        this.deps.logger.error(
          'refresh token expired before it was rotated (record deleted by TTL)',
          logKey(record.key),
        );
        await this.publish({ type: 'Tokens Expired', key: record.key, at });
      } else {
        summary.deadlineReached++;
        this.deps.metrics.count('ReauthRequired', 1, { reason: 'deadline' });
        await this.publish({ type: 'Reauth Required', key: record.key, reason: 'deadline', at });
      }
    }
    return summary;
  }

  private publish(event: AppEvent): Promise<void> {
    return publishSafely(this.deps.events, this.deps.logger, event);
  }
}
