import { describe, expect, inject, it } from 'vitest';
import { formatReport, runSimulation } from '../../local/simulation';

const DAY = 86_400;

/**
 * The short form of `npm run simulate`: every user signs in, lives through several rotations
 * with IdP faults, and must end at its rotation deadline, not before, with no token lost.
 */
describe('Function: runSimulation (short run)', () => {
  it('loses no token and ends every user at the rotation deadline, through IdP faults, incidents and a settings change', {
    timeout: 240_000,
  }, async () => {
    // Act
    const report = await runSimulation({
      users: 60,
      days: 50,
      signInSpreadDays: 10,
      refreshTokenTtlSeconds: 7 * DAY,
      maxRotationSeconds: 30 * DAY,
      sweepEveryMinutes: 360,
      callsPerUserDay: 0.5,
      faultRate: 0.05,
      seed: 7,
      dueShards: 8,
      // The edges: a permission mistake, a wrong tenant, a stalling table, a lowered setting.
      incidents: [
        { kind: 'idpForbidden', startDay: 12, hours: 12 },
        { kind: 'idpRejectsAll', startDay: 18, hours: 12 },
        { kind: 'storeStalls', startDay: 22, hours: 48, share: 0.2, delaySeconds: 28 },
        { kind: 'dueShardsChange', startDay: 25, dueShards: 2 },
      ],
      dynamoEndpoint: inject('dynamoEndpoint'),
    });

    // Assess
    expect(report.signIns).toBe(60);
    expect(report.rotations).toBeGreaterThan(60 * 3);
    expect(report.faultsInjected).toBeGreaterThan(0);
    expect(report.lostTokens).toBe(0);
    expect(report.duplicateIdpUses).toBe(0);
    expect(report.reuseDetections).toBe(0);
    expect(report.endedEarly).toBe(0);
    expect(report.notEndedAtDeadline).toBe(0);
    // Users marked during the wrong-tenant incident (before the breaker tripped) were restored.
    expect(report.reauthRequiredEvents.deadline).toBe(60);
    expect(report.incidentFigures.configurationRejections).toBeGreaterThan(0);
    expect(report.incidentFigures.breakerTrips).toBeGreaterThanOrEqual(1);
    expect(report.incidentFigures.rejectionsHeld).toBeGreaterThan(0);
    expect(report.incidentFigures.restored).toBe(report.reauthRequiredEvents.refresh_rejected ?? 0);
    expect(report.incidentFigures.storeStalls).toBeGreaterThan(0);
    expect(report.reauthSoonEvents).toBe(60);
    expect(formatReport(report)).toContain('| **lost tokens** | **0** |');
  });
});
