// What a result was measured on: results are only comparable on the same machine.

import { cpus, totalmem, release } from 'node:os';
import { execFileSync } from 'node:child_process';
import type { DamonInfo } from './kernel.js';

export interface Machine {
  cpus: number;
  cpuModel: string;
  memGiB: number;
  kernel: string;
  node: string;
  commit: string;
  /** The kernel's data access monitor as the run found it, and whether --pause-damon switched it off (absent before session 31, and without DAMON). */
  damon?: DamonInfo;
}

export function machine(): Machine {
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).trim();
    if (dirty) commit += '-dirty';
  } catch {
    // Not a git checkout (an npm tarball): the commit stays unknown.
  }
  return { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', memGiB: Math.round(totalmem() / 2 ** 30), kernel: release(), node: process.version, commit };
}
