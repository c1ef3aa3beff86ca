import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../functions/core/errors';
import type { TokenRecord } from '../../../functions/core/model';
import { parseRestoreEvent, Restore } from '../../../functions/core/restore';
import { activeRecord, DAY, fixedBudget, makeDeps, T0 } from '../../support/fakes';

function quarantined(userId: string, overrides: Partial<TokenRecord> = {}): TokenRecord {
  return activeRecord(T0, {
    key: { userId, resource: 'default' },
    status: 'REAUTH_REQUIRED',
    dueShard: undefined,
    dueAt: undefined,
    reauthReason: 'refresh_rejected',
    reauthAt: T0 - 60,
    expiresAt: T0 + 30 * DAY,
    failures: 1,
    ...overrides,
  });
}

const WINDOW = { from: T0 - 3600, to: T0, reasons: ['refresh_rejected' as const], dryRun: false };

describe('Class: Restore', () => {
  describe('Method: run', () => {
    it('restores nothing and says conflict when another writer changed the record meanwhile', async () => {
      // Prepare
      const deps = makeDeps();
      deps.store.seed(quarantined('u1'));
      deps.store.beforeNext('put', () => {
        deps.store.update({ userId: 'u1', resource: 'default' }, (r) => ({ ...r, version: r.version + 1 }));
      });

      // Act
      const report = await new Restore(deps).run(WINDOW, fixedBudget(600_000));

      // Assess
      expect(report).toMatchObject({ matched: 1, restored: 0, skipped: { conflict: 1 } });
      expect(deps.store.peek({ userId: 'u1', resource: 'default' })?.status).toBe('REAUTH_REQUIRED');
      expect(deps.metrics.total('RestoreSkipped', { reason: 'conflict' })).toBe(1);
    });

    it('stops when time runs short and hands back a cursor that resumes where it stopped', async () => {
      // Prepare: five records, two per page; time for one page only, then plenty.
      const deps = makeDeps();
      for (let i = 0; i < 5; i++) deps.store.seed(quarantined(`u${i}`));
      const restore = new Restore(deps, { pageSize: 2 });
      let pages = 0;
      const onePage = { remainingMs: () => (pages++ === 0 ? 600_000 : 0) };

      // Act
      const stopped = await restore.run(WINDOW, onePage);
      const resumed = await restore.run({ ...WINDOW, cursor: stopped.cursor }, fixedBudget(600_000));

      // Assess
      expect(stopped).toMatchObject({ matched: 2, restored: 2, complete: false });
      expect(stopped.cursor).toBeDefined();
      expect(resumed).toMatchObject({ matched: 3, restored: 3, complete: true, cursor: undefined });
    });

    it('logs the key and outcome of each record, never token material', async () => {
      // Prepare
      const deps = makeDeps();
      deps.store.seed(quarantined('u1'));

      // Act
      await new Restore(deps).run(WINDOW, fixedBudget(600_000));

      // Assess
      const text = JSON.stringify(deps.logger.lines);
      expect(text).toContain('quarantined record restored');
      for (const secret of ['at-0', 'rt-0', 'id-0', 'sess-0']) expect(text).not.toContain(`"${secret}"`);
    });
  });
});

describe('Function: parseRestoreEvent', () => {
  it('reads ISO 8601 and epoch seconds, one reason or a list, and the dry-run flag', () => {
    expect(
      parseRestoreEvent({
        from: '2026-01-01T00:00:00Z',
        to: T0 + 60,
        reason: 'refresh_rejected',
        dryRun: true,
      }),
    ).toEqual({ from: T0, to: T0 + 60, reasons: ['refresh_rejected'], dryRun: true });
  });

  it.each([
    [{ to: T0, reasons: ['refresh_rejected'] }, 'from'],
    [{ from: T0 + 1, to: T0, reasons: ['refresh_rejected'] }, 'to must not be before from'],
    [{ from: T0, to: T0, reasons: [] }, 'reasons'],
    [{ from: T0, to: T0, reasons: ['everything'] }, 'reasons'],
    [{ from: T0 * 1000, to: T0, reasons: ['refresh_rejected'] }, 'from'],
    [{ from: T0, to: T0, reasons: ['refresh_rejected'], dryRun: 'yes' }, 'dryRun'],
    [{ from: T0, to: T0, reasons: ['refresh_rejected'], cursor: '{"pk":1}' }, 'cursor'],
  ])('rejects %j naming the field', (event, field) => {
    expect(() => parseRestoreEvent(event)).toThrow(ValidationError);
    expect(() => parseRestoreEvent(event)).toThrow(field);
  });
});
