// Builds the embedded database engine (FerretDB v1 with SQLite, see
// scripts/ferretdb/main.go) into .engine/. Runs on `npm install` and again on
// `npm start` when the binary is missing. It never fails the install: where Go
// is missing it says what to do instead (set MONGODB_URI or install Go).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'scripts', 'ferretdb');
export const enginePath = join(root, '.engine', 'ferretdb-embedded');

function newestSource() {
  return Math.max(...readdirSync(source).filter((f) => /\.(go|mod|sum)$/.test(f)).map((f) => statSync(join(source, f)).mtimeMs));
}

export function engineIsCurrent() {
  return existsSync(enginePath) && statSync(enginePath).mtimeMs >= newestSource();
}

export function buildEngine({ quiet = false } = {}) {
  if (engineIsCurrent()) {
    if (!quiet) console.log('Embedded database engine is up to date (.engine/ferretdb-embedded).');
    return true;
  }
  const go = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (go.error || go.status !== 0) {
    console.warn(
      'Go was not found, so the embedded database (FerretDB) cannot be built.\n' +
        '  Either set MONGODB_URI to a MongoDB server (for example mongodb://localhost:27017/vet-mobility),\n' +
        '  or install Go 1.22 or newer and run `npm run build:engine`.',
    );
    return false;
  }
  console.log(`Building the embedded database engine (FerretDB 1.24.2, SQLite) with ${go.stdout.trim()}.`);
  console.log('The first build downloads Go modules and takes two to four minutes...');
  mkdirSync(dirname(enginePath), { recursive: true });
  const started = Date.now();
  const build = spawnSync('go', ['build', '-trimpath', '-o', enginePath, '.'], {
    cwd: source,
    stdio: 'inherit',
    env: { ...process.env, CGO_ENABLED: process.env.CGO_ENABLED ?? '0' },
  });
  if (build.status !== 0) {
    console.error('Building the embedded database engine failed (see the Go output above).');
    return false;
  }
  console.log(`Embedded database engine built in ${Math.round((Date.now() - started) / 1000)} s.`);
  return true;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  // On `npm install` a missing Go is not an error: production uses MONGODB_URI.
  const ok = buildEngine();
  process.exitCode = ok || !process.argv.includes('--strict') ? 0 : 1;
}
