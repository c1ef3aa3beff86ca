import { formatReport, runSimulation } from './simulation';
const DAY = 86400;
const report = await runSimulation({ users: 60, days: 50, signInSpreadDays: 10, refreshTokenTtlSeconds: 7 * DAY, maxRotationSeconds: 30 * DAY, sweepEveryMinutes: 360, callsPerUserDay: 0.5, faultRate: 0.05, seed: 7, dueShards: 8,
  incidents: [
    { kind: 'idpForbidden', startDay: 12, hours: 12 },
    { kind: 'idpRejectsAll', startDay: 18, hours: 12 },
    { kind: 'storeStalls', startDay: 22, hours: 48, share: 0.2, delaySeconds: 28 },
    { kind: 'dueShardsChange', startDay: 25, dueShards: 2 },
  ] });
console.log(formatReport(report));
