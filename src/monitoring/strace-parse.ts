// Reading strace's output: a pure line parser for `strace -f -ttt -s 256 -e trace=all -o FILE`
// and an assembler that pairs a call's `<unfinished ...>` and `<... NAME resumed>` halves per
// pid, so the tracer (strace.ts) emits each call once, complete, with the time it was entered.
// Nothing here does I/O or reads a clock: every case is tested on recorded lines
// (test/unit/monitoring-strace.test.ts).
//
// The formats (strace 6.1), after the pid prefix (`1234  ` with -o, `[pid  1234] ` on stderr)
// and the -ttt timestamp (`1796029125.091351`, epoch seconds and microseconds):
//   openat(AT_FDCWD, "/etc/hostname", O_RDONLY) = 3
//   access("/etc/ld.so.preload", R_OK) = -1 ENOENT (No such file or directory)
//   wait4(-1,  <unfinished ...>            then, later, on the same pid:
//   <... wait4 resumed>[{WIFEXITED(s) && WEXITSTATUS(s) == 0}], 0, NULL) = 7639
//   wait4(-1,  <detached ...>              (strace detached while the call blocked)
//   exit_group(0)                           = ?
//   rt_sigsuspend([], 8) = ? ERESTARTNOHAND (To be restarted if no handler)
//   --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=7639, ...} ---
//   +++ exited with 0 +++    +++ killed by SIGKILL +++    +++ superseded by execve in pid 12 +++

import { constants } from 'node:os';

/** One call, complete: what the tracer hands on. */
export interface StraceCall {
  readonly pid: number;
  /** When strace saw the call entered, epoch ns (from -ttt: microsecond resolution). */
  readonly atEpochNs: number;
  readonly syscall: string;
  /** The arguments as strace printed them, split at top-level commas, trimmed. */
  readonly args: readonly string[];
  /** >= 0 on success, -errno on failure; null when the call never returned while traced (`= ?`, detach). */
  readonly result: number | null;
}

export type StraceLine =
  | { readonly kind: 'call'; readonly pid: number | null; readonly atEpochNs: number; readonly syscall: string; readonly argsText: string; readonly result: number | null }
  | { readonly kind: 'unfinished'; readonly pid: number | null; readonly atEpochNs: number; readonly syscall: string; readonly argsText: string }
  | { readonly kind: 'resumed'; readonly pid: number | null; readonly atEpochNs: number; readonly syscall: string; readonly argsText: string; readonly result: number | null }
  | { readonly kind: 'detached'; readonly pid: number | null; readonly atEpochNs: number; readonly syscall: string | null; readonly argsText: string }
  | { readonly kind: 'signal'; readonly pid: number | null; readonly atEpochNs: number; readonly signal: string; readonly info: string }
  | { readonly kind: 'exit'; readonly pid: number | null; readonly atEpochNs: number; readonly code: number | null; readonly signal: string | null }
  | { readonly kind: 'other'; readonly pid: number | null; readonly atEpochNs: number | null; readonly text: string };

/**
 * Kernel-internal restart codes strace prints after `= ?` for a call a signal interrupted; they
 * are not in os.constants.errno (include/linux/errno.h). The call is reported with -code, as
 * the kernel returned it to the tracer.
 */
const RESTART_ERRNO: Readonly<Record<string, number>> = { ERESTARTSYS: 512, ERESTARTNOINTR: 513, ERESTARTNOHAND: 514, ENOIOCTLCMD: 515, ERESTART_RESTARTBLOCK: 516 };
const ERRNO = constants.errno as Readonly<Record<string, number>>;

const PREFIX = /^(?:\[pid\s+(\d+)\]\s+|(\d+)\s+)?(?:(\d+)\.(\d{1,9})\s+)?/;
const RESUMED = /^<\.\.\. ([A-Za-z0-9_]+) resumed>/;
const UNFINISHED = ' <unfinished ...>';
const DETACHED = '<detached ...>';

/** Epoch seconds and a decimal fraction as ns; a number keeps them to within 256 ns. */
function epochNs(sec: string, frac: string): number {
  return Number(sec) * 1e9 + Number(frac.padEnd(9, '0'));
}

