// Counting every syscall of the target tree without stopping it, for the host back ends'
// syscallsTotal: `perf stat` on the kernel's raw_syscalls:sys_enter tracepoint, which the
// kernel counts in place (no ptrace stop), attached to the tree's pids and inherited by
// children forked after the attach. We read perf's interval lines and add them up.
//
// Only the total is counted: opening one tracepoint per syscall name costs ~37 ms each (13 s
// for all of them), so per-name rates come from the tracer (ptrace) while it is attached, not
// from here. When perf is missing and cannot be installed, or tracefs cannot be mounted, the
// counter says why in `unavailable` and total() stays 0; the back end reports that instead of
// failing.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { ensureDebianPackage } from '../core/index.js';
import { descendants } from './procfs.js';

export interface SyscallCounter {
  /** Calls the tree made since the counter started, as of perf's last interval line. */
  total(): number;
  /** Why it cannot count (then total() stays 0); null when it counts. */
  readonly unavailable: string | null;
  /** Stops perf, after adding what it printed last; idempotent. */
  stop(): Promise<void>;
}

export const PERF = { pkg: 'linux-perf', path: '/usr/bin/perf' } as const;
/** perf prints a count this often; total() is at most this stale. */
export const COUNTER_INTERVAL_MS = 100;
/** startSyscallCounter waits at most this long for perf's first line. */
const STARTUP_WAIT_MS = 1000;
const STOP_WAIT_MS = 2000;
const TRACEFS = '/sys/kernel/tracing';

/** An interval line of `perf stat -x, -I …`: `   0.503932040,192902,,raw_syscalls:sys_enter,…`. */
const INTERVAL_LINE = /^\s*[0-9.]+,([0-9]+|<not counted>|<not supported>),/;

/** The count of one interval line, 0 for `<not counted>` (the tree did not run); undefined for other lines. */
export function parsePerfInterval(line: string): number | undefined {
  const m = INTERVAL_LINE.exec(line);
  if (m === null) return undefined;
  return /^[0-9]+$/.test(m[1]!) ? Number(m[1]) : 0;
}

function tracefsMounted(): boolean {
  try {
    return readFileSync('/proc/self/mounts', 'utf8')
      .split('\n')
      .some((l) => {
        const [, dir, type] = l.split(' ');
        return type === 'tracefs' && (dir === TRACEFS || dir === '/sys/kernel/debug/tracing');
      });
  } catch {
    return false;
  }
}

/** Mounts tracefs if it is not; the reason it cannot, or undefined. */
function ensureTracefs(): string | undefined {
  if (tracefsMounted()) return undefined;
  if (!existsSync(TRACEFS)) return `${TRACEFS} does not exist: this kernel has no tracefs, so perf cannot count syscalls`;
  const r = spawnSync('mount', ['-t', 'tracefs', 'nodev', TRACEFS], { encoding: 'utf8' });
  if (r.status === 0 && tracefsMounted()) return undefined;
  return `tracefs is not mounted and mounting it failed (${(r.stderr ?? r.error?.message ?? '').trim() || `exit ${r.status}`}); run: mount -t tracefs nodev ${TRACEFS}`;
}

function unavailableCounter(reason: string): SyscallCounter {
  return { total: () => 0, unavailable: reason, stop: async () => {} };
}

/**
 * Starts counting the syscalls of pid and its descendants (those alive now, and those forked
 * later). Resolves once perf printed its first interval, or after 1 s; never rejects: a counter
 * that cannot count says why in `unavailable`.
 */
export async function startSyscallCounter(pid: number): Promise<SyscallCounter> {
  const missing = await ensureDebianPackage(PERF);
  if (missing !== undefined) return unavailableCounter(`perf cannot count syscalls: ${missing}`);
  const noTracefs = ensureTracefs();
  if (noTracefs !== undefined) return unavailableCounter(noTracefs);

  // A pid of the tree may exit between the listing and perf's attach, which fails the attach
  // ("Problems finding threads"): list again and retry.
  let last = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const pids = descendants(pid);
    if (pids.length === 0) return unavailableCounter(`process ${pid} exited before its syscalls could be counted`);
    const started = await runPerf(pids);
    if (typeof started !== 'string') return started;
    last = started;
  }
  return unavailableCounter(`perf could not count the syscalls of ${pid}: ${last}`);
}

/** A running counter, or the reason perf failed at once. */
function runPerf(pids: readonly number[]): Promise<SyscallCounter | string> {
  const perf: ChildProcess = spawn(PERF.path, ['stat', '-x,', '-I', String(COUNTER_INTERVAL_MS), '-e', 'raw_syscalls:sys_enter', '-p', pids.join(',')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let total = 0;
  let lines = 0;
  let buffered = '';
  const other: string[] = [];
  let exited = false;
  const done = new Promise<void>((resolve) => {
    perf.once('error', (e) => {
      other.push(e.message);
      exited = true;
      resolve();
    });
    perf.once('close', () => {
      exited = true;
      resolve();
    });
  });
  let firstLine: () => void = () => {};
  const first = new Promise<void>((resolve) => (firstLine = resolve));
  perf.stderr!.setEncoding('utf8');
  perf.stderr!.on('data', (chunk: string) => {
    buffered += chunk;
    const parts = buffered.split('\n');
    buffered = parts.pop()!;
    for (const line of parts) {
      const n = parsePerfInterval(line);
      if (n === undefined) {
        if (line.trim() !== '' && other.length < 20) other.push(line.trim());
        continue;
      }
      total += n;
      if (lines++ === 0) firstLine();
    }
  });
  const counter: SyscallCounter = {
    total: () => total,
    unavailable: null,
    async stop() {
      if (!exited) {
        // SIGINT makes perf print the interval in progress before it exits.
        perf.kill('SIGINT');
        const timer = setTimeout(() => perf.kill('SIGKILL'), STOP_WAIT_MS);
        await done;
        clearTimeout(timer);
      }
    },
  };
  return (async () => {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([first, done, new Promise<void>((r) => (timer = setTimeout(r, STARTUP_WAIT_MS)))]);
    clearTimeout(timer);
    // perf that exited before counting anything failed to attach (or the tree is gone).
    if (exited && lines === 0) return other.join('; ') || 'perf exited without counting';
    return counter;
  })();
}
