import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TransmitSessionTerminator } from '../../functions/adapters/idp/session-terminator';
import { TransmitIdentityProvider } from '../../functions/adapters/idp/transmit';
import type { SessionTerminator } from '../../functions/core/ports';
import { ample, type Harness, startHarness } from '../support/harness';

/**
 * Disconnect racing a sign-in, on DynamoDB Local with the real store and the Transmit emulator:
 * disconnect reads session A, logs it out at the IdP, then deletes. What lands in between is
 * injected into the logout call.
 */
describe('Method: disconnect, racing other writers (DynamoDB Local)', () => {
  const key = { userId: 'alice', resource: 'default' };
  let h: Harness;
  /** Runs once, inside the next IdP logout, before the logout request is sent. */
  let duringLogout: (() => Promise<void>) | undefined;

  beforeEach(async () => {
    const sessions: SessionTerminator = {
      async terminate(tokens, options) {
        const hook = duringLogout;
        duringLogout = undefined;
        await hook?.();
        const transmit = () => {
          const idp = h.runtime.idp();
          if (!(idp instanceof TransmitIdentityProvider)) throw new Error('expected the Transmit client');
          return idp;
        };
        return new TransmitSessionTerminator(transmit).terminate(tokens, options);
      },
    };
    h = await startHarness({ overrides: { sessions } });
  });
  afterEach(async () => {
    await h.close();
  });

  it('leaves a sign-in stored during the logout in place and says the disconnect was superseded', async () => {
    // Prepare
    const sessionA = await h.signInAndStore('alice');
    let sessionB: Awaited<ReturnType<Harness['signInAndStore']>> | undefined;
    duringLogout = async () => {
      sessionB = await h.signInAndStore('alice');
    };

    // Act
    const result = await h.runtime.tokenService.disconnect(key, ample);

    // Assess
    expect(result).toEqual({
      userId: 'alice',
      resource: 'default',
      deleted: false,
      superseded: true,
      idpLogout: 'logged_out',
    });
    const stored = await h.runtime.store.get(key);
    expect(stored?.status).toBe('ACTIVE');
    expect(stored?.tokens?.refreshToken.reveal()).toBe(sessionB?.refresh_token);
    // Session A is dead at the IdP; session B, which the user just opened, is alive and kept.
    expect(h.transmit.latestRefreshToken(sessionA.refresh_token)).toBeUndefined();
    expect(h.transmit.latestRefreshToken(sessionB!.refresh_token)).toBe(sessionB!.refresh_token);
    expect(h.metrics.total('DisconnectSuperseded')).toBe(1);
    expect(h.metrics.total('Disconnected')).toBe(0);
    expect(h.events.published.map((e) => e.type)).toEqual([]);
    // The user is still served: the new sign-in works.
    const served = await h.runtime.tokenService.getAccessToken({ key, minValiditySeconds: 60 }, ample);
    expect(served.accessToken.reveal()).toBe(sessionB!.access_token);
  });

  it('still deletes the record when the same session was rotated during the logout', async () => {
    // Prepare: the access token is near its end, so a caller during the logout rotates.
    const sessionA = await h.signInAndStore('alice');
    h.clock.advanceSeconds(3600 - 30);
    duringLogout = async () => {
      const served = await h.runtime.tokenService.getAccessToken({ key, minValiditySeconds: 60 }, ample);
      expect(served.source).toBe('refreshed');
    };

    // Act
    const result = await h.runtime.tokenService.disconnect(key, ample);

    // Assess
    expect(result).toMatchObject({ deleted: true, superseded: false, idpLogout: 'logged_out' });
    expect(await h.runtime.store.get(key)).toBeUndefined();
    expect(h.transmit.latestRefreshToken(sessionA.refresh_token)).toBeUndefined();
    expect(h.metrics.total('Disconnected')).toBe(1);
  });

  it('deletes only the version it read: a fenced delete of an older version is a conflict', async () => {
    // Prepare
    await h.signInAndStore('alice');
    const first = await h.runtime.store.get(key);
    await h.signInAndStore('alice');

    // Act
    const stale = await h.runtime.store.delete(key, { version: first!.version });
    const current = await h.runtime.store.get(key);
    const fresh = await h.runtime.store.delete(key, { version: current!.version });

    // Assess
    expect(stale).toBe('conflict');
    expect(fresh).toBe('ok');
    expect(await h.runtime.store.get(key)).toBeUndefined();
    expect(await h.runtime.store.delete(key, { version: current!.version })).toBe('conflict');
  });
});
