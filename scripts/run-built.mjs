// Runs a TypeScript entry point (scripts/cli.ts, server/index.ts) as JavaScript
// built from it, so that Node loads node_modules without tsx's loader hooks:
// under the hooks the command-line tool spent ~6 s of its start loading
// modules (zod 1.1–1.6 s against 0.1–0.2 s in plain node). The build is one
// file per entry under .build/ (esbuild, which tsx ships with), the packages
// left as imports. Before each run the sources it was built from are
// compared with what the build recorded (size and modification time of
// each): any change, a file gone, or no build yet, and it is built again
// (about a second), so an edited source never runs stale. Each build carries
// a source map (mappings only, beside the bundle) and the run turns Node's
// source-map support on, so a stack trace names the .ts file and line.
//
//   node scripts/run-built.mjs <entry.ts> [arguments…]
//   node scripts/run-built.mjs --build <entry.ts>…   (build only, e.g. after npm install)
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const buildDir = join(root, '.build');

/** Where the build of an entry goes, and the record of what it was built from. */
function outputsOf(entry) {
  const name = relative(root, resolve(root, entry)).replace(/\.ts$/, '').replace(/[\\/]/g, '--');
  const bundle = join(buildDir, `${name}.mjs`);
  return { bundle, map: `${bundle}.map`, record: join(buildDir, `${name}.sources.json`) };
}

/** The size and modification time of a file, undefined when it is gone. */
function stamp(file) {
  try {
    const stats = statSync(file);
    return `${stats.size}:${stats.mtimeMs}`;
  } catch {
    return undefined;
  }
}

/** True when the entry's build exists and every source it was built from is as it was then. */
export function isCurrent(entry) {
  const { bundle, map, record } = outputsOf(entry);
  let sources;
  try {
    sources = JSON.parse(readFileSync(record, 'utf8'));
  } catch {
    return false;
  }
  if (stamp(bundle) === undefined || stamp(map) === undefined) return false;
  for (const [file, was] of Object.entries(sources)) if (stamp(join(root, file)) !== was) return false;
  return true;
}

/**
 * Builds the entry. Each module keeps its own import.meta.url (its source
 * file's), so paths it finds next to itself (views, surveys, the engine, a
 * worker's file) are the same as under tsx. Written beside and renamed, so
 * that a second process starting meanwhile reads a whole build or none.
 */
export async function build(entry) {
  const esbuild = await import('esbuild');
  const { bundle, map, record } = outputsOf(entry);
  const ownUrl = {
    name: 'own-import-meta-url',
    setup(context) {
      context.onLoad({ filter: /\.(ts|mjs)$/ }, (args) => {
        const source = readFileSync(args.path, 'utf8');
        const contents = source.includes('import.meta.url') ? source.replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href)) : source;
        return { contents, loader: args.path.endsWith('.ts') ? 'ts' : 'js', resolveDir: dirname(args.path) };
      });
    },
  };
  const result = await esbuild.build({
    entryPoints: [resolve(root, entry)],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    tsconfig: join(root, 'tsconfig.json'),
    plugins: [ownUrl],
    metafile: true,
    // The map holds mappings and file names only: a stack trace needs no source text.
    sourcemap: 'linked',
    sourcesContent: false,
    write: false,
    outfile: bundle,
    absWorkingDir: root,
    logLevel: 'silent',
  });
  const sources = {};
  for (const input of Object.keys(result.metafile.inputs)) sources[input] = stamp(join(root, input));
  mkdirSync(buildDir, { recursive: true });
  // The map first: a bundle is never there without the map it names.
  const output = (file) => result.outputFiles.find((candidate) => candidate.path === file).contents;
  for (const file of [map, bundle]) {
    const partial = `${file}.${process.pid}.tmp`;
    writeFileSync(partial, output(file));
    renameSync(partial, file);
  }
  writeFileSync(`${record}.${process.pid}.tmp`, JSON.stringify(sources));
  renameSync(`${record}.${process.pid}.tmp`, record);
  return bundle;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [first, ...rest] = process.argv.slice(2);
  if (first === '--build') {
    for (const entry of rest) {
      await build(entry);
      console.log(`Built ${relative(root, outputsOf(entry).bundle)} from ${entry}.`);
    }
  } else if (first) {
    const { bundle } = outputsOf(first);
    if (!isCurrent(first)) await build(first);
    // The entry sees the arguments after its own name, as when it is run directly.
    process.argv.splice(1, 2, resolve(root, first));
    process.setSourceMapsEnabled(true);
    await import(pathToFileURL(bundle).href);
  } else {
    console.error(`Usage: node ${relative(process.cwd(), fileURLToPath(import.meta.url))} <entry.ts> [arguments…] | --build <entry.ts>…`);
    process.exitCode = 2;
  }
}
