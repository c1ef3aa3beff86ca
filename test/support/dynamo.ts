import { DynamoDBClient } from '@aws-sdk/client-dynamodb';

/** A DynamoDB client for a DynamoDB Local at `endpoint` (any region, dummy credentials). */
export function localDynamoClientAt(endpoint: string): DynamoDBClient {
  return new DynamoDBClient({
    endpoint,
    region: 'local',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
}
