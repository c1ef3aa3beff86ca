import { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import type { LogFields, Logger } from '../../core/ports';

/** Structured JSON logs through Powertools. Only `LogFields` (plain values) reach it: no token can. */
export class JsonLogger implements Logger {
  private readonly logger: PowertoolsLogger;

  constructor(options: { serviceName?: string; logLevel?: string } = {}) {
    this.logger = new PowertoolsLogger({
      serviceName: options.serviceName ?? 'token-keeper',
      logLevel: (options.logLevel ?? 'INFO').toUpperCase() as 'INFO',
    });
  }

  debug(message: string, fields: LogFields = {}): void {
    this.logger.debug(message, { ...fields });
  }
  info(message: string, fields: LogFields = {}): void {
    this.logger.info(message, { ...fields });
  }
  warn(message: string, fields: LogFields = {}): void {
    this.logger.warn(message, { ...fields });
  }
  error(message: string, fields: LogFields = {}): void {
    this.logger.error(message, { ...fields });
  }
}

/** One captured log line. */
export interface LogLine {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly message: string;
  readonly fields: LogFields;
}

/** Keeps log lines in memory (tests, simulation); optionally forwards them. */
export class MemoryLogger implements Logger {
  readonly lines: LogLine[] = [];

  constructor(private readonly forward?: Logger) {}

  debug(message: string, fields: LogFields = {}): void {
    this.record('debug', message, fields);
  }
  info(message: string, fields: LogFields = {}): void {
    this.record('info', message, fields);
  }
  warn(message: string, fields: LogFields = {}): void {
    this.record('warn', message, fields);
  }
  error(message: string, fields: LogFields = {}): void {
    this.record('error', message, fields);
  }

  private record(level: LogLine['level'], message: string, fields: LogFields): void {
    this.lines.push({ level, message, fields });
    this.forward?.[level](message, fields);
  }
}
