/**
 * Builds what the npm package ships (`npm run build`; `npm pack` and `npm publish` run it first):
 *
 *   dist/functions/<name>/index.mjs   each Lambda function, bundled as the stack bundles it
 *   dist/cdk/index.js                 the constructs (lib/index.ts), deploying those bundles
 *   dist/client/index.js              the caller's client (functions/client/index.ts)
 *   dist/types/...                    type declarations of both, emitted by tsc
 *
 * A consumer's `cdk synth` then needs neither esbuild nor this repository's devDependencies:
 * the constructs import only aws-cdk-lib and constructs, the client only @aws-sdk/client-lambda.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { type BuildOptions, build, type Metafile } from 'esbuild';
import { FUNCTION_ENTRIES, nodeFunctionDefaults, PROJECT_ROOT } from '../lib/function-defaults';

const DIST = join(PROJECT_ROOT, 'dist');

/** What each entry of the package may import at run time, besides Node.js built-ins. */
const ALLOWED_IMPORTS = {
  cdk: [/^aws-cdk-lib(\/|$)/, /^constructs$/],
  client: [/^@aws-sdk\/client-lambda$/],
} as const;

/** The esbuild options NodejsFunction derives from the stack's bundling (lib/function-defaults.ts). */
function functionBuildOptions(): BuildOptions {
  const bundling = nodeFunctionDefaults().bundling ?? {};
  return {
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: bundling.target,
    mainFields: bundling.mainFields,
    minify: bundling.minify,
    keepNames: bundling.keepNames,
    sourcemap: bundling.sourceMap,
    sourcesContent: bundling.sourcesContent,
    external: bundling.externalModules,
    banner: bundling.banner ? { js: bundling.banner } : undefined,
    tsconfig: bundling.tsconfig,
    logLevel: 'warning',
  };
}

/** Bundles every function into dist/functions/<name>/index.mjs; returns the sizes in bytes. */
async function buildFunctions(): Promise<Record<string, number>> {
  const sizes: Record<string, number> = {};
  for (const [name, entry] of Object.entries(FUNCTION_ENTRIES)) {
    const outfile = join(DIST, 'functions', name, 'index.mjs');
    await build({ ...functionBuildOptions(), entryPoints: [join(PROJECT_ROOT, entry)], outfile });
    sizes[name] = statSync(outfile).size;
  }
  return sizes;
}

/** Bundles one library entry with its dependencies left as imports, and checks what those are. */
async function buildLibrary(name: keyof typeof ALLOWED_IMPORTS, entry: string): Promise<void> {
  const result = await build({
    entryPoints: [join(PROJECT_ROOT, entry)],
    outfile: join(DIST, name, 'index.js'),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    // The constructs deploy the prebuilt bundles instead of bundling from sources (lib/function-defaults.ts).
    define: { TOKEN_KEEPER_PREBUILT: 'true' },
    tsconfig: join(PROJECT_ROOT, 'tsconfig.json'),
    metafile: true,
    logLevel: 'warning',
  });
  const unexpected = externalImports(result.metafile).filter(
    (path) => !path.startsWith('node:') && !ALLOWED_IMPORTS[name].some((allowed) => allowed.test(path)),
  );
  if (unexpected.length > 0) {
    throw new Error(`dist/${name} would import ${unexpected.join(', ')}, which the package does not provide`);
  }
}

function externalImports(metafile: Metafile): string[] {
  return Object.values(metafile.outputs).flatMap((output) =>
    output.imports.filter((i) => i.external).map((i) => i.path),
  );
}

/** Emits the declarations with tsc, then makes their relative imports resolvable under Node16 rules. */
function buildDeclarations(): void {
  const tsc = join(PROJECT_ROOT, 'node_modules', '.bin', 'tsc');
  execFileSync(tsc, ['-p', join(PROJECT_ROOT, 'tsconfig.build.json')], { stdio: 'inherit' });
  for (const file of declarationFiles(join(DIST, 'types'))) {
    writeFileSync(file, withExtensions(file, readFileSync(file, 'utf8')));
  }
}

function declarationFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return declarationFiles(path);
    return entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

/**
 * The sources import `./module` (bundler resolution); an ESM package's declarations need
 * `./module.js` or `./dir/index.js`, or a consumer on `moduleResolution: node16` sees `any`.
 */
function withExtensions(file: string, text: string): string {
  return text.replace(/(from\s+|import\()(['"])(\.{1,2}\/[^'"]*)\2/g, (_match, prefix, quote, specifier) => {
    const target = resolve(dirname(file), specifier);
    let rewritten: string;
    if (existsSync(`${target}.d.ts`)) rewritten = `${specifier}.js`;
    else if (existsSync(join(target, 'index.d.ts'))) rewritten = `${specifier}/index.js`;
    else throw new Error(`${relative(DIST, file)}: cannot resolve ${specifier}`);
    return `${prefix}${quote}${rewritten}${quote}`;
  });
}

async function main(): Promise<void> {
  rmSync(DIST, { recursive: true, force: true });
  const sizes = await buildFunctions();
  await buildLibrary('cdk', 'lib/index.ts');
  await buildLibrary('client', 'functions/client/index.ts');
  buildDeclarations();
  for (const [name, bytes] of Object.entries(sizes)) {
    process.stdout.write(`dist/functions/${name}/index.mjs ${(bytes / 1024).toFixed(0)} KiB\n`);
  }
}

await main();
