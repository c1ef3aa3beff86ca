import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CreateTableCommand, DeleteTableCommand } from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { LocalTokenCipher } from '../../functions/adapters/cipher/local-cipher';
import { DynamoDbTokenStore } from '../../functions/adapters/dynamodb/dynamodb-token-store';
import { createTableInput } from '../../functions/adapters/dynamodb/table-schema';
import { ReauthRequiredError } from '../../functions/core/errors';
import type { RecordKey, TokenRecord } from '../../functions/core/model';
import { Secret } from '../../functions/core/secret';
import { LOCAL_TABLE_NAME } from '../../local/embedded';
import { caught } from '../support/caught';
import { ample, type Harness, localDynamoClient, startHarness } from '../support/harness';
import { registerCanary } from '../support/leak-guard';

const DAY = 86_400;
const run = promisify(execFile);

/** Marks a record REAUTH_REQUIRED as the rotation does (quarantined: tokens kept), fenced on its version. */
async function quarantine(
  store: DynamoDbTokenStore,
  key: RecordKey,
  reason: 'refresh_rejected' | 'deadline',
  at: number,
) {
  const record = (await store.get(key))!;
  const marked: TokenRecord = {
    ...record,
    status: 'REAUTH_REQUIRED',
    version: record.version + 1,
    lease: undefined,
    dueShard: undefined,
    dueAt: undefined,
    reauthReason: reason,
    reauthAt: at,
    expiresAt: at + 30 * DAY,
    lastError: reason,
  };
  expect(await store.put(marked, { version: record.version })).toBe('ok');
}

