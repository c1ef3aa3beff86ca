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
    const pk = attribute(image, 'pk', 'S');
    const sk = attribute(image, 'sk', 'S');
    const status = attribute(image, 'status', 'S');
    const refreshExpiresAt = Number(attribute(image, 'refreshExpiresAt', 'N'));
    const rotationDeadline = Number(attribute(image, 'rotationDeadline', 'N'));
    if (
      !pk?.startsWith(USER_KEY_PREFIX) ||
      !sk?.startsWith(RESOURCE_KEY_PREFIX) ||
      (status !== 'ACTIVE' && status !== 'REAUTH_REQUIRED')
    ) {
      continue;
    }
    if (!Number.isFinite(refreshExpiresAt) || !Number.isFinite(rotationDeadline)) continue;
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

/** A string-typed AttributeValue (`{ S: "..." }` or `{ N: "..." }`), or undefined. */
function attribute(image: Json, name: string, type: 'S' | 'N'): string | undefined {
  const value = Object.hasOwn(image, name) ? image[name] : undefined;
  if (!isObject(value)) return undefined;
  const inner = value[type];
  return typeof inner === 'string' ? inner : undefined;
}
