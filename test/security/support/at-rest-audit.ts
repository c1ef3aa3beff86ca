import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type AttributeValue,
  type DynamoDBClient,
  ListTablesCommand,
  ScanCommand,
} from '@aws-sdk/client-dynamodb';
import { CanaryIndex } from './canary-index';

/**
 * The at-rest audit: reads every item of every table of a DynamoDB (the run's shared DynamoDB
 * Local, after all test files) and looks for plaintext token material. What it looks for:
 * - anything shaped like a JWT (`eyJ<header>.eyJ<payload>.<signature>`, the header decoding to a
 *   JSON object): access and ID tokens are JWTs, so a plaintext one cannot hide;
 * - every canary the test files registered (token values IdPs handed out during the run);
 * - on token-keeper items (`pk` = `u#...`), a `sealed` attribute that is a JSON object in the
 *   clear instead of an envelope (what the store seals is the JSON of the tokens).
 * A finding names table, item key and attribute, never the value.
 */

/** What the audit found. */
export interface AuditReport {
  readonly tables: number;
  readonly items: number;
  readonly canaries: number;
  /** Test files that contributed canaries or ran harness checks. */
  readonly files: number;
  /** Harness checks (close()) run in all files. */
  readonly harnessChecks: number;
  /** Texts searched by the in-file leak checks, all files. */
  readonly placesSearched: number;
  readonly findings: readonly string[];
}

/** A canary from the run registry. */
interface RegisteredCanary {
  readonly value: string;
  readonly origin: string;
}

interface RegistryEntry {
  readonly canaries: readonly RegisteredCanary[];
  readonly stats: { readonly harnessChecks: number; readonly placesSearched: number };
}

const JWT = /eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/g;
const ENVELOPE = /^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/;

/** Reads the canary files the test files wrote into `dir` (see leak-guard.ts). */
export function readRegistry(dir: string): { canaries: RegisteredCanary[]; entries: RegistryEntry[] } {
  const entries: RegistryEntry[] = [];
  for (const name of readdirSync(dir)) {
    if (!name.startsWith('canaries-') || !name.endsWith('.json')) continue;
    entries.push(JSON.parse(readFileSync(join(dir, name), 'utf8')) as RegistryEntry);
  }
  const unique = new Map<string, RegisteredCanary>();
  for (const entry of entries) for (const canary of entry.canaries) unique.set(canary.value, canary);
  return { canaries: [...unique.values()], entries };
}

function isJsonObject(text: string): boolean {
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed);
  } catch {
    return false;
  }
}

/** True when `part` is a JWT's first part: base64url of a JSON object. */
function isJwtHeader(part: string): boolean {
  return isJsonObject(Buffer.from(part, 'base64url').toString('utf8'));
}

/** The JWT-looking strings in a text. */
export function jwtsIn(text: string): number {
  let count = 0;
  for (const match of text.matchAll(JWT)) {
    if (isJwtHeader(match[0].split('.')[0] ?? '')) count += 1;
  }
  return count;
}

/** Every string of an item at its attribute path (binary attributes decoded as UTF-8). */
function stringsOf(path: string, value: AttributeValue, out: { path: string; text: string }[]): void {
  if (value.S !== undefined) out.push({ path, text: value.S });
  else if (value.B !== undefined) out.push({ path, text: Buffer.from(value.B).toString('utf8') });
  else if (value.SS) for (const [i, s] of value.SS.entries()) out.push({ path: `${path}[${i}]`, text: s });
  else if (value.BS)
    for (const [i, b] of value.BS.entries())
      out.push({ path: `${path}[${i}]`, text: Buffer.from(b).toString('utf8') });
  else if (value.L) for (const [i, v] of value.L.entries()) stringsOf(`${path}[${i}]`, v, out);
  else if (value.M) for (const [k, v] of Object.entries(value.M)) stringsOf(`${path}.${k}`, v, out);
}

