import { describe, expect, it } from 'vitest';
import { TokenNotFoundError } from '../../../functions/core/errors';
import type { TokenRecord } from '../../../functions/core/model';
import { TokenService } from '../../../functions/core/token-service';
import { activeRecord, DAY, KEY, makeDeps, rejectionOf } from '../../support/fakes';

/** Deps, a TokenService over them, and (unless `record` is null) one stored record. */
function setup(record: Partial<TokenRecord> | null = {}) {
  const deps = makeDeps();
  const now = deps.clock.nowSeconds();
  if (record !== null) deps.store.seed(activeRecord(now, record));
  deps.store.calls.length = 0;
  return { deps, service: new TokenService(deps), now };
}

describe('Class: TokenService', () => {
  describe('Method: status', () => {
    it('answers ACTIVE with the lifetimes, the last rotation and the failures, and offline access until the deadline', async () => {
      // Prepare
      const { service, now } = setup({ lastRotatedAt: 0, failures: 2 });
      const stored = activeRecord(now, { lastRotatedAt: 0, failures: 2 });

      // Act
      const status = await service.status(KEY);

      // Assess
      expect(status).toEqual({
        userId: KEY.userId,
        resource: KEY.resource,
        status: 'ACTIVE',
        rotationDeadline: stored.rotationDeadline,
        refreshTokenExpiresAt: stored.refreshExpiresAt,
        lastRotatedAt: 0,
        failures: 2,
        offlineAccessUntil: stored.rotationDeadline,
      });
    });

    it('leaves lastRotatedAt out when the record was never rotated', async () => {
      // Prepare
      const { service } = setup();

      // Act
      const status = await service.status(KEY);

      // Assess
      expect(status).not.toHaveProperty('lastRotatedAt');
      expect(status).not.toHaveProperty('reason');
    });

    it('answers REAUTH_REQUIRED with the reason of a quarantined record, and no token material', async () => {
      // Prepare
      const now = makeDeps().clock.nowSeconds();
      const { service } = setup({
        status: 'REAUTH_REQUIRED',
        reauthReason: 'refresh_rejected',
        reauthAt: now - 60,
      });

      // Act
      const status = await service.status(KEY);

      // Assess
      expect(status).toMatchObject({
        status: 'REAUTH_REQUIRED',
        reason: 'refresh_rejected',
        offlineAccessUntil: now - 60,
      });
      const shown = JSON.stringify(status);
      for (const token of ['at-0', 'rt-0', 'id-0', 'sess-0']) expect(shown).not.toContain(token);
    });

    it('never opens the tokens: it reads the schedule alone', async () => {
      // Prepare
      const { deps, service } = setup();

      // Act
      await service.status(KEY);

      // Assess
      expect(deps.store.calls.map((call) => call.method)).toEqual(['readSchedule']);
    });

    it.each([
      [
        'a refresh token that expired before its rotation',
        (now: number) => ({ refreshExpiresAt: now - 1 }),
        'expired',
      ],
      [
        'a refresh token that ran out at the rotation deadline',
        (now: number) => ({ refreshExpiresAt: now - 1, rotationDeadline: now - 1 }),
        'deadline',
      ],
      [
        'a record past its TTL at the rotation deadline',
        (now: number) => ({ refreshExpiresAt: now - 1, rotationDeadline: now - 1, expiresAt: now - 1 }),
        'deadline',
      ],
    ])('answers REAUTH_REQUIRED for %s, as getAccessToken would', async (_name, overrides, reason) => {
      // Prepare
      const { service: subject } = setup(overrides(makeDeps().clock.nowSeconds()));

      // Act
      const status = await subject.status(KEY);

      // Assess
      expect(status).toMatchObject({ status: 'REAUTH_REQUIRED', reason });
    });

    it('answers REAUTH_REQUIRED (corrupted) for a record the sweep marked corrupt', async () => {
      // Prepare
      const { deps, service, now } = setup();
      await deps.store.markCorrupt(KEY, 1, now);

      // Act
      const status = await service.status(KEY);

      // Assess
      expect(status).toMatchObject({ status: 'REAUTH_REQUIRED', reason: 'corrupted' });
    });

    it.each([
      ['there is no record', null],
      ['the record is past its TTL', (now: number) => ({ expiresAt: now - 1 })],
      [
        'a quarantined record is past its retention',
        (now: number) => ({
          status: 'REAUTH_REQUIRED' as const,
          reauthReason: 'refresh_rejected' as const,
          expiresAt: now - DAY,
        }),
      ],
    ])('throws TokenNotFoundError when %s', async (_name, overrides) => {
      // Prepare
      const probe = makeDeps().clock.nowSeconds();
      const { service } = setup(overrides === null ? null : overrides(probe));

      // Act
      const error = await rejectionOf(service.status(KEY));

      // Assess
      expect(error).toBeInstanceOf(TokenNotFoundError);
    });
  });
});
