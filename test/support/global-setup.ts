import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startDynamoDbLocal } from '../../local/dynamodb-local';
import { auditRun, summary } from '../security/support/at-rest-audit';
import { localDynamoClientAt } from './dynamo';

declare module 'vitest' {
  export interface ProvidedContext {
    dynamoEndpoint: string;
    /** Folder (private to this run) where each test file leaves its canaries for the at-rest audit. */
    securityRunDir: string;
  }
}

/**
 * Starts one DynamoDB Local for the whole run; each test file makes its own table. At the end,
 * before it stops, every item of every table is audited for plaintext token material (JWTs and
 * the canaries that test files registered, see leak-guard.ts); a finding fails the run.
 */
export default async function setup(project: TestProject) {
  const ddb = await startDynamoDbLocal({ inMemory: true });
  const securityRunDir = mkdtempSync(join(tmpdir(), 'token-keeper-security-'));
  project.provide('dynamoEndpoint', ddb.endpoint);
  project.provide('securityRunDir', securityRunDir);
  return async () => {
    const client = localDynamoClientAt(ddb.endpoint);
    try {
      const report = await auditRun(client, securityRunDir);
      process.stdout.write(`\n${summary(report)}\n`);
      if (report.findings.length > 0) {
        // Vitest only logs an error thrown by a global teardown ("error during close") and keeps
        // the exit code: set it, so a finding fails `npm test`.
        process.exitCode = 1;
        throw new Error(
          `plaintext token material at rest (values not shown):\n${report.findings.map((f) => `  - ${f}`).join('\n')}`,
        );
      }
    } finally {
      client.destroy();
      rmSync(securityRunDir, { recursive: true, force: true });
      await ddb.stop();
    }
  };
}
