// The proc back end (src/monitoring/proc.ts) on real processes: a child launched stopped
// before exec (target.ts) shows up in proclist under its pid and name, files shows a file it
// holds open, per-set seqs run 1, 2, 3 … through a re-period and a disable/enable (the
// contract in backend.ts), the perf counter (rates.ts) counts a dd child's 2N calls, and a
// missing command or pid fails with FIT_ERR_MONITOR_TARGET.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FitError } from '../../src/core/index.js';
import { attachTarget, launchTarget, procBackend, startSyscallCounter, type FilesEvent, type MonitorEvent, type ProclistEvent, type Target } from '../../src/monitoring/index.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const TARGET_NAME = 'fit-proc-target';

function assertSeqs(events: readonly MonitorEvent[], set: 'proclist' | 'files'): number {
  const seqs = events.filter((e) => e.set === set).map((e) => e.seq);
  assert.deepEqual(
    seqs,
    seqs.map((_, i) => i + 1),
    `${set} seqs run 1, 2, 3 … without gap or repeat`,
  );
  return seqs.length;
}

describe('proc back end', () => {
  let dir: string;
  let held: string;
  let target: Target;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fit-proc-'));
    held = join(dir, 'held.txt');
    writeFileSync(held, 'open while monitored\n');
    // A script is named after itself in /proc (comm), and holds the file on fd 7.
    const script = join(dir, TARGET_NAME);
    writeFileSync(script, '#!/bin/sh\nexec 7<"$1"\nwhile :; do sleep 0.05; done\n');
    chmodSync(script, 0o755);
    target = await launchTarget(script, [held], { stdio: 'ignore' });
    assert.ok(target.alive());
    target.resume();
    await sleep(50); // let it exec and open the file
  });

  after(async () => {
    target.kill('SIGKILL');
    await target.exited;
    rmSync(dir, { recursive: true, force: true });
  });

  it('proclist lists the child under its pid and name, files shows the file it holds', async () => {
    const events: MonitorEvent[] = [];
    const backend = procBackend({ target, sink: (e) => events.push(e) });
    await backend.start();
    const { configVersion } = await backend.apply({ enable: [{ set: 'proclist', periodMs: 1000 }, { set: 'files', periodMs: 1000 }], disable: [] });
    assert.equal(configVersion, 1);
    // A newly enabled set extracts at once, under the new configuration.
    const proclist = events.find((e): e is ProclistEvent => e.set === 'proclist');
    assert.deepEqual(proclist?.processes.find((p) => p.pid === target.pid), { pid: target.pid, ppid: process.pid, name: TARGET_NAME });
    const files = events.find((e): e is FilesEvent => e.set === 'files' && e.pid === target.pid);
    assert.deepEqual(files?.files.find((f) => f.fd === 7), { fd: 7, path: held });
    assert.ok(events.every((e) => e.configVersion === 1 && e.seq >= 1));
    const c = backend.costs();
    assert.equal(c.kind, 'proc');
    assert.equal(c.stoppedNs, 0);
    assert.equal(c.computeNs, c.atNs);
    assert.deepEqual(c.extractions, { proclist: { count: 1, stoppedNs: 0 }, files: { count: 1, stoppedNs: 0 } });
    assert.equal(c.processes, proclist?.processes.length);
    assert.ok(c.openFiles >= 4, `the tree holds stdio and fd 7 at least, saw ${c.openFiles}`);
    assert.equal(backend.calibration().trapsEverySyscall, false);
    await backend.stop();
    assert.ok(target.alive(), 'stop() leaves the target running');
  });

  it('seqs run 1, 2, 3 … through a re-period and a disable/enable; periods count from the end of an extraction', async () => {
    const events: MonitorEvent[] = [];
    const backend = procBackend({ target, sink: (e) => events.push(e) });
    await backend.start();
    await backend.apply({ enable: [{ set: 'proclist', periodMs: 100 }, { set: 'files', periodMs: 100 }], disable: [] });
    await sleep(350);
    await backend.apply({ enable: [{ set: 'proclist', periodMs: 40 }], disable: [] });
    await sleep(200);
    const r = await backend.apply({ enable: [], disable: ['proclist'] });
    assert.equal(r.configVersion, 3);
    const beforeOff = events.filter((e) => e.set === 'proclist').length;
    await sleep(150);
    assert.equal(events.filter((e) => e.set === 'proclist').length, beforeOff, 'a disabled set extracts no more');
    await backend.apply({ enable: [{ set: 'proclist', periodMs: 100 }], disable: [] });
    await sleep(120);
    // Same parameters again: no change, no new configVersion.
    assert.equal((await backend.apply({ enable: [{ set: 'files', periodMs: 100 }], disable: [] })).configVersion, 4);
    await backend.stop();
    const nProclist = assertSeqs(events, 'proclist');
    assertSeqs(events, 'files');
    // 350 ms at 100 (4: at once, then ~3), 200 ms at 40 (~4-5), then at once + ~1: ~10 in all.
    assert.ok(nProclist >= 7 && nProclist <= 14, `proclist extracted ${nProclist} times`);
    const at = events.filter((e) => e.set === 'proclist').map((e) => e.atNs / 1e6);
    const gaps = at.slice(1).map((t, i) => t - at[i]!);
    assert.ok(gaps.slice(0, 3).every((g) => g >= 99), `gaps at period 100 are at least the period: ${gaps.map((g) => g.toFixed(1)).join(' ')}`);
    const stopped = events.length;
    await sleep(150);
    assert.equal(events.length, stopped, 'stop() ends the extractions');
  });

  it('refuses the syscalls set with FIT_ERR_MONITOR_CONFIG and changes nothing', async () => {
    const backend = procBackend({ target, sink: () => {} });
    await backend.start();
    await backend.apply({ enable: [{ set: 'files', periodMs: 500 }], disable: [] });
    await assert.rejects(backend.apply({ enable: [{ set: 'syscalls', syscalls: ['openat'] }, { set: 'proclist', periodMs: 100 }], disable: ['files'] }), (e: unknown) => e instanceof FitError && e.code === 'FIT_ERR_MONITOR_CONFIG');
    assert.deepEqual(backend.config(), { files: { periodMs: 500 } });
    await backend.stop();
  });

  it('attaches to a running pid, and refuses a pid that does not exist', async () => {
    const t = attachTarget(target.pid);
    assert.equal(t.launched, false);
    assert.ok(t.alive());
    assert.equal(t.pids()[0], target.pid);
    assert.throws(() => attachTarget(2 ** 22 + 1), (e: unknown) => e instanceof FitError && e.code === 'FIT_ERR_MONITOR_TARGET');
  });
});

