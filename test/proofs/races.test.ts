import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ReauthRequiredError,
  RefreshUnavailableError,
  TokenNotFoundError,
} from '../../functions/core/errors';
import type { RecordKey } from '../../functions/core/model';
import type { SweepSummary } from '../../functions/core/sweep';
import { ample } from '../support/harness';
import { type OidcServer, startOidcServer } from '../support/oidc-server';
import { Interleaver } from './support/interleave';
import { checkInvariants, type InvariantReport } from './support/invariants';
import { type Rig, startRig } from './support/rig';

/** Lifetimes that make every kind of step matter within a few virtual hours. */
const ENV = {
  // A refresh token lives 2 h and is rotated 45-60 min after issue; access tokens live 1 h.
  REFRESH_TOKEN_TTL_SECONDS: '7200',
  REFRESH_AHEAD_SECONDS: '3600',
  DUE_SHARDS: '2',
  SWEEP_CONCURRENCY: '4',
  // The sweep's pacing runs on real time; the proofs pace by the scheduler instead.
  IDP_RATE_LIMIT_RPS: '10000',
};

/** Lifetime of the access tokens both IdPs issue (the emulator's and oidc-provider's default). */
const ACCESS_TOKEN_TTL = 3600;

/** One step of a round; all steps of a round run concurrently. */
type Op =
  | { readonly kind: 'get'; readonly user: number; readonly minValidity: number }
  | { readonly kind: 'burst'; readonly user: number; readonly callers: number; readonly minValidity: number }
  | { readonly kind: 'sweep'; readonly deliveries: number }
  | { readonly kind: 'signIn'; readonly user: number };

interface Round {
  /** Virtual seconds that pass before the round (nothing is in flight then). */
  readonly advance: number;
  readonly ops: readonly Op[];
}

interface Plan {
  readonly users: number;
  readonly rounds: readonly Round[];
}

const user = fc.nat({ max: 4 });
const minValidity = fc.constantFrom(60, 1800, 3000, 7200);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('get' as const), user, minValidity }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('burst' as const),
      user,
      callers: fc.integer({ min: 2, max: 5 }),
      minValidity: fc.constantFrom(60, 3000, 7200),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('sweep' as const), deliveries: fc.integer({ min: 1, max: 3 }) }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('signIn' as const), user }) },
);
const planArb = (maxRounds: number, maxOps: number, advances: readonly number[]): fc.Arbitrary<Plan> =>
  fc.record({
    users: fc.integer({ min: 3, max: 5 }),
    rounds: fc.array(
      fc.record({
        advance: fc.constantFrom(...advances),
        ops: fc.array(opArb, { minLength: 1, maxLength: maxOps }),
      }),
      { minLength: 1, maxLength: maxRounds },
    ),
  });

/** What the closing note reports. */
const figures = {
  runs: 0,
  rounds: 0,
  operations: 0,
  getAccessTokenCalls: 0,
  sweeps: 0,
  signIns: 0,
  interleavingSteps: 0,
  idpRotations: 0,
  duplicateUses: 0,
  lostTokens: 0,
  reuseDetections: 0,
  servedUncommitted: 0,
  servedShort: 0,
};

let runSeq = 0;

/** Callers in a round that asked a user for more validity than any access token has: each may rotate once. */
function forcingCallers(round: Round, user: number, users: number): number {
  let callers = 0;
  for (const op of round.ops) {
    if ((op.kind === 'get' || op.kind === 'burst') && op.user % users === user && op.minValidity > 3600) {
      callers += op.kind === 'burst' ? op.callers : 1;
    }
  }
  return callers;
}

/** Sign-ins of a user in a round: each starts a new family that a caller may rotate. */
function signIns(round: Round, user: number, users: number): number {
  return round.ops.filter((op) => op.kind === 'signIn' && op.user % users === user).length;
}

/**
 * Runs one plan through the interleaver and checks the invariants. Returns the report, or throws
 * (which fast-check turns into a shrunk counterexample) on any violation.
 */
