/**
 * A worker process that dies on purpose. It builds the service against the table and IdP named in
 * its environment, runs one getAccessToken or one sweep at the virtual time it is given, and kills
 * itself with SIGKILL (no cleanup, no finally, no flush: as a Lambda that is torn down) at the
 * chosen step. Run with `node --import tsx test/proofs/support/crash-worker.ts`.
 *
 * Environment: the service's own settings (TOKEN_TABLE_NAME, TRANSMIT_BASE_URL, LOCAL_TOKEN_KEY,
 * CLIENT_ID, CLIENT_SECRET, lifetimes...) plus PROOF_DYNAMO_ENDPOINT, PROOF_NOW_MS,
 * PROOF_CRASH_AT (a CrashPoint, see crash.ts), PROOF_OPERATION ('get' | 'sweep') and PROOF_USER_ID.
 *
 * It writes `reached <point>` on stdout just before it dies, and exits with code 3 when the
 * operation finished without reaching the point (so the parent can tell a wrong setup from a crash).
 */
import { writeSync } from 'node:fs';
import { LocalTokenCipher } from '../../../functions/adapters/cipher/local-cipher';
import { StaticClientCredentials } from '../../../functions/adapters/credentials/client-credentials';
import { DynamoDbTokenStore } from '../../../functions/adapters/dynamodb/dynamodb-token-store';
import { TransmitIdentityProvider } from '../../../functions/adapters/idp/transmit';
import { buildRuntime } from '../../../functions/adapters/runtime';
import { loadConfig } from '../../../functions/config';
import { localDynamoClientAt } from '../../support/dynamo';
import { InMemoryMetrics, MemoryLogger, RecordingEventPublisher } from '../../support/observability';
import type { CrashPoint } from './crash';
import { ProofIdp } from './proof-idp';
import { ProofStore } from './proof-store';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
}

function die(point: CrashPoint): never {
  writeSync(1, `reached ${point}\n`);
  process.kill(process.pid, 'SIGKILL');
  // SIGKILL cannot be caught; this line is never reached.
  throw new Error('unreachable');
}

async function main(): Promise<void> {
  const crashAt = required('PROOF_CRASH_AT') as CrashPoint;
  const operation = required('PROOF_OPERATION');
  const nowMs = Number(required('PROOF_NOW_MS'));
  const config = loadConfig(process.env);
  const clock = { nowMs: () => nowMs };

  const store = new ProofStore(
    new DynamoDbTokenStore({
      tableName: config.tableName,
      cipher: LocalTokenCipher.fromBase64(required('LOCAL_TOKEN_KEY')),
      client: localDynamoClientAt(required('PROOF_DYNAMO_ENDPOINT')),
    }),
  );
  const idp = new ProofIdp(
    new TransmitIdentityProvider({
      baseUrl: required('TRANSMIT_BASE_URL'),
      credentials: new StaticClientCredentials(required('CLIENT_ID'), required('CLIENT_SECRET')),
      clock,
    }),
  );
  let answered = false;
  idp.hooks = {
    after: () => {
      answered = true;
      if (crashAt === 'after-idp') die(crashAt);
    },
  };
  store.hooks = {
    // The first write after the IdP answered is the commit.
    before: (method) => {
      if (method === 'put' && answered && crashAt === 'commit-unsent') die(crashAt);
    },
    after: (method, _label, outcome) => {
      if (method === 'acquireLease' && outcome === 'ok' && crashAt === 'after-lease') die(crashAt);
      if (method === 'put' && answered && outcome === 'ok' && crashAt === 'commit-applied') die(crashAt);
    },
  };

  const logger = new MemoryLogger();
  const runtime = buildRuntime(config, {
    clock,
    store,
    idp,
    logger,
    metrics: new InMemoryMetrics(),
    events: new RecordingEventPublisher(logger),
  });
  const budget = { remainingMs: () => 60_000 };
  if (operation === 'sweep') {
    await runtime.sweep.run(budget);
  } else {
    await runtime.tokenService.getAccessToken(
      { key: { userId: required('PROOF_USER_ID'), resource: 'default' }, minValiditySeconds: 60 },
      budget,
    );
  }
  writeSync(1, 'finished without reaching the crash point\n');
  process.exit(3);
}

main().catch((error: unknown) => {
  // Names and messages only: the service's errors never carry token material.
  writeSync(
    2,
    `worker failed: ${error instanceof Error ? `${error.name}: ${error.message}` : typeof error}\n`,
  );
  process.exit(4);
});
