import { afterAll, describe, it } from 'vitest';
import { ReauthRequiredError } from '../../functions/core/errors';
import type { RecordKey } from '../../functions/core/model';
import { sha256Hex } from '../../local/transmit/state';
import { ample } from '../support/harness';
import { CRASH_POINTS, type CrashPoint, runCrashWorker } from './support/crash';
import { checkInvariants } from './support/invariants';
import { startRig } from './support/rig';

const HOUR = 3600;
const LEASE_SECONDS = 30;
const GRACE_SECONDS = 60;
const ENV = {
  // A refresh token lives 2 h and falls due 37-53 min before it expires; access tokens live 1 h.
  REFRESH_TOKEN_TTL_SECONDS: '7200',
  REFRESH_AHEAD_SECONDS: '4000',
  LEASE_SECONDS: String(LEASE_SECONDS),
  DUE_SHARDS: '2',
  IDP_RATE_LIMIT_RPS: '10000',
};
/** Seconds after sign-in at which the record is due and its access token has 10 s left. */
const DUE_AND_EXPIRING = 3590;
const KEY: RecordKey = { userId: 'alice', resource: 'default' };

/** Did the IdP consume the refresh token before the worker died? */
const presented = (point: CrashPoint) => point !== 'after-lease';
/** Did the new token set reach the table before the worker died? */
const committed = (point: CrashPoint) => point === 'commit-applied';

const figures = { crashes: 0, recovered: 0, reauthRequired: 0, lostTokens: 0, silentLoops: 0 };

