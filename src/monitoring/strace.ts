// Drives strace to trace running processes: attaches to a list of pids (following their future
// children), hands on each completed call, and detaches on request, so the ptrace back end
// (ptrace.ts) can start and stop tracing a live target without restarting it.
//
// strace runs as `strace -f -ttt -s 256 -e trace=all -qq -o /dev/fd/3 -p P1 -p P2 …`: it always
// traces every call, because without --seccomp-bpf every call stops the target anyway (the
// filter only decides what strace prints), and --seccomp-bpf cannot be used: its filter stays
// in the target after a detach and makes the filtered calls fail with ENOSYS. Its output goes
// to a FIFO we hold the reading end of: Node's stdio pipes are socketpairs, which strace cannot
// reopen through /dev/fd/3. -qq keeps attach messages out of the output, so we learn that a pid
// is attached from its TracerPid in /proc instead.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDebianPackage, FitError } from '../core/index.js';
import { parseStraceLine, straceAssembler, type StraceCall } from './strace-parse.js';

export { parseResult, parseStraceLine, splitArgs, straceAssembler } from './strace-parse.js';
export type { StraceAssembler, StraceCall, StraceLine } from './strace-parse.js';

export const STRACE_PATH = '/usr/bin/strace';
/** The Debian package that ships it, for ensureDebianPackage. */
export const STRACE = { pkg: 'strace', path: STRACE_PATH } as const;
/** Longest string argument strace prints before cutting it with `"..."...`. */
export const STRACE_STRING_BYTES_MAX = 256;
/** How long startStrace waits for every pid to show strace as its tracer. */
const ATTACH_WAIT_MS = 5000;
const ATTACH_POLL_MS = 2;
/**
 * How long detach waits for strace to exit after SIGINT before it kills it. strace 6.1 can
 * deadlock detaching from a process caught in vfork (measured here: the parent waits in vfork
 * for a child strace stopped, and strace waits for the parent); SIGKILL ends it, and the kernel
 * detaches every tracee and lets it run (also measured).
 */
const DETACH_WAIT_MS = 3000;

export interface StraceOptions {
  /** Processes to attach to; their threads are attached too, and -f follows children they fork later. */
  readonly pids: readonly number[];
  /** Each completed call, in the order strace completed them (a blocking call comes when it returns). */
  readonly onCall: (call: StraceCall) => void;
  /** strace's own complaints (its stderr, one line each) and an unexpected exit. */
  readonly onError?: (message: string) => void;
  readonly straceBin?: string;
}

export interface StraceSession {
  /** strace's pid (the TracerPid of every traced task). */
  readonly pid: number;
  /**
   * Stops tracing: strace detaches from every task and exits. Resolves once it has exited and
   * every line it wrote has been parsed and handed on (calls still blocked: result null).
   */
  detach(): Promise<void>;
  /** Resolves when strace has exited and its output is all handed on (by detach, or because every tracee exited). */
  readonly done: Promise<void>;
}

/** The pids of the tasks (threads) of a process; empty once it has gone. */
function tasksOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).map(Number);
  } catch {
    return [];
  }
}

