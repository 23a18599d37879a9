// Reading the host's /proc for the proc and ptrace back ends: the process list, a process's
// descendants and a process's open files. Processes come and go while we read, so every
// reader here treats a process that vanished mid-read (ENOENT, ESRCH) as "not there" and
// returns what it could read; none of them throws for that. The stat parser is pure, so the
// awkward command names (spaces, parentheses) are tested without real processes.

import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import type { ProcessInfo } from './backend.js';

/** One process's /proc/PID/stat fields that the monitor uses. */
export interface ProcStat extends ProcessInfo {
  /** The state letter: R running, S sleeping, T stopped, t traced, Z zombie, … */
  readonly state: string;
}

/**
 * Parses /proc/PID/stat. The command name sits between "(" and ")", but may itself hold
 * spaces and parentheses (a process may name itself `a) b (c`), so the name runs from the
 * first "(" to the LAST ")"; the fields after it never hold a ")". Undefined when malformed.
 */
export function parseStat(text: string): ProcStat | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 1 || close < open) return undefined;
  const pid = Number(text.slice(0, open).trim());
  const rest = text.slice(close + 1).trim().split(' ');
  const state = rest[0];
  const ppid = Number(rest[1]);
  if (!Number.isInteger(pid) || pid <= 0 || state === undefined || state === '' || !Number.isInteger(ppid)) return undefined;
  return { pid, ppid, name: text.slice(open + 1, close), state };
}

/** Errors that mean the process (or its fd) went away while we read, or we may not look. */
function vanished(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOENT' || code === 'ESRCH' || code === 'EACCES' || code === 'EPERM';
}

/** One process's stat, or undefined when there is no such process (now). */
export function readStat(pid: number, root = '/proc'): ProcStat | undefined {
  try {
    return parseStat(readFileSync(`${root}/${pid}/stat`, 'utf8'));
  } catch (e) {
    if (vanished(e)) return undefined;
    throw e;
  }
}

/** The pids /proc lists now (thread-group leaders only: /proc hides threads at its top). */
export function listPids(root = '/proc'): number[] {
  return readdirSync(root)
    .filter((n) => /^[0-9]+$/.test(n))
    .map(Number)
    .sort((a, b) => a - b);
}

/** The host's processes, by pid; those that exit while we read are left out. */
export function readProcessList(root = '/proc'): ProcessInfo[] {
  const out: ProcessInfo[] = [];
  for (const pid of listPids(root)) {
    const s = readStat(pid, root);
    if (s !== undefined) out.push({ pid: s.pid, ppid: s.ppid, name: s.name });
  }
  return out;
}

/**
 * rootPid first, then every live descendant (breadth first, by pid within a generation);
 * empty when rootPid itself is gone. A child reparented away (its parent exited, so it went
 * to init or a subreaper) is no longer found: the tree is what /proc says now.
 */
export function descendants(rootPid: number, processes: readonly ProcessInfo[] = readProcessList()): number[] {
  if (!processes.some((p) => p.pid === rootPid)) return [];
  const children = new Map<number, number[]>();
  for (const p of processes) {
    if (p.pid === p.ppid) continue;
    const list = children.get(p.ppid);
    if (list === undefined) children.set(p.ppid, [p.pid]);
    else list.push(p.pid);
  }
  const out = [rootPid];
  const seen = new Set(out);
  for (let i = 0; i < out.length; i++) {
    for (const c of (children.get(out[i]!) ?? []).sort((a, b) => a - b)) {
      if (seen.has(c)) continue;
      seen.add(c);
      out.push(c);
    }
  }
  return out;
}

/** pid's open files (fd → what the link names: a path, `socket:[123]`, `pipe:[45]`), by fd. */
export function readOpenFiles(pid: number, root = '/proc'): { fd: number; path: string }[] {
  let names: string[];
  try {
    names = readdirSync(`${root}/${pid}/fd`);
  } catch (e) {
    if (vanished(e)) return [];
    throw e;
  }
  const out: { fd: number; path: string }[] = [];
  for (const n of names) {
    if (!/^[0-9]+$/.test(n)) continue;
    try {
      out.push({ fd: Number(n), path: readlinkSync(`${root}/${pid}/fd/${n}`) });
    } catch (e) {
      // The fd was closed, or the process exited, between the listing and the readlink.
      if (!vanished(e)) throw e;
    }
  }
  return out.sort((a, b) => a.fd - b.fd);
}

/** How many fds pid holds, without reading where they point (a cheap size for costs()). */
export function countOpenFiles(pid: number, root = '/proc'): number {
  try {
    return readdirSync(`${root}/${pid}/fd`).length;
  } catch (e) {
    if (vanished(e)) return 0;
    throw e;
  }
}
