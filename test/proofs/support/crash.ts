import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Where a crash worker dies. */
export type CrashPoint =
  /** The lease is taken; the IdP has not been called. */
  | 'after-lease'
  /** The IdP rotated and answered; nothing was stored. */
  | 'after-idp'
  /** The commit was about to be sent: the IdP's answer dies with the process. */
  | 'commit-unsent'
  /** DynamoDB applied the commit; the worker died before it could answer. */
  | 'commit-applied';

/** Every crash point, in the order of the rotation's steps. */
export const CRASH_POINTS: readonly CrashPoint[] = [
  'after-lease',
  'after-idp',
  'commit-unsent',
  'commit-applied',
];

/** How a crash worker ended. */
export interface CrashRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

const WORKER = fileURLToPath(new URL('./crash-worker.ts', import.meta.url));
const PROJECT_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** A worker that neither dies nor finishes within this is killed and reported. */
const WORKER_TIMEOUT_MS = 30_000;

/** Runs the crash worker in its own Node process (through tsx, as `npm start` runs TypeScript) and waits for it to end. */
export function runCrashWorker(env: Readonly<Record<string, string>>): Promise<CrashRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', WORKER], {
      cwd: PROJECT_ROOT,
      // The SDK's Node 20 notice on stderr would read as a worker failure.
      env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), WORKER_TIMEOUT_MS);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}
