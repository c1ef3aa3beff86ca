import type { DynamoDBRecord } from 'aws-lambda';
import type { RemovedRecord } from '../../core/expiry-watch';
import type { RecordStatus } from '../../core/model';
import { keyOf } from './dynamodb-token-store';

/** The identity DynamoDB's TTL process writes on the stream records of its deletions. */
const TTL_PRINCIPAL = 'dynamodb.amazonaws.com';

/**
 * Reads the removals out of a DynamoDB stream batch. Only key and lifetime attributes are read
 * from the old image; the sealed token material is never touched.
 */
export function removedRecords(records: readonly DynamoDBRecord[]): RemovedRecord[] {
  const removed: RemovedRecord[] = [];
  for (const record of records) {
    const image = record.dynamodb?.OldImage;
    if (record.eventName !== 'REMOVE' || !image) continue;
    const pk = image.pk?.S;
    const sk = image.sk?.S;
    const status = image.status?.S;
    if (!pk || !sk || (status !== 'ACTIVE' && status !== 'REAUTH_REQUIRED')) continue;
    const identity = (record as { userIdentity?: { type?: string; principalId?: string } }).userIdentity;
    removed.push({
      key: keyOf(pk, sk),
      status: status as RecordStatus,
      refreshExpiresAt: Number(image.refreshExpiresAt?.N ?? 0),
      rotationDeadline: Number(image.rotationDeadline?.N ?? 0),
      removedByTtl: identity?.type === 'Service' && identity.principalId === TTL_PRINCIPAL,
    });
  }
  return removed;
}
