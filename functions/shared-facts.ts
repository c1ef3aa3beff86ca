/**
 * What the functions and the construct that deploys them must agree on, defined once: the
 * construct's IAM conditions, stream filter and key policy name the same values the code uses.
 */

/** The `source` of every event token-keeper puts on EventBridge (the publishing roles may put no other). */
export const EVENT_SOURCE = 'token-keeper';

/** The identity DynamoDB's TTL process writes on the stream records of its deletions. */
export const TTL_PRINCIPAL = 'dynamodb.amazonaws.com';

/** Sent with every GenerateDataKey and Decrypt of the token key; its key policy requires it. */
export const TOKEN_KEY_ENCRYPTION_CONTEXT = { purpose: 'token-keeper' } as const;

/** Partition keys of user records start with this; anything else in the table is bookkeeping. */
export const USER_KEY_PREFIX = 'u#';

/** Sort keys of user records (the resource) start with this. */
export const RESOURCE_KEY_PREFIX = 'r#';
