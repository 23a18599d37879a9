// A probe that reports what is really happening on the host it runs on: load, memory and
// process counts as metrics, and as alerts the processes that start, failed logins, and load
// or memory pressure. Every source is best effort: one that cannot be read here (no /proc,
// no auth log, no journal) is reported once as a `probe.source.skipped` event and left off,
// never retried in a loop and never fatal. It only reads; it must never change the host.
//
// Linux only in substance (it reads /proc); elsewhere it emits the skip notices and idles.

import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync, readdirSync, statSync } from 'node:fs';
import { availableParallelism, hostname } from 'node:os';
import { createInterface } from 'node:readline';
import type { Priority } from '../core/index.js';

export interface HostEvent {
  channel: 'alerts' | 'metrics';
  content: { type: string; host: string; [field: string]: unknown };
  priority: Priority;
}

export interface HostProbeOptions {
  /** How often load, memory, processes and uptime are published. */
  metricsIntervalMs?: number;
  /** How often /proc is scanned for new processes. */
  processIntervalMs?: number;
  /** How often the auth log is checked for new lines. */
  authPollMs?: number;
  /** The auth log to follow; when it does not exist the journal is tried instead. */
  authLogPath?: string;
  /** Try `journalctl -f` when the auth log does not exist. */
  journal?: boolean;
}

export interface HostProbe {
  start(emit: (e: HostEvent) => void): void;
  stop(): void;
}

export const HOST_PROBE_DEFAULTS = {
  metricsIntervalMs: 2000,
  processIntervalMs: 1000,
  authPollMs: 1000,
  authLogPath: '/var/log/auth.log',
  journal: true,
  cmdlineCharsMax: 200,
  processStartsPerScanMax: 50,
  authLineCharsMax: 300,
  authReadBytesMax: 64 * 1024,
  journalCheckTimeoutMs: 3000,
} as const;

const AUTH_FAILURE = /fail|invalid|denied/i;

