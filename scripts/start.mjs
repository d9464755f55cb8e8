// `npm start`: runs the built CLI's `serve` in this process, building first only when a source
// file is newer than the build (`prepare` builds once at install). Running the CLI here rather
// than as a child keeps its exit code: Ctrl-C ends `serve` with 0, as when it is run directly.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const built = join(root, 'dist', 'bin', 'skynet-linker.js');
const SOURCES = [
  'index.ts',
  'server.ts',
  'protocol',
  'crypto',
  'memory',
  'router',
  'procedures',
  'transport',
  'clients',
  'bin',
  'tsconfig.json',
  'tsconfig.build.json',
  'package.json',
];

function newestMtime(path) {
  let st;
  try {
    st = statSync(path);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = 0;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

function builtMtime() {
  try {
    return statSync(built).mtimeMs;
  } catch {
    return -1;
  }
}

const sources = Math.max(...SOURCES.map((p) => newestMtime(join(root, p))));
if (builtMtime() < sources) {
  process.stderr.write(builtMtime() < 0 ? 'building (first start)...\n' : 'sources changed since the last build: rebuilding...\n');
  const r = spawnSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
process.argv = [process.argv[0], built, 'serve', ...process.argv.slice(2)];
await import(pathToFileURL(built).href);
