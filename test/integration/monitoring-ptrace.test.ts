// The ptrace back end (src/monitoring/ptrace.ts) and its strace driver on real child processes:
// traced calls arrive with pid, name, arguments and result, untraced ones do not; switching the
// list while attached loses and duplicates nothing; disabling detaches. Each test is a few
// seconds at most: the children are tiny shell loops, and strace stops them at every call.

import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MonitorEvent, SyscallEvent } from '../../src/monitoring/backend.js';
import { calibratePtrace } from '../../src/monitoring/ptrace-calibrate.js';
import { ptraceBackend } from '../../src/monitoring/ptrace.js';
import { startSyscallCounter } from '../../src/monitoring/rates.js';
import { startStrace, type StraceCall } from '../../src/monitoring/strace.js';
import { launchTarget } from '../../src/monitoring/target.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const dir = mkdtempSync(join(tmpdir(), 'fit-ptrace-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function tracerOf(pid: number): number {
  return Number(/^TracerPid:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
}

const syscallEvents = (events: readonly MonitorEvent[]): SyscallEvent[] => events.filter((e): e is SyscallEvent => e.set === 'syscalls');

function assertSeqs(events: readonly SyscallEvent[]): void {
  assert.deepEqual(
    events.map((e) => e.seq),
    events.map((_, i) => i + 1),
    'syscall seqs run 1, 2, 3 … with no gap or repeat',
  );
}

describe('strace driver', { timeout: 30_000 }, () => {
  it('attaches to a running child, hands on its calls complete, and detaches leaving it running', async () => {
    const known = join(dir, 'known-strace.txt');
    writeFileSync(known, 'x\n');
    const child = spawn('sh', ['-c', `while :; do : < ${known}; sleep 0.02; done`], { stdio: 'ignore' });
    try {
      await sleep(50);
      const calls: StraceCall[] = [];
      const errors: string[] = [];
      const s = await startStrace({ pids: [child.pid!], onCall: (c) => calls.push(c), onError: (m) => errors.push(m) });
      assert.equal(tracerOf(child.pid!), s.pid, 'attached when startStrace resolves');
      const opensOf = (): StraceCall[] => calls.filter((c) => c.syscall === 'openat' && c.args[1] === JSON.stringify(known));
      // Wait for the loop's opens rather than a fixed time: on a loaded machine strace's stops
      // slow the loop down.
      for (const deadline = Date.now() + 10_000; opensOf().length < 4 && Date.now() < deadline; ) await sleep(50);
      await s.detach();
      assert.equal(tracerOf(child.pid!), 0, 'detached');
      assert.equal(child.exitCode, null, 'the child still runs');
      const opens = opensOf();
      assert.ok(opens.length >= 3, `the loop's opens were seen (${opens.length})`);
      // A call the detach cut between entry and exit is handed on with result null (strace.ts):
      // only the child's last call may be one.
      const lastOfChild = calls.filter((c) => c.pid === child.pid).at(-1);
      for (const o of opens) {
        assert.equal(o.pid, child.pid);
        if (o.result === null && o === lastOfChild) continue;
        assert.ok(o.result !== null && o.result >= 0, `openat returned an fd: ${o.result}`);
      }
      assert.ok(calls.some((c) => c.syscall === 'execve' && c.pid !== child.pid), 'the sleep children are followed (-f)');
      assert.ok(calls.every((c) => Number.isFinite(c.atEpochNs) && Math.abs(c.atEpochNs / 1e6 - Date.now()) < 60_000), 'timestamps are epoch ns');
      // strace can deadlock detaching from a shell caught in vfork; detach then kills it (the
      // next test), which is a detach all the same.
      assert.deepEqual(errors.filter((m) => !/did not detach within/.test(m)), []);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('kills a strace that does not detach on SIGINT, says so, and leaves the child running untraced', async () => {
    // strace -I 3 blocks SIGINT: the stand-in for strace 6.1's detach deadlock on a vfork.
    const wrapper = join(dir, 'strace-no-sigint');
    writeFileSync(wrapper, `#!/bin/sh\nexec /usr/bin/strace -I 3 "$@"\n`, { mode: 0o755 });
    const child = spawn('sh', ['-c', 'while :; do sleep 0.02; done'], { stdio: 'ignore' });
    try {
      await sleep(50);
      const errors: string[] = [];
      const s = await startStrace({ pids: [child.pid!], straceBin: wrapper, onCall: () => {}, onError: (m) => errors.push(m) });
      assert.equal(tracerOf(child.pid!), s.pid);
      const started = Date.now();
      await s.detach();
      assert.ok(Date.now() - started >= 2_500, 'it was given its time to detach first');
      assert.equal(tracerOf(child.pid!), 0, 'detached');
      await sleep(100);
      assert.equal(child.exitCode, null, 'the child still runs');
      assert.equal(errors.length, 1, errors.join('; '));
      assert.match(errors[0]!, /strace did not detach within 3000 ms of SIGINT; killed it/);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('ptrace back end', { timeout: 60_000 }, () => {
  it('reports the traced calls of a launched script and its children with pid, args and result; not the others', async () => {
    const known = join(dir, 'known.txt');
    writeFileSync(known, 'hello\n');
    const missing = join(dir, 'missing.txt');
    const script = `exec 3< ${known}; cat ${known} > /dev/null; cat ${missing} 2>/dev/null; dd if=/dev/zero of=/dev/null bs=1 count=200 status=none; exit 0`;
    const target = await launchTarget('sh', ['-c', script], { stdio: 'ignore' });
    const events: MonitorEvent[] = [];
    const errors: string[] = [];
    const counter = await startSyscallCounter(target.pid);
    const backend = ptraceBackend({ target, sink: (e) => events.push(e), counter, onError: (m) => errors.push(m) });
    await backend.start();
    const { configVersion } = await backend.apply({ enable: [{ set: 'syscalls', syscalls: ['openat'] }], disable: [] });
    target.resume();
    const exit = await target.exited;
    assert.equal(exit.code, 0);
    await sleep(50);
    await backend.stop();

    const calls = syscallEvents(events);
    assertSeqs(calls);
    assert.ok(calls.length > 0);
    assert.ok(calls.every((e) => e.syscall === 'openat' && e.configVersion === configVersion), 'only the listed syscall is reported');
    const shellOpen = calls.find((e) => e.args[1] === JSON.stringify(known) && e.pid === target.pid);
    assert.ok(shellOpen, 'the shell opening the known file is reported with its pid and path');
    assert.ok(shellOpen.result !== null && shellOpen.result >= 0);
    const catOpen = calls.find((e) => e.args[1] === JSON.stringify(known) && e.pid !== target.pid);
    assert.ok(catOpen && catOpen.result !== null && catOpen.result >= 0, 'cat, a child, is traced too');
    const failed = calls.find((e) => e.args[1] === JSON.stringify(missing));
    assert.equal(failed?.result, -2, 'a failed open reports -ENOENT');

    const costs = backend.costs();
    assert.ok((costs.syscalls.read ?? 0) >= 200 && (costs.syscalls.write ?? 0) >= 200, 'untraced calls are counted by name (dd: 200 reads, 200 writes)');
    assert.ok(costs.traps.count >= 400 && costs.traps.count === Object.values(costs.syscalls).reduce((a, b) => a + b, 0), 'every call stopped the target: all are traps');
    const cal = backend.calibration();
    assert.equal(cal.trapsEverySyscall, true);
    // Traced from its first instruction, the target was never seen untraced: no rate to measure
    // its progress by, so stopped time is stops × the calibrated cost (progress.ts).
    const perStop = cal.trapNs + 2 * cal.switchNs;
    assert.ok(Math.abs(costs.traps.stoppedNs - costs.traps.count * perStop) < perStop, `stopped ${costs.traps.stoppedNs} ns for ${costs.traps.count} stops of ${perStop} ns`);
    // The in-kernel counter sees what strace sees (within perf's last interval), and more when it
    // started earlier; without it the named calls are the total.
    assert.ok(costs.syscallsTotal >= costs.traps.count);
    if (counter.unavailable === null) assert.ok(counter.total() >= 0.9 * costs.traps.count, `perf counted ${counter.total()} of ${costs.traps.count} calls`);
    assert.ok(costs.computeNs >= 0 && costs.computeNs + costs.stoppedNs >= costs.atNs - 1);
    assert.deepEqual(errors, []);
  });

  it('switching the list while attached loses and duplicates nothing, and disabling detaches', async () => {
    const data = join(dir, 'data.txt');
    writeFileSync(data, 'hello\n');
    const stop = join(dir, 'stop');
    // A one-process loop (all builtins; `true`, not the special `:`, whose failed redirection would end the shell): iteration i opens f.i (ENOENT) and reads data byte by byte.
    const script = `i=0; while [ ! -e ${stop} ]; do i=$((i+1)); true < ${dir}/f.$i; read x < ${data}; done`;
    const target = await launchTarget('sh', ['-c', script], { stdio: 'ignore' });
    const events: MonitorEvent[] = [];
    const backend = ptraceBackend({ target, sink: (e) => events.push(e) });
    await backend.start();
    target.resume();
    await sleep(100);
    const v1 = (await backend.apply({ enable: [{ set: 'syscalls', syscalls: ['openat'] }], disable: [] })).configVersion;
    await sleep(400);
    const switchAtNs = backend.costs().atNs;
    const v2 = (await backend.apply({ enable: [{ set: 'syscalls', syscalls: ['read'] }], disable: [] })).configVersion;
    await sleep(400);
    const v3 = (await backend.apply({ enable: [], disable: ['syscalls'] })).configVersion;
    const offAtNs = backend.costs().atNs;
    assert.equal(tracerOf(target.pid), 0, 'disabling syscalls detached strace');
    const trapsOff = backend.costs().traps.count;
    await sleep(200);
    assert.equal(backend.costs().traps.count, trapsOff, 'no stops after the detach');
    writeFileSync(stop, '');
    await target.exited;
    await backend.stop();

    assert.ok(v1 < v2 && v2 < v3);
    const calls = syscallEvents(events);
    assertSeqs(calls);
    const opens = calls.filter((e) => e.syscall === 'openat');
    const reads = calls.filter((e) => e.syscall === 'read');
    assert.equal(opens.length + reads.length, calls.length, 'nothing unlisted is reported');
    assert.ok(opens.length >= 3 && reads.length >= 3, `both lists reported calls (${opens.length} openat, ${reads.length} read)`);
    assert.deepEqual(opens.filter((e) => !(e.configVersion === v1 && e.pid === target.pid)), [], 'opens under the first list only');
    assert.deepEqual(reads.filter((e) => !(e.configVersion === v2 && e.pid === target.pid)), [], 'reads under the second list only');
    const missingOpens = opens.filter((e) => /\/f\.\d+"$/.test(e.args[1]!));
    const dataOpens = opens.filter((e) => e.args[1] === JSON.stringify(data));
    assert.equal(missingOpens.length + dataOpens.length, opens.length);
    assert.ok(missingOpens.every((e) => e.result === -2) && dataOpens.every((e) => e.result !== null && e.result >= 0));
    // Every iteration between the first and last reported open was reported, once, with its
    // open of the data file (one more or less at either end of the window).
    const iterations = missingOpens.map((e) => Number(/f\.(\d+)"$/.exec(e.args[1]!)![1]));
    assert.deepEqual(iterations, iterations.map((_, k) => iterations[0]! + k), 'opens are reported for consecutive iterations');
    assert.ok(Math.abs(dataOpens.length - missingOpens.length) <= 1, `${dataOpens.length} data opens for ${missingOpens.length} iterations`);
    // The switch instant splits the two lists: no open after it, no read before it.
    const lastOpen = Math.max(...opens.map((e) => e.atNs));
    const firstRead = Math.min(...reads.map((e) => e.atNs));
    assert.ok(lastOpen <= switchAtNs + 50e6 && lastOpen < firstRead, 'openat reported up to the switch, read after it');
    assert.ok(reads.every((e) => e.atNs <= offAtNs), 'nothing reported after the disable');
    // The shell's `read` builtin reads its line one byte at a time. Only the first and the last
    // read may be cut: one strace found in progress when it attached (only its resumed half,
    // so its arguments start mid-way), one it left in progress at the detach (result null).
    const cut = reads.filter((e) => e.args.length !== 3);
    assert.ok(cut.every((e) => e === reads[0] || e === reads[reads.length - 1]), `reads with partial arguments inside the window: ${JSON.stringify(cut)}`);
    const notByte = reads.filter((e) => e.args.length === 3 && e.args[2] !== '1');
    assert.deepEqual(notByte, [], 'the shell reads a byte at a time');
  });

  it('a call blocked when the monitor stops is reported once, with result null', async () => {
    const target = await launchTarget('sh', ['-c', 'sleep 5; exit 0'], { stdio: 'ignore' });
    const events: MonitorEvent[] = [];
    const backend = ptraceBackend({ target, sink: (e) => events.push(e) });
    await backend.start();
    target.resume();
    await sleep(100);
    await backend.apply({ enable: [{ set: 'syscalls', syscalls: 'all' }], disable: [] });
    await sleep(100);
    await backend.stop();
    assert.equal(tracerOf(target.pid), 0, 'stop() detached');
    const calls = syscallEvents(events);
    assertSeqs(calls);
    // Only the last wait4 was cut short: one before it may have returned early, interrupted by
    // the SIGCHLDs that stopping and continuing the tree for the attach sent the shell.
    const waits = calls.filter((e) => e.pid === target.pid && e.syscall === 'wait4');
    assert.deepEqual(waits.map((e) => e.result === null), [...waits.slice(1).map(() => false), true], 'the shell blocked in wait4 for sleep: reported once, result null');
    const sleeper = calls.filter((e) => e.pid !== target.pid && e.result === null);
    assert.equal(sleeper.length, 1, 'so was sleep, a child attached with the tree');
    assert.match(sleeper[0]!.syscall, /^(clock_nanosleep|nanosleep|restart_syscall)$/);
    target.kill('SIGKILL');
    await target.exited;
  });

  it('calibratePtrace measures a per-call cost on this machine', async () => {
    const t0 = Date.now();
    const cal = await calibratePtrace();
    const perCall = cal.trapNs + 2 * cal.switchNs;
    assert.equal(cal.trapsEverySyscall, true);
    assert.ok(perCall > 1_000 && perCall < 5_000_000, `per-call cost ${perCall} ns is within 1 µs … 5 ms`);
    assert.ok(Math.abs(perCall - cal.measured.perCallNs) < 1);
    assert.ok(cal.switchNs > 0 && cal.trapNs > cal.switchNs);
    process.stdout.write(`# ptrace per-call cost ${(perCall / 1000).toFixed(1)} µs (dd count=${cal.measured.count}, traced ${cal.measured.tracedMs.toFixed(0)} ms), calibration took ${Date.now() - t0} ms\n`);
  });
});
