// Installing a Debian package the program needs at run time (the bench's peer brokers, the
// monitoring agent's strace and perf) when its binary is missing: with apt-get, when we are
// root and apt-get exists; otherwise a sentence saying what to run. Each package is tried at
// most once per process (two callers asking for one package share the attempt), and apt-get's
// output goes to a log file, never to our stdout.

import { spawn } from 'node:child_process';
import { accessSync, closeSync, constants, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface DebianBinary {
  /** The Debian package that ships it. */
  readonly pkg: string;
  /** Where the package puts the binary. */
  readonly path: string;
}

/** Where apt-get's output goes (appended): the reason of a failure names it. */
export const APT_LOG = join(tmpdir(), 'fitbroker-apt.log');

export function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function run(cmd: string, args: string[], logFd: number): Promise<boolean> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', logFd, logFd], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    p.once('error', () => resolve(false));
    p.once('exit', (code) => resolve(code === 0));
  });
}

function lastError(): string | undefined {
  try {
    return readFileSync(APT_LOG, 'utf8').split('\n').filter((l) => l.startsWith('E:')).pop()?.slice(2).trim();
  } catch {
    return undefined;
  }
}

async function install(b: DebianBinary): Promise<string | undefined> {
  if (executable(b.path)) return undefined;
  if (process.getuid?.() !== 0) return `${b.path} not found; install it with: sudo apt-get install -y ${b.pkg}`;
  if (!executable('/usr/bin/apt-get')) return `${b.path} not found, and there is no apt-get to install ${b.pkg}; install ${b.pkg} with the system's package manager`;
  const log = openSync(APT_LOG, 'a');
  try {
    // A fresh container has no package lists: update only when the first try fails for that.
    const ok = (await run('apt-get', ['install', '-y', '-q', b.pkg], log)) || ((await run('apt-get', ['update', '-q'], log)) && (await run('apt-get', ['install', '-y', '-q', b.pkg], log)));
    if (!ok || !executable(b.path)) {
      const why = lastError();
      return `apt-get install -y ${b.pkg} failed${why ? `: ${why}` : ''} (log: ${APT_LOG}); install it by hand with: apt-get install -y ${b.pkg}`;
    }
    return undefined;
  } finally {
    closeSync(log);
  }
}

const installs = new Map<string, Promise<string | undefined>>();

/**
 * Makes sure `path` is there, installing `pkg` with apt-get if needed. Resolves to undefined
 * when the binary is there (or now is), else to the reason it is not: a sentence saying what
 * to run. Memoized per package.
 */
export function ensureDebianPackage(b: DebianBinary): Promise<string | undefined> {
  // A binary installed by hand since an earlier failed attempt counts.
  if (executable(b.path)) return Promise.resolve(undefined);
  let p = installs.get(b.pkg);
  if (!p) installs.set(b.pkg, (p = install(b)));
  return p;
}
