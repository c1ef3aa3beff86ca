import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { EVENT_SOURCE, TOKEN_KEY_ENCRYPTION_CONTEXT } from '../functions/shared-facts';

/*
 * What the function roles may do: the action lists (exact, tested) and the statements each role
 * is built from, every one scoped to one resource. README "What each function may do".
 */

/**
 * The encryption context of every token-key call (the IAM grants and the key policy require it)
 * and the `source` of every event the functions put on EventBridge (the PutEvents grants require
 * it, so a function role cannot publish events that pretend to come from another service): the
 * values the functions use, from the one module both sides import.
 */
export { EVENT_SOURCE, TOKEN_KEY_ENCRYPTION_CONTEXT };

/** The table actions of each function (exact lists, tested). */
export const TABLE_ACTIONS = {
  // Reads the previous version (a projection) and puts the new record: it opens no stored token.
  storeTokens: ['dynamodb:GetItem', 'dynamodb:PutItem'],
  getAccessToken: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
  refreshSweep: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
  // Reads the record (for the IdP session), then deletes it.
  disconnect: ['dynamodb:DeleteItem', 'dynamodb:GetItem'],
  // Reads the schedule attributes of one record (a projection): no token, nothing decrypted.
  tokenStatus: ['dynamodb:GetItem'],
} as const;

/**
 * What the expiry consumer may do with the table's stream (resource: that stream's ARN).
 * `dynamodb:ListStreams` is granted apart: it has no resource-level permissions.
 */
export const STREAM_READ_ACTIONS = [
  'dynamodb:DescribeStream',
  'dynamodb:GetRecords',
  'dynamodb:GetShardIterator',
];

/** What a function may do with the token key: make data keys to seal, open what it reads. */
const TOKEN_KEY_ACTIONS = ['kms:GenerateDataKey', 'kms:Decrypt'];

/**
 * What DynamoDB does with the storage key on a function's behalf (the table is encrypted with
 * it). Only through DynamoDB: the grant carries a `kms:ViaService` condition.
 */
const STORAGE_KEY_ACTIONS = ['kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:GenerateDataKey'];

/** The storage-key actions of a reader that never writes the table (what CDK's read grants give). */
const STORAGE_KEY_READ_ACTIONS = ['kms:Decrypt', 'kms:DescribeKey'];

/** Statements a function role may get; each function picks from these. */
export interface FunctionStatements {
  readonly tableItems: (actions: readonly string[]) => iam.PolicyStatement;
  readonly tokenKeyUse: iam.PolicyStatement;
  readonly tokenKeySeal: iam.PolicyStatement;
  readonly tokenKeyDecrypt: iam.PolicyStatement;
  readonly storageKeyViaDynamoDb: iam.PolicyStatement;
  readonly storageKeyReadViaDynamoDb: iam.PolicyStatement;
  readonly readSecret: iam.PolicyStatement;
  readonly putEvents: iam.PolicyStatement;
}

/** The resources the statements name. */
export interface StatementResources {
  readonly table: dynamodb.ITable;
  readonly tokenKey: kms.IKey;
  readonly storageKey: kms.IKey;
  readonly clientCredentialsSecret: secretsmanager.ISecret;
  readonly eventBus: events.IEventBus;
  /** The stack's region: DynamoDB uses the storage key through `dynamodb.<region>.amazonaws.com`. */
  readonly region: string;
}

/** The statements the function roles are built from, each scoped to one resource. */
export function functionStatements(r: StatementResources): FunctionStatements {
  const tokenKey = (actions: string[]) =>
    new iam.PolicyStatement({
      actions,
      resources: [r.tokenKey.keyArn],
      conditions: {
        StringEquals: { 'kms:EncryptionContext:purpose': TOKEN_KEY_ENCRYPTION_CONTEXT.purpose },
      },
    });
  const storageKey = (actions: string[]) =>
    new iam.PolicyStatement({
      actions,
      resources: [r.storageKey.keyArn],
      conditions: { StringEquals: { 'kms:ViaService': `dynamodb.${r.region}.amazonaws.com` } },
    });
  return {
    tableItems: (actions) =>
      new iam.PolicyStatement({ actions: [...actions], resources: [r.table.tableArn] }),
    tokenKeyUse: tokenKey(TOKEN_KEY_ACTIONS),
    tokenKeySeal: tokenKey(['kms:GenerateDataKey']),
    tokenKeyDecrypt: tokenKey(['kms:Decrypt']),
    storageKeyViaDynamoDb: storageKey(STORAGE_KEY_ACTIONS),
    storageKeyReadViaDynamoDb: storageKey(STORAGE_KEY_READ_ACTIONS),
    readSecret: new iam.PolicyStatement({
      actions: ['secretsmanager:GetSecretValue'],
      resources: [secretArnForPolicy(r.clientCredentialsSecret)],
    }),
    putEvents: new iam.PolicyStatement({
      actions: ['events:PutEvents'],
      resources: [r.eventBus.eventBusArn],
      conditions: { StringEquals: { 'events:source': EVENT_SOURCE } },
    }),
  };
}

/** A secret imported by name has a partial ARN; IAM needs the 6-character suffix matched. */
function secretArnForPolicy(secret: secretsmanager.ISecret): string {
  return secret.secretFullArn ?? `${secret.secretArn}-??????`;
}