export function hostProbe(options: HostProbeOptions = {}): HostProbe {
  const o = { ...HOST_PROBE_DEFAULTS, ...options };
  const host = hostname();
  const cpus = availableParallelism();
  const timers: NodeJS.Timeout[] = [];
  const skipped = new Set<string>();
  let emit: (e: HostEvent) => void = () => undefined;
  let journal: ChildProcess | undefined;
  let stopped = false;

  const send = (channel: HostEvent['channel'], priority: Priority, type: string, fields: Record<string, unknown>): void => {
    if (!stopped) emit({ channel, priority, content: { type, host, ...fields } });
  };
  /** Reports once that a source is unavailable here, and why. */
  const skip = (source: string, reason: string): void => {
    if (skipped.has(source)) return;
    skipped.add(source);
    send('alerts', 0, 'probe.source.skipped', { source, reason });
  };
  const every = (ms: number, fn: () => void): NodeJS.Timeout => {
    const t = setInterval(fn, ms).unref();
    timers.push(t);
    return t;
  };

  // (a) metrics and (d) pressure alerts, edge-triggered so a busy host is not a flood.
  let loadHigh = false;
  let memoryLow = false;
  const metrics = (): void => {
    const load = readLoadavg(skip);
    const mem = readMeminfo(skip);
    const processes = listPids(skip)?.length;
    const uptimeS = readUptimeS(skip);
    if (!load && !mem && processes === undefined && uptimeS === undefined) return;
    send('metrics', 0, 'host.metrics', { cpus, ...load, ...mem, processes, uptimeS });
    if (load && (load.load1 > cpus) !== loadHigh) {
      loadHigh = !loadHigh;
      if (loadHigh) send('alerts', 3, 'load.high', { load1: load.load1, cpus });
      else send('alerts', 0, 'load.normal', { load1: load.load1, cpus });
    }
    if (mem && (mem.memAvailableKb < mem.memTotalKb * 0.1) !== memoryLow) {
      memoryLow = !memoryLow;
      if (memoryLow) send('alerts', 2, 'memory.low', mem);
      else send('alerts', 0, 'memory.normal', mem);
    }
  };

  // (b) new processes: the first scan is the baseline. A process that starts and exits
  // between two scans is not seen; that is the price of polling instead of tracing.
  let known = new Set<number>();
  const scanProcesses = (baseline: boolean): void => {
    const pids = listPids(skip);
    if (!pids) return;
    const now = new Set(pids);
    if (!baseline) {
      const fresh = pids.filter((pid) => !known.has(pid));
      for (const pid of fresh.slice(0, o.processStartsPerScanMax)) {
        const p = readProcess(pid, o.cmdlineCharsMax);
        if (p) send('alerts', 0, 'process.start', p);
      }
      // A fork storm is one event, not thousands that crowd out everything else.
      const more = fresh.length - o.processStartsPerScanMax;
      if (more > 0) send('alerts', 1, 'process.start.burst', { unreported: more, inMs: o.processIntervalMs });
    }
    known = now;
  };

  // (c) auth failures, from the auth log or the journal.
  const authLine = (source: string, line: string): void => {
    const failure = authFailure(source, line, o.authLineCharsMax);
    if (failure) send('alerts', 2, 'auth.failure', failure);
  };
  const followAuthLog = (): void => {
    const path = o.authLogPath;
    let at = statSync(path);
    let pos = at.size;
    let partial = '';
    const timer = every(o.authPollMs, () => {
      let now;
      try {
        now = statSync(path);
      } catch {
        return; // between a rotation's rename and the new file's creation
      }
      if (now.ino !== at.ino || now.size < pos) [pos, partial] = [0, '']; // rotated or truncated
      at = now;
      if (now.size <= pos) return;
      const buf = Buffer.alloc(Math.min(now.size - pos, o.authReadBytesMax));
      try {
        const fd = openSync(path, 'r');
        try {
          pos += readSync(fd, buf, 0, buf.length, pos);
        } finally {
          closeSync(fd);
        }
      } catch (e) {
        clearInterval(timer);
        return skip('auth', `stopped following ${path}: ${(e as Error).message}`);
      }
      const lines = (partial + buf.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) authLine(path, line);
    });
  };
  const followJournal = (authLogProblem: string): void => {
    // Auth and authpriv facilities only: the whole journal has plenty of "Failed to start"
    // lines that are not about logins.
    // A journal without files (containers) answers `-f` with silence forever, so it is
    // asked once first; not with -q, which hides the "No journal files" notice.
    const filter = ['SYSLOG_FACILITY=4', 'SYSLOG_FACILITY=10'];
    execFile('journalctl', ['-n1', '--no-pager', ...filter], { timeout: o.journalCheckTimeoutMs }, (err, _out, stderr) => {
      if (stopped) return;
      const why = err ? err.message.split('\n')[0] : /no journal files/i.test(stderr) ? stderr.trim() : undefined;
      if (why) return skip('auth', `${authLogProblem}, and journalctl does not work here (${why})`);
      journal = spawn('journalctl', ['-f', '-n0', '-o', 'cat', ...filter], { stdio: ['ignore', 'pipe', 'ignore'] });
      journal.unref();
      journal.on('error', (e) => skip('auth', `journalctl -f failed: ${e.message}`));
      journal.on('exit', (code, signal) => {
        if (!stopped) skip('auth', `journalctl -f exited (${signal ?? `code ${code}`}); auth failures are no longer followed`);
      });
      const stdout = journal.stdout!;
      (stdout as unknown as { unref?: () => void }).unref?.();
      createInterface({ input: stdout }).on('line', (line) => authLine('journal', line));
    });
  };

  return {
    start(fn) {
      if (timers.length > 0 || stopped) throw new Error('a host probe starts once');
      emit = fn;
      scanProcesses(true);
      every(o.processIntervalMs, () => scanProcesses(false));
      every(o.metricsIntervalMs, metrics);
      setImmediate(metrics).unref();
      const problem = authLogProblem(o.authLogPath);
      if (problem === undefined) followAuthLog();
      else if (o.journal) followJournal(problem);
      else skip('auth', `${problem}, and the journal is switched off`);
    },
    stop() {
      stopped = true;
      for (const t of timers) clearInterval(t);
      journal?.kill();
    },
  };
}

/** Why the auth log cannot be followed (missing, or unreadable without the adm group), if so. */
function authLogProblem(path: string): string | undefined {
  try {
    closeSync(openSync(path, 'r'));
    return statSync(path).isFile() ? undefined : `${path} is not a file`;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? `${path} does not exist` : `${path} cannot be read (${code ?? (e as Error).message})`;
  }
}

