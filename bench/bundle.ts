import { fork } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BuildOptions, build, type Metafile } from 'esbuild';

/** The repository root. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * The bundling of every function as `lib/function-defaults.ts` configures NodejsFunction
 * (kept in step by test/bench/bench-smoke.test.ts): ESM for Node.js 24, minified with names kept,
 * external source maps without sources, the AWS SDK bundled but for the credential providers that
 * are never reached in Lambda, a `require` shim.
 */
export const STACK_BUNDLING = {
  format: 'esm',
  target: 'node24',
  mainFields: ['module', 'main'],
  minify: true,
  keepNames: true,
  sourceMap: true,
  sourcesContent: false,
  bundleAwsSDK: true,
  // lib/function-defaults.ts UNREACHED_IN_LAMBDA: credential providers never reached in Lambda.
  externalModules: [
    '@aws-sdk/credential-provider-ini',
    '@aws-sdk/credential-provider-process',
    '@aws-sdk/credential-provider-sso',
    '@aws-sdk/credential-provider-web-identity',
  ] as string[],
  banner: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
} as const;

/** What NodejsFunction passes to esbuild for {@link STACK_BUNDLING}. */
export function stackEsbuildOptions(): BuildOptions {
  return {
    bundle: true,
    platform: 'node',
    format: STACK_BUNDLING.format,
    target: STACK_BUNDLING.target,
    mainFields: [...STACK_BUNDLING.mainFields],
    minify: STACK_BUNDLING.minify,
    keepNames: STACK_BUNDLING.keepNames,
    sourcemap: STACK_BUNDLING.sourceMap,
    sourcesContent: STACK_BUNDLING.sourcesContent,
    external: [...STACK_BUNDLING.externalModules],
    banner: { js: STACK_BUNDLING.banner },
    tsconfig: join(ROOT, 'tsconfig.json'),
    logLevel: 'warning',
    metafile: true,
  };
}

/** One bundled entry. */
export interface Bundle {
  /** Absolute path of `index.mjs`. */
  readonly file: string;
  readonly metafile: Metafile;
}

/** Bundles `entry` (relative to the repository root) into `<outDir>/index.mjs` the way the stack does. */
export async function bundleEntry(entry: string, outDir: string): Promise<Bundle> {
  const file = join(outDir, 'index.mjs');
  const result = await build({ ...stackEsbuildOptions(), entryPoints: [join(ROOT, entry)], outfile: file });
  return { file, metafile: result.metafile ?? { inputs: {}, outputs: {} } };
}

/** What a child process sent back, and what it printed. */
export interface ChildRun<T> {
  readonly result: T;
  readonly wallMs: number;
  readonly stdoutBytes: number;
}

/** Options of {@link runChild}. */
export interface RunChildOptions {
  /** The child's whole environment (nothing is inherited but PATH). */
  readonly env?: Readonly<Record<string, string>>;
  /** @default 600_000 */
  readonly timeoutMs?: number;
}

/**
 * Runs a bundled module in a fresh Node.js process, sends it `params` over IPC and waits for its
 * one result message. Its stdout (the function logs and EMF metrics) is counted, not kept.
 */
export function runChild<T>(
  file: string,
  params: unknown,
  options: RunChildOptions = {},
): Promise<ChildRun<T>> {
  const started = performance.now();
  const child = fork(file, [], {
    env: { PATH: process.env.PATH ?? '', ...options.env },
    // Not this process's flags: the children are bundles and need no TypeScript loader.
    execArgv: [],
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let stdoutBytes = 0;
  child.stdout?.on('data', (chunk: Buffer) => {
    stdoutBytes += chunk.length;
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  return new Promise((done, fail) => {
    let result: { value: T } | undefined;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`bench child ${file} timed out\n${stderr}`));
    }, options.timeoutMs ?? 600_000);
    child.once('message', (message) => {
      result = { value: message as T };
    });
    child.once('error', (error) => {
      clearTimeout(timer);
      fail(error);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (result) {
        done({ result: result.value, wallMs: performance.now() - started, stdoutBytes });
      } else {
        fail(new Error(`bench child ${file} exited with ${code} without a result\n${stderr}`));
      }
    });
    child.send(params as object);
  });
}

/** Size of the bundle by package (bytes in the output), largest first. */
export function composition(metafile: Metafile): { name: string; bytes: number }[] {
  const output = Object.entries(metafile.outputs).find(([name]) => name.endsWith('.mjs'))?.[1];
  const byPackage = new Map<string, number>();
  for (const [path, input] of Object.entries(output?.inputs ?? {})) {
    const match = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
    const name = match?.[1] ?? `(ours) ${path.split('/').slice(-3, -1).join('/') || path}`;
    byPackage.set(name, (byPackage.get(name) ?? 0) + input.bytesInOutput);
  }
  return [...byPackage].map(([name, bytes]) => ({ name, bytes })).sort((a, b) => b.bytes - a.bytes);
}
