// Runs the compiled test suite with Node's built-in runner: unit tests first (fast, in
// parallel), then the integration tests one file at a time (each starts real replica processes
// on its own loopback ports, and two cores are all CI has).
import { spawnSync } from 'node:child_process';
import { readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const list = (dir) => {
  const abs = join(root, 'dist', 'test', dir);
  return existsSync(abs) ? readdirSync(abs).filter((f) => f.endsWith('.test.js')).sort().map((f) => join(abs, f)) : [];
};
const only = process.argv.slice(2);
const pick = (files) => (only.length ? files.filter((f) => only.some((o) => f.includes(o))) : files);

const groups = [
  { name: 'unit', files: pick(list('unit')), concurrency: 2 },
  { name: 'integration', files: pick(list('integration')), concurrency: 1 },
];
let failed = false;
for (const g of groups) {
  if (g.files.length === 0) continue;
  process.stdout.write(`\n=== ${g.name} tests (${g.files.length} files) ===\n`);
  const r = spawnSync(process.execPath, ['--test', `--test-concurrency=${g.concurrency}`, '--test-reporter=spec', ...g.files], { stdio: 'inherit' });
  if (r.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
