// The `vmi` back end: monitors a QEMU guest from outside it, through QEMU's gdbstub. Nothing
// runs in the guest for it: the process list is read out of guest memory, syscalls are
// breakpoints on the guest kernel's handlers (only the listed ones, so the cost follows the
// list), and a change of sets inserts and removes breakpoints while the guest is paused.
//
// One driver loop owns the gdbstub: it continues the guest and waits for it to stop, at a
// breakpoint (a traced call: read who made it and its arguments, then resume past it) or on
// our break (a set change or a due extraction waits in `pending`, done while stopped).
// Resuming past a breakpoint: the handlers start with ftrace's 5-byte NOP, so moving rip past
// it (one `P` packet) resumes exactly as executing it would, and the breakpoint stays in place;
// a handler that starts otherwise gets remove, single step, re-insert.
//
// Cost accounting. A breakpoint stop costs the guest far more than the pause we see: QEMU 7.2
// flushes its whole translated-code cache at every debug stop, so after each hit the guest
// re-translates its working set while it appears to run (docs/vmi.md has the measurements).
// So traced time is split by the guest's progress (progress.ts): the workload prints a line
// per round, the untraced rounds per ns give its rate, and while traced, compute = rounds /
// rate; the rest of the wall time is what the traps cost. Pauses for extractions and set
// changes (a break, no flush) are timed directly. Untraced syscall rates come from a census
// at start (every handler trapped for a few seconds, nothing published) and, for a traced
// call, from its hits.

import { FitError } from '../../core/index.js';
import { EMPTY_CONFIG, applySetChange, type MonitorConfig, type SetName } from '../sets.js';
import type { Calibration, CostReport, EventSink, MonitorBackend, StopTally } from '../backend.js';
import { GdbClient } from './gdb-client.js';
import { insertBreakpoint, parseGsBases, parseRegisters, parseStop, readMemory, parseMemory, removeBreakpoint, writeRegister } from './gdb-rsp.js';
import { ProgressSplit } from '../progress.js';
import { SIM_COST_PROFILES } from '../sim-profiles.js';
import { Introspector } from './introspect.js';
import type { Profile } from './profile.js';
import type { Guest } from './qemu.js';

const VMI_SUPPORTS: readonly SetName[] = ['proclist', 'syscalls'];
/** ftrace's 5-byte NOP (`nopl 0x0(%rax,%rax,1)`), which starts every traceable handler. */
const NOP5 = '0f1f440000';
const RIP = 16;
/** Untraced run before the census, to learn the workload's round rate, after a settling time. */
export const VMI_SETTLE_MS = 700;
export const VMI_WARMUP_MS = 2000;
/** The census: every handler trapped this long, to learn every syscall's rate and a trap's cost. */
export const VMI_CENSUS_MS = 3000;
/** Rounds of the workload the census waits for: its compute is measured in rounds. */
export const VMI_CENSUS_ROUNDS = 5;
export const VMI_CENSUS_MAX_MS = 20_000;
const SAMPLE_MS = 100;

export interface VmiOptions {
  readonly guest: Guest;
  readonly profile: Profile;
  readonly sink: EventSink;
  readonly log?: (line: string) => void;
  /** 0 skips the census (tests that do not predict); default VMI_CENSUS_MS. */
  readonly censusMs?: number;
}

type Job = () => Promise<void>;
const hrNs = (): number => Number(process.hrtime.bigint());
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface VmiBackend extends MonitorBackend {
  /** What start() measured: the calibration it now uses. */
  calibration(): Calibration;
}

