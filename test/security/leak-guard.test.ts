import { inspect } from 'node:util';
import { DeleteItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import { StaticClientCredentials } from '../../functions/adapters/credentials/client-credentials';
import { TransmitIdentityProvider } from '../../functions/adapters/idp/transmit';
import type { IdentityProvider } from '../../functions/core/ports';
import { Secret } from '../../functions/core/secret';
import { ample, type Harness, localDynamoClient, startHarness } from '../support/harness';
import {
  allCanaries,
  canaryCount,
  discardOutputSince,
  expectNoCanary,
  muted,
  outputMark,
  registerCanary,
  TokenLeakError,
} from '../support/leak-guard';

/**
 * The leak guard proves nothing unless it can fail. Each test here plants a canary in one place
 * the guard watches and shows that the harness's close() (or expectNoCanary) fails, naming the
 * place and never the value.
 */
describe('Leak guard', () => {
  const open: Harness[] = [];
  const harness = async (...args: Parameters<typeof startHarness>) => {
    const h = await startHarness(...args);
    open.push(h);
    return h;
  };
  afterEach(async () => {
    // Harnesses that a test expected to fail are closed already; close() is idempotent.
    await Promise.allSettled(open.splice(0).map((h) => h.close()));
  });

  /** Deletes the planted item, so the run's at-rest audit does not find it (it would). */
  const removePlant = async (tableName: string) => {
    const client = localDynamoClient();
    await client.send(
      new DeleteItemCommand({
        TableName: tableName,
        Key: { pk: { S: 'u#planted' }, sk: { S: 'r#default' } },
      }),
    );
    client.destroy();
  };

  /** The rejection of close(), which must be a TokenLeakError. */
  const leakOnClose = async (h: Harness): Promise<TokenLeakError> => {
    const error = await h.close().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TokenLeakError);
    return error as TokenLeakError;
  };

  describe('Method: startHarness (collecting canaries)', () => {
    it('registers the tokens of sign-ins, refresh answers and the client token as canaries', async () => {
      // Prepare
      const h = await harness();
      const before = canaryCount();

      // Act
      const signedIn = await h.signInAndStore('alice');
      await h.runtime.tokenService.getAccessToken(
        { key: { userId: 'alice', resource: 'default' }, minValiditySeconds: 7200 },
        ample,
      );

      // Assess: 4 from the sign-in, 3 from the refresh answer, 1 client token.
      expect(h.canariesCollected()).toBe(8);
      expect(canaryCount() - before).toBeGreaterThanOrEqual(8);
      const origins = allCanaries().map((c) => c.origin);
      expect(origins).toContain('refresh_token from POST /cis/v1/auth/token/refresh');
      expect(origins).toContain('access_token from POST /oidc/token');
      expect(allCanaries().some((c) => c.value === signedIn.session_id)).toBe(true);
      await expect(h.close()).resolves.toBeUndefined();
    });

    it("fails close() when the runtime did not use the harness's fetch, so nothing would be checked", async () => {
      // Prepare: an IdP client of its own, which bypasses the harness's collecting fetch.
      let bypass: IdentityProvider | undefined;
      const h = await harness({
        overrides: {
          idp: { refresh: (token, options) => bypass!.refresh(token, options) },
        },
      });
      bypass = new TransmitIdentityProvider({
        baseUrl: h.transmit.baseUrl,
        credentials: new StaticClientCredentials('local-client', new Secret('local-secret')),
        clock: h.clock,
      });
      await h.signInAndStore('alice');
      await h.runtime.tokenService.getAccessToken(
        { key: { userId: 'alice', resource: 'default' }, minValiditySeconds: 7200 },
        ample,
      );

      // Act
      const error = await h.close().then(
        () => undefined,
        (e: unknown) => e as Error,
      );

      // Assess
      expect(error?.message).toMatch(/did not use the harness's fetch/);
    });
  });

  describe('Method: close (leak checks)', () => {
    it('passes when the service did its work and leaked nothing', async () => {
      // Prepare
      const h = await harness();
      await h.signInAndStore('alice');
      await h.runtime.sweep.run(ample);

      // Act & Assess
      await expect(h.close()).resolves.toBeUndefined();
    });

    it.each([
      ['a log line field', /log line #\d+ \(info\)\.fields\.note/],
      ['a log message', /log line #\d+ \(warn\)\.message/],
      ['a metric dimension', /metric #\d+ \(RotationFailed\)\.dimensions\.reason/],
      ['an event', /event #\d+ \(Reauth Required\)\.key\.userId/],
      ['a raw table item', /table item #\d+\.note\.S/],
      ['process.stdout', /stdout\/stderr\/console at offset \d+: .*\[canary [0-9a-f]{12}\]/],
      ['process.stderr', /stdout\/stderr\/console at offset \d+/],
      ['console.log', /stdout\/stderr\/console at offset \d+/],
    ])('fails with the place when a refresh token shows up in %s, never printing it', async (sink, place) => {
      // Prepare
      const h = await harness();
      const { refresh_token: token } = await h.signInAndStore('alice');
      const mark = outputMark();

      // Act: plant the canary where the service must never put it.
      switch (sink) {
        case 'a log line field':
          h.logger.info('planted', { note: `x ${token} y` });
          break;
        case 'a log message':
          h.logger.warn(`refresh failed for ${token}`);
          break;
        case 'a metric dimension':
          h.metrics.count('RotationFailed', 1, { reason: token });
          break;
        case 'an event':
          await h.events.publish({
            type: 'Reauth Required',
            key: { userId: token, resource: 'default' },
            reason: 'expired',
            at: 0,
          });
          break;
        case 'a raw table item':
          await h.dynamo.send(
            new PutItemCommand({
              TableName: h.tableName,
              Item: { pk: { S: 'u#planted' }, sk: { S: 'r#default' }, note: { S: token } },
            }),
          );
          break;
        case 'process.stdout':
          await muted(() => process.stdout.write(`{"level":"INFO","refresh_token":"${token}"}\n`));
          break;
        case 'process.stderr':
          await muted(() => process.stderr.write(`${token}\n`));
          break;
        case 'console.log':
          await muted(() => console.log('token is', token));
          break;
      }
      const error = await leakOnClose(h);
      discardOutputSince(mark);
      if (sink === 'a raw table item') await removePlant(h.tableName);

      // Assess
      expect(error.message).toMatch(place);
      expect(error.message).toMatch(/refresh_token from sign-in at the emulator \[sha256 [0-9a-f]{12}\]/);
      expect(error.message).not.toContain(token);
      expect(inspect(error, { depth: 5, showHidden: true })).not.toContain(token);
    });
  });

  describe('Function: expectNoCanary', () => {
    const canary = 'canary-expect-no-canary-7f3a9c';
    registerCanary(canary, 'a test value');

    it('passes for a Secret holding the canary (it redacts itself)', () => {
      expect(() => expectNoCanary(new Secret(canary))).not.toThrow();
    });

    it.each([
      ['the message of an error', () => new Error(`bad token ${canary}`), /value \(message\)/],
      ['JSON of an object', () => ({ nested: { token: canary } }), /value \(JSON.stringify\)/],
      [
        'util.inspect of a non-enumerable property',
        () =>
          Object.defineProperty(new Error('x'), 'response', { value: { body: canary }, enumerable: false }),
        /value \(util.inspect\)/,
      ],
      [
        'String() of an object',
        () => ({ toString: (): string => canary, toJSON: () => 'x' }),
        /value \(String\(\)\)/,
      ],
    ])('fails naming the rendering when the canary shows in %s', (_what, make, place) => {
      // Act
      let error: unknown;
      try {
        expectNoCanary(make());
      } catch (e) {
        error = e;
      }

      // Assess
      expect(error).toBeInstanceOf(TokenLeakError);
      expect((error as Error).message).toMatch(place);
      expect((error as Error).message).not.toContain(canary);
    });

    it('also finds values the test passes as extra canaries', () => {
      expect(() => expectNoCanary({ s: 'short-x' }, ['short-x'])).toThrow(TokenLeakError);
    });
  });
});