/** A short, safe name of an item: its key attributes, JSON-escaped and truncated. */
function itemName(table: string, item: Record<string, AttributeValue>): string {
  const pk = item.pk?.S ?? '?';
  const sk = item.sk?.S ?? '?';
  const short = (s: string) => JSON.stringify(s.length > 48 ? `${s.slice(0, 48)}…` : s);
  return `${table} pk=${short(pk)} sk=${short(sk)}`;
}

/** Audits one item; returns its findings. */
export function auditItem(
  table: string,
  item: Record<string, AttributeValue>,
  canaries: CanaryIndex<RegisteredCanary>,
): string[] {
  const findings: string[] = [];
  const strings: { path: string; text: string }[] = [];
  for (const [name, value] of Object.entries(item)) {
    stringsOf(name, value, strings);
    // An attribute name is text too.
    strings.push({ path: `${name} (name)`, text: name });
  }
  for (const { path, text } of strings) {
    const jwts = jwtsIn(text);
    if (jwts > 0) findings.push(`${itemName(table, item)} attribute ${path}: ${jwts} JWT-shaped value(s)`);
    for (const { canary } of canaries.find(text)) {
      findings.push(`${itemName(table, item)} attribute ${path}: canary (${canary.origin})`);
    }
  }
  const sealed = item.sealed?.S;
  if (
    item.pk?.S?.startsWith('u#') &&
    sealed !== undefined &&
    !ENVELOPE.test(sealed) &&
    isJsonObject(sealed)
  ) {
    // What the store seals is a JSON object of the tokens: finding one in the clear means no cipher ran.
    findings.push(`${itemName(table, item)} attribute sealed: a JSON object, not an envelope (plaintext)`);
  }
  return findings;
}

/** Audits every item of every table that `client` can list. */
export async function auditTables(
  client: DynamoDBClient,
  canaries: readonly RegisteredCanary[],
): Promise<{ tables: number; items: number; findings: string[] }> {
  const index = new CanaryIndex(canaries);
  const findings: string[] = [];
  let tables = 0;
  let items = 0;
  let startTable: string | undefined;
  do {
    const page = await client.send(new ListTablesCommand({ ExclusiveStartTableName: startTable }));
    for (const table of page.TableNames ?? []) {
      tables += 1;
      let start: Record<string, AttributeValue> | undefined;
      do {
        const scan = await client.send(new ScanCommand({ TableName: table, ExclusiveStartKey: start }));
        for (const item of scan.Items ?? []) {
          items += 1;
          findings.push(...auditItem(table, item, index));
        }
        start = scan.LastEvaluatedKey;
      } while (start);
    }
    startTable = page.LastEvaluatedTableName;
  } while (startTable);
  return { tables, items, findings };
}

/** The whole audit: the registry of `dir` and every table of `client`. */
export async function auditRun(client: DynamoDBClient, dir: string): Promise<AuditReport> {
  const { canaries, entries } = readRegistry(dir);
  const { tables, items, findings } = await auditTables(client, canaries);
  const sum = (pick: (entry: RegistryEntry) => number) => entries.reduce((n, e) => n + pick(e), 0);
  const harnessChecks = sum((e) => e.stats.harnessChecks);
  const all = [...findings];
  // A harness that checked for leaks without a single canary in the whole run checked nothing.
  if (harnessChecks > 0 && canaries.length === 0) {
    all.push(`${harnessChecks} harness leak checks ran, but no canary was collected in the whole run`);
  }
  return {
    tables,
    items,
    canaries: canaries.length,
    files: entries.length,
    harnessChecks,
    placesSearched: sum((e) => e.stats.placesSearched),
    findings: all,
  };
}

/** One line for the run's output. */
export function summary(report: AuditReport): string {
  return (
    `security: at-rest audit scanned ${report.items} items in ${report.tables} tables for JWTs and ` +
    `${report.canaries} canaries (from ${report.files} files; ${report.harnessChecks} harness leak ` +
    `checks searched ${report.placesSearched} places): ${report.findings.length} findings`
  );
}