/** The task's tracer; undefined when it has gone or is a zombie (it can never be traced then). */
function tracerOf(task: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${task}/status`, 'utf8');
    // A child that exited while its parent was stopped stays a zombie until reaped: done.
    if (/^State:\s*[ZX]/m.test(status)) return undefined;
    const m = /^TracerPid:\s*(\d+)/m.exec(status);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Is every task of every pid traced by `tracer` (a task that has gone or is a zombie counts as done)? */
function allAttached(pids: readonly number[], tracer: number): boolean {
  return pids.every((pid) => tasksOf(pid).every((t) => { const by = tracerOf(t); return by === undefined || by === tracer; }));
}

/**
 * A FIFO whose read end we hold (non-blocking, as a socket) and whose write end goes to strace
 * as fd 3. Opening the reader first lets the writer open without blocking; the name is removed
 * at once, so nothing else can open it. EOF comes when strace (the last writer) closes it.
 */
function outputFifo(): { reader: Socket; writerFd: number } {
  const dir = mkdtempSync(join(tmpdir(), 'fit-strace-'));
  try {
    const path = join(dir, 'out');
    const made = spawnSync('mkfifo', ['-m', '600', path]);
    if (made.status !== 0) throw new FitError('FIT_ERR_INTERNAL', `mkfifo ${path} failed: ${made.stderr?.toString().trim() ?? made.error?.message}`);
    const readerFd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    const writerFd = openSync(path, constants.O_WRONLY);
    return { reader: new Socket({ fd: readerFd, readable: true, writable: false }), writerFd };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Splits a byte stream into lines, keeping a partial last line for the next chunk. */
function lineSplitter(onLine: (line: string) => void): { push(chunk: string): void; end(): void } {
  let rest = '';
  return {
    push(chunk) {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop()!;
      for (const l of lines) if (l !== '') onLine(l);
    },
    end() {
      if (rest !== '') onLine(rest);
      rest = '';
    },
  };
}

/**
 * Starts strace on `pids` and resolves once every task of every pid is attached (or gone).
 * Throws FIT_ERR_MONITOR_TARGET when strace cannot attach (no such process, not permitted)
 * and FIT_ERR_NOT_SUPPORTED when strace is missing and cannot be installed (through apt-get,
 * ensureDebianPackage).
 */
export async function startStrace(options: StraceOptions): Promise<StraceSession> {
  const bin = options.straceBin ?? STRACE_PATH;
  if (options.straceBin === undefined) {
    const missing = await ensureDebianPackage(STRACE);
    if (missing !== undefined) throw new FitError('FIT_ERR_NOT_SUPPORTED', `tracing syscalls needs strace: ${missing}`);
  }
  if (options.pids.length === 0) throw new FitError('FIT_ERR_MONITOR_TARGET', 'strace needs at least one pid to attach to');
  const { reader, writerFd } = outputFifo();
  const args = ['-f', '-ttt', '-s', String(STRACE_STRING_BYTES_MAX), '-e', 'trace=all', '-qq', '-o', '/dev/fd/3', ...options.pids.flatMap((p) => ['-p', String(p)])];
  let child: ChildProcess;
  try {
    child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe', writerFd] });
  } finally {
    closeSync(writerFd);
  }
  const assembler = straceAssembler(options.pids.length === 1 ? options.pids[0]! : null);
  const stderrLines: string[] = [];
  let exited = false;
  let detaching = false;

  const lines = lineSplitter((line) => {
    for (const call of assembler.push(parseStraceLine(line))) options.onCall(call);
  });
  reader.setEncoding('utf8');
  reader.on('data', (chunk: string) => lines.push(chunk));
  const outputEnded = new Promise<void>((resolve) => {
    reader.on('end', resolve);
    reader.on('error', (e) => {
      options.onError?.(`reading strace output: ${e.message}`);
      resolve();
    });
  });
  const errors = lineSplitter((line) => {
    if (stderrLines.length < 20) stderrLines.push(line);
    options.onError?.(line);
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => errors.push(chunk));
  const childExit = new Promise<{ code: number | null; signal: string | null; error?: Error }>((resolve) => {
    child.on('error', (error) => resolve({ code: null, signal: null, error }));
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  const done = (async () => {
    const r = await childExit;
    exited = true;
    errors.end();
    await outputEnded;
    lines.end();
    for (const call of assembler.flush()) options.onCall(call);
    reader.destroy();
    if (!detaching && r.error === undefined && r.code !== 0) options.onError?.(`strace exited with ${r.signal ?? `code ${r.code}`}`);
    return r;
  })();

  const deadline = Date.now() + ATTACH_WAIT_MS;
  while (!exited && child.pid !== undefined && !allAttached(options.pids, child.pid)) {
    if (Date.now() > deadline) {
      child.kill('SIGTERM');
      await done;
      throw new FitError('FIT_ERR_MONITOR_TARGET', `strace did not attach to ${options.pids.join(', ')} within ${ATTACH_WAIT_MS} ms`);
    }
    await new Promise((r) => setTimeout(r, ATTACH_POLL_MS));
  }
  if (exited || child.pid === undefined) {
    const r = await done;
    if (r.error !== undefined) {
      const missing = (r.error as NodeJS.ErrnoException).code === 'ENOENT';
      throw new FitError(missing ? 'FIT_ERR_NOT_SUPPORTED' : 'FIT_ERR_MONITOR_TARGET', missing ? `${bin} is not installed: apt-get install strace` : `cannot run ${bin}: ${r.error.message}`);
    }
    const gone = options.pids.every((p) => tasksOf(p).length === 0);
    // Every tracee exiting at once is not a failure to attach: strace had nothing left to trace.
    if (!gone || r.code !== 0) throw new FitError('FIT_ERR_MONITOR_TARGET', `strace could not trace ${options.pids.join(', ')}: ${stderrLines.join('; ') || `exit ${r.signal ?? r.code}`}`, { pids: options.pids.join(',') });
  }

  return {
    pid: child.pid!,
    done: done.then(() => undefined),
    async detach() {
      if (!exited && !detaching) {
        detaching = true;
        child.kill('SIGINT');
        const timer = setTimeout(() => {
          options.onError?.(`strace did not detach within ${DETACH_WAIT_MS} ms of SIGINT; killed it, which detaches its tracees`);
          child.kill('SIGKILL');
        }, DETACH_WAIT_MS);
        void done.finally(() => clearTimeout(timer));
      }
      detaching = true;
      await done;
    },
  };
}