type Skip = (source: string, reason: string) => void;

function readProcFile(path: string, skip: Skip): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    skip(path, `cannot read ${path}: ${(e as Error).message}`);
    return undefined;
  }
}

// The parsers below take the text the probe read, so they can be fuzzed without /proc
// (test/fuzz/monitor-targets.ts). Each returns undefined for text it does not recognise: a
// kernel format change or a truncated read costs that metric, never the probe.

/** "0.66 0.44 0.22 3/105 4155": the 1, 5 and 15 minute load averages. */
export function parseLoadavg(text: string): { load1: number; load5: number; load15: number; loadavg: string } | undefined {
  const f = text.trim().split(/\s+/);
  if (f.length < 3) return undefined;
  const [load1, load5, load15] = f.slice(0, 3).map(Number) as [number, number, number];
  if (![load1, load5, load15].every((x) => Number.isFinite(x) && x >= 0)) return undefined;
  return { load1, load5, load15, loadavg: f.slice(0, 3).join(' ') };
}

/** MemTotal and MemAvailable, in kB, from /proc/meminfo. */
export function parseMeminfo(text: string): { memTotalKb: number; memAvailableKb: number } | undefined {
  const kb = (key: string): number | undefined => {
    const m = text.match(new RegExp(`^${key}:\\s+(\\d{1,15}) kB`, 'm'));
    return m ? Number(m[1]) : undefined;
  };
  const memTotalKb = kb('MemTotal');
  const memAvailableKb = kb('MemAvailable');
  return memTotalKb === undefined || memAvailableKb === undefined ? undefined : { memTotalKb, memAvailableKb };
}

/** Whole seconds since boot, from /proc/uptime. */
export function parseUptime(text: string): number | undefined {
  const s = Math.floor(Number(text.split(' ')[0]));
  return Number.isSafeInteger(s) && s >= 0 ? s : undefined;
}

/**
 * comm and ppid from /proc/PID/stat. comm is in parentheses and may itself hold spaces and ")"
 * (a process names itself): the last ")" ends it.
 */
export function parseProcStat(stat: string): { comm: string; ppid: number } | undefined {
  const open = stat.indexOf('(');
  const close = stat.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const ppid = Number(stat.slice(close + 2).split(' ')[1]);
  return Number.isSafeInteger(ppid) && ppid >= 0 ? { comm: stat.slice(open + 1, close), ppid } : undefined;
}

/** The event for one line of an auth log, if it reports a failure; the line is cut to charsMax. */
export function authFailure(source: string, line: string, charsMax: number): { source: string; line: string } | undefined {
  return AUTH_FAILURE.test(line) ? { source, line: line.slice(0, charsMax) } : undefined;
}

function readLoadavg(skip: Skip): ReturnType<typeof parseLoadavg> {
  const text = readProcFile('/proc/loadavg', skip);
  return text === undefined ? undefined : parseLoadavg(text);
}

function readMeminfo(skip: Skip): ReturnType<typeof parseMeminfo> {
  const text = readProcFile('/proc/meminfo', skip);
  return text === undefined ? undefined : parseMeminfo(text);
}

function readUptimeS(skip: Skip): number | undefined {
  const text = readProcFile('/proc/uptime', skip);
  return text === undefined ? undefined : parseUptime(text);
}

function listPids(skip: Skip): number[] | undefined {
  try {
    return readdirSync('/proc')
      .filter((name) => /^\d+$/.test(name))
      .map(Number);
  } catch (e) {
    skip('processes', `cannot list /proc: ${(e as Error).message}`);
    return undefined;
  }
}

/** One process's identity; undefined when it exited before it could be read. */
function readProcess(pid: number, cmdlineCharsMax: number): Record<string, unknown> | undefined {
  try {
    const parsed = parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    if (parsed === undefined) return undefined;
    const { comm, ppid } = parsed;
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '').replaceAll('\0', ' ').slice(0, cmdlineCharsMax);
    const uidLine = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^Uid:\s+(\d+)/m);
    return { pid, ppid, comm, cmdline, uid: uidLine ? Number(uidLine[1]) : undefined };
  } catch {
    return undefined;
  }
}