describe('Restore of quarantined records (DynamoDB Local)', () => {
  let h: Harness;
  /** While true, the IdP's refresh answers `invalid_grant` without seeing the token (a wrong verdict). */
  let rejecting = false;

  afterEach(async () => {
    await h.close();
  });

  async function start() {
    const base: typeof fetch = (input, init) => {
      const url = typeof input === 'string' || input instanceof URL ? String(input) : input.url;
      if (rejecting && url.endsWith('/cis/v1/auth/token/refresh')) {
        const body = JSON.stringify({ error: 'invalid_grant', error_description: 'rejected' });
        return Promise.resolve(
          new Response(body, { status: 400, headers: { 'content-type': 'application/json' } }),
        );
      }
      return globalThis.fetch(input, init);
    };
    h = await startHarness({ overrides: { fetch: base } });
    return h.runtime.store as DynamoDbTokenStore;
  }

  const key = (userId: string): RecordKey => ({ userId, resource: 'default' });
  const nowSeconds = () => Math.floor(h.clock.nowMs() / 1000);

  it('puts the records of the window and reason back to ACTIVE, due now, and the next sweep rotates them', async () => {
    // Prepare: ann is rejected through the real path, ben marked in the same window for the same
    // reason; cid in the window for another reason; dan for the same reason but before the window.
    const store = await start();
    for (const user of ['ann', 'ben', 'cid', 'dan']) await h.signInAndStore(user);
    h.clock.advanceSeconds(3600);
    await quarantine(store, key('dan'), 'refresh_rejected', nowSeconds());
    h.clock.advanceSeconds(3600);
    const windowStart = nowSeconds();
    rejecting = true;
    const rejected = await caught(
      h.runtime.tokenService.getAccessToken({ key: key('ann'), minValiditySeconds: 7200 }, ample),
    );
    rejecting = false;
    expect(rejected).toBeInstanceOf(ReauthRequiredError);
    await quarantine(store, key('ben'), 'refresh_rejected', nowSeconds());
    await quarantine(store, key('cid'), 'deadline', nowSeconds());
    const request = { from: windowStart, to: nowSeconds() + 60, reasons: ['refresh_rejected'] as const };
    h.clock.advanceSeconds(600);

    // Act
    const dry = await h.runtime.restore.run(
      { ...request, reasons: [...request.reasons], dryRun: true },
      ample,
    );
    const afterDry = await store.get(key('ann'));
    const real = await h.runtime.restore.run(
      { ...request, reasons: [...request.reasons], dryRun: false },
      ample,
    );
    const again = await h.runtime.restore.run(
      { ...request, reasons: [...request.reasons], dryRun: false },
      ample,
    );
    const sweep = await h.runtime.sweep.run(ample);

    // Assess
    expect(dry).toEqual({
      dryRun: true,
      matched: 2,
      restorable: 2,
      restored: 0,
      skipped: {},
      complete: true,
      cursor: undefined,
    });
    expect(afterDry?.status).toBe('REAUTH_REQUIRED');
    expect(real).toEqual({
      dryRun: false,
      matched: 2,
      restorable: 2,
      restored: 2,
      skipped: {},
      complete: true,
      cursor: undefined,
    });
    expect(again).toMatchObject({ matched: 0, restored: 0 });
    expect(sweep).toMatchObject({ rotated: 2, failed: 0, reauthRequired: 0 });
    for (const user of ['ann', 'ben']) {
      const record = await store.get(key(user));
      expect(record).toMatchObject({ status: 'ACTIVE', failures: 0, rotations: 1, reauthReason: undefined });
      expect(record?.reauthAt).toBeUndefined();
      const served = await h.runtime.tokenService.getAccessToken(
        { key: key(user), minValiditySeconds: 60 },
        ample,
      );
      expect(served.source).toBe('cached');
    }
    expect((await store.get(key('cid')))?.status).toBe('REAUTH_REQUIRED');
    expect((await store.get(key('dan')))?.status).toBe('REAUTH_REQUIRED');
    expect(h.metrics.total('RecordRestored')).toBe(2);
    const restoredLines = h.logger.lines.filter((line) => line.message === 'quarantined record restored');
    expect(restoredLines.map((line) => line.fields.userId).sort()).toEqual(['ann', 'ben']);
  });

  it('leaves a record quarantined, with the reason, when its token or its deadline has run out', async () => {
    // Prepare
    const store = await start();
    for (const user of ['old', 'capped', 'again']) await h.signInAndStore(user);
    h.clock.advanceSeconds(3600);
    const at = nowSeconds();
    for (const user of ['old', 'capped', 'again']) await quarantine(store, key(user), 'refresh_rejected', at);
    const capped = (await store.get(key('capped')))!;
    await store.put(
      { ...capped, version: capped.version + 1, rotationDeadline: at + 60, refreshExpiresAt: at + 60 },
      { version: capped.version },
    );
    await h.signInAndStore('again'); // signed in again meanwhile: no longer quarantined
    h.clock.advanceSeconds(15 * DAY); // past old's refresh expiry (14 d) and capped's deadline

    // Act
    const report = await h.runtime.restore.run(
      { from: at, to: at, reasons: ['refresh_rejected'], dryRun: false },
      ample,
    );

    // Assess
    expect(report).toEqual({
      dryRun: false,
      matched: 2,
      restorable: 0,
      restored: 0,
      skipped: { refresh_expired: 1, past_deadline: 1 },
      complete: true,
      cursor: undefined,
    });
    expect((await store.get(key('old')))?.status).toBe('REAUTH_REQUIRED');
    expect(h.metrics.total('RestoreSkipped')).toBe(2);
  });

  it('npm run restore -- --local restores the data of npm start', async () => {
    // Prepare: npm start's table and key, in a data folder of this test, on the run's DynamoDB Local.
    h = await startHarness(); // for the leak checks of this test's output
    const dataDir = mkdtempSync(join(tmpdir(), 'token-keeper-restore-'));
    const keyBase64 = randomBytes(32).toString('base64');
    writeFileSync(join(dataDir, 'local-token-key'), keyBase64);
    const endpoint = inject('dynamoEndpoint');
    const client = localDynamoClient();
    await client.send(new DeleteTableCommand({ TableName: LOCAL_TABLE_NAME })).catch(() => undefined);
    await client.send(new CreateTableCommand(createTableInput(LOCAL_TABLE_NAME)));
    const store = new DynamoDbTokenStore({
      tableName: LOCAL_TABLE_NAME,
      cipher: LocalTokenCipher.fromBase64(keyBase64),
      client,
    });
    const now = Math.floor(Date.now() / 1000);
    const refreshToken = `rt-restore-canary-${randomBytes(8).toString('hex')}`;
    registerCanary(refreshToken, 'restore script test');
    const record: TokenRecord = {
      key: key('demo@example.com'),
      status: 'REAUTH_REQUIRED',
      tokens: { accessToken: new Secret(`at-${refreshToken}`), refreshToken: new Secret(refreshToken) },
      tokenType: 'Bearer',
      accessExpiresAt: now + 3000,
      refreshExpiresAt: now + 300,
      expiresAt: now + 30 * DAY,
      authenticatedAt: now - 300,
      rotationDeadline: now - 300 + DAY,
      version: 1,
      lease: undefined,
      dueShard: undefined,
      dueAt: undefined,
      failures: 1,
      lastError: 'refresh_rejected',
      lastRotatedAt: undefined,
      rotations: 0,
      reauthReason: 'refresh_rejected',
      reauthAt: now - 60,
      reauthSoonNotifiedAt: undefined,
    };
    await store.put(record, { version: undefined });
    const port = new URL(endpoint).port;
    const args = ['tsx', 'scripts/restore.ts', '--local', '--data-dir', dataDir, '--dynamo-port', port];
    const window = ['--from', String(now - 3600), '--to', new Date((now + 60) * 1000).toISOString()];

    try {
      // Act
      const dry = await run('npx', [...args, ...window, '--reason', 'refresh_rejected', '--dry-run']);
      const stillQuarantined = await store.get(record.key);
      const real = await run('npx', [...args, ...window, '--reason', 'refresh_rejected,deadline']);

      // Assess
      expect(dry.stdout).toContain('"restorable": 1');
      expect(dry.stdout).toContain('"restored": 0');
      expect(stillQuarantined?.status).toBe('REAUTH_REQUIRED');
      expect(real.stdout).toContain('"restored": 1');
      const restored = await store.get(record.key);
      expect(restored).toMatchObject({ status: 'ACTIVE', failures: 0 });
      expect(restored?.dueAt).toBeGreaterThanOrEqual(now);
      expect(restored?.tokens?.refreshToken.reveal()).toBe(refreshToken);
      for (const output of [dry.stdout, dry.stderr, real.stdout, real.stderr]) {
        expect(output.includes(refreshToken)).toBe(false);
      }
    } finally {
      await client.send(new DeleteTableCommand({ TableName: LOCAL_TABLE_NAME })).catch(() => undefined);
      client.destroy();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
