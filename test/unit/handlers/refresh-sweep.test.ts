import { describe, expect, it, vi } from 'vitest';
import type { Runtime } from '../../../functions/adapters/runtime';
import type { Budget } from '../../../functions/core/rotation';
import type { SweepSummary } from '../../../functions/core/sweep';
import {
  CONTINUATION_SOURCE,
  chainDepth,
  nextLink,
  sweepWithContinuation,
} from '../../../functions/handlers/refresh-sweep';
import { MemoryLogger } from '../../support/observability';

const BUDGET: Budget = { remainingMs: () => 300_000 };
const SCHEDULED = { source: 'aws.events', 'detail-type': 'Scheduled Event' };

function summary(backlog: number): SweepSummary {
  return {
    due: 10 + backlog,
    rotated: 10,
    failed: 0,
    reauthRequired: 0,
    skipped: 0,
    backlog,
    rescheduled: 0,
  };
}

/** The body uses only `sweep`, `config` and `logger` of the runtime. */
function fakeRuntime(options: { backlog: number; chainMax: number; functionName?: string }) {
  const logger = new MemoryLogger();
  const runtime = {
    sweep: { run: vi.fn(async () => summary(options.backlog)) },
    config: { sweepChainMax: options.chainMax, functionName: options.functionName ?? 'tk-RefreshSweep' },
    logger,
  };
  return { runtime: runtime as unknown as Runtime, logger };
}

describe('Handler body: refreshSweep with continuation', () => {
  it('starts the next sweep at once when one ends with a backlog, as link 1 of a chain', async () => {
    // Prepare
    const invoke = vi.fn(async () => {});
    const { runtime } = fakeRuntime({ backlog: 40, chainMax: 12 });

    // Act
    const result = await sweepWithContinuation(invoke)(runtime, SCHEDULED, BUDGET);

    // Assess
    expect(result.backlog).toBe(40);
    expect(invoke).toHaveBeenCalledTimes(1);
    expect(invoke).toHaveBeenCalledWith('tk-RefreshSweep', { source: CONTINUATION_SOURCE, continuation: 1 });
  });

  it('continues a continuation with the next depth, and stops at the chain cap', async () => {
    // Prepare
    const invoke = vi.fn(async () => {});
    const { runtime } = fakeRuntime({ backlog: 5, chainMax: 3 });
    const body = sweepWithContinuation(invoke);

    // Act
    await body(runtime, { source: CONTINUATION_SOURCE, continuation: 2 }, BUDGET);
    await body(runtime, { source: CONTINUATION_SOURCE, continuation: 3 }, BUDGET);

    // Assess: link 2 starts link 3; link 3 is the last (the schedule takes over).
    expect(invoke).toHaveBeenCalledTimes(1);
    expect(invoke).toHaveBeenCalledWith('tk-RefreshSweep', { source: CONTINUATION_SOURCE, continuation: 3 });
  });

  it('waits for the schedule when no backlog is left', async () => {
    // Prepare
    const invoke = vi.fn(async () => {});
    const { runtime } = fakeRuntime({ backlog: 0, chainMax: 12 });

    // Act
    await sweepWithContinuation(invoke)(runtime, { source: CONTINUATION_SOURCE, continuation: 4 }, BUDGET);

    // Assess
    expect(invoke).not.toHaveBeenCalled();
  });

  it('never continues when SWEEP_CHAIN_MAX is 0 (the default) or the function name is unknown', async () => {
    // Prepare
    const invoke = vi.fn(async () => {});
    const off = fakeRuntime({ backlog: 40, chainMax: 0 });
    const nameless = fakeRuntime({ backlog: 40, chainMax: 12, functionName: '' });

    // Act
    await sweepWithContinuation(invoke)(off.runtime, SCHEDULED, BUDGET);
    await sweepWithContinuation(invoke)(nameless.runtime, SCHEDULED, BUDGET);

    // Assess
    expect(invoke).not.toHaveBeenCalled();
  });

  it('returns the summary and logs a warning (error name only) when the invoke fails', async () => {
    // Prepare
    const failure = Object.assign(new Error('TooManyRequestsException: rt-CANARY'), {
      name: 'TooManyRequestsException',
    });
    const invoke = vi.fn(async () => {
      throw failure;
    });
    const { runtime, logger } = fakeRuntime({ backlog: 40, chainMax: 12 });

    // Act
    const result = await sweepWithContinuation(invoke)(runtime, SCHEDULED, BUDGET);

    // Assess
    expect(result.backlog).toBe(40);
    const warning = logger.lines.find((line) => line.level === 'warn');
    expect(warning?.fields).toEqual({ error: 'TooManyRequestsException' });
    expect(JSON.stringify(logger.lines)).not.toContain('CANARY');
  });
});

describe('Function: chainDepth', () => {
  it.each([
    [{ source: CONTINUATION_SOURCE, continuation: 5 }, 5],
    [SCHEDULED, 0],
    [{ continuation: 5 }, 0],
    [{ source: CONTINUATION_SOURCE, continuation: 0 }, 0],
    [{ source: CONTINUATION_SOURCE, continuation: -2 }, 0],
    [{ source: CONTINUATION_SOURCE, continuation: 1.5 }, 0],
    [{ source: CONTINUATION_SOURCE, continuation: '3' }, 0],
    [null, 0],
    ['x', 0],
  ])('reads %j as depth %i', (event, depth) => {
    expect(chainDepth(event)).toBe(depth);
  });
});

describe('Function: nextLink', () => {
  it('is the next depth while a backlog remains and the chain is below its cap', () => {
    expect(nextLink(0, summary(1), 12)).toBe(1);
    expect(nextLink(11, summary(1), 12)).toBe(12);
    expect(nextLink(12, summary(1), 12)).toBeUndefined();
    expect(nextLink(0, summary(0), 12)).toBeUndefined();
  });
});
