import { describe, expect, it } from 'vitest';
import {
  IdpPermanentError,
  IdpTransientError,
  ReauthRequiredError,
  RefreshUnavailableError,
  StoreUnavailableError,
  TokenNotFoundError,
  ValidationError,
} from '../../../functions/core/errors';
import { shardOf } from '../../../functions/core/lifetimes';
import type { TokenRecord, TokenSet } from '../../../functions/core/model';
import { Secret } from '../../../functions/core/secret';
import { TokenService } from '../../../functions/core/token-service';
import type { StoreTokensInput } from '../../../functions/core/validation';
import {
  activeRecord,
  clockBudget,
  DAY,
  type DepsOverrides,
  fixedBudget,
  KEY,
  makeDeps,
  rejectionOf,
  T0,
  TEST_SETTINGS,
  tokenSet,
  until,
} from '../../support/fakes';

const AMPLE = fixedBudget(60_000);

/** Deps, a TokenService over them, and (unless `record` is null) one stored record. */
function setup(options: DepsOverrides & { record?: Partial<TokenRecord> | null } = {}) {
  const deps = makeDeps(options);
  const now = deps.clock.nowSeconds();
  if (options.record !== null) deps.store.seed(activeRecord(now, options.record));
  deps.store.calls.length = 0;
  return { deps, service: new TokenService(deps), now };
}

function signIn(label: string, authenticatedAt?: number, expiresIn = 3600): StoreTokensInput {
  const tokens: TokenSet = { ...tokenSet(label, expiresIn), sessionId: new Secret(`sess-${label}`) };
  return { key: KEY, authenticatedAt, tokens };
}

const ask = (minValiditySeconds = 60) => ({ key: KEY, minValiditySeconds });

