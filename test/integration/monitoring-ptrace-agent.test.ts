// `fitbroker monitor --backend ptrace -- CMD` end to end: a real child traced by strace, its
// calls published through a real 4-replica cluster and read back by a console; a command from
// the analyst switches the traced list while the child runs; the agent exits with the child's
// status once it ends.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { CLI, runCliAsync, sleep, startCluster } from '../helpers/cluster.js';

interface SyscallEvent {
  seq: number;
  pid: number;
  syscall: string;
  args: string[];
  result: number | null;
  configVersion: number;
}

async function until(what: string, cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

// About 6 s of a shell reading one file through cat, ten times a second, then exiting 3.
const WORKLOAD = 'i=0; while [ $i -lt 60 ]; do cat /etc/hostname >/dev/null; i=$((i+1)); sleep 0.1; done; exit 3';

test('monitor --backend ptrace publishes the traced calls of a real child, switches lists on command, and exits with its status', { timeout: 120_000 }, async () => {
  const c = await startCluster({ monitoring: true, channels: ['alerts'] });
  try {
    const events: SyscallEvent[] = [];
    const sub = c.subscriber('console', { channel: 'monitor.syscalls', onEvent: (ev) => events.push(JSON.parse(ev.content.toString('utf8')) as SyscallEvent) });
    await sub.start();
    const agent = spawn(process.execPath, [CLI, 'monitor', '--dir', c.dir, '--as', 'agent', '--backend', 'ptrace', '--set', 'syscalls:openat', '--', 'sh', '-c', WORKLOAD], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    agent.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    const exited = new Promise<number | null>((r) => agent.once('exit', (code) => r(code)));

    await until('openat calls of /etc/hostname', () => events.filter((e) => e.args.some((a) => a.includes('/etc/hostname'))).length >= 5, 30_000);
    const opens = events.filter((e) => e.args.some((a) => a.includes('/etc/hostname')));
    for (const e of opens) {
      assert.equal(e.syscall, 'openat');
      assert.ok(e.pid > 0 && Number.isInteger(e.pid), `pid ${e.pid}`);
      assert.ok(typeof e.result === 'number' && e.result >= 0, `cat opens /etc/hostname: ${JSON.stringify(e)}`);
    }
    assert.ok(events.every((e) => e.syscall === 'openat'), `only openat is reported: ${[...new Set(events.map((e) => e.syscall))].join(',')}`);
    assert.ok(new Set(opens.map((e) => e.pid)).size >= 2, 'each cat is its own process, and the children are traced');

    // A dry run predicts from the agent's latest report on monitor.perf: ptrace stops at every
    // call while anything is traced, so tracing execve alone costs what tracing all would.
    const dry = await runCliAsync(['reconfigure', '--dir', c.dir, '--as', 'analyst', '--agent', 'agent', '--enable', 'files:500', '--json', '--dry-run']);
    const predicted = JSON.parse(dry.stdout) as { status: string; config: object; prediction: { slowdown: number; traps: { perComputeSec: number } } | null };
    assert.equal(predicted.status, 'dry-run', dry.stdout + dry.stderr);
    assert.deepEqual(predicted.config, { syscalls: { syscalls: ['openat'] }, files: { periodMs: 500 } });
    assert.ok(predicted.prediction && predicted.prediction.slowdown > 1, JSON.stringify(predicted.prediction));

    const r = await runCliAsync(['reconfigure', '--dir', c.dir, '--as', 'analyst', '--agent', 'agent', '--enable', 'syscalls:execve', '--json']);
    const answer = JSON.parse(r.stdout) as { status: string; configVersion: number; prediction: { slowdown: number } | null };
    assert.equal(answer.status, 'applied', r.stdout + r.stderr);
    const v = answer.configVersion;
    await until('execve calls under the new list', () => events.filter((e) => e.configVersion === v && e.syscall === 'execve').length >= 3);
    assert.ok(events.filter((e) => e.configVersion === v).every((e) => e.syscall === 'execve'), 'after the switch only execve is reported');
    assert.ok(events.some((e) => e.configVersion === v && e.args.some((a) => a.includes('cat'))), 'execve names the program');

    assert.equal(await exited, 3, `the agent exits with the target's status; its log:\n${log}`);
    await sleep(500);
    const seqs = events.map((e) => e.seq).sort((a, b) => a - b);
    assert.deepEqual(seqs, seqs.map((_, i) => i + 1), 'every traced call once: seqs 1, 2, 3 … with no gap or repeat');
    assert.match(log, /ptrace calibrated on this machine/);
  } finally {
    await c.stop();
  }
});
