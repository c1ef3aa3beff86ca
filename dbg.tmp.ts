import { runAlarmDrill } from './test/support/alarm-drill';
import { DatapointIndex, periodValue } from './test/support/cloudwatch-alarms';
const DAY = 86400;
const r = await runAlarmDrill({ scenario: 'token-key-disabled', faultAtDay: 2, simulation: { users: 15, days: 2.5, signInSpreadDays: 1, refreshTokenTtlSeconds: 2 * DAY, maxRotationSeconds: 30 * DAY, sweepEveryMinutes: 60, callsPerUserDay: 4, faultRate: 0.02, seed: 5 } });
const a = r.alarms.find((x) => x.name.endsWith('RotationFailing'))!;
console.log(JSON.stringify(a.metric));
console.log('raised', r.raised);