/** The value of `= RESULT`: a number, `-1 ENAME (text)` as -errno, `?` (with a restart code) or nothing as null. */
export function parseResult(text: string): number | null {
  const t = text.trim();
  const failed = /^-1 (E[A-Z0-9_]+)\b/.exec(t);
  if (failed) return -(ERRNO[failed[1]!] ?? RESTART_ERRNO[failed[1]!] ?? 1);
  const restart = /^\? (E[A-Z0-9_]+)\b/.exec(t);
  if (restart) return -(RESTART_ERRNO[restart[1]!] ?? ERRNO[restart[1]!] ?? 1);
  const n = /^(-?(?:0x[0-9a-fA-F]+|\d+))\b/.exec(t);
  if (n) return n[1]!.startsWith('-') ? -Number(n[1]!.slice(1)) : Number(n[1]!);
  return null;
}

/**
 * Walks `text` from `from`, skipping quoted strings (with escapes) and /* comments *\/, and
 * calls `visit` with every other character and the bracket depth before it; stops at the first
 * character `visit` accepts and returns its index, or -1 when the text ends first.
 */
function walk(text: string, from: number, visit: (c: string, i: number, depth: number) => boolean): number {
  let depth = 0;
  for (let i = from; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') {
      i = quoteEnd(text, i);
      continue;
    }
    if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      i = end === -1 ? text.length : end + 1;
      continue;
    }
    if (visit(c, i, depth)) return i;
    if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ')' || c === ']' || c === '}') depth = Math.max(0, depth - 1);
  }
  return -1;
}

/**
 * Where the argument list that starts at `from` ends: the index of its closing ")" at depth 0,
 * or -1 when the text ends first. A ")" inside quotes, comments or brackets does not count.
 */
function argsEnd(text: string, from: number): number {
  return walk(text, from, (c, _i, depth) => c === ')' && depth === 0);
}

/** The index of the quote closing the string that opens at `start` (or the text's end). */
function quoteEnd(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '"') return i;
  }
  return text.length;
}

/**
 * Splits strace's argument text at top-level commas: not inside quotes (escapes honoured),
 * brackets, braces, parentheses or comments. An empty text gives no arguments.
 */
export function splitArgs(text: string): string[] {
  const out: string[] = [];
  let start = 0;
  walk(text, 0, (c, i, depth) => {
    if (c === ',' && depth === 0) {
      out.push(text.slice(start, i).trim());
      start = i + 1;
    }
    return false;
  });
  // The first half of an unfinished call ends in ", " (`wait4(-1,  <unfinished ...>`): no
  // empty last argument for it.
  const last = text.slice(start).trim();
  if (last !== '') out.push(last);
  return out;
}

/** `name(args) = result`, the call's `name(args <unfinished ...>` half, or null when it is neither. */
function parseCallBody(body: string): { syscall: string; argsText: string; rest: string | null } | null {
  const m = /^([A-Za-z_][A-Za-z0-9_]*)\(/.exec(body);
  if (!m) return null;
  const open = m[0].length;
  if (body.endsWith(UNFINISHED)) return { syscall: m[1]!, argsText: body.slice(open, -UNFINISHED.length), rest: null };
  const close = argsEnd(body, open);
  if (close === -1) return null;
  return { syscall: m[1]!, argsText: body.slice(open, close), rest: body.slice(close + 1) };
}

function resultOf(rest: string): number | null {
  const eq = /^\s*=\s*(.*)$/.exec(rest);
  return eq ? parseResult(eq[1]!) : null;
}

/** Parses one line of strace output (without its newline). Never throws: unknown text is `other`. */
export function parseStraceLine(line: string): StraceLine {
  const p = PREFIX.exec(line)!;
  const pidText = p[1] ?? p[2];
  const pid = pidText === undefined ? null : Number(pidText);
  const at = p[3] === undefined ? null : epochNs(p[3], p[4]!);
  const body = line.slice(p[0].length);
  const other = (): StraceLine => ({ kind: 'other', pid, atEpochNs: at, text: line });
  if (at === null) return other();

  const signal = /^--- (SIG[A-Z0-9+-]+|stopped by SIG[A-Z0-9]+)\s*(.*?)\s*---$/.exec(body);
  if (signal) return { kind: 'signal', pid, atEpochNs: at, signal: signal[1]!.replace(/^stopped by /, ''), info: signal[2]! };
  const exit = /^\+\+\+ (?:exited with (\d+)|killed by (SIG[A-Z0-9+-]+)(?: \(core dumped\))?) \+\+\+$/.exec(body);
  if (exit) return { kind: 'exit', pid, atEpochNs: at, code: exit[1] === undefined ? null : Number(exit[1]), signal: exit[2] ?? null };

  const resumed = RESUMED.exec(body);
  if (resumed) {
    const tail = body.slice(resumed[0].length);
    if (tail.trimStart().startsWith(DETACHED)) return { kind: 'detached', pid, atEpochNs: at, syscall: resumed[1]!, argsText: '' };
    const close = argsEnd(tail, 0);
    if (close === -1) return other();
    return { kind: 'resumed', pid, atEpochNs: at, syscall: resumed[1]!, argsText: tail.slice(0, close), result: resultOf(tail.slice(close + 1)) };
  }
  if (body.endsWith(DETACHED)) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)\((.*)$/.exec(body.slice(0, -DETACHED.length));
    return { kind: 'detached', pid, atEpochNs: at, syscall: m ? m[1]! : null, argsText: m ? m[2]! : '' };
  }
  const call = parseCallBody(body);
  if (call === null) return other();
  if (call.rest === null) return { kind: 'unfinished', pid, atEpochNs: at, syscall: call.syscall, argsText: call.argsText };
  return { kind: 'call', pid, atEpochNs: at, syscall: call.syscall, argsText: call.argsText, result: resultOf(call.rest) };
}

