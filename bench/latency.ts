import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { LocalTokenCipher } from '../functions/adapters/cipher/local-cipher';
import { runChild } from './bundle';
import type { LatencyChildResult, LatencyParams } from './children/latency-child';
import { type CpuShare, summarizeProfile } from './cpu-profile';
import { EMULATOR_CLIENT } from './instance';
import { LOCAL_AWS } from './instrument';
import { seedRecords, withBenchTable } from './seed';

/** How many calls the latency section times. */
export interface LatencyProfile {
  readonly warmup: number;
  readonly iterations: number;
  readonly cpuIterations: number;
}

/** Percentiles of a set of timings (ms). */
export interface Percentiles {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly mean: number;
}

/** The result of the latency section. */
export interface LatencyResult {
  readonly iterations: number;
  readonly warmup: number;
  readonly handler: Percentiles;
  readonly getItem: Percentiles;
  /** handler p50 / GetItem p50 (target at most 1.10). */
  readonly ratioP50: number;
  readonly ratioP99: number;
  readonly handlerCpuMs: number;
  readonly getItemCpuMs: number;
  /** CPU per call of the handler's parts, each measured alone. */
  readonly documentGetCpuMs: number;
  readonly storeGetCpuMs: number;
  readonly metricsCpuMs: number;
  /** Where the handler's CPU goes (a sampled profile of a block of handler calls). */
  readonly handlerProfile: CpuShare[];
  /** Log and EMF bytes the handler writes per call. */
  readonly logBytesPerCall: number;
}

/** The environment the stack gives getAccessToken, with local adapters and endpoints. */
export function localFunctionEnv(options: {
  readonly dynamoEndpoint: string;
  readonly tableName: string;
  readonly transmitBaseUrl: string;
  readonly localKey: string;
  readonly sourceMaps?: boolean;
}): Record<string, string> {
  return {
    AWS_REGION: LOCAL_AWS.region,
    AWS_ACCESS_KEY_ID: LOCAL_AWS.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_AWS.credentials.secretAccessKey,
    AWS_ENDPOINT_URL_DYNAMODB: options.dynamoEndpoint,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    TOKEN_TABLE_NAME: options.tableName,
    TRANSMIT_BASE_URL: options.transmitBaseUrl,
    CLIENT_ID: EMULATOR_CLIENT.clientId,
    CLIENT_SECRET: EMULATOR_CLIENT.clientSecret,
    LOCAL_TOKEN_KEY: options.localKey,
    LOG_LEVEL: 'INFO',
    POWERTOOLS_SERVICE_NAME: 'token-keeper',
    METRICS_NAMESPACE: 'TokenKeeper',
    ...(options.sourceMaps === false ? {} : { NODE_OPTIONS: '--enable-source-maps' }),
  };
}

/**
 * Section 2: the warm getAccessToken handler against a bare consistent GetItem of the same item,
 * on the same DynamoDB Local, in one fresh process, timed alternately.
 */
export function measureLatency(
  dynamoEndpoint: string,
  childFile: string,
  profile: LatencyProfile,
): Promise<LatencyResult> {
  return withBenchTable(dynamoEndpoint, 'latency', async ({ clock, transmit, target }) => {
    const localKey = randomBytes(32).toString('base64');
    const cipher = LocalTokenCipher.fromBase64(localKey);
    await seedRecords({ target, transmit, clock, count: 1, userPrefix: 'latency-user-', cipher });
    const profileFile = join(dirname(childFile), 'latency.cpuprofile');
    const { tableName } = target;
    const params: LatencyParams = { tableName, userId: 'latency-user-0', localKey, profileFile, ...profile };
    const run = await runChild<LatencyChildResult>(childFile, params, {
      env: localFunctionEnv({ ...target, localKey }),
    });
    const handler = percentiles(run.result.handlerMs);
    const getItem = percentiles(run.result.getItemMs);
    // Handler calls: warm-up, timed, the CPU block and the profiled block; plus the EMF block.
    const calls = profile.warmup + profile.iterations + 3 * profile.cpuIterations;
    return {
      iterations: profile.iterations,
      warmup: profile.warmup,
      handler,
      getItem,
      ratioP50: handler.p50 / getItem.p50,
      ratioP99: handler.p99 / getItem.p99,
      handlerCpuMs: run.result.handlerCpuMs,
      getItemCpuMs: run.result.getItemCpuMs,
      documentGetCpuMs: run.result.documentGetCpuMs,
      storeGetCpuMs: run.result.storeGetCpuMs,
      metricsCpuMs: run.result.metricsCpuMs,
      handlerProfile: summarizeProfile(profileFile, childFile),
      logBytesPerCall: run.stdoutBytes / calls,
    };
  });
}

/** Nearest-rank percentiles. */
export function percentiles(values: readonly number[]): Percentiles {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) =>
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? 0;
  return {
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    mean: sorted.reduce((sum, value) => sum + value, 0) / Math.max(1, sorted.length),
  };
}