async function runPlan(
  rig: Rig,
  scheduler: fc.Scheduler,
  plan: Plan,
  gates: { sleep: (ms: number) => Promise<void> },
  options: { readonly finalProbe?: boolean; readonly accessTokenTtlSeconds?: number } = {},
): Promise<InvariantReport> {
  const run = ++runSeq;
  const users = Array.from({ length: plan.users }, (_, i) => `r${run}-u${i}`);
  const keys = users.map((userId) => ({ userId, resource: 'default' }));
  const nameOf = (index: number) => users[index % users.length]!;
  const ledger = rig.ledger();
  const committedStart = rig.store.committed.length;
  const servedStart = rig.served.length;
  const rotatedStart = rig.idp.rotatedFor.length;
  const problems: string[] = [];
  let report: InvariantReport;
  try {
    for (const userId of users) await rig.signIn(userId);
    const interleaver = new Interleaver(scheduler, rig.clock);
    rig.store.hooks = { before: (_method, label) => interleaver.gate(label) };
    rig.idp.hooks = { before: (label) => interleaver.gate(label) };
    gates.sleep = () => interleaver.gate('sleep');
    try {
      for (const [index, round] of plan.rounds.entries()) {
        // Time moves between rounds only: nothing is in flight then (see SimClock).
        rig.clock.advanceSeconds(round.advance);
        const roundRotatedStart = rig.idp.rotatedFor.length;
        const summaries: SweepSummary[] = [];
        const tasksOf = (op: Op): (() => Promise<unknown>)[] => {
          switch (op.kind) {
            case 'get':
              figures.getAccessTokenCalls++;
              return [() => expectServedOrGone(rig.get(nameOf(op.user), op.minValidity))];
            case 'burst':
              figures.getAccessTokenCalls += op.callers;
              return Array.from(
                { length: op.callers },
                () => () => expectServedOrGone(rig.get(nameOf(op.user), op.minValidity)),
              );
            case 'sweep':
              // The same scheduled event delivered `deliveries` times at once.
              figures.sweeps += op.deliveries;
              return Array.from({ length: op.deliveries }, () => async () => {
                summaries.push(await rig.runtime.sweep.run(ample));
              });
            case 'signIn':
              figures.signIns++;
              return [
                async () => {
                  await interleaver.gate(`signIn ${nameOf(op.user)}`);
                  await rig.signIn(nameOf(op.user)).catch((error: unknown) => {
                    // storeTokens lost three races in a row: the app is told to retry; nothing is lost.
                    if (!(error instanceof RefreshUnavailableError)) throw error;
                  });
                },
              ];
          }
        };
        const tasks: (() => Promise<unknown>)[] = [];
        for (const op of round.ops) tasks.push(...tasksOf(op));
        figures.operations += round.ops.length;
        const results = await interleaver.run(tasks);
        for (const result of results) {
          if (result.status === 'rejected') problems.push(`round ${index}: ${explain(result.reason)}`);
        }
        // Overlapping sweeps and callers: a record rotates at most once per round, plus once per
        // new sign-in and per caller that asked for more validity than any token has.
        const rotated = rig.idp.rotatedFor.slice(roundRotatedStart);
        for (const [u, userId] of users.entries()) {
          const count = rotated.filter((r) => r === userId).length;
          const allowed = 1 + signIns(round, u, users.length) + forcingCallers(round, u, users.length);
          if (count > allowed)
            problems.push(`round ${index}: ${userId} rotated ${count} times (at most ${allowed})`);
        }
        // A re-sign-in during the round makes a new record, which may fall due and rotate again.
        const swept = summaries.reduce((sum, summary) => sum + summary.rotated, 0);
        const records = users.length + users.reduce((sum, _u, u) => sum + signIns(round, u, users.length), 0);
        if (swept > records) problems.push(`round ${index}: sweeps rotated ${swept} of ${records} records`);
      }
    } finally {
      rig.store.hooks = {};
      rig.idp.hooks = {};
      gates.sleep = rig.clock.sleep;
      figures.interleavingSteps += interleaver.steps;
    }

    if (options.finalProbe) {
      // The stored refresh token must still work at the IdP: one forced refresh per active record.
      for (const userId of users) {
        const record = await rig.store.inner.get({ userId, resource: 'default' });
        if (record?.status === 'ACTIVE') await rig.get(userId, 7200);
      }
    }

    report = await checkInvariants({
      ledger,
      store: rig.store.inner,
      keys,
      committed: rig.store.committed.slice(committedStart),
      served: rig.served.slice(servedStart),
      // A record nobody touched for longer than a refresh token lives expires: the schedule's doing.
      allowedReauth: ['expired'],
      accessTokenTtlSeconds: options.accessTokenTtlSeconds ?? ACCESS_TOKEN_TTL,
    });
  } finally {
    await forget(rig, keys);
  }
  figures.runs++;
  figures.rounds += plan.rounds.length;
  figures.idpRotations += rig.idp.rotatedFor.length - rotatedStart;
  figures.duplicateUses += report.duplicateUses;
  figures.lostTokens += report.lostTokens;
  figures.reuseDetections += report.reuseDetections;
  figures.servedUncommitted += report.servedUncommitted;
  figures.servedShort += report.servedShort;
  problems.push(...report.problems);
  if (report.refusals > 0) problems.push(`the IdP refused ${report.refusals} refresh request(s)`);
  if (problems.length > 0) throw new Error(`invariants violated:\n${problems.join('\n')}`);
  return report;
}

