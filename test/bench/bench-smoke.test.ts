import { describe, expect, inject, it } from 'vitest';
import { runBench } from '../../bench/bench';
import { STACK_BUNDLING } from '../../bench/bundle';
import { FUNCTIONS } from '../../bench/cold-start';
import { COUNTED } from '../../bench/instrument';
import { SMOKE } from '../../bench/profiles';
import { renderSweepChart } from '../../bench/sweep-chart';
import { xmlProblems } from '../support/well-formed-xml';

describe('Function: runBench (smoke profile)', () => {
  it('writes every section of the report, and the call counts equal their minimum', {
    timeout: 180_000,
  }, async () => {
    // Act
    const { results, markdown } = await runBench({
      dynamoEndpoint: inject('dynamoEndpoint'),
      profile: SMOKE,
    });

    // Assess: the report is there, section by section.
    for (const heading of [
      '## Machine',
      '## Headline figures',
      '## 1. Calls per operation',
      '## 2. getAccessToken latency',
      '## 3. Sweep throughput',
      '## 4. Cold start and size',
      '## 5. Cost per 1,000,000 users per month',
      '## 6. Capacity of one deployment',
    ]) {
      expect(markdown).toContain(heading);
    }

    // Assess: calls per operation are deterministic and at their minimum.
    const ratios = Object.fromEntries(results.calls.operations.map((o) => [o.operation, o.ratio]));
    expect(Object.keys(ratios)).toHaveLength(4);
    for (const ratio of Object.values(ratios)) expect(ratio).toBeCloseTo(1, 9);
    const warm = results.calls.operations.find((o) => o.operation.startsWith('getAccessToken, valid'));
    expect(warm?.perOp).toEqual({
      dynamoReads: 1,
      dynamoWrites: 0,
      dynamoQueries: 0,
      idp: 0,
      kms: 0,
      secretsManager: 0,
      total: 1,
    });
    const refresh = results.calls.operations.find((o) => o.operation.startsWith('getAccessToken, refresh'));
    expect(refresh?.perOp).toMatchObject({
      dynamoReads: 1,
      dynamoWrites: 2,
      idp: 1,
      kms: 0,
      secretsManager: 0,
    });
    expect(results.calls.sweep).toMatchObject({ indexEntriesPerDue: 1, recordsReadPerDue: 1, scans: 0 });
    expect(results.calls.sweep.queryRequests).toBe(results.calls.sweep.minimumQueryRequests);
    expect(results.calls.sweep.summary.rotated).toBe(results.calls.sweep.due);
    expect(results.calls.burst.idpRefreshes).toBe(1);
    expect(results.calls.reuseDetections).toBe(0);

    // Assess: the sweep case rotated each due record once, with one read, lease and commit each.
    const [sweep] = results.sweep.cases;
    expect(sweep?.problems).toEqual([]);
    const records = SMOKE.sweep.dueRecords;
    expect(sweep?.due).toBe(records);
    expect(sweep?.rotated).toBe(records);
    expect(sweep?.calls[COUNTED.idpRefresh]).toBe(records);
    // Besides each record: the rejection breaker's state and the sweep state, read once per sweep;
    // the sweep state written when the settings are new and the due shards registered, once each.
    expect(sweep?.calls[COUNTED.dynamo('GetItem')]).toBe(records + 2);
    expect(sweep?.calls[COUNTED.dynamo('UpdateItem')]).toBeGreaterThanOrEqual(records);
    // (at most a handful per sweep invocation, whatever the number of records)
    expect(sweep?.calls[COUNTED.dynamo('UpdateItem')]).toBeLessThanOrEqual(records + 10);
    expect(sweep?.calls[COUNTED.dynamo('PutItem')]).toBe(records);
    expect(sweep?.calls[COUNTED.queryItems]).toBe(records);
    expect(sweep?.calls[COUNTED.dynamo('Scan')]).toBeUndefined();

    // Assess: the other sections produced figures (timings are not asserted).
    expect(results.latency.handler.p50).toBeGreaterThan(0);
    expect(results.latency.getItem.p50).toBeGreaterThan(0);
    expect(results.coldStart.sizes[0]?.bundleBytes).toBeGreaterThan(0);
    expect(results.coldStart.timings[0]?.failures).toEqual([]);
    expect(results.cost.scenarios.map((s) => s.asksPerDay)).toEqual([0, 1, 10, 100]);
    expect(results.cost.scenarios.every((s) => s.total > 0)).toBe(true);
    // The bare-client baseline ran beside the sweep, and the capacity model has its simulation.
    expect(sweep?.baselineCpuMsPerRotation).toBeGreaterThan(0);
    expect(results.capacity.rows).toHaveLength(5);
    for (const row of results.capacity.rows) {
      expect(row.limitedBy).toMatch(
        /^(IdP rate|sweep concurrency \/ latency|sweep CPU at \d+ MB|DynamoDB write capacity)$/,
      );
    }
    expect(results.capacity.simulation.measuredPerDay).toBeGreaterThan(0);
    expect(xmlProblems(renderSweepChart(results.sweep.cases))).toEqual([]);
  });
});

describe('Constant: STACK_BUNDLING', () => {
  it('bundles the way the stack bundles its functions, so the sizes and cold starts are the deployed ones', async () => {
    // Prepare
    const { FUNCTION_ENTRIES, nodeFunctionDefaults } = await import('../../lib/function-defaults');
    const { FUNCTION_BUNDLES } = await import('../../lib/token-keeper');

    // Act
    const {
      tsconfig: _tsconfig,
      forceDockerBundling: _docker,
      ...bundling
    } = nodeFunctionDefaults().bundling ?? {};

    // Assess
    expect(bundling).toEqual({ ...STACK_BUNDLING, externalModules: [...STACK_BUNDLING.externalModules] });
    for (const [name, bundle] of Object.entries(FUNCTION_BUNDLES)) {
      expect(FUNCTION_ENTRIES[bundle]).toBe(FUNCTIONS[name as keyof typeof FUNCTIONS]?.entry ?? '(missing)');
    }
  });
});