describe('Class: TokenService', () => {
  describe('Method: storeTokens', () => {
    it('creates an ACTIVE record, versioned from its creation time in ms, with lifetimes counted from now and its due index keys', async () => {
      // Prepare
      const { deps, service, now } = setup({ record: null });

      // Act
      const record = await service.storeTokens(signIn('signin'));

      // Assess
      const stored = deps.store.peek(KEY)!;
      expect(stored).toEqual(record);
      expect(stored).toMatchObject({
        status: 'ACTIVE',
        version: now * 1000,
        tokenType: 'Bearer',
        accessExpiresAt: now + 3600,
        authenticatedAt: now,
        rotationDeadline: now + 365 * DAY,
        refreshExpiresAt: now + 14 * DAY,
        expiresAt: now + 14 * DAY,
        lease: undefined,
        dueShard: shardOf(KEY, 4),
        failures: 0,
        rotations: 0,
      });
      expect(stored.dueAt).toBeLessThanOrEqual(now + 11 * DAY);
      expect(stored.dueAt).toBeGreaterThanOrEqual(now + 11 * DAY - 6 * 3600);
      expect(stored.tokens?.refreshToken.reveal()).toBe('rt-signin');
      expect(stored.tokens?.sessionId?.reveal()).toBe('sess-signin');
      expect(deps.store.calls.find((c) => c.method === 'put')?.fence).toEqual({ version: undefined });
      expect(deps.metrics.total('TokensStored')).toBe(1);
    });

    it('replaces an existing record, bumps its version and resets its operational state', async () => {
      // Prepare
      const { deps, service } = setup({
        record: {
          version: 5,
          status: 'REAUTH_REQUIRED',
          tokens: undefined,
          reauthReason: 'refresh_rejected',
          failures: 4,
          rotations: 9,
          lease: { id: 'in-flight', untilMs: Number.MAX_SAFE_INTEGER },
        },
      });

      // Act
      await service.storeTokens(signIn('again'));

      // Assess
      expect(deps.store.peek(KEY)).toMatchObject({
        status: 'ACTIVE',
        version: 6,
        reauthReason: undefined,
        failures: 0,
        rotations: 0,
        lease: undefined,
      });
      expect(deps.store.peek(KEY)?.tokens?.refreshToken.reveal()).toBe('rt-again');
      expect(deps.store.calls.find((c) => c.method === 'put')?.fence).toEqual({ version: 5 });
    });

    it('counts the refresh token lifetime and the rotation deadline from authenticatedAt', async () => {
      // Prepare
      const { deps, service, now } = setup({ record: null });

      // Act
      await service.storeTokens(signIn('late', now - 12 * DAY));

      // Assess
      expect(deps.store.peek(KEY)).toMatchObject({
        authenticatedAt: now - 12 * DAY,
        refreshExpiresAt: now + 2 * DAY,
        rotationDeadline: now - 12 * DAY + 365 * DAY,
        dueAt: now,
      });
    });

    it('counts the access token lifetime from authenticatedAt, so a late store does not overstate it', async () => {
      // Prepare
      const { deps, service, now } = setup({ record: null });

      // Act
      await service.storeTokens(signIn('late', now - 3000, 3600));

      // Assess
      expect(deps.store.peek(KEY)?.accessExpiresAt).toBe(now + 600);
    });

    it('makes a record capped from the start due only at its rotation deadline', async () => {
      // Prepare
      const { deps, service, now } = setup({ record: null, lifetimes: { maxRotationSeconds: 7 * DAY } });

      // Act
      await service.storeTokens(signIn('short'));

      // Assess
      expect(deps.store.peek(KEY)).toMatchObject({
        refreshExpiresAt: now + 7 * DAY,
        rotationDeadline: now + 7 * DAY,
        dueAt: now + 7 * DAY,
      });
    });

    it('accepts authenticatedAt up to 5 minutes ahead (clock skew) and rejects more', async () => {
      // Prepare
      const { deps, service, now } = setup({ record: null });

      // Act
      await service.storeTokens(signIn('skewed', now + 300));
      const error = await rejectionOf(service.storeTokens(signIn('future', now + 301)));

      // Assess
      expect(error).toBeInstanceOf(ValidationError);
      expect(error.message).toBe('authenticatedAt is in the future');
      expect(deps.store.peek(KEY)?.tokens?.refreshToken.reveal()).toBe('rt-skewed');
    });

    it('rejects an authenticatedAt whose refresh token has already expired and writes nothing', async () => {
      // Prepare
      const { deps, service, now } = setup({ record: null });

      // Act
      const exactlyExpired = await rejectionOf(service.storeTokens(signIn('old', now - 14 * DAY)));
      const pastDeadline = await rejectionOf(service.storeTokens(signIn('older', now - 366 * DAY)));
      await service.storeTokens(signIn('just-alive', now - 14 * DAY + 1));

      // Assess
      expect(exactlyExpired).toBeInstanceOf(ValidationError);
      expect(pastDeadline).toBeInstanceOf(ValidationError);
      expect(deps.store.count('put')).toBe(1);
      expect(deps.store.peek(KEY)?.refreshExpiresAt).toBe(now + 1);
    });

    it('retries when the record changed between its read and its write', async () => {
      // Prepare
      const { deps, service } = setup();
      deps.store.beforeNext('put', () => deps.store.update(KEY, (r) => ({ ...r, version: 3 })));

      // Act
      await service.storeTokens(signIn('signin'));

      // Assess
      expect(deps.store.peek(KEY)?.version).toBe(4);
      expect(deps.store.count('put')).toBe(2);
    });

    it('gives up with RefreshUnavailableError after three conflicting attempts', async () => {
      // Prepare
      const { deps, service } = setup();
      let version = 1;
      deps.store.beforeNext('put', () => deps.store.update(KEY, (r) => ({ ...r, version: ++version })), 3);

      // Act
      const error = await rejectionOf(service.storeTokens(signIn('signin')));

      // Assess
      expect(error).toBeInstanceOf(RefreshUnavailableError);
      expect(deps.store.count('put')).toBe(3);
      expect(deps.store.peek(KEY)?.tokens?.refreshToken.reveal()).toBe('rt-0');
    });

    it('wins over a refresh of the old tokens that is still in flight', async () => {
      // Prepare
      const { deps, service, now } = setup({ record: { accessExpiresAt: T0 - 1 } });
      deps.idp.enqueue(tokenSet('old-family'));
      const release = deps.idp.hold();
      const pending = service.getAccessToken(ask(), AMPLE);
      await until(() => deps.idp.calls === 1);

      // Act
      await service.storeTokens(signIn('signin'));
      release();
      const served = await pending;

      // Assess
      expect(deps.store.peek(KEY)?.tokens?.refreshToken.reveal()).toBe('rt-signin');
      expect(served.accessToken.reveal()).toBe('at-signin');
      expect(deps.store.peek(KEY)?.accessExpiresAt).toBe(now + 3600);
    });
  });

  describe('Method: getAccessToken', () => {
    describe('when the stored access token is valid long enough', () => {
      it('serves it without calling the IdP or taking a lease', async () => {
        // Prepare
        const { deps, service, now } = setup();

        // Act
        const served = await service.getAccessToken(ask(), AMPLE);

        // Assess
        expect(served.accessToken.reveal()).toBe('at-0');
        expect(served).toMatchObject({ tokenType: 'Bearer', expiresAt: now + 1800, source: 'cached' });
        expect(deps.idp.calls).toBe(0);
        expect(deps.store.count('acquireLease')).toBe(0);
        expect(deps.metrics.total('AccessTokenServed')).toBe(1);
        expect(deps.metrics.total('AccessTokenServed', { source: 'cached' })).toBe(1);
      });

      it('serves it when its remaining validity equals minValiditySeconds exactly', async () => {
        // Prepare
        const { deps, service } = setup();

        // Act
        const served = await service.getAccessToken(ask(1800), AMPLE);

        // Assess
        expect(served.source).toBe('cached');
        expect(deps.idp.calls).toBe(0);
      });
    });

    describe('when a refresh is needed', () => {
      it('refreshes when the remaining validity is below minValiditySeconds', async () => {
        // Prepare
        const { deps, service, now } = setup();
        deps.idp.enqueue(tokenSet('new'));

        // Act
        const served = await service.getAccessToken(ask(1801), AMPLE);

        // Assess
        expect(served.accessToken.reveal()).toBe('at-new');
        expect(served).toMatchObject({ source: 'refreshed', expiresAt: now + 3600 });
        expect(deps.idp.presented).toEqual(['rt-0']);
        expect(deps.store.peek(KEY)?.tokens?.refreshToken.reveal()).toBe('rt-new');
        expect(deps.metrics.total('AccessTokenServed', { source: 'refreshed' })).toBe(1);
      });

      it('refreshes an expired access token', async () => {
        // Prepare
        const { deps, service } = setup({ record: { accessExpiresAt: T0 - 10 } });
        deps.idp.enqueue(tokenSet('new'));

        // Act
        const served = await service.getAccessToken(ask(0), AMPLE);

        // Assess
        expect(served.accessToken.reveal()).toBe('at-new');
        expect(deps.store.peek(KEY)?.version).toBe(2);
      });

      it('lets 20 concurrent callers share one IdP call and serves them all the same token', async () => {
        // Prepare
        const { deps, service } = setup({ record: { accessExpiresAt: T0 - 1 } });
        deps.idp.enqueue(tokenSet('new'));
        const release = deps.idp.hold();
        const budget = clockBudget(deps.clock, 60_000);

        // Act
        const pending = Array.from({ length: 20 }, () => service.getAccessToken(ask(), budget));
        await until(() => deps.idp.calls === 1 && deps.sleeps.length >= 19);
        release();
        const served = await Promise.all(pending);

        // Assess
        expect(deps.idp.calls).toBe(1);
        expect(new Set(served.map((s) => s.accessToken.reveal()))).toEqual(new Set(['at-new']));
        expect(served.filter((s) => s.source === 'refreshed')).toHaveLength(1);
        expect(served.filter((s) => s.source === 'cached')).toHaveLength(19);
        expect(deps.store.peek(KEY)).toMatchObject({ version: 2, lease: undefined });
      });

      it("waits for a sibling's live lease and serves what the sibling stored, without an IdP call", async () => {
        // Prepare
        const { deps, service, now } = setup({
          record: { accessExpiresAt: T0 - 1, lease: { id: 'sibling', untilMs: Number.MAX_SAFE_INTEGER } },
        });
        deps.store.beforeNext('get', () => undefined);
        deps.store.beforeNext('get', () =>
          deps.store.update(KEY, (r) => ({
            ...r,
            version: 2,
            lease: undefined,
            accessExpiresAt: now + 3600,
            tokens: { accessToken: new Secret('at-sibling'), refreshToken: new Secret('rt-sibling') },
          })),
        );

        // Act
        const served = await service.getAccessToken(ask(), AMPLE);

        // Assess
        expect(served.accessToken.reveal()).toBe('at-sibling');
        expect(served.source).toBe('cached');
        expect(deps.idp.calls).toBe(0);
        expect(deps.sleeps).toHaveLength(1);
      });

      it('stops waiting after at most one lease and fails when no valid token exists', async () => {
        // Prepare
        const { deps, service } = setup({
          record: { accessExpiresAt: T0 - 1, lease: { id: 'stuck', untilMs: Number.MAX_SAFE_INTEGER } },
        });
        const started = deps.clock.nowMs();

        // Act
        const error = await rejectionOf(service.getAccessToken(ask(), AMPLE));

        // Assess
        expect(error).toBeInstanceOf(RefreshUnavailableError);
        expect(deps.idp.calls).toBe(0);
        expect(deps.clock.nowMs() - started).toBeLessThanOrEqual(TEST_SETTINGS.leaseMs + 250);
        expect(deps.clock.nowMs() - started).toBeGreaterThan(TEST_SETTINGS.leaseMs / 2);
        expect(Math.max(...deps.sleeps)).toBeLessThanOrEqual(1000);
        // Reads grow sparse: a crowd of waiters must not hammer the table.
        expect(deps.store.count('get')).toBeLessThan(TEST_SETTINGS.leaseMs / 500);
      });

      it('serves a still-valid token after a bounded wait for a stuck sibling', async () => {
        // Prepare
        const { deps, service } = setup({
          record: { accessExpiresAt: T0 + 30, lease: { id: 'stuck', untilMs: Number.MAX_SAFE_INTEGER } },
        });

        // Act
        const served = await service.getAccessToken(ask(), AMPLE);

        // Assess
        expect(served.source).toBe('stale');
        expect(served.accessToken.reveal()).toBe('at-0');
        expect(deps.idp.calls).toBe(0);
      });

      it('waits no longer than the invocation allows', async () => {
        // Prepare
        const { deps, service } = setup({
          record: { accessExpiresAt: T0 - 1, lease: { id: 'stuck', untilMs: Number.MAX_SAFE_INTEGER } },
        });
        const started = deps.clock.nowMs();

        // Act
        await rejectionOf(service.getAccessToken(ask(), clockBudget(deps.clock, 3000)));

        // Assess
        expect(deps.clock.nowMs() - started).toBeLessThanOrEqual(2000);
      });

      it('takes over a lease that has expired', async () => {
        // Prepare
        const { deps, service } = setup({
          record: { accessExpiresAt: T0 - 1, lease: { id: 'crashed', untilMs: T0 * 1000 - 1 } },
        });
        deps.idp.enqueue(tokenSet('new'));

        // Act
        const served = await service.getAccessToken(ask(), AMPLE);

        // Assess
        expect(served.source).toBe('refreshed');
        expect(deps.idp.calls).toBe(1);
      });

      it("serves a sibling's token when the IdP rejects ours because the sibling rotated first", async () => {
        // Prepare
        const { deps, service, now } = setup({ record: { accessExpiresAt: T0 - 1 } });
        deps.idp.enqueue(() => {
          deps.store.update(KEY, (r) => ({
            ...r,
            version: 2,
            lease: undefined,
            accessExpiresAt: now + 3600,
            tokens: { accessToken: new Secret('at-sibling'), refreshToken: new Secret('rt-sibling') },
          }));
          return new IdpPermanentError('rejected', 400, 'invalid_grant');
        });

        // Act
        const served = await service.getAccessToken(ask(), AMPLE);

        // Assess
        expect(served.accessToken.reveal()).toBe('at-sibling');
        expect(deps.store.peek(KEY)?.status).toBe('ACTIVE');
        expect(deps.idp.calls).toBe(1);
      });
    });

    describe('when the IdP cannot refresh', () => {
      it('serves the stored access token as stale while it is still valid', async () => {
        // Prepare
        const { deps, service } = setup({ record: { accessExpiresAt: T0 + 30 } });
        deps.idp.enqueue(new IdpTransientError('down', 503, undefined));

        // Act
        const served = await service.getAccessToken(ask(), AMPLE);

        // Assess
        expect(served).toMatchObject({ source: 'stale', expiresAt: T0 + 30 });
        expect(served.accessToken.reveal()).toBe('at-0');
        expect(deps.store.peek(KEY)?.failures).toBe(1);
        expect(deps.metrics.total('AccessTokenServed', { source: 'stale' })).toBe(1);
      });

      it('throws a retryable RefreshUnavailableError when no valid access token is stored', async () => {
        // Prepare
        const { deps, service } = setup({ record: { accessExpiresAt: T0 } });
        deps.idp.enqueue(new IdpTransientError('down', undefined, undefined));

        // Act
        const error = await rejectionOf(service.getAccessToken(ask(), AMPLE));

        // Assess
        expect(error).toBeInstanceOf(RefreshUnavailableError);
        expect((error as RefreshUnavailableError).retryable).toBe(true);
        expect(JSON.stringify(error)).not.toMatch(/rt-0|at-0/);
      });

      it('respects the backoff: no IdP call while failures > 0 and dueAt is in the future', async () => {
        // Prepare
        const { deps, service } = setup({
          record: { accessExpiresAt: T0 - 1, failures: 2, dueAt: T0 + 60 },
        });

        // Act
        const error = await rejectionOf(service.getAccessToken(ask(), AMPLE));

        // Assess
        expect(error).toBeInstanceOf(RefreshUnavailableError);
        expect(deps.idp.calls).toBe(0);
        expect(deps.store.count('acquireLease')).toBe(0);
      });

      it('serves a valid stale token during the backoff', async () => {
        // Prepare
        const { deps, service } = setup({
          record: { accessExpiresAt: T0 + 30, failures: 1, dueAt: T0 + 60 },
        });

        // Act
        const served = await service.getAccessToken(ask(), AMPLE);

        // Assess
        expect(served.source).toBe('stale');
        expect(deps.idp.calls).toBe(0);
      });

      it('calls the IdP again once the backoff has passed', async () => {
        // Prepare
        const { deps, service } = setup({
          record: { accessExpiresAt: T0 - 1, failures: 2, dueAt: T0 + 60 },
        });
        deps.idp.enqueue(tokenSet('new'));
        deps.clock.advanceSeconds(60);

        // Act
        const served = await service.getAccessToken(ask(), AMPLE);

        // Assess
        expect(served.source).toBe('refreshed');
        expect(deps.store.peek(KEY)?.failures).toBe(0);
      });

      it('neither leases nor calls the IdP when the invocation has too little time left', async () => {
        // Prepare
        const { deps, service } = setup({ record: { accessExpiresAt: T0 + 30 } });

        // Act
        const served = await service.getAccessToken(ask(), fixedBudget(14_999));

        // Assess
        expect(served.source).toBe('stale');
        expect(deps.idp.calls).toBe(0);
        expect(deps.store.count('acquireLease')).toBe(0);
      });

      it('fails closed when the refreshed tokens cannot be stored (PersistFailed)', async () => {
        // Prepare
        const { deps, service } = setup({ record: { accessExpiresAt: T0 + 30 } });
        deps.idp.enqueue(tokenSet('new'));
        deps.store.failNext('put', 6);

        // Act
        const error = await rejectionOf(service.getAccessToken(ask(), AMPLE));

        // Assess
        expect(error).toBeInstanceOf(RefreshUnavailableError);
        expect(JSON.stringify(error)).not.toContain('at-new');
        expect(deps.metrics.total('PersistFailed')).toBe(1);
        expect(deps.metrics.total('AccessTokenServed')).toBe(0);
      });

      it('passes a store outage on as a retryable error', async () => {
        // Prepare
        const { deps, service } = setup();
        deps.store.failNext('get', 1);

        // Act
        const error = await rejectionOf(service.getAccessToken(ask(), AMPLE));

        // Assess
        expect(error).toBeInstanceOf(StoreUnavailableError);
        expect((error as StoreUnavailableError).retryable).toBe(true);
      });
    });

    describe('when the record cannot be served', () => {
      it('throws TokenNotFoundError when there is no record', async () => {
        // Prepare
        const { service } = setup({ record: null });

        // Act
        const error = await rejectionOf(service.getAccessToken(ask(), AMPLE));

        // Assess
        expect(error).toBeInstanceOf(TokenNotFoundError);
        expect(error.message).toContain('user-1');
      });

      it('throws TokenNotFoundError when the record outlived its expiresAt (DynamoDB deletes late)', async () => {
        // Prepare
        const { deps, service } = setup({ record: { expiresAt: T0, refreshExpiresAt: T0 } });

        // Act
        const error = await rejectionOf(service.getAccessToken(ask(), AMPLE));

        // Assess
        expect(error).toBeInstanceOf(TokenNotFoundError);
        expect(deps.idp.calls).toBe(0);
      });

      it.each([
        ['refresh_rejected', 'refresh_rejected' as const],
        ['deadline', 'deadline' as const],
        ['absent (defaults to refresh_rejected)', undefined],
      ])(
        'throws ReauthRequiredError for a REAUTH_REQUIRED record with reason %s',
        async (_label, reauthReason) => {
          // Prepare
          const { deps, service } = setup({
            record: {
              status: 'REAUTH_REQUIRED',
              tokens: undefined,
              reauthReason,
              dueAt: undefined,
              dueShard: undefined,
            },
          });

          // Act
          const error = await rejectionOf(service.getAccessToken(ask(), AMPLE));

          // Assess
          expect(error).toBeInstanceOf(ReauthRequiredError);
          expect((error as ReauthRequiredError).reason).toBe(reauthReason ?? 'refresh_rejected');
          expect(deps.idp.calls).toBe(0);
        },
      );

      it('marks the record and throws ReauthRequiredError when the IdP rejects the refresh token', async () => {
        // Prepare
        const { deps, service } = setup({ record: { accessExpiresAt: T0 - 1 } });
        deps.idp.enqueue(new IdpPermanentError('rejected', 400, 'invalid_grant'));

        // Act
        const first = await rejectionOf(service.getAccessToken(ask(), AMPLE));
        const second = await rejectionOf(service.getAccessToken(ask(), AMPLE));

        // Assess
        expect(first).toBeInstanceOf(ReauthRequiredError);
        expect((first as ReauthRequiredError).reason).toBe('refresh_rejected');
        expect(second).toBeInstanceOf(ReauthRequiredError);
        expect(deps.store.peek(KEY)?.status).toBe('REAUTH_REQUIRED');
        expect(deps.idp.calls).toBe(1);
      });

      it.each([
        ['corrupt', { corrupt: true }],
        ['without tokens', { tokens: undefined }],
      ])(
        'throws ReauthRequiredError (corrupted) for an ACTIVE record that is %s, and logs it',
        async (_label, change) => {
          // Prepare
          const { deps, service } = setup({ record: change });

          // Act
          const error = await rejectionOf(service.getAccessToken(ask(), AMPLE));

          // Assess
          expect(error).toBeInstanceOf(ReauthRequiredError);
          expect((error as ReauthRequiredError).reason).toBe('corrupted');
          expect(deps.idp.calls).toBe(0);
          expect(deps.logger.lines).toContainEqual(expect.objectContaining({ level: 'error' }));
        },
      );

      it.each([
        ['expired', T0 + 365 * DAY],
        ['deadline', T0],
      ])(
        'throws ReauthRequiredError (%s) when the refresh token is past its expiry',
        async (reason, rotationDeadline) => {
          // Prepare
          const { deps, service } = setup({
            record: { refreshExpiresAt: T0, expiresAt: T0 + 60, rotationDeadline },
          });

          // Act
          const error = await rejectionOf(service.getAccessToken(ask(), AMPLE));

          // Assess
          expect(error).toBeInstanceOf(ReauthRequiredError);
          expect((error as ReauthRequiredError).reason).toBe(reason);
          expect(deps.idp.calls).toBe(0);
        },
      );
    });
  });
});