/** A promise with its resolve function, for steering one interleaving by hand. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => {};
  const promise = new Promise<void>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

/** Deletes a run's records, so the next run's sweeps see only their own. */
async function forget(rig: Rig, keys: readonly RecordKey[]): Promise<void> {
  for (const key of keys) await rig.store.inner.delete(key);
}

/** getAccessToken either serves, or says the refresh token ran out of time (the schedule let it). */
async function expectServedOrGone(call: Promise<unknown>): Promise<void> {
  try {
    await call;
  } catch (error) {
    if (error instanceof ReauthRequiredError && error.reason === 'expired') return;
    if (error instanceof TokenNotFoundError) return;
    throw error;
  }
}

function explain(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

describe('Races: rotation under interleaved callers, sweeps and sign-ins', () => {
  afterAll(() => {
    console.log(`[proofs/races] ${JSON.stringify(figures)}`);
  });

  describe('against DynamoDB Local and the strict Transmit emulator (grace 0, reuse revokes the family)', () => {
    let rig: Rig;
    const gates = { sleep: (ms: number) => rig.clock.sleep(ms) };

    beforeAll(async () => {
      rig = await startRig({
        env: ENV,
        transmit: { refreshTokenTtlSeconds: 7200, reuseGraceSeconds: 0 },
        sleep: (ms) => gates.sleep(ms),
      });
    });
    afterAll(async () => {
      await rig.close();
    });

    it('keeps every invariant across random interleavings of getAccessToken bursts, overlapping sweeps, re-sign-ins and clock advances', async () => {
      await fc.assert(
        fc.asyncProperty(fc.scheduler(), planArb(4, 5, [0, 60, 1800, 3000, 3660]), async (s, plan) => {
          const report = await runPlan(rig, s, plan, gates);
          expect(report.duplicateUses).toBe(0);
        }),
        { numRuns: 40 },
      );
      expect(figures.runs).toBeGreaterThanOrEqual(40);
    }, 120_000);

    it('catches a lease that excludes nobody (a check of the proof itself)', async () => {
      // Prepare: acquireLease says 'ok' even when DynamoDB refused it.
      const saved = { ...figures };
      rig.store.sabotageLease = true;
      const contended: fc.Arbitrary<Plan> = fc.record({
        users: fc.constant(3),
        rounds: fc.constant([
          {
            advance: 3600,
            ops: [
              { kind: 'burst', user: 0, callers: 4, minValidity: 7200 } as const,
              { kind: 'sweep', deliveries: 3 } as const,
            ],
          },
        ]),
      });

      // Act
      const result = await fc
        .check(
          fc.asyncProperty(fc.scheduler(), contended, async (s, plan) => {
            await runPlan(rig, s, plan, gates);
          }),
          { numRuns: 10, endOnFailure: true },
        )
        .finally(() => {
          rig.store.sabotageLease = false;
          Object.assign(figures, saved);
        });

      // Assess
      expect(result.failed).toBe(true);
      expect(String(result.errorInstance)).toMatch(/reached the IdP 2 times|detected reuse/);
    }, 60_000);

    it('rotates each due record exactly once when the same scheduled event is delivered three times at once', async () => {
      await fc.assert(
        fc.asyncProperty(fc.scheduler(), fc.integer({ min: 3, max: 5 }), async (s, users) => {
          // Prepare: every record falls due (45-60 min after sign-in).
          const run = ++runSeq;
          const names = Array.from({ length: users }, (_, i) => `r${run}-s${i}`);
          const keys = names.map((userId) => ({ userId, resource: 'default' }));
          const ledger = rig.ledger();
          for (const name of names) await rig.signIn(name);
          rig.clock.advanceSeconds(3600);
          const rotatedStart = rig.idp.rotatedFor.length;
          const interleaver = new Interleaver(s, rig.clock);
          rig.store.hooks = { before: (_m, label) => interleaver.gate(label) };
          rig.idp.hooks = { before: (label) => interleaver.gate(label) };
          gates.sleep = () => interleaver.gate('sleep');

          // Act
          const summaries = await interleaver.run([1, 2, 3].map(() => () => rig.runtime.sweep.run(ample)));
          rig.store.hooks = {};
          rig.idp.hooks = {};
          gates.sleep = rig.clock.sleep;
          figures.interleavingSteps += interleaver.steps;
          figures.sweeps += 3;
          figures.runs++;

          // Assess
          try {
            const done = summaries.map((r) => (r.status === 'fulfilled' ? r.value : undefined));
            expect(done.every((d) => d !== undefined)).toBe(true);
            expect(done.reduce((sum, d) => sum + (d?.rotated ?? 0), 0)).toBe(users);
            expect(done.reduce((sum, d) => sum + (d?.failed ?? 0), 0)).toBe(0);
            const rotated = rig.idp.rotatedFor.slice(rotatedStart);
            for (const name of names) expect(rotated.filter((r) => r === name)).toHaveLength(1);
            figures.idpRotations += rotated.length;
            const report = await checkInvariants({
              ledger,
              store: rig.store.inner,
              keys,
              committed: rig.store.committed,
              served: [],
            });
            expect(report.problems).toEqual([]);
            expect(report.active).toBe(users);
          } finally {
            await forget(rig, keys);
          }
        }),
        { numRuns: 20 },
      );
    }, 60_000);
  });

  describe('when the Reauth Soon notice falls due while callers refresh', () => {
    let rig: Rig;
    const gates = { sleep: (ms: number) => rig.clock.sleep(ms) };

    beforeAll(async () => {
      // Rotation capped at 6 h: the notice is due halfway, at 3 h, while the 5 h refresh token is
      // alive and the 1 h access token has expired, so callers refresh while the sweep notifies.
      rig = await startRig({
        env: {
          ...ENV,
          REFRESH_TOKEN_TTL_SECONDS: String(5 * 3600),
          MAX_ROTATION_SECONDS: String(6 * 3600),
          REFRESH_AHEAD_SECONDS: '3600',
          REAUTH_SOON_DAYS: '14',
        },
        transmit: { refreshTokenTtlSeconds: 5 * 3600, maxRotationSeconds: 6 * 3600, reuseGraceSeconds: 0 },
        sleep: (ms) => gates.sleep(ms),
      });
    });
    afterAll(async () => {
      await rig.close();
    });

    it('never hands a caller less validity than it asked for because the notice moved the version while it waited', async () => {
      // Prepare: access tokens live 4 h, so at the notice (3 h) the stored one still has 1 h.
      const own = await startRig({
        env: {
          ...ENV,
          REFRESH_TOKEN_TTL_SECONDS: String(5 * 3600),
          MAX_ROTATION_SECONDS: String(6 * 3600),
          REFRESH_AHEAD_SECONDS: '3600',
          REAUTH_SOON_DAYS: '14',
        },
        transmit: {
          refreshTokenTtlSeconds: 5 * 3600,
          maxRotationSeconds: 6 * 3600,
          accessTokenTtlSeconds: 4 * 3600,
          reuseGraceSeconds: 0,
        },
      });
      try {
        await own.signIn('alice');
        own.clock.advanceSeconds(3 * 3600);
        // The interleaving: the caller reads the record, the sweep writes the notice (version + 1,
        // no rotation), then the caller tries to lease the version it read.
        // Fails today (a finding): TokenService.getAccessToken takes any version move for a sibling's
        // rotation and serves the stored token, labelled "refreshed", with 1 h left of the 2 h asked.
        const callerRead = deferred();
        const noticeWritten = deferred();
        own.store.hooks = {
          before: async (method) => {
            if (method === 'acquireLease') await noticeWritten.promise;
          },
          after: (method) => {
            if (method === 'get') callerRead.resolve();
            if (method === 'put') noticeWritten.resolve();
          },
        };

        // Act
        const asked = own.get('alice', 7200);
        await callerRead.promise;
        const summary = await own.runtime.sweep.run(ample);
        const served = await asked;

        // Assess: the notice went out; the caller got a token valid for the 2 h it asked for
        // (a fresh one lives 4 h), not the stored one with 1 h left under the label "refreshed".
        expect(summary).toMatchObject({ due: 1, rotated: 0 });
        expect(own.eventsOf('alice')).toEqual(['Reauth Soon']);
        expect({ source: served.source, validFor: served.expiresAt - own.clock.nowSeconds() }).toEqual({
          source: 'refreshed',
          validFor: 4 * 3600,
        });
      } finally {
        own.store.hooks = {};
        await own.close();
      }
    });

    it('sends the notice once per record and loses no rotation that is in flight', async () => {
      const notice: fc.Arbitrary<Plan> = fc.record({
        users: fc.integer({ min: 2, max: 4 }),
        rounds: fc
          .tuple(
            fc.array(
              fc.oneof(
                fc.record({ kind: fc.constant('get' as const), user, minValidity: fc.constant(60) }),
                fc.record({
                  kind: fc.constant('sweep' as const),
                  deliveries: fc.integer({ min: 1, max: 2 }),
                }),
              ),
              { minLength: 2, maxLength: 6 },
            ),
          )
          .map(([ops]) => [{ advance: 3 * 3600, ops }]),
      });
      await fc.assert(
        fc.asyncProperty(fc.scheduler(), notice, async (s, plan) => {
          const eventsStart = rig.events.published.length;
          await runPlan(rig, s, plan, gates);
          const soon = rig.events.published.slice(eventsStart).filter((e) => e.type === 'Reauth Soon');
          expect(new Set(soon.map((e) => e.key.userId)).size).toBe(soon.length);
        }),
        { numRuns: 25 },
      );
    }, 120_000);
  });

  describe('against oidc-provider (rotateRefreshToken: true) through the oauth2 flavour', () => {
    let oidc: OidcServer;
    let rig: Rig;
    const gates = { sleep: (_ms: number) => Promise.resolve() };

    beforeAll(async () => {
      // One server for the file: its in-memory adapter holds about 1000 entries, enough for these runs.
      oidc = await startOidcServer();
      rig = await startRig({
        oidc,
        env: {
          ...ENV,
          // Real time: a 120 s refresh token rotated 45-60 s ahead; signed in 70 s ago, every
          // record is due at once, and due again only after the run.
          REFRESH_TOKEN_TTL_SECONDS: '120',
          REFRESH_AHEAD_SECONDS: '60',
        },
        signInAgeSeconds: 70,
        sleep: (ms) => gates.sleep(ms),
      });
    });
    afterAll(async () => {
      await rig.close();
      await oidc.close();
    });

    it('keeps invariants 1 and 2 from its own log, with no invalid_grant, across random interleavings', async () => {
      await fc.assert(
        fc.asyncProperty(fc.scheduler(), planArb(3, 4, [0]), async (s, plan) => {
          const report = await runPlan(rig, s, { ...plan, users: Math.min(plan.users, 3) }, gates, {
            finalProbe: true,
            // Real time passes between a refresh and the moment its token is handed out.
            accessTokenTtlSeconds: ACCESS_TOKEN_TTL - 5,
          });
          expect(report.refusals).toBe(0);
        }),
        { numRuns: 10 },
      );
    }, 120_000);
  });
});