describe('launching and counting', () => {
  it('launchTarget of a missing command fails with FIT_ERR_MONITOR_TARGET before it resolves', async () => {
    await assert.rejects(launchTarget('fit-no-such-command', ['x'], { stdio: 'ignore' }), (e: unknown) => e instanceof FitError && e.code === 'FIT_ERR_MONITOR_TARGET' && /not found/.test(e.message));
    const dir = mkdtempSync(join(tmpdir(), 'fit-proc-'));
    try {
      const plain = join(dir, 'not-executable');
      writeFileSync(plain, 'data\n', { mode: 0o644 });
      await assert.rejects(
        launchTarget(plain, [], { stdio: 'ignore' }).then((t) => (t.kill('SIGKILL'), t)),
        (e: unknown) => e instanceof FitError && e.code === 'FIT_ERR_MONITOR_TARGET',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the syscall counter counts a dd child's 2N calls within a few %, without stopping it", async (t) => {
    const N = 50_000;
    const target = await launchTarget('dd', ['if=/dev/zero', 'of=/dev/null', 'bs=1', `count=${N}`], { stdio: 'ignore' });
    const counter = await startSyscallCounter(target.pid);
    if (counter.unavailable !== null) {
      target.kill('SIGKILL');
      await target.exited;
      t.skip(counter.unavailable);
      return;
    }
    const backend = procBackend({ target, sink: () => {}, counter });
    await backend.start();
    target.resume();
    const exit = await target.exited;
    assert.equal(exit.code, 0);
    await backend.stop(); // stops the counter after its last interval
    const total = backend.costs().syscallsTotal;
    // dd makes one read and one write per byte, plus ~130 calls to start (exec, libc, locale).
    assert.ok(Math.abs(total - 2 * N) / (2 * N) < 0.03, `counted ${total} calls for 2N = ${2 * N}`);
    // Untraced, 100k calls take tens of ms: the counter does not stop the target (ptrace would
    // take seconds at ~100 µs a stop).
    assert.ok(exit.wallNs < 2e9, `dd ran ${(exit.wallNs / 1e6).toFixed(0)} ms`);
  });
});
