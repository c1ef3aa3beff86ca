import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EventBridgePublisher } from '../../../functions/adapters/observability/events';
import { JsonLogger } from '../../../functions/adapters/observability/logger';
import { EmfMetrics } from '../../../functions/adapters/observability/metrics';
import type { AppEvent } from '../../../functions/core/ports';
import { EVENT_SOURCE } from '../../../functions/shared-facts';
import { caught } from '../../support/caught';
import { MemoryLogger, RecordingEventPublisher } from '../../support/observability';

/** 2026-01-01T00:00:00Z in epoch seconds. */
const T0 = Date.UTC(2026, 0, 1) / 1000;
const BUS = 'arn:aws:events:eu-west-1:111122223333:event-bus/apps';

/** Settings that would silence Powertools, route it to the global console, or override a log level. */
const POWERTOOLS_ENV = [
  'POWERTOOLS_METRICS_DISABLED',
  'POWERTOOLS_DEV',
  'POWERTOOLS_METRICS_NAMESPACE',
  'POWERTOOLS_SERVICE_NAME',
  'POWERTOOLS_LOG_LEVEL',
  'LOG_LEVEL',
  'AWS_LAMBDA_LOG_LEVEL',
] as const;

/** Captures what is written to stdout and stderr (Powertools writes through a Console on both). */
function captureOutput() {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const sink = (into: string[]) => (chunk: string | Uint8Array) => {
    into.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  };
  vi.spyOn(process.stdout, 'write').mockImplementation(sink(stdout) as typeof process.stdout.write);
  vi.spyOn(process.stderr, 'write').mockImplementation(sink(stderr) as typeof process.stderr.write);
  const linesOf = (chunks: string[]) =>
    chunks
      .join('')
      .split('\n')
      .filter((line) => line.trim() !== '');
  return {
    stdoutLines: () => linesOf(stdout),
    stderrLines: () => linesOf(stderr),
    /** Every stdout line parsed as JSON (fails the test if one is not JSON). */
    records: () => linesOf(stdout).map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

/** The shape of one EMF record, as far as the tests look at it. */
interface EmfRecord {
  _aws: {
    Timestamp: number;
    CloudWatchMetrics: {
      Namespace: string;
      Dimensions: string[][];
      Metrics: { Name: string; Unit: string }[];
    }[];
  };
  [key: string]: unknown;
}

const reauthRequired: AppEvent = {
  type: 'Reauth Required',
  key: { userId: 'alice', resource: 'default' },
  reason: 'refresh_rejected',
  at: T0,
};

describe('Class: EmfMetrics', () => {
  let output: ReturnType<typeof captureOutput>;

  beforeEach(() => {
    for (const name of POWERTOOLS_ENV) vi.stubEnv(name, undefined);
    output = captureOutput();
  });
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  const emf = () => output.records() as EmfRecord[];

  describe('Method: count', () => {
    it('buffers undimensioned metrics until flush()', () => {
      // Prepare
      const metrics = new EmfMetrics();

      // Act
      metrics.count('RotationSucceeded');

      // Assess
      expect(output.stdoutLines()).toEqual([]);
    });

    it('buffers a metric with dimensions too: nothing is written before flush()', () => {
      // Prepare
      const metrics = new EmfMetrics();

      // Act
      metrics.count('AccessTokenServed', 1, { source: 'cached' });

      // Assess
      expect(output.stdoutLines()).toEqual([]);
    });

    it('writes a breakdown apart when a second value of its dimension comes in the same invocation', () => {
      // Prepare
      const metrics = new EmfMetrics();
      metrics.count('RotationSucceeded');
      metrics.count('RotationFailed', 1, { reason: 'idp_timeout' });
      metrics.count('RotationFailed', 2, { reason: 'idp_rejected' });

      // Act
      metrics.flush();

      // Assess: the totals in one document, each reason in its own (one `reason` key per document).
      const records = emf();
      expect(records).toHaveLength(3);
      expect(records[0]).toMatchObject({
        _aws: {
          CloudWatchMetrics: [
            {
              Namespace: 'TokenKeeper',
              Dimensions: [['service']],
              Metrics: [
                { Name: 'RotationSucceeded', Unit: 'Count' },
                { Name: 'RotationFailed', Unit: 'Count' },
              ],
            },
          ],
        },
        service: 'token-keeper',
        RotationSucceeded: 1,
        RotationFailed: [1, 2],
      });
      expect(records[0]).not.toHaveProperty('reason');
      expect(records[1]).toMatchObject({
        _aws: {
          CloudWatchMetrics: [
            {
              Namespace: 'TokenKeeper',
              Dimensions: [['service', 'reason']],
              Metrics: [{ Name: 'RotationFailed', Unit: 'Count' }],
            },
          ],
        },
        service: 'token-keeper',
        reason: 'idp_timeout',
        RotationFailed: 1,
      });
      expect(records[2]).toMatchObject({ reason: 'idp_rejected', RotationFailed: 2 });
      // A plain metric is not dragged into a breakdown's record.
      for (const record of records.slice(1)) expect(record).not.toHaveProperty('RotationSucceeded');
    });

    it('treats an empty dimensions object as no dimensions (buffered)', () => {
      // Prepare
      const metrics = new EmfMetrics();

      // Act
      metrics.count('SweepDue', 4, {});

      // Assess
      expect(output.stdoutLines()).toEqual([]);
      metrics.flush();
      expect(emf()[0]).toMatchObject({ SweepDue: 4 });
    });
  });

  describe('Method: flush', () => {
    it('writes one EMF record with the namespace, the service dimension, names, units and values', () => {
      // Prepare
      const metrics = new EmfMetrics();
      metrics.count('RotationSucceeded');
      metrics.count('RotationSucceeded', 2);
      metrics.count('SweepBacklog', 5);
      metrics.milliseconds('IdpLatency', 12.5);

      // Act
      metrics.flush();

      // Assess
      const records = emf();
      expect(records).toHaveLength(1);
      const [record] = records;
      expect(typeof record?._aws.Timestamp).toBe('number');
      expect(record?._aws.CloudWatchMetrics).toEqual([
        {
          Namespace: 'TokenKeeper',
          Dimensions: [['service']],
          Metrics: [
            { Name: 'RotationSucceeded', Unit: 'Count' },
            { Name: 'SweepBacklog', Unit: 'Count' },
            { Name: 'IdpLatency', Unit: 'Milliseconds' },
          ],
        },
      ]);
      expect(record).toMatchObject({
        service: 'token-keeper',
        RotationSucceeded: [1, 2],
        SweepBacklog: 5,
        IdpLatency: 12.5,
      });
    });

    it('uses the namespace and service name it is given', () => {
      // Prepare
      const metrics = new EmfMetrics({ namespace: 'Acme/Tokens', serviceName: 'acme-keeper' });
      metrics.count('TokensStored');
      metrics.count('ReauthRequired', 1, { reason: 'deadline' });

      // Act
      metrics.flush();

      // Assess
      const records = emf();
      expect(records).toHaveLength(1);
      for (const record of records) {
        for (const directive of record._aws.CloudWatchMetrics)
          expect(directive.Namespace).toBe('Acme/Tokens');
        expect(record.service).toBe('acme-keeper');
      }
    });

    it('writes nothing, not even a warning, when nothing is stored', () => {
      // Prepare
      const metrics = new EmfMetrics();

      // Act
      metrics.flush();

      // Assess
      expect(output.stdoutLines()).toEqual([]);
      expect(output.stderrLines()).toEqual([]);
    });

    it('writes a breakdown and its plain total (what the alarms watch) as ONE document with both dimension sets', () => {
      // Prepare: what a warm getAccessToken records.
      const metrics = new EmfMetrics();
      metrics.count('AccessTokenServed', 1, { source: 'cached' });

      // Act
      metrics.flush();

      // Assess
      expect(output.stdoutLines()).toHaveLength(1);
      const [record] = emf();
      expect(record?._aws.CloudWatchMetrics).toEqual([
        {
          Namespace: 'TokenKeeper',
          Dimensions: [['service'], ['service', 'source']],
          Metrics: [{ Name: 'AccessTokenServed', Unit: 'Count' }],
        },
      ]);
      expect(record).toMatchObject({ service: 'token-keeper', source: 'cached', AccessTokenServed: 1 });
      expect(output.stderrLines()).toEqual([]);
    });

    it('shares one document between totals and a breakdown in separate directives when their names differ', () => {
      // Prepare: a sweep with one failure reason.
      const metrics = new EmfMetrics();
      metrics.count('SweepDue', 3);
      metrics.count('RotationSucceeded', 2);
      metrics.count('RotationFailed', 1, { reason: 'rejected' });
      metrics.milliseconds('IdpLatency', 40);

      // Act
      metrics.flush();

      // Assess
      const records = emf();
      expect(records).toHaveLength(1);
      expect(records[0]?._aws.CloudWatchMetrics).toEqual([
        {
          Namespace: 'TokenKeeper',
          Dimensions: [['service']],
          Metrics: [
            { Name: 'SweepDue', Unit: 'Count' },
            { Name: 'RotationSucceeded', Unit: 'Count' },
            { Name: 'IdpLatency', Unit: 'Milliseconds' },
          ],
        },
        {
          Namespace: 'TokenKeeper',
          Dimensions: [['service'], ['service', 'reason']],
          Metrics: [{ Name: 'RotationFailed', Unit: 'Count' }],
        },
      ]);
      expect(records[0]).toMatchObject({
        reason: 'rejected',
        RotationFailed: 1,
        SweepDue: 3,
        IdpLatency: 40,
      });
    });

    it('keeps a breakdown apart when the same metric also has values without it', () => {
      // Prepare: the total (2) is not the breakdown's value (1), so they cannot share a key.
      const metrics = new EmfMetrics();
      metrics.count('ReauthRequired');
      metrics.count('ReauthRequired', 1, { reason: 'deadline' });

      // Act
      metrics.flush();

      // Assess
      const records = emf();
      expect(records).toHaveLength(2);
      expect(records[0]).toMatchObject({ ReauthRequired: [1, 1] });
      expect(records[0]).not.toHaveProperty('reason');
      expect(records[1]).toMatchObject({ reason: 'deadline', ReauthRequired: 1 });
    });

    it('writes the buffer once: a second flush writes nothing', () => {
      // Prepare
      const metrics = new EmfMetrics();
      metrics.count('AccessTokenServed');

      // Act
      metrics.flush();
      metrics.flush();

      // Assess
      expect(output.stdoutLines()).toHaveLength(1);
      expect(output.stderrLines()).toEqual([]);
    });

    it('writes a full buffer of 100 values of one metric on its own, and no empty document after it', () => {
      // Prepare: a document may carry at most 100 values of a metric.
      const metrics = new EmfMetrics();
      for (let i = 0; i < 100; i++) metrics.count('SweepDue');

      // Act
      metrics.flush();

      // Assess
      expect(emf()).toHaveLength(1);
      expect(output.stderrLines()).toEqual([]);
    });

    it('writes nothing when disabled (POWERTOOLS_METRICS_DISABLED=true in the configuration)', () => {
      // Prepare
      const metrics = new EmfMetrics({ disabled: true });
      metrics.count('RotationSucceeded');

      // Act
      metrics.flush();

      // Assess
      expect(output.stdoutLines()).toEqual([]);
    });
  });
});

describe('Class: JsonLogger', () => {
  let output: ReturnType<typeof captureOutput>;

  beforeEach(() => {
    for (const name of POWERTOOLS_ENV) vi.stubEnv(name, undefined);
    output = captureOutput();
  });
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  const allLines = () =>
    [...output.stdoutLines(), ...output.stderrLines()].map(
      (line) => JSON.parse(line) as Record<string, unknown>,
    );

  describe('Method: info', () => {
    it('writes one JSON line with level, message, service and the fields as top-level keys', () => {
      // Prepare
      const logger = new JsonLogger();

      // Act
      logger.info('rotated', { userId: 'alice', version: 3, cached: false });

      // Assess
      const lines = output.stdoutLines();
      expect(lines).toHaveLength(1);
      expect(JSON.parse(lines[0]!)).toMatchObject({
        level: 'INFO',
        message: 'rotated',
        service: 'token-keeper',
        userId: 'alice',
        version: 3,
        cached: false,
      });
    });

    it('uses the service name it is given', () => {
      // Prepare
      const logger = new JsonLogger({ serviceName: 'acme-keeper' });

      // Act
      logger.info('hello');

      // Assess
      expect(allLines()).toEqual([expect.objectContaining({ service: 'acme-keeper', message: 'hello' })]);
    });
  });

  describe('Method: warn and error', () => {
    it('write JSON lines with their level', () => {
      // Prepare
      const logger = new JsonLogger();

      // Act
      logger.warn('slow', { ms: 900 });
      logger.error('unexpected error', { error: 'StoreUnavailableError' });

      // Assess
      expect(allLines()).toEqual([
        expect.objectContaining({ level: 'WARN', message: 'slow', ms: 900 }),
        expect.objectContaining({
          level: 'ERROR',
          message: 'unexpected error',
          error: 'StoreUnavailableError',
        }),
      ]);
    });
  });

  describe('Option: logLevel', () => {
    it('drops debug lines at the default level INFO', () => {
      // Prepare
      const logger = new JsonLogger();

      // Act
      logger.debug('details', { step: 1 });
      logger.info('kept');

      // Assess
      expect(allLines().map((line) => line.message)).toEqual(['kept']);
    });

    it('writes debug lines when logLevel is debug (in any case)', () => {
      // Prepare
      const logger = new JsonLogger({ logLevel: 'debug' });

      // Act
      logger.debug('details', { step: 1 });

      // Assess
      expect(allLines()).toEqual([expect.objectContaining({ level: 'DEBUG', message: 'details', step: 1 })]);
    });

    it('drops info and debug lines when logLevel is WARN', () => {
      // Prepare
      const logger = new JsonLogger({ logLevel: 'WARN' });

      // Act
      logger.debug('details');
      logger.info('routine');
      logger.warn('odd');
      logger.error('bad');

      // Assess
      expect(allLines().map((line) => line.message)).toEqual(['odd', 'bad']);
    });
  });
});

describe('Class: EventBridgePublisher', () => {
  const client = new EventBridgeClient({
    region: 'eu-west-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
  });
  const eventBridge = mockClient(client);

  beforeEach(() => {
    eventBridge.reset();
  });

  const sentEntries = () =>
    eventBridge.commandCalls(PutEventsCommand).map((call) => call.args[0].input.Entries);

  describe('Method: publish', () => {
    it('puts one entry on the bus with source token-keeper and the event type as detail type', async () => {
      // Prepare
      eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e-1' }] });
      const publisher = new EventBridgePublisher(BUS, client);

      // Act
      await publisher.publish(reauthRequired);

      // Assess
      const entries = sentEntries();
      expect(entries).toHaveLength(1);
      expect(entries[0]).toHaveLength(1);
      expect(entries[0]?.[0]).toMatchObject({
        EventBusName: BUS,
        Source: EVENT_SOURCE,
        DetailType: 'Reauth Required',
      });
      expect(EVENT_SOURCE).toBe('token-keeper');
    });

    it('sends user id, resource, reason and time as detail, and nothing else', async () => {
      // Prepare
      eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0 });
      const publisher = new EventBridgePublisher(BUS, client);

      // Act
      await publisher.publish(reauthRequired);

      // Assess
      const detail = JSON.parse(sentEntries()[0]?.[0]?.Detail ?? '{}') as unknown;
      expect(detail).toStrictEqual({
        userId: 'alice',
        resource: 'default',
        reason: 'refresh_rejected',
        at: T0,
      });
    });

    it.each<[string, AppEvent, Record<string, unknown>]>([
      [
        'Reauth Soon',
        {
          type: 'Reauth Soon',
          key: { userId: 'bob', resource: 'r1' },
          rotationDeadline: T0 + 86_400,
          at: T0,
        },
        { userId: 'bob', resource: 'r1', rotationDeadline: T0 + 86_400, at: T0 },
      ],
      [
        'Rotation Recovered',
        { type: 'Rotation Recovered', key: { userId: 'bob', resource: 'r1' }, failures: 3, at: T0 },
        { userId: 'bob', resource: 'r1', failures: 3, at: T0 },
      ],
      [
        'Tokens Expired',
        { type: 'Tokens Expired', key: { userId: 'bob', resource: 'r1' }, at: T0 },
        { userId: 'bob', resource: 'r1', at: T0 },
      ],
      [
        'Disconnected',
        { type: 'Disconnected', key: { userId: 'bob', resource: 'r1' }, idpLogout: 'ok', at: T0 },
        { userId: 'bob', resource: 'r1', idpLogout: 'ok', at: T0 },
      ],
    ])('flattens the key of a %s event into the detail', async (type, event, detail) => {
      // Prepare
      eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0 });

      // Act
      await new EventBridgePublisher(BUS, client).publish(event);

      // Assess
      const entry = sentEntries()[0]?.[0];
      expect(entry?.DetailType).toBe(type);
      expect(JSON.parse(entry?.Detail ?? '{}')).toStrictEqual(detail);
    });

    it('throws when EventBridge reports a failed entry', async () => {
      // Prepare
      eventBridge.on(PutEventsCommand).resolves({
        FailedEntryCount: 1,
        Entries: [{ ErrorCode: 'InternalFailure', ErrorMessage: 'oops' }],
      });
      const publisher = new EventBridgePublisher(BUS, client);

      // Act
      const error = await caught(publisher.publish(reauthRequired));

      // Assess
      expect(error.message).toMatch(/Reauth Required/);
    });

    it('passes on a rejection of the SDK call', async () => {
      // Prepare
      eventBridge.on(PutEventsCommand).rejects(new Error('network down'));
      const publisher = new EventBridgePublisher(BUS, client);

      // Act
      const error = await caught(publisher.publish(reauthRequired));

      // Assess
      expect(error.message).toBe('network down');
    });
  });
});

describe('Class: RecordingEventPublisher', () => {
  describe('Method: publish', () => {
    it('keeps the event and logs its type, user id, resource and reason', async () => {
      // Prepare
      const logger = new MemoryLogger();
      const publisher = new RecordingEventPublisher(logger);

      // Act
      await publisher.publish(reauthRequired);

      // Assess
      expect(publisher.published).toEqual([reauthRequired]);
      expect(logger.lines).toEqual([
        {
          level: 'info',
          message: 'event: Reauth Required',
          fields: { userId: 'alice', resource: 'default', reason: 'refresh_rejected' },
        },
      ]);
    });

    it('keeps only the last 10,000 events', async () => {
      // Prepare
      const publisher = new RecordingEventPublisher(new MemoryLogger());
      const event = (i: number): AppEvent => ({
        type: 'Tokens Expired',
        key: { userId: `user-${i}`, resource: 'default' },
        at: T0 + i,
      });

      // Act
      for (let i = 0; i < 10_005; i++) await publisher.publish(event(i));

      // Assess
      expect(publisher.published).toHaveLength(10_000);
      expect(publisher.published[0]).toEqual(event(5));
      expect(publisher.published.at(-1)).toEqual(event(10_004));
    });
  });
});
