import type { RecordKey } from './model';

/** The fields that identify a record in logs. */
export function logKey(key: RecordKey): { userId: string; resource: string } {
  return { userId: key.userId, resource: key.resource };
}

/** An error's class name, the only part of an unknown error that is safe to log. */
export function errorName(error: unknown): string {
  return error instanceof Error ? error.name : typeof error;
}
