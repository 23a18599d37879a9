// The candidates other than lmdb (the store the replicas run on) are not dependencies of the
// project: better-sqlite3 compiles from source on this machine (no prebuilt binary from the
// npm registry), which would add minutes to every `npm ci`. The bench installs them when it
// needs them, without saving them to package.json, and skips a store it cannot install.

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Versions measured: better-sqlite3 13 needs Node 22 (it crashes on 20). */
export const OPTIONAL_PACKAGES: Record<string, string> = { 'classic-level': '3', 'better-sqlite3': '12' };

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Imports a candidate store package, installing it first (npm install --no-save) if it is missing. */
export async function importOptional(name: string): Promise<unknown> {
  try {
    return await import(name);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw e;
  }
  const spec = `${name}@${OPTIONAL_PACKAGES[name] ?? 'latest'}`;
  process.stderr.write(`bench:store: installing ${spec} for this run (npm install --no-save; better-sqlite3 compiles, a minute or two)\n`);
  const r = spawnSync('npm', ['install', '--no-save', '--foreground-scripts=false', spec], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cannot install ${spec} (npm exited ${r.status}): ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
  return import(name);
}
