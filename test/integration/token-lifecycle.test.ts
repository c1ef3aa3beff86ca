import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ReauthRequiredError,
  RefreshUnavailableError,
  TokenNotFoundError,
} from '../../functions/core/errors';
import { ample, type Harness, rawItems, startHarness } from '../support/harness';

const DAY = 86_400;

describe('Token lifecycle on DynamoDB Local and the Transmit emulator', () => {
  let h: Harness;

  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => {
    await h.close();
  });

  const get = (userId: string, minValiditySeconds = 60) =>
    h.runtime.tokenService.getAccessToken(
      { key: { userId, resource: 'default' }, minValiditySeconds },
      ample,
    );

  describe('Method: getAccessToken', () => {
    it('serves the stored access token without calling the IdP while it is valid', async () => {
      // Prepare
      const signedIn = await h.signInAndStore('alice');

      // Act
      const served = await get('alice');

      // Assess
      expect(served.accessToken.reveal()).toBe(signedIn.access_token);
      expect(served.source).toBe('cached');
      expect(h.transmit.refreshLog).toHaveLength(0);
    });

    it('refreshes once the stored token has less than the asked validity, and stores the rotated refresh token', async () => {
      // Prepare
      const signedIn = await h.signInAndStore('alice');
      h.clock.advanceSeconds(3600 - 30);

      // Act
      const served = await get('alice', 60);
      const again = await get('alice', 60);

      // Assess
      expect(served.source).toBe('refreshed');
      expect(served.accessToken.reveal()).not.toBe(signedIn.access_token);
      expect(again.source).toBe('cached');
      expect(again.accessToken.reveal()).toBe(served.accessToken.reveal());
      expect(h.transmit.refreshLog.map((e) => e.outcome)).toEqual(['rotated']);
      const stored = await h.runtime.store.get({ userId: 'alice', resource: 'default' });
      expect(stored?.tokens?.refreshToken.reveal()).toBe(
        h.transmit.latestRefreshToken(signedIn.refresh_token),
      );
      const first = h.transmit.refreshLog.length; // one rotation: one version step
      expect(first).toBe(1);
      expect(stored?.version).toBe(h.clock.nowMs() - (3600 - 30) * 1000 + 1);
      expect(stored?.tokens?.sessionId?.reveal()).toBeTruthy();
    });

    it('makes exactly one IdP call for a burst of 50 concurrent callers, and all get the same token', async () => {
      // Prepare
      const signedIn = await h.signInAndStore('alice');
      h.clock.advanceSeconds(3600);
      h.transmit.faults.latencyMs = 150;

      // Act
      const served = await Promise.all(Array.from({ length: 50 }, () => get('alice')));

      // Assess
      expect(h.transmit.refreshLog).toHaveLength(1);
      expect(h.transmit.timesPresented(signedIn.refresh_token)).toBe(1);
      const tokens = new Set(served.map((s) => s.accessToken.reveal()));
      expect(tokens.size).toBe(1);
      expect(h.transmit.reuseDetections).toBe(0);
    });

    it('serves a still-valid stored access token while the IdP is down, and a retryable error once none is valid', async () => {
      // Prepare
      const signedIn = await h.signInAndStore('alice');
      h.clock.advanceSeconds(3600 - 30);
      h.transmit.faults.failRate(1, { kind: 'status', status: 503 });

      // Act
      const stale = await get('alice', 60);
      h.clock.advanceSeconds(3600);
      const failed = get('alice', 60);

      // Assess
      expect(stale.source).toBe('stale');
      expect(stale.accessToken.reveal()).toBe(signedIn.access_token);
      await expect(failed).rejects.toBeInstanceOf(RefreshUnavailableError);
      // The failed refresh token was never consumed: it is still the family's latest.
      const stored = await h.runtime.store.get({ userId: 'alice', resource: 'default' });
      expect(stored?.tokens?.refreshToken.reveal()).toBe(signedIn.refresh_token);
      expect(stored?.failures).toBeGreaterThan(0);
    });

    it('marks the record REAUTH_REQUIRED when the IdP rejects the refresh token, and never calls the IdP for it again', async () => {
      // Prepare: the session is logged out at the IdP, which revokes the refresh token.
      const signedIn = await h.signInAndStore('alice');
      h.transmit.latestRefreshToken(signedIn.refresh_token);
      await logout(h, signedIn);
      h.clock.advanceSeconds(3600);

      // Act
      const first = get('alice');
      await expect(first).rejects.toBeInstanceOf(ReauthRequiredError);
      const second = get('alice');

      // Assess
      await expect(second).rejects.toMatchObject({ name: 'ReauthRequiredError', reason: 'refresh_rejected' });
      expect(h.transmit.refreshLog).toHaveLength(1);
      expect(h.metrics.total('ReauthRequired')).toBe(1);
      expect(h.events.published.map((e) => e.type)).toEqual(['Reauth Required']);
      const stored = await h.runtime.store.get({ userId: 'alice', resource: 'default' });
      expect(stored?.status).toBe('REAUTH_REQUIRED');
      // Quarantined, not destroyed: the sealed refresh token stays for an operator's restore.
      expect(stored?.tokens?.refreshToken).toBeDefined();
      expect(stored?.reauthAt).toBeTypeOf('number');
      expect(stored?.dueAt).toBeUndefined();
    });

    it('answers TokenNotFoundError for an unknown user and for a record past its expiry', async () => {
      await h.signInAndStore('alice');
      await expect(get('bob')).rejects.toBeInstanceOf(TokenNotFoundError);
      h.clock.advanceSeconds(15 * DAY);
      await expect(get('alice')).rejects.toBeInstanceOf(TokenNotFoundError);
    });
  });

  describe('Method: storeTokens', () => {
    it('replaces the record on a new sign-in, with a higher version and a new rotation deadline', async () => {
      // Prepare
      await h.signInAndStore('alice');
      const first = await h.runtime.store.get({ userId: 'alice', resource: 'default' });
      h.clock.advanceSeconds(DAY);

      // Act
      const second = await h.signInAndStore('alice');

      // Assess
      const stored = await h.runtime.store.get({ userId: 'alice', resource: 'default' });
      expect(stored?.version).toBe((first?.version ?? 0) + 1);
      expect(stored?.rotationDeadline).toBe((first?.rotationDeadline ?? 0) + DAY);
      expect(stored?.tokens?.refreshToken.reveal()).toBe(second.refresh_token);
    });

    it('keeps one record per user and resource', async () => {
      await h.signInAndStore('alice', 'https://api.example.com');
      await h.signInAndStore('alice');
      const a = await h.runtime.store.get({ userId: 'alice', resource: 'https://api.example.com' });
      const b = await h.runtime.store.get({ userId: 'alice', resource: 'default' });
      expect(a?.tokens?.refreshToken.reveal()).not.toBe(b?.tokens?.refreshToken.reveal());
    });
  });

  describe('Method: sweep.run', () => {
    it('rotates exactly the records that are due, and each refresh token reaches the IdP once', async () => {
      // Prepare: 12 users signed in now, 8 signed in 5 days later.
      const early = await Promise.all(Array.from({ length: 12 }, (_, i) => h.signInAndStore(`early-${i}`)));
      h.clock.advanceSeconds(5 * DAY);
      await Promise.all(Array.from({ length: 8 }, (_, i) => h.signInAndStore(`late-${i}`)));
      // Default lifetimes: refresh token 14 d, rotate 3 d (minus up to 18 h of jitter) ahead.
      h.clock.advanceSeconds(6 * DAY);

      // Act
      const summary = await h.runtime.sweep.run(ample);
      const again = await h.runtime.sweep.run(ample);

      // Assess
      expect(summary).toMatchObject({ due: 12, rotated: 12, failed: 0, reauthRequired: 0, backlog: 0 });
      expect(again).toMatchObject({ due: 0, rotated: 0 });
      for (const tokens of early) expect(h.transmit.timesPresented(tokens.refresh_token)).toBe(1);
      for (let i = 0; i < 8; i++) {
        const late = await h.runtime.store.get({ userId: `late-${i}`, resource: 'default' });
        expect(late?.rotations).toBe(0);
      }
    });

    it('keeps a record alive across a year of rotations and ends it at the rotation deadline', async () => {
      // Prepare
      const signedIn = await h.signInAndStore('alice');

      // Act: sweep every other day for 366 days (rotations fall due 3 days ahead of expiry).
      let rotated = 0;
      for (let day = 0; day < 366; day += 2) {
        h.clock.advanceSeconds(2 * DAY);
        rotated += (await h.runtime.sweep.run(ample)).rotated;
      }

      // Assess
      expect(rotated).toBeGreaterThan(25);
      expect(h.transmit.reuseDetections).toBe(0);
      expect(h.metrics.total('TokensExpired')).toBe(0);
      const stored = await h.runtime.store.get({ userId: 'alice', resource: 'default' });
      expect(stored).toMatchObject({ status: 'REAUTH_REQUIRED', reauthReason: 'deadline' });
      // The app heard it once, ahead of time (REAUTH_SOON_DAYS, default 14), then at the deadline.
      const events = h.events.published.filter((e) => e.key.userId === 'alice');
      expect(events.map((e) => e.type)).toEqual(['Reauth Soon', 'Reauth Required']);
      const [soon, required] = events;
      expect(required!.at - soon!.at).toBeGreaterThanOrEqual(14 * DAY - 2 * DAY);
      expect(required!.at - soon!.at).toBeLessThanOrEqual(14 * DAY + 2 * DAY);
      expect(h.transmit.latestRefreshToken(signedIn.refresh_token)).toBeDefined();
    });
  });

  describe('Method: disconnect', () => {
    const key = { userId: 'alice', resource: 'default' };

    it('logs the session out at the IdP, deletes the record, and is idempotent', async () => {
      // Prepare
      const signedIn = await h.signInAndStore('alice');

      // Act
      const first = await h.runtime.tokenService.disconnect(key, ample);
      const second = await h.runtime.tokenService.disconnect(key, ample);

      // Assess
      expect(first).toEqual({
        userId: 'alice',
        resource: 'default',
        deleted: true,
        idpLogout: 'logged_out',
        superseded: false,
      });
      expect(second).toEqual({
        userId: 'alice',
        resource: 'default',
        deleted: false,
        idpLogout: 'skipped',
        superseded: false,
      });
      expect(await h.runtime.store.get(key)).toBeUndefined();
      // The session's refresh tokens are revoked at the IdP: a stolen copy is useless.
      expect(h.transmit.latestRefreshToken(signedIn.refresh_token)).toBeUndefined();
      expect(h.events.published.map((e) => e.type)).toEqual(['Disconnected']);
      expect(h.metrics.total('Disconnected')).toBe(1);
    });

    it('still deletes the record when the IdP cannot be reached, and reports it', async () => {
      // Prepare
      await h.signInAndStore('alice');
      h.transmit.faults.failNext(1, { kind: 'status', status: 503, target: 'token' });

      // Act
      const result = await h.runtime.tokenService.disconnect(key, ample);

      // Assess
      expect(result).toMatchObject({ deleted: true, idpLogout: 'failed' });
      expect(await h.runtime.store.get(key)).toBeUndefined();
      expect(h.metrics.total('DisconnectIdpFailed')).toBe(1);
    });
  });

  describe('Encryption at rest', () => {
    it('leaves no token value in any raw attribute of any item', async () => {
      // Prepare
      const tokens = await Promise.all(['a', 'b', 'c'].map((u) => h.signInAndStore(u)));
      h.clock.advanceSeconds(3600);
      await get('a');

      // Act
      const items = await rawItems(h.dynamo, h.tableName);

      // Assess
      const raw = JSON.stringify(items);
      // Three token records, and the service's sweep state (no token material either).
      expect(items.filter((item) => (item.pk as { S?: string }).S?.startsWith('u#'))).toHaveLength(3);
      for (const t of tokens) {
        for (const value of [t.access_token, t.refresh_token, t.id_token, t.session_id]) {
          expect(raw).not.toContain(value);
          // JWT parts are long enough to be recognisable on their own.
          for (const part of value.split('.')) if (part.length > 16) expect(raw).not.toContain(part);
        }
      }
      const latest = await get('a');
      expect(raw).not.toContain(latest.accessToken.reveal());
    });
  });
});

async function logout(h: Harness, signedIn: { session_id?: string }): Promise<void> {
  const token = await fetch(`${h.transmit.baseUrl}/oidc/token`, {
    method: 'POST',
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: 'local-client',
      client_secret: 'local-secret',
    }),
  }).then((r) => r.json() as Promise<{ access_token: string }>);
  const answer = await fetch(`${h.transmit.baseUrl}/cis/v1/auth/session/logout`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token.access_token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ session_id: signedIn.session_id }),
  });
  expect(answer.status).toBe(204);
}
