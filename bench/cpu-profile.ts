import { readFileSync, writeFileSync } from 'node:fs';
import type { Profiler } from 'node:inspector';
import { Session } from 'node:inspector/promises';
import { SourceMap } from 'node:module';
import { pathToFileURL } from 'node:url';

/** Starts the V8 sampling profiler in this process; the returned function stops it and writes the profile. */
export async function startProfiling(intervalMicros = 250): Promise<(file: string) => Promise<void>> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: intervalMicros });
  await session.post('Profiler.start');
  return async (file) => {
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    writeFileSync(file, JSON.stringify(profile));
  };
}

/** Where the CPU time of a profile went, by part of the program. */
export interface CpuShare {
  readonly part: string;
  readonly ms: number;
  readonly share: number;
}

/**
 * Sums the self time of a profile of a bundled program by part (AWS SDK, Powertools, our code by
 * folder, Node.js HTTP, crypto, GC...), mapping bundle positions back to sources with the bundle's
 * source map. Built-ins without a source (JSON.stringify, Buffer methods) are charged to the
 * nearest caller that has one, so "who asked for the work" is what shows.
 */
export function summarizeProfile(profileFile: string, bundleFile: string): CpuShare[] {
  const profile = JSON.parse(readFileSync(profileFile, 'utf8')) as Profiler.Profile;
  const map = new SourceMap(JSON.parse(readFileSync(`${bundleFile}.map`, 'utf8')));
  const bundleUrl = pathToFileURL(bundleFile).href;
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);

  const partCache = new Map<number, string | undefined>();
  const ownPart = (node: Profiler.ProfileNode): string | undefined => {
    const { url, functionName, lineNumber, columnNumber } = node.callFrame;
    if (functionName === '(garbage collector)') return 'garbage collection';
    if (functionName === '(program)') return 'V8 and native code (program)';
    if (functionName === '(idle)' || functionName === '(root)') return 'idle';
    if (url === bundleUrl) {
      const entry = map.findEntry(lineNumber, columnNumber) as { originalSource?: string };
      return partOfSource(entry.originalSource ?? '');
    }
    if (url.startsWith('node:')) return partOfNodeModule(url);
    return undefined;
  };
  const partOf = (id: number): string => {
    let current: number | undefined = id;
    while (current !== undefined) {
      if (!partCache.has(current)) {
        const node = nodes.get(current);
        partCache.set(current, node ? ownPart(node) : undefined);
      }
      const part = partCache.get(current);
      if (part) return part;
      current = parentOf.get(current);
    }
    return 'V8 and native code (program)';
  };

  const ms = new Map<string, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    const sample = samples[i];
    if (sample === undefined) continue;
    // A sample's delta is the time since the previous one: it belongs to the previous sample.
    const delta = (deltas[i + 1] ?? 0) / 1000;
    const part = partOf(sample);
    if (part !== 'idle') ms.set(part, (ms.get(part) ?? 0) + delta);
  }
  const total = [...ms.values()].reduce((sum, value) => sum + value, 0);
  return [...ms]
    .map(([part, value]) => ({ part, ms: value, share: total > 0 ? value / total : 0 }))
    .sort((a, b) => b.ms - a.ms);
}

function partOfSource(source: string): string {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(source)?.[1];
  if (pkg) {
    if (pkg.startsWith('@aws-sdk/') || pkg.startsWith('@smithy/')) return 'AWS SDK (@aws-sdk, @smithy)';
    if (pkg.startsWith('@aws-lambda-powertools/')) return 'Powertools logger and metrics';
    return `package ${pkg}`;
  }
  const ours = /(?:^|\/)functions\/(.+)$/.exec(source)?.[1];
  if (ours) {
    const segments = ours.split('/');
    const folder = segments.length > 2 ? segments.slice(0, 2).join('/') : segments[0];
    return `token-keeper functions/${folder}`;
  }
  if (source.includes('bench/')) return 'bench harness';
  return 'other bundled code';
}

function partOfNodeModule(url: string): string {
  if (/crypto/.test(url)) return 'Node.js crypto';
  if (/(http|net|stream|tls|dns|undici|socket|buffer|url)/.test(url)) return 'Node.js HTTP, sockets, streams';
  if (/(console|tty|fs)/.test(url)) return 'Node.js console and stdout';
  return 'Node.js other';
}
