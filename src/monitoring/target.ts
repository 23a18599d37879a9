// The process tree a host back end monitors: either a command the agent launches, or a process
// that already runs (`--pid`). A launched command starts stopped, before its first instruction,
// so a back end can attach (strace, perf) and see everything it does; it runs once the agent
// calls resume(). This file only starts, watches and signals the target: it never decides to
// kill it (the agent does), and it never ptraces it (the back ends do).
//
// The stop-before-exec wrapper is `sh -c '…; kill -STOP $$; exec "$@"' sh CMD ARGS`: the shell
// stops itself, and after SIGCONT execs CMD, so the pid we hand out is CMD's own. The shell
// first checks that CMD can be found and executed, exiting 127/126 otherwise, so a missing
// command fails launchTarget() instead of surfacing as an exit after resume().

import { spawn, type StdioOptions } from 'node:child_process';
import { FitError } from '../core/index.js';
import { descendants, readStat } from './procfs.js';

export interface TargetExit {
  /** The exit code; null when a signal ended it, and for an attached pid (not our child). */
  readonly code: number | null;
  /** The signal that ended it, such as SIGKILL; null otherwise (and for an attached pid). */
  readonly signal: string | null;
  /** Wall time it ran: from resume() (a launched one; from the launch if never resumed) or from the attach, to its exit. */
  readonly wallNs: number;
}

export interface Target {
  readonly pid: number;
  /** true when launchTarget started it (it is our child and starts stopped). */
  readonly launched: boolean;
  /** Lets a launched target run (SIGCONT), once; a no-op for an attached one. */
  resume(): void;
  /** Is the root process still there (and not a zombie)? */
  alive(): boolean;
  /** Resolves when the root process has exited (an attached pid is polled every 100 ms). */
  readonly exited: Promise<TargetExit>;
  /** The root first, then its live descendants (procfs descendants()). */
  pids(): number[];
  /** Signals every process of the tree (default SIGTERM); a stopped one is continued so it gets the signal. */
  kill(signal?: NodeJS.Signals): void;
}

export interface LaunchOptions {
  /** Default 'inherit': the target writes where the agent does. */
  readonly stdio?: StdioOptions;
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
}

/** How often launchTarget looks for the wrapper's stop, and how long it waits in all. */
const STOP_POLL_MS = 2;
const STOP_WAIT_MS = 5000;
/** How often an attached pid is looked for in /proc. */
const ATTACHED_POLL_MS = 100;

const WRAPPER = 'command -v "$1" >/dev/null 2>&1 || exit 127; case $1 in */*) [ -f "$1" ] && [ -x "$1" ] || exit 126;; esac; kill -STOP $$; exec "$@"';

const nowNs = (): number => Number(process.hrtime.bigint());
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Signals that leave a process stopped; any other needs a SIGCONT to reach a stopped process. */
const STOPPING = new Set<string>(['SIGSTOP', 'SIGTSTP', 'SIGTTIN', 'SIGTTOU', 'SIGCONT']);

function signalTree(pids: readonly number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // It exited since we listed it.
    }
  }
}

function killTree(root: number, signal: NodeJS.Signals): void {
  const pids = descendants(root);
  signalTree(pids, signal);
  if (!STOPPING.has(signal)) signalTree(pids, 'SIGCONT');
}

/**
 * Starts `command args` stopped before its first instruction and resolves once it is stopped.
 * Throws FIT_ERR_MONITOR_TARGET when the command does not exist, cannot be executed, or exits
 * before it stopped.
 */
export async function launchTarget(command: string, args: readonly string[], opts: LaunchOptions = {}): Promise<Target> {
  const launchNs = nowNs();
  const child = spawn('/bin/sh', ['-c', WRAPPER, 'sh', command, ...args], { stdio: opts.stdio ?? 'inherit', cwd: opts.cwd, env: opts.env ?? process.env });
  let resumedNs: number | undefined;
  let spawnError: Error | undefined;
  const exited = new Promise<TargetExit>((resolve) => {
    child.once('error', (e) => {
      spawnError = e;
      resolve({ code: null, signal: null, wallNs: 0 });
    });
    child.once('exit', (code, signal) => resolve({ code, signal, wallNs: nowNs() - (resumedNs ?? launchNs) }));
  });
  const pid = child.pid;
  const failed = (message: string, fields: Record<string, string | number> = {}): FitError => new FitError('FIT_ERR_MONITOR_TARGET', message, { command, ...fields });
  if (pid === undefined) {
    await exited;
    throw failed(`cannot start ${command}: ${spawnError?.message ?? 'spawn failed'}`);
  }
  let gone: TargetExit | undefined;
  void exited.then((e) => (gone = e));
  for (const until = Date.now() + STOP_WAIT_MS; ; ) {
    if (gone !== undefined) {
      if (spawnError !== undefined) throw failed(`cannot start ${command}: ${spawnError.message}`);
      if (gone.code === 127 || gone.code === 126) throw failed(`cannot launch ${command}: command not found or not executable`, { code: gone.code });
      throw failed(`${command} exited (${gone.signal ?? `code ${gone.code}`}) before it could be stopped for monitoring`, { code: gone.code ?? -1 });
    }
    if (readStat(pid)?.state === 'T') break;
    if (Date.now() > until) {
      child.kill('SIGKILL');
      throw failed(`${command} did not stop within ${STOP_WAIT_MS} ms of its launch`);
    }
    await sleep(STOP_POLL_MS);
  }
  return {
    pid,
    launched: true,
    resume() {
      if (resumedNs !== undefined) return;
      resumedNs = nowNs();
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // It was killed while stopped; exited says how.
      }
    },
    alive: () => gone === undefined && child.exitCode === null && child.signalCode === null && readStat(pid)?.state !== 'Z',
    exited,
    pids: () => descendants(pid),
    kill(signal: NodeJS.Signals = 'SIGTERM') {
      if (gone === undefined) killTree(pid, signal);
    },
  };
}

/** A process that already runs, for `--pid`. Throws FIT_ERR_MONITOR_TARGET when there is none. */
export function attachTarget(pid: number): Target {
  const s = Number.isInteger(pid) && pid > 0 ? readStat(pid) : undefined;
  if (s === undefined || s.state === 'Z') throw new FitError('FIT_ERR_MONITOR_TARGET', `there is no process ${pid} to monitor`, { pid });
  const startNs = nowNs();
  const alive = (): boolean => {
    const st = readStat(pid);
    return st !== undefined && st.state !== 'Z';
  };
  // Polling starts when someone first asks for `exited`, so a target nobody waits on does
  // not keep the agent's event loop alive.
  let exited: Promise<TargetExit> | undefined;
  const watch = (): Promise<TargetExit> =>
    (exited ??= new Promise<TargetExit>((resolve) => {
      const timer = setInterval(() => {
        if (alive()) return;
        clearInterval(timer);
        resolve({ code: null, signal: null, wallNs: nowNs() - startNs });
      }, ATTACHED_POLL_MS);
    }));
  return {
    pid,
    launched: false,
    resume() {},
    alive,
    get exited() {
      return watch();
    },
    pids: () => descendants(pid),
    kill(signal: NodeJS.Signals = 'SIGTERM') {
      killTree(pid, signal);
    },
  };
}
