/**
 * The baseline of the sweep's CPU per rotation: the same four requests a rotation makes, through
 * bare clients in the same process and at the same concurrency, with nothing around them: a
 * consistent GetItem of the record, a conditional UpdateItem (the lease), the IdP refresh (POST
 * with the client token) and a conditional PutItem of the whole item (the commit). No cipher, no
 * document client, no logs, metrics, rate limiter or rotation logic.
 */
import {
  type AttributeValue,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';

/** What the parent prepares: records to read and write, and refresh tokens the emulator accepts. */
export interface BareRotationParams {
  readonly dynamoEndpoint: string;
  readonly tableName: string;
  readonly transmitBaseUrl: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly region: string;
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  /** `userId`s of stored records (resource `default`). */
  readonly userIds: readonly string[];
  readonly refreshTokens: readonly string[];
}

/** CPU and wall time of the bare rotations. */
export interface BareRotationResult {
  readonly rotations: number;
  readonly cpuMs: number;
  readonly wallMs: number;
}

/** Runs one bare rotation per user, `concurrency` at a time. */
export async function bareRotations(
  params: BareRotationParams,
  concurrency: number,
): Promise<BareRotationResult> {
  const client = new DynamoDBClient({
    endpoint: params.dynamoEndpoint,
    region: params.region,
    credentials: params.credentials,
  });
  // The client token, once (the sweep too gets it once per instance): not part of the timing.
  const tokenAnswer = await fetch(`${params.transmitBaseUrl}/oidc/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: params.clientId,
      client_secret: params.clientSecret,
    }).toString(),
  });
  const clientToken = ((await tokenAnswer.json()) as { access_token: string }).access_token;

  const one = async (index: number): Promise<void> => {
    const Key: Record<string, AttributeValue> = {
      pk: { S: `u#${params.userIds[index]}` },
      sk: { S: 'r#default' },
    };
    const read = await client.send(
      new GetItemCommand({ TableName: params.tableName, Key, ConsistentRead: true }),
    );
    const item = read.Item;
    if (!item) throw new Error('bare rotation: no item');
    const version = item.version?.N ?? '0';
    await client.send(
      new UpdateItemCommand({
        TableName: params.tableName,
        Key,
        UpdateExpression: 'SET leaseId = :lease, leaseUntil = :until',
        ConditionExpression: '#version = :version',
        ExpressionAttributeNames: { '#version': 'version' },
        ExpressionAttributeValues: {
          ':lease': { S: `bare-${index}` },
          ':until': { N: String(Date.now() + 30_000) },
          ':version': { N: version },
        },
      }),
    );
    const answer = await fetch(`${params.transmitBaseUrl}/cis/v1/auth/token/refresh`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json',
        authorization: `Bearer ${clientToken}`,
      },
      body: JSON.stringify({ refresh_token: params.refreshTokens[index] }),
    });
    const tokens = (await answer.json()) as { refresh_token?: string };
    if (answer.status !== 200 || !tokens.refresh_token)
      throw new Error(`bare rotation: IdP ${answer.status}`);
    const { leaseId: _lease, leaseUntil: _until, ...rest } = item;
    await client.send(
      new PutItemCommand({
        TableName: params.tableName,
        Item: { ...rest, version: { N: String(Number(version) + 1) } },
        ConditionExpression: '#version = :version AND leaseId = :lease',
        ExpressionAttributeNames: { '#version': 'version' },
        ExpressionAttributeValues: { ':version': { N: version }, ':lease': { S: `bare-${index}` } },
      }),
    );
  };

  const count = Math.min(params.userIds.length, params.refreshTokens.length);
  // The first rotations open connections and warm the code up: timed from the warm-up's end on,
  // as the sweep's steady state is.
  const warmUp = Math.min(Math.floor(count / 5), 2 * concurrency);
  let next = 0;
  let done = 0;
  let started = performance.now();
  let before = process.cpuUsage();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) {
        await one(next++);
        if (++done === warmUp) {
          started = performance.now();
          before = process.cpuUsage();
        }
      }
    }),
  );
  const used = process.cpuUsage(before);
  const wallMs = performance.now() - started;
  client.destroy();
  return { rotations: count - warmUp, cpuMs: (used.user + used.system) / 1000, wallMs };
}