interface Pending {
  readonly atEpochNs: number;
  readonly syscall: string;
  readonly argsText: string;
}

/**
 * Turns parsed lines into complete calls. A call split across lines is emitted when its
 * `resumed` half arrives, with the time it was entered and both halves' arguments; a call that
 * never resumes (strace detached, the process exited) is emitted by `detached` or flush() with
 * result null, so no call is lost and none is emitted twice.
 */
export interface StraceAssembler {
  /** Feeds one line; returns the calls it completes (zero, one, or two for a line that cuts a pending call short). */
  push(line: StraceLine): StraceCall[];
  /** Calls still waiting for their second half, emitted with result null (at detach). */
  flush(): StraceCall[];
}

export function straceAssembler(defaultPid: number | null = null): StraceAssembler {
  const pending = new Map<number, Pending>();
  const complete = (pid: number, p: Pending, more: string, result: number | null): StraceCall => ({ pid, atEpochNs: p.atEpochNs, syscall: p.syscall, args: splitArgs(p.argsText + more), result });
  return {
    push(line) {
      if (line.kind === 'other' || line.kind === 'signal') return [];
      const pid = line.pid ?? defaultPid ?? 0;
      const waiting = pending.get(pid);
      switch (line.kind) {
        case 'call':
        case 'unfinished': {
          // A new call on a pid with one pending means the pending one will never resume
          // (strace lost it, as across an execve by another thread): it ends here, unknown.
          const out = waiting === undefined ? [] : [complete(pid, waiting, '', null)];
          if (line.kind === 'unfinished') pending.set(pid, line);
          else {
            pending.delete(pid);
            out.push({ pid, atEpochNs: line.atEpochNs, syscall: line.syscall, args: splitArgs(line.argsText), result: line.result });
          }
          return out;
        }
        case 'resumed': {
          pending.delete(pid);
          // Resumed without its first half (execve finishing in another thread's pid): the
          // second half is all there is.
          const first = waiting !== undefined && waiting.syscall === line.syscall ? waiting : { atEpochNs: line.atEpochNs, syscall: line.syscall, argsText: '' };
          const out = waiting !== undefined && first !== waiting ? [complete(pid, waiting, '', null)] : [];
          out.push(complete(pid, first, line.argsText, line.result));
          return out;
        }
        case 'detached': {
          pending.delete(pid);
          if (waiting !== undefined) return [complete(pid, waiting, '', null)];
          return line.syscall === null ? [] : [{ pid, atEpochNs: line.atEpochNs, syscall: line.syscall, args: splitArgs(line.argsText), result: null }];
        }
        case 'exit': {
          pending.delete(pid);
          return waiting === undefined ? [] : [complete(pid, waiting, '', null)];
        }
      }
    },
    flush() {
      const out = [...pending.entries()].map(([pid, p]) => complete(pid, p, '', null));
      pending.clear();
      return out;
    },
  };
}
