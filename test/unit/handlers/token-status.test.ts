import { describe, expect, it } from 'vitest';
import type { Runtime } from '../../../functions/adapters/runtime';
import { TokenNotFoundError, ValidationError } from '../../../functions/core/errors';
import { TokenService } from '../../../functions/core/token-service';
import { lambdaHandler } from '../../../functions/handlers/lambda';
import { tokenStatus } from '../../../functions/handlers/token-status';
import { caught } from '../../support/caught';
import { activeRecord, KEY, makeDeps } from '../../support/fakes';

/** The handler body on a runtime whose core runs on the fakes, with one stored record. */
function setup(record: Parameters<typeof activeRecord>[1] | null = {}) {
  const deps = makeDeps();
  const now = deps.clock.nowSeconds();
  if (record !== null) deps.store.seed(activeRecord(now, record));
  const runtime = {
    tokenService: new TokenService(deps),
    logger: deps.logger,
    metrics: deps.metrics,
    flush: () => {},
  } as unknown as Runtime;
  const handler = lambdaHandler(() => runtime, tokenStatus);
  return { handler, now };
}

const isoOf = (seconds: number) => new Date(seconds * 1000).toISOString();

describe('Handler: tokenStatus', () => {
  it('answers the status with ISO times and no token', async () => {
    // Prepare
    const { handler, now } = setup({ lastRotatedAt: 0, failures: 1 });
    const stored = activeRecord(now);

    // Act
    const answer = await handler({ userId: KEY.userId });

    // Assess
    expect(answer).toEqual({
      userId: KEY.userId,
      resource: KEY.resource,
      status: 'ACTIVE',
      rotationDeadline: isoOf(stored.rotationDeadline),
      refreshTokenExpiresAt: isoOf(stored.refreshExpiresAt),
      lastRotatedAt: isoOf(0),
      failures: 1,
      offlineAccessUntil: isoOf(stored.rotationDeadline),
    });
    expect(JSON.stringify(answer)).not.toMatch(/at-0|rt-0|id-0|sess-0/);
  });

  it('answers REAUTH_REQUIRED with its reason rather than throwing', async () => {
    // Prepare
    const { handler } = setup({ status: 'REAUTH_REQUIRED', reauthReason: 'deadline' });

    // Act
    const answer = await handler({ userId: KEY.userId, resource: KEY.resource });

    // Assess
    expect(answer).toMatchObject({ status: 'REAUTH_REQUIRED', reason: 'deadline' });
    expect(answer).not.toHaveProperty('lastRotatedAt');
  });

  it('throws TokenNotFoundError for an unknown user, and ValidationError for a malformed event', async () => {
    // Prepare
    const { handler } = setup(null);

    // Act
    const unknown = await caught(handler({ userId: 'nobody' }));
    const malformed = await caught(handler({ resource: 'x' }));

    // Assess
    expect(unknown).toBeInstanceOf(TokenNotFoundError);
    expect(malformed).toBeInstanceOf(ValidationError);
  });
});