export function vmiBackend(o: VmiOptions): VmiBackend {
  const { guest, profile, sink } = o;
  const handlerOf = new Map<bigint, string>(Object.entries(profile.handlers).map(([name, a]) => [BigInt(`0x${a}`), name]));
  let gdb: GdbClient | undefined;
  let spy: Introspector | undefined;
  let cal: Calibration = SIM_COST_PROFILES['vmi-tcg'];
  let config: MonitorConfig = EMPTY_CONFIG;
  let configVersion = 0;
  let startNs: number | undefined;
  const seq = { syscalls: 0, proclist: 0 };
  /** Breakpoints in place, and how to get past each: bytes to skip, or 0 to single-step. */
  const breakpoints = new Map<bigint, number>();
  const skipOf = new Map<bigint, number>();
  /** While set (the census at start), hits are counted here and not published. */
  let census: Map<string, number> | undefined;
  const pending: Job[] = [];
  let running = false;
  let stopping = false;
  let driver: Promise<void> | undefined;
  let fatal: FitError | undefined;

  // Accounting (see the top of the file). Pauses we time directly are kept off the clock the
  // progress split runs on.
  let split = new ProgressSplit(cal.trapNs + 2 * cal.switchNs);
  let directPausesNs = 0;
  let pausedSince: number | undefined;
  const trapCount = { n: 0 };
  const extraction = { count: 0, stoppedNs: 0 };
  /** Calls per round of the workload, per syscall and in all, from the census. */
  let perRound: Record<string, number> = {};
  let perRoundTotal = 0;
  const calls: Record<string, number> = {};
  let callsTotal = 0;
  let lastRounds = 0;
  let processes = 0;
  let sampler: NodeJS.Timeout | undefined;
  let proclistTimer: NodeJS.Timeout | undefined;

  const nowNs = (): number => (startNs === undefined ? 0 : hrNs() - startNs);
  const traced = (): boolean => breakpoints.size > 0;

  /** The clock the progress split runs on: wall time less our own pauses, standing still during one. */
  const splitClock = (): number => (pausedSince ?? hrNs()) - directPausesNs;

  function sample(): void {
    if (startNs === undefined) return;
    const rounds = guest.rounds;
    split.sample(splitClock(), rounds, trapCount.n, traced());
    // Untraced calls are counted by the workload's progress at the census's calls per round
    // (a traced call counts as it traps): per round, not per ns, because the guest's speed
    // drifts and the census's rounds per ns were those of its moment.
    const dRounds = rounds - lastRounds;
    lastRounds = rounds;
    const tracedNames = tracedSet();
    for (const [name, n] of Object.entries(perRound)) if (!tracedNames.has(name)) calls[name] = (calls[name] ?? 0) + n * dRounds;
    callsTotal += (perRoundTotal - [...tracedNames].reduce((a, name) => a + (perRound[name] ?? 0), 0)) * dRounds;
  }

  function tracedSet(): Set<string> {
    return new Set([...breakpoints.keys()].map((a) => handlerOf.get(a)!));
  }

  /** Puts the breakpoints for `names` in place and takes the others out; guest stopped. */
  async function setBreakpoints(names: readonly string[]): Promise<void> {
    sample();
    const want = new Set(names.map((n) => BigInt(`0x${profile.handlers[n]}`)));
    for (const a of [...breakpoints.keys()]) {
      if (want.has(a)) continue;
      await gdb!.request(removeBreakpoint(a));
      breakpoints.delete(a);
    }
    for (const a of want) {
      if (breakpoints.has(a)) continue;
      if (!skipOf.has(a)) skipOf.set(a, parseMemory(await gdb!.request(readMemory(a, 5)), 5).toString('hex') === NOP5 ? 5 : 0);
      const ok = (await gdb!.request(insertBreakpoint(a))).toString();
      if (ok !== 'OK') throw new FitError('FIT_ERR_VMI', `the gdbstub refused a breakpoint on ${handlerOf.get(a)} (${ok})`);
      breakpoints.set(a, skipOf.get(a)!);
    }
  }

  function namesFor(c: MonitorConfig): string[] {
    const list = c.syscalls?.syscalls;
    if (list === undefined) return [];
    return list === 'all' ? Object.keys(profile.handlers) : list;
  }

  async function onHit(reply: Buffer): Promise<boolean> {
    const regs = parseRegisters(reply);
    const name = handlerOf.get(regs.rip);
    if (name === undefined || !breakpoints.has(regs.rip)) return false;
    trapCount.n++;
    if (census) census.set(name, (census.get(name) ?? 0) + 1);
    else {
      calls[name] = (calls[name] ?? 0) + 1;
      callsTotal++;
      // A read the stub refuses (a guest whose memory is not what the profile says) costs this
      // event its details, not the monitoring: it is published with pid -1 and the log says why.
      const who = await spy!.current(parseGsBases(reply).gsBase).catch((e: Error) => (o.log?.(`vmi: cannot tell who called ${name}: ${e.message}`), { pid: -1, comm: '?' }));
      const args = who.pid < 0 ? [] : await spy!.syscallArgs(name, regs.rdi).catch(() => []);
      sink({ set: 'syscalls', seq: ++seq.syscalls, atNs: nowNs(), pid: who.pid, comm: who.comm, syscall: name, args, result: null, configVersion });
    }
    const skip = breakpoints.get(regs.rip)!;
    if (skip > 0) await gdb!.request(writeRegister(RIP, regs.rip + BigInt(skip)));
    else {
      await gdb!.request(removeBreakpoint(regs.rip));
      await gdb!.request('s');
      await gdb!.request(insertBreakpoint(regs.rip));
    }
    return true;
  }

  /** One walk of the task list, guest paused; tallied as an extraction (the walk's own time). */
  async function extractProclist(): Promise<void> {
    const t0 = hrNs();
    const list = await spy!.processes();
    extraction.count++;
    extraction.stoppedNs += hrNs() - t0;
    processes = list.length;
    sink({ set: 'proclist', seq: ++seq.proclist, atNs: nowNs(), processes: list, configVersion });
  }

  async function runPending(): Promise<void> {
    while (pending.length > 0) await pending.shift()!();
  }

  async function drive(): Promise<void> {
    try {
      while (!stopping) {
        // No await between here and the continue: a job queued from now on sees `running` and breaks in.
        if (pending.length > 0) {
          pausedSince = hrNs();
          await runPending();
          directPausesNs += hrNs() - pausedSince;
          pausedSince = undefined;
          continue;
        }
        running = true;
        const reply = await gdb!.request('c', Infinity);
        running = false;
        const stoppedAt = hrNs();
        const stop = parseStop(reply);
        const hit = stop?.signal === 5 && breakpoints.size > 0 && (await onHit(await gdb!.request('g')));
        // A hit's own pause is charged to the traps by the progress split; a pause for our own
        // work (a break, or jobs done at a hit) is timed here and kept off that clock.
        pausedSince = hit ? hrNs() : stoppedAt;
        await runPending();
        directPausesNs += hrNs() - pausedSince;
        pausedSince = undefined;
      }
    } catch (err) {
      fatal = err instanceof FitError ? err : new FitError('FIT_ERR_VMI', `the vmi back end lost the guest: ${(err as Error).message}`);
      o.log?.(fatal.message);
      for (const job of pending.splice(0)) void job().catch(() => undefined);
    }
  }

  /** Runs `job` with the guest stopped, at the driver's next stop (breaking in if it runs). */
  function whileStopped<T>(job: () => Promise<T>): Promise<T> {
    if (fatal) return Promise.reject(fatal);
    return new Promise<T>((resolve, reject) => {
      pending.push(async () => {
        if (fatal) return reject(fatal);
        try {
          resolve(await job());
        } catch (e) {
          reject(e);
        }
      });
      if (running) gdb!.sendBreak();
    });
  }

  // A walk that fails (a task list that does not close: corrupt, or a guest changing it under
  // us) is logged and tried again next period; it does not end the monitoring.
  const proclistJob: Job = async () => {
    await extractProclist().catch((e: Error) => o.log?.(`vmi: process list not read: ${e.message}`));
    armProclist();
  };

  function armProclist(): void {
    clearTimeout(proclistTimer);
    const period = config.proclist?.periodMs;
    if (period === undefined || stopping) return;
    proclistTimer = setTimeout(() => {
      pending.push(proclistJob);
      if (running) gdb!.sendBreak();
    }, period);
  }

  interface Phase {
    compute: number;
    stopped: number;
    traps: number;
    rounds: number;
  }

  /**
   * Traps `names` for at least minMs, longer until the workload has completed
   * VMI_CENSUS_ROUNDS rounds (the progress its compute is measured by), at most maxMs. Both
   * ends are taken with the guest stopped, at the instant the breakpoints go in and come out.
   */
  async function trapPhase(names: readonly string[], minMs: number, maxMs: number): Promise<Phase> {
    const snapshot = (): Phase => ({ compute: split.computeNs, stopped: split.stoppedNs, traps: trapCount.n, rounds: guest.rounds });
    // The console lags the guest by a round or two at speed: let it drain while the guest is
    // paused, so the phase's rounds are exactly those the guest did with the breakpoints in.
    const before = await whileStopped(async () => {
      await guest.settle();
      sample();
      const s = snapshot();
      await setBreakpoints(names);
      return s;
    });
    const t0 = Date.now();
    await sleep(minMs);
    while (guest.rounds - before.rounds < VMI_CENSUS_ROUNDS && Date.now() - t0 < maxMs) await sleep(100);
    const after = await whileStopped(async () => {
      await guest.settle();
      sample();
      const s = snapshot();
      await setBreakpoints([]);
      return s;
    });
    return { compute: after.compute - before.compute, stopped: after.stopped - before.stopped, traps: after.traps - before.traps, rounds: after.rounds - before.rounds };
  }

  /**
   * Untraced warm-up, then the census: every handler trapped, which gives every syscall's rate
   * and what a trap costs when every call traps; then one call of about an eighth of the
   * traffic trapped alone, which gives what a trap costs when traps are sparser. Under TCG a
   * trap costs more the more code the guest runs until the next one (it re-translates it all),
   * and the two points give how much more (Calibration.trapGapExponent).
   */
  async function calibrate(censusMs: number): Promise<void> {
    // Attaching stopped the guest with a debug stop, which flushed its translated code: its
    // first moments run slow. The untraced rate is taken after they pass.
    await sleep(VMI_SETTLE_MS);
    split = new ProgressSplit(cal.trapNs + 2 * cal.switchNs);
    split.sample(splitClock(), guest.rounds, trapCount.n, false);
    await sleep(VMI_WARMUP_MS);
    sample();
    if (censusMs <= 0) return;
    census = new Map();
    const dense = await trapPhase(Object.keys(profile.handlers), censusMs, VMI_CENSUS_MAX_MS);
    const counts = census;
    census = undefined;
    if (dense.compute <= 0 || dense.traps === 0 || dense.rounds < 1 || split.callsPerComputeNs === null) {
      o.log?.(`vmi: the census saw ${dense.traps} traps over ${dense.rounds} rounds of the workload: too few to calibrate; using the defaults (docs/vmi.md)`);
      return;
    }
    perRound = Object.fromEntries([...counts].map(([n, c]) => [n, c / dense.rounds]));
    perRoundTotal = dense.traps / dense.rounds;
    const perTrap = dense.stopped / dense.traps;
    const switchNs = Math.min(cal.switchNs, perTrap / 4);
    cal = { ...cal, trapNs: Math.max(0, perTrap - 2 * switchNs), switchNs, trapGapNs: dense.compute / dense.traps };
    o.log?.(`vmi census: ${dense.traps} traps over ${dense.rounds} rounds of the workload (${(dense.compute / 1e6).toFixed(1)} ms of its compute), ${counts.size} syscalls seen; ${(perTrap / 1e6).toFixed(1)} ms per trap with every call trapped`);
    const sparse = [...counts].filter(([, c]) => c >= 2 && c <= dense.traps / 2).sort((x, y) => Math.abs(Math.log((8 * x[1]) / dense.traps)) - Math.abs(Math.log((8 * y[1]) / dense.traps)))[0];
    const noExponent = (why: string): void => o.log?.(`vmi: one trap cost whatever the density of traps (${why})`);
    if (sparse === undefined) return noExponent('no call of the census is a small share of the traffic');
    census = new Map();
    const p = await trapPhase([sparse[0]], Math.min(censusMs, 2000), VMI_CENSUS_MAX_MS);
    census = undefined;
    if (p.traps < 3 || p.compute <= 0 || p.rounds < 1) return noExponent(`${sparse[0]} alone trapped ${p.traps} times over ${p.rounds} rounds`);
    const sparseCost = p.stopped / p.traps;
    const exponent = Math.log(sparseCost / perTrap) / Math.log(p.compute / p.traps / cal.trapGapNs!);
    if (!Number.isFinite(exponent)) return noExponent(`${sparse[0]} alone trapped as densely as every call`);
    cal = { ...cal, trapGapExponent: Math.min(1, Math.max(0, exponent)) };
    o.log?.(`vmi: ${(sparseCost / 1e6).toFixed(1)} ms per trap with ${sparse[0]} alone trapped (${((p.compute / p.traps) / 1e3).toFixed(0)} µs of compute between traps, against ${(cal.trapGapNs! / 1e3).toFixed(0)} µs): cost grows as gap^${cal.trapGapExponent!.toFixed(2)}`);
  }

  return {
    kind: 'vmi',
    supports: VMI_SUPPORTS,
    async start() {
      if (startNs !== undefined) return;
      gdb = await GdbClient.connect('127.0.0.1', guest.gdbPort);
      await gdb.enableRegisterPackets();
      spy = new Introspector(gdb, profile);
      // One walk while paused: the guest's size, and what a walk costs per task.
      const t0 = hrNs();
      processes = (await spy.processes()).length;
      const walkNs = hrNs() - t0;
      cal = { ...cal, proclistBaseNs: 0, proclistPerProcessNs: Math.max(0, walkNs - 2 * cal.switchNs) / Math.max(1, processes), filesBaseNs: 0, filesPerFileNs: 0 };
      startNs = hrNs();
      split.sample(splitClock(), guest.rounds, 0, false);
      driver = drive();
      sampler = setInterval(sample, SAMPLE_MS);
      await calibrate(o.censusMs ?? VMI_CENSUS_MS);
      // What start() cost is not the monitoring's: the report starts after it, with what it learned.
      const rate = split.callsPerComputeNs;
      startNs = hrNs();
      directPausesNs = 0;
      trapCount.n = 0;
      extraction.count = 0;
      extraction.stoppedNs = 0;
      split = new ProgressSplit(cal.trapNs + 2 * cal.switchNs, rate);
      split.sample(splitClock(), guest.rounds, 0, false);
      lastRounds = guest.rounds;
      for (const k of Object.keys(calls)) delete calls[k];
      callsTotal = 0;
      o.log?.(`vmi: ${processes} guest tasks; a trap costs the guest ${((cal.trapNs + 2 * cal.switchNs) / 1e6).toFixed(1)} ms, a task list walk ${(walkNs / 1e6).toFixed(1)} ms`);
    },
    async stop() {
      if (stopping) return;
      stopping = true;
      clearInterval(sampler);
      clearTimeout(proclistTimer);
      if (gdb && running) gdb.sendBreak();
      await driver;
      await gdb?.detach();
    },
    async apply(change) {
      if (startNs === undefined || stopping) throw new FitError('FIT_ERR_USAGE', 'the vmi back end applies set changes between start() and stop() only');
      const { config: next, effects } = applySetChange(config, change);
      const unknown = namesFor(next).filter((n) => profile.handlers[n] === undefined);
      if (unknown.length > 0) throw new FitError('FIT_ERR_MONITOR_CONFIG', `the guest kernel has no syscall ${unknown.join(', ')} (the profile of ${profile.kernel} lists ${Object.keys(profile.handlers).length})`, { set: 'syscalls' });
      return whileStopped(async () => {
        await setBreakpoints(namesFor(next));
        const newlyPeriodic = next.proclist !== undefined && (config.proclist === undefined || config.proclist.periodMs !== next.proclist.periodMs);
        config = next;
        if (effects.length > 0) configVersion++;
        if (next.proclist === undefined) clearTimeout(proclistTimer);
        else if (newlyPeriodic) {
          await extractProclist();
          armProclist();
        }
        return { config, effects, configVersion };
      });
    },
    config: () => config,
    costs(): CostReport {
      sample();
      const traps: StopTally = { count: trapCount.n, stoppedNs: split.stoppedNs };
      return {
        kind: 'vmi',
        atNs: nowNs(),
        computeNs: split.computeNs,
        stoppedNs: split.stoppedNs + directPausesNs,
        traps,
        extractions: { proclist: { ...extraction }, files: { count: 0, stoppedNs: 0 } },
        syscalls: Object.fromEntries(Object.entries(calls).map(([n, c]) => [n, Math.round(c)])),
        syscallsTotal: Math.round(callsTotal),
        processes,
        openFiles: 0,
      };
    },
    calibration: () => cal,
  };
}