describe('Crashes: a worker process killed at each step of a rotation', () => {
  afterAll(() => {
    console.log(`[proofs/crashes] ${JSON.stringify(figures)}`);
  });

  for (const grace of [0, GRACE_SECONDS]) {
    describe.concurrent(`IdP reuse grace ${grace} s`, () => {
      for (const point of CRASH_POINTS) {
        for (const operation of ['sweep', 'get'] as const) {
          const outcome =
            presented(point) && !committed(point) && grace === 0
              ? 'ends REAUTH_REQUIRED with metric and event at the next attempt, then no further IdP calls'
              : 'recovers at the next attempt without the user (ACTIVE, the family newest token stored)';
          it(`killed ${point} during a ${operation}: ${outcome}`, async ({ expect }) => {
            // Prepare
            const rig = await startRig({
              env: ENV,
              transmit: { refreshTokenTtlSeconds: 7200, reuseGraceSeconds: grace },
            });
            try {
              const ledger = rig.ledger();
              await rig.signIn('alice');
              rig.clock.advanceSeconds(DUE_AND_EXPIRING);
              const signedIn = await rig.store.inner.get(KEY);
              const firstHash = sha256Hex(signedIn!.tokens!.refreshToken.reveal());

              // Act 1: a worker process dies at the chosen step.
              const run = await runCrashWorker({
                ...rig.env,
                PROOF_NOW_MS: String(rig.clock.nowMs()),
                PROOF_CRASH_AT: point,
                PROOF_OPERATION: operation,
                PROOF_USER_ID: 'alice',
              });
              figures.crashes++;
              expect(run.stderr).toBe('');
              expect(run.stdout).toContain(`reached ${point}`);
              expect(run.signal).toBe('SIGKILL');
              const left = await rig.store.inner.get(KEY);
              // What the worker stored before it died counts as committed (it is in the table).
              const committedSets = () => [
                ...(committed(point) && left?.tokens
                  ? [
                      {
                        key: KEY,
                        version: left.version,
                        accessHash: sha256Hex(left.tokens.accessToken.reveal()),
                        refreshHash: sha256Hex(left.tokens.refreshToken.reveal()),
                      },
                    ]
                  : []),
                ...rig.store.committed,
              ];
              expect(left?.lease !== undefined).toBe(!committed(point));
              expect(left?.version).toBe(signedIn!.version + (committed(point) ? 1 : 0));
              expect(rig.transmit!.refreshLog.map((e) => e.outcome)).toEqual(
                presented(point) ? ['rotated'] : [],
              );

              // Act 2: the next attempt, in another process (this one), once the lease has run out.
              rig.clock.advanceSeconds(LEASE_SECONDS + 1);
              const next =
                operation === 'sweep'
                  ? await rig.runtime.sweep.run(ample)
                  : await rig.get('alice', 60).catch((error: unknown) => error);
              const callsAfterNext = rig.transmit!.refreshLog.length;
              rig.clock.advanceSeconds(HOUR);
              const second = await rig.runtime.sweep.run(ample);
              rig.clock.advanceSeconds(HOUR);
              const third = await rig.runtime.sweep.run(ample);

              // Assess
              const outcomes = rig.transmit!.refreshLog.map((e) => e.outcome);
              const record = await rig.store.inner.get(KEY);
              if (presented(point) && !committed(point) && grace === 0) {
                // The answer died with the worker: the consumed token is all the table has. The IdP
                // refuses it, and the record says so at once, with the metric and the event.
                figures.reauthRequired++;
                if (operation === 'sweep') expect(next).toMatchObject({ due: 1, reauthRequired: 1 });
                else expect(next).toBeInstanceOf(ReauthRequiredError);
                expect(outcomes.slice(0, 2)).toEqual(['rotated', 'reuse']);
                expect(record).toMatchObject({ status: 'REAUTH_REQUIRED', reauthReason: 'refresh_rejected' });
                expect(rig.metrics.total('ReauthRequired', { reason: 'refresh_rejected' })).toBe(1);
                expect(rig.eventsOf('alice')).toEqual(['Reauth Required']);
                // Never a silent loop: later sweeps and callers make no IdP call for it.
                const asked = await rig.get('alice', 60).catch((error: unknown) => error);
                expect(asked).toBeInstanceOf(ReauthRequiredError);
                expect(second.due + third.due).toBe(0);
                if (rig.transmit!.refreshLog.length !== callsAfterNext) figures.silentLoops++;
                expect(rig.transmit!.refreshLog.length).toBe(callsAfterNext);
                const report = await checkInvariants({
                  ledger,
                  store: rig.store.inner,
                  keys: [KEY],
                  committed: committedSets(),
                  served: rig.served,
                  maxUses: 2,
                  reuseAllowed: true,
                  allowedReauth: ['refresh_rejected'],
                });
                expect(report.problems).toEqual([]);
              } else {
                figures.recovered++;
                if (operation === 'sweep') {
                  expect(next).toMatchObject(committed(point) ? { due: 0 } : { due: 1, rotated: 1 });
                } else {
                  expect(next).toMatchObject({ source: committed(point) ? 'cached' : 'refreshed' });
                }
                const expected = !presented(point) || committed(point) ? ['rotated'] : ['rotated', 'grace'];
                expect(outcomes.slice(0, expected.length)).toEqual(expected);
                expect(rig.transmit!.reuseDetections).toBe(0);
                expect(record?.status).toBe('ACTIVE');
                expect(rig.eventsOf('alice')).not.toContain('Reauth Required');
                // The first refresh token was used once, or twice within the IdP's grace period.
                const uses = rig.transmit!.refreshLog.filter((e) => e.tokenHash === firstHash).length;
                expect(uses).toBe(expected.length);
                // And the stored token works: one more refresh rotates it.
                const after = await rig.get('alice', 7200);
                expect(after.source).toBe('refreshed');
                const report = await checkInvariants({
                  ledger,
                  store: rig.store.inner,
                  keys: [KEY],
                  committed: committedSets(),
                  served: rig.served,
                  maxUses: expected.length,
                });
                figures.lostTokens += report.lostTokens;
                expect(report.problems).toEqual([]);
                expect(rig.transmit!.refreshLog.at(-1)?.outcome).toBe('rotated');
              }
            } finally {
              await rig.close();
            }
          }, 60_000);
        }
      }
    });
  }
});
