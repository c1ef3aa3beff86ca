import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

const FUNCTIONS = [
  'store-tokens',
  'get-access-token',
  'refresh-sweep',
  'disconnect',
  'expiry-stream',
  'token-status',
];

/** The source files and packages esbuild puts into each function's bundle, from one build of all. */
async function bundledInputs(): Promise<Map<string, string[]>> {
  const result = await build({
    entryPoints: FUNCTIONS.map((name) => ({ in: join(ROOT, `functions/handlers/${name}.ts`), out: name })),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    write: false,
    outdir: 'out',
    metafile: true,
    logLevel: 'silent',
  });
  const byFunction = new Map<string, string[]>();
  for (const [file, output] of Object.entries(result.metafile.outputs)) {
    const name = FUNCTIONS.find((candidate) => file.endsWith(`/${candidate}.js`));
    if (name) byFunction.set(name, Object.keys(output.inputs));
  }
  return byFunction;
}

let bundles: Promise<Map<string, string[]>> | undefined;
const inputsOf = async (name: string): Promise<string[]> => {
  bundles ??= bundledInputs();
  const inputs = (await bundles).get(name);
  if (!inputs) throw new Error(`no bundle for ${name}`);
  return inputs;
};

const carriesVerifier = (inputs: string[]) =>
  inputs.some((input) => input.includes('node_modules/jose/') || input.endsWith('idp/jwks-verifier.ts'));

describe('Bundles of the functions', () => {
  it('carries the ID token verifier and jose in storeTokens, the one function that verifies', async () => {
    // Act
    const inputs = await inputsOf('store-tokens');

    // Assess
    expect(carriesVerifier(inputs)).toBe(true);
  });

  it.each(['get-access-token', 'refresh-sweep', 'disconnect', 'expiry-stream'])(
    'keeps the verifier and jose out of %s',
    async (name) => {
      // Act
      const inputs = await inputsOf(name);

      // Assess
      expect(carriesVerifier(inputs)).toBe(false);
    },
  );
});
