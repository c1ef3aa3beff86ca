import { createHash } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ReauthRequiredError } from '../../functions/core/errors';
import { Secret } from '../../functions/core/secret';
import { ample, type Harness, startHarness } from '../support/harness';
import { type OidcServer, type OidcSignInTokens, startOidcServer } from '../support/oidc-server';

const realClock = { nowMs: () => Date.now() };
const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');

/**
 * The `oauth2` flavour against oidc-provider, a real and independent OAuth 2.0 server set to
 * rotate refresh tokens on every use and to revoke the whole grant when a consumed one comes back.
 */
describe('IDP_FLAVOR=oauth2 against oidc-provider (rotateRefreshToken: true)', () => {
  let oidc: OidcServer;
  let h: Harness;

  beforeAll(async () => {
    oidc = await startOidcServer();
  });
  afterAll(async () => {
    await oidc.close();
  });

  for (const clientAuth of ['client_secret_basic', 'client_secret_post'] as const) {
    describe(`with ${clientAuth}`, () => {
      const client = () => (clientAuth === 'client_secret_basic' ? oidc.clients.basic : oidc.clients.post);

      beforeEach(async () => {
        h = await startHarness({
          env: {
            IDP_FLAVOR: 'oauth2',
            OAUTH2_TOKEN_ENDPOINT: oidc.tokenEndpoint,
            OAUTH2_CLIENT_AUTH: clientAuth,
            CLIENT_ID: client().id,
            CLIENT_SECRET: client().secret,
            REFRESH_TOKEN_TTL_SECONDS: '120',
            REFRESH_AHEAD_SECONDS: '119',
          },
          overrides: { clock: realClock },
        });
      });
      afterEach(async () => {
        await h.close();
      });

      /** `storedExpiresIn` stores the access token as shorter-lived than the server says. */
      const store = async (userId: string, storedExpiresIn?: number): Promise<OidcSignInTokens> => {
        const tokens = await oidc.signIn(userId, { clientId: client().id });
        await h.runtime.tokenService.storeTokens({
          key: { userId, resource: 'default' },
          // Ten seconds ago, so that with the 119 s refresh-ahead every record is already due.
          authenticatedAt: Math.floor(Date.now() / 1000) - 10,
          tokens: {
            accessToken: new Secret(tokens.access_token),
            refreshToken: new Secret(tokens.refresh_token),
            tokenType: tokens.token_type,
            expiresIn: storedExpiresIn ?? tokens.expires_in,
          },
        });
        return tokens;
      };
      const forceRefresh = (userId: string) =>
        h.runtime.tokenService.getAccessToken(
          { key: { userId, resource: 'default' }, minValiditySeconds: 7200 },
          ample,
        );

      it('rotates ten times in a row, presenting each refresh token exactly once', async () => {
        // Prepare
        const first = await store('carol');
        const logStart = oidc.refreshLog.length;

        // Act
        for (let i = 0; i < 10; i++) await forceRefresh('carol');

        // Assess
        const log = oidc.refreshLog.slice(logStart);
        expect(log).toHaveLength(10);
        expect(log.every((e) => e.status === 200)).toBe(true);
        expect(new Set(log.map((e) => e.tokenHash)).size).toBe(10);
        expect(log[0]?.tokenHash).toBe(sha256(first.refresh_token));
        const stored = await h.runtime.store.get({ userId: 'carol', resource: 'default' });
        expect(stored?.rotations).toBe(10);
      });

      it('makes one refresh grant for 30 concurrent callers', async () => {
        // Prepare: the stored token counts as valid for 60 s, a refreshed one for the server's hour,
        // so the callers' 600 s are met by the refreshed token however late a caller reads the record.
        await store('dave', 60);
        const logStart = oidc.refreshLog.length;

        // Act
        const served = await Promise.all(
          Array.from({ length: 30 }, () =>
            h.runtime.tokenService.getAccessToken(
              { key: { userId: 'dave', resource: 'default' }, minValiditySeconds: 600 },
              ample,
            ),
          ),
        );

        // Assess
        expect(oidc.refreshLog.length - logStart).toBe(1);
        expect(new Set(served.map((s) => s.accessToken.reveal())).size).toBe(1);
      });

      it('rotates due records from the sweep', async () => {
        // Prepare: with a 120 s refresh token rotated 119 s ahead, a record is due at once.
        await Promise.all(['e1', 'e2', 'e3'].map(store));
        const logStart = oidc.refreshLog.length;

        // Act
        const summary = await h.runtime.sweep.run(ample);

        // Assess
        expect(summary).toMatchObject({ due: 3, rotated: 3, failed: 0 });
        expect(oidc.refreshLog.slice(logStart).every((e) => e.status === 200)).toBe(true);
      });

      it('ends in REAUTH_REQUIRED (not a retry loop) when someone else replayed a consumed token and the grant was revoked', async () => {
        // Prepare: token-keeper rotates once; a stale copy of the first token is then replayed.
        const first = await store('erin');
        await forceRefresh('erin');
        const replay = await fetch(oidc.tokenEndpoint, {
          method: 'POST',
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            authorization: `Basic ${Buffer.from(`${client().id}:${client().secret}`).toString('base64')}`,
          },
          body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: first.refresh_token }),
        });
        expect(replay.status).toBe(400);
        const logStart = oidc.refreshLog.length;

        // Act
        const attempt = forceRefresh('erin');

        // Assess
        await expect(attempt).rejects.toBeInstanceOf(ReauthRequiredError);
        await expect(forceRefresh('erin')).rejects.toBeInstanceOf(ReauthRequiredError);
        expect(oidc.refreshLog.length - logStart).toBe(1);
        expect(h.metrics.total('ReauthRequired')).toBe(1);
      });
    });
  }
});
