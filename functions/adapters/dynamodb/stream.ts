import { unmarshall } from '@aws-sdk/util-dynamodb';
import { ValidationError } from '../../core/errors';
import type { RemovedRecord } from '../../core/expiry-watch';
import { RESOURCE_KEY_PREFIX, TTL_PRINCIPAL, USER_KEY_PREFIX } from '../../shared-facts';
import { keyOf } from './dynamodb-token-store';

type Json = Record<string, unknown>;

/**
 * Reads the removals out of a DynamoDB stream batch (`{ Records: [...] }`). A batch that is not
 * one is a ValidationError; a record that is not a well-formed removal of a token record is
 * skipped (retrying the batch would not make it one). Only key and lifetime attributes are
 * read from the old image; the sealed token material is never touched.
 */
export function removedRecords(event: unknown): RemovedRecord[] {
  if (!isObject(event) || !Array.isArray(event.Records)) {
    throw new ValidationError('the event must be a DynamoDB stream batch with a Records array');
  }
  const removed: RemovedRecord[] = [];
  for (const record of event.Records as unknown[]) {
    if (!isObject(record) || record.eventName !== 'REMOVE') continue;
    const image = isObject(record.dynamodb) ? record.dynamodb.OldImage : undefined;
    if (!isObject(image)) continue;
    let fields: Json;
    try {
      // Only plain attributes are read below; the sealed token material stays an opaque string.
      fields = unmarshall(image as Parameters<typeof unmarshall>[0]);
    } catch {
      continue; // not a DynamoDB image
    }
    const pk = typeof fields.pk === 'string' ? fields.pk : undefined;
    const sk = typeof fields.sk === 'string' ? fields.sk : undefined;
    const status = fields.status;
    const refreshExpiresAt = fields.refreshExpiresAt;
    const rotationDeadline = fields.rotationDeadline;
    if (
      !pk?.startsWith(USER_KEY_PREFIX) ||
      !sk?.startsWith(RESOURCE_KEY_PREFIX) ||
      (status !== 'ACTIVE' && status !== 'REAUTH_REQUIRED')
    ) {
      continue;
    }
    if (typeof refreshExpiresAt !== 'number' || !Number.isFinite(refreshExpiresAt)) continue;
    if (typeof rotationDeadline !== 'number' || !Number.isFinite(rotationDeadline)) continue;
    const identity = isObject(record.userIdentity) ? record.userIdentity : {};
    removed.push({
      key: keyOf(pk, sk),
      status,
      refreshExpiresAt,
      rotationDeadline,
      removedByTtl: identity.type === 'Service' && identity.principalId === TTL_PRINCIPAL,
    });
  }
  return removed;
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
