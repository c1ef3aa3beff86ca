/**
 * Bundled and run in a fresh process by bench/latency.ts: the real getAccessToken handler (built
 * from the environment, as in Lambda) and a bare GetItem of the same item on its own client,
 * timed alternately in one loop.
 */
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { LocalTokenCipher } from '../../functions/adapters/cipher/local-cipher';
import { DynamoDbTokenStore } from '../../functions/adapters/dynamodb/dynamodb-token-store';
import { EmfMetrics } from '../../functions/adapters/observability/metrics';
import { handler } from '../../functions/handlers/get-access-token';
import { startProfiling } from '../cpu-profile';
import { answerParent } from './answer-parent';

/** What the parent sends. */
export interface LatencyParams {
  readonly tableName: string;
  readonly userId: string;
  readonly warmup: number;
  readonly iterations: number;
  /** Calls per side for the CPU-time blocks. */
  readonly cpuIterations: number;
  /** LOCAL_TOKEN_KEY, for the store the CPU breakdown builds beside the handler's. */
  readonly localKey: string;
  /** Where to write a CPU profile of a block of handler calls. */
  readonly profileFile: string;
}

/** What the child answers. */
export interface LatencyChildResult {
  readonly handlerMs: number[];
  readonly getItemMs: number[];
  /** CPU time (user + system) per call, measured in blocks of one kind. */
  readonly handlerCpuMs: number;
  readonly getItemCpuMs: number;
  /** The handler's parts, each alone: the document client's GetCommand, the store's get (+ decrypt), EMF. */
  readonly documentGetCpuMs: number;
  readonly storeGetCpuMs: number;
  readonly metricsCpuMs: number;
}

answerParent('latency child', run);

async function run(params: LatencyParams): Promise<LatencyChildResult> {
  // Same SDK defaults as the handler's client: region, credentials and endpoint from the environment.
  const client = new DynamoDBClient({});
  const event = { userId: params.userId };
  const key = { pk: { S: `u#${params.userId}` }, sk: { S: 'r#default' } };

  const callHandler = async (): Promise<number> => {
    const started = performance.now();
    const served = await handler(event);
    const elapsed = performance.now() - started;
    if (typeof served.accessToken !== 'string' || served.accessToken.length === 0) {
      throw new Error('the handler served no access token');
    }
    return elapsed;
  };
  const callGetItem = async (): Promise<number> => {
    const started = performance.now();
    const result = await client.send(
      new GetItemCommand({ TableName: params.tableName, Key: key, ConsistentRead: true }),
    );
    const elapsed = performance.now() - started;
    if (!result.Item) throw new Error('GetItem found no item');
    return elapsed;
  };

  for (let i = 0; i < params.warmup; i++) {
    await callHandler();
    await callGetItem();
  }
  const handlerMs: number[] = [];
  const getItemMs: number[] = [];
  for (let i = 0; i < params.iterations; i++) {
    // Alternate which goes first so neither always follows the other.
    if (i % 2 === 0) {
      handlerMs.push(await callHandler());
      getItemMs.push(await callGetItem());
    } else {
      getItemMs.push(await callGetItem());
      handlerMs.push(await callHandler());
    }
  }
  const documents = DynamoDBDocumentClient.from(client);
  const store = new DynamoDbTokenStore({
    tableName: params.tableName,
    client,
    cipher: LocalTokenCipher.fromBase64(params.localKey),
  });
  const metrics = new EmfMetrics({});
  const parts = {
    handler: callHandler,
    getItem: callGetItem,
    documentGet: async () => {
      await documents.send(
        new GetCommand({
          TableName: params.tableName,
          Key: { pk: key.pk.S, sk: key.sk.S },
          ConsistentRead: true,
        }),
      );
      return 0;
    },
    storeGet: async () => {
      await store.get({ userId: params.userId, resource: 'default' });
      return 0;
    },
    metrics: async () => {
      metrics.count('AccessTokenServed');
      metrics.count('AccessTokenServed', 1, { source: 'cached' });
      metrics.flush();
      return 0;
    },
  };
  // CPU time per call of each part, in short blocks taken in turn, so that a change in the
  // machine's load over the run weighs on every part alike.
  const cpuMs = Object.fromEntries(Object.keys(parts).map((name) => [name, 0])) as Record<
    keyof typeof parts,
    number
  >;
  const block = 10;
  for (let round = 0; round < Math.ceil(params.cpuIterations / block); round++) {
    for (const [name, call] of Object.entries(parts) as [keyof typeof parts, () => Promise<number>][]) {
      const before = process.cpuUsage();
      for (let i = 0; i < block; i++) await call();
      const used = process.cpuUsage(before);
      cpuMs[name] += (used.user + used.system) / 1000;
    }
  }
  const perCall = (name: keyof typeof parts) =>
    cpuMs[name] / (Math.ceil(params.cpuIterations / block) * block);

  const stopProfiling = await startProfiling();
  for (let i = 0; i < params.cpuIterations; i++) await callHandler();
  await stopProfiling(params.profileFile);
  client.destroy();
  return {
    handlerMs,
    getItemMs,
    handlerCpuMs: perCall('handler'),
    getItemCpuMs: perCall('getItem'),
    documentGetCpuMs: perCall('documentGet'),
    storeGetCpuMs: perCall('storeGet'),
    metricsCpuMs: perCall('metrics'),
  };
}
