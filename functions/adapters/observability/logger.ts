import { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import type { Context } from 'aws-lambda';
import type { LogFields, Logger } from '../../core/ports';

/** A logger told which invocation it logs for: every line then names it. */
export interface InvocationLogger {
  /**
   * From here on, every line carries the Lambda context (request id, function, cold start) when
   * there is one, and the caller's correlation id when it sent one.
   */
  startInvocation(context: Context | undefined, correlationId: string | undefined): void;
  /** Forgets what belonged to the invocation (its correlation id). */
  endInvocation(): void;
}

/** Whether `logger` can be told about invocations. */
export function isInvocationLogger(logger: Logger): logger is Logger & InvocationLogger {
  return typeof (logger as Partial<InvocationLogger>).startInvocation === 'function';
}

/** Structured JSON logs through Powertools. Only `LogFields` (plain values) reach it: no token can. */
export class JsonLogger implements Logger, InvocationLogger {
  private readonly logger: PowertoolsLogger;

  constructor(options: { serviceName?: string; logLevel?: string } = {}) {
    this.logger = new PowertoolsLogger({
      serviceName: options.serviceName ?? 'token-keeper',
      logLevel: (options.logLevel ?? 'INFO').toUpperCase() as 'INFO',
    });
  }

  startInvocation(context: Context | undefined, correlationId: string | undefined): void {
    if (context) this.logger.addContext(context);
    if (correlationId !== undefined) this.logger.setCorrelationId(correlationId);
  }

  endInvocation(): void {
    this.logger.resetKeys();
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
