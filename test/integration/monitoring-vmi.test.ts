// `fitbroker monitor --backend vmi` end to end on a real QEMU guest (Debian's kernel and a
// busybox initramfs, built by `vm prepare` from Debian's packages), introspected from outside
// through QEMU's gdbstub, its events published through a real 4-replica cluster:
// - the process list read out of guest memory is the one the guest prints for itself;
// - tracing openat only shows the workload's opens with the right process names, and the
//   guest runs measurably faster than with every syscall trapped;
// - a reconfiguration published on the control channel while the guest runs switches the
//   sets and is acknowledged with its prediction.
// The guest is built once into the shared cache (FITBROKER_VM_CACHE or ~/.cache/fitbroker/vm).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultVmCache, prepareGuest } from '../../src/monitoring/vmi/index.js';
import { CLI, runCliAsync, sleep, startCluster, type TestCluster as Cluster } from '../helpers/cluster.js';

interface ProcessInfo {
  pid: number;
  ppid: number;
  name: string;
}

async function until(what: string, cond: () => boolean, ms: number, log: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; agent log:\n${log().slice(-3000)}`);
    await sleep(100);
  }
}

/** Builds the guest (or finds it built); undefined with the reason when this host cannot. */
async function guestOrReason(): Promise<string | undefined> {
  try {
    await prepareGuest({ cache: defaultVmCache(), say: () => undefined });
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

function startAgent(c: Cluster, workload: string, sets: string[], consolePath: string): { agent: ChildProcess; log: () => string; exited: Promise<number | null> } {
  const args = [CLI, 'monitor', '--dir', c.dir, '--as', 'agent', '--backend', 'vmi', '--vm-workload', workload, '--vm-console', consolePath, ...sets.flatMap((s) => ['--set', s])];
  const agent = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  agent.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<number | null>((r) => agent.once('exit', (code) => r(code)));
  return { agent, log: () => log, exited };
}

/** The guest's own process lists, from its console: FITBROKER-PS blocks. */
function guestLists(consolePath: string): ProcessInfo[][] {
  if (!existsSync(consolePath)) return [];
  const lists: ProcessInfo[][] = [];
  let open: ProcessInfo[] | undefined;
  for (const line of readFileSync(consolePath, 'latin1').split(/\r?\n/)) {
    if (line.startsWith('FITBROKER-PS-BEGIN')) open = [];
    else if (line.startsWith('FITBROKER-PS-END') && open) lists.push(open), (open = undefined);
    else if (line.startsWith('FITBROKER-PS ') && open) {
      const [, pid, ppid, ...name] = line.split(' ');
      open.push({ pid: Number(pid), ppid: Number(ppid), name: name.join(' ') });
    }
  }
  return lists;
}

function rounds(consolePath: string): number {
  const all = existsSync(consolePath) ? [...readFileSync(consolePath, 'latin1').matchAll(/FITBROKER-ROUND (\d+)/g)] : [];
  return all.length === 0 ? 0 : Number(all[all.length - 1]![1]);
}

// Names read from memory are task->comm, at most 15 characters; the guest's /proc shows a
// kernel thread's full name (rcu_tasks_kthread for comm rcu_tasks_kthre).
const key = (p: ProcessInfo): string => `${p.pid} ${p.ppid} ${p.name.slice(0, 15)}`;
// Kernel worker threads come and go on their own; `sleep` is the idle workload's child, alive
// between the guest's own listings and never in them.
const transient = (p: ProcessInfo): boolean => p.name.startsWith('kworker/') || p.name === 'sleep';

test('vmi: the process list read from guest memory is the list the guest prints for itself', { timeout: 300_000 }, async (t) => {
  const missing = await guestOrReason();
  if (missing) return t.skip(`no guest on this host: ${missing}`);
  const c = await startCluster({ monitoring: true, channels: ['alerts'] });
  const consolePath = join(mkdtempSync(join(tmpdir(), 'fit-vmi-')), 'console.log');
  const extractions: { list: ProcessInfo[] }[] = [];
  const a = startAgent(c, 'idle', ['proclist:700'], consolePath);
  try {
    const sub = c.subscriber('console', { channel: 'monitor.proclist', onEvent: (ev) => extractions.push({ list: (JSON.parse(ev.content.toString('utf8')) as { processes: ProcessInfo[] }).processes }) });
    await sub.start();
    await until('three extractions and two lists printed by the guest', () => extractions.length >= 3 && guestLists(consolePath).length >= 2, 180_000, a.log);
    const own = guestLists(consolePath).at(-1)!;
    assert.ok(own.length >= 10, `the guest lists its kernel threads and init: ${own.length}`);
    assert.ok(own.some((p) => p.pid === 1 && p.name === 'init'), 'pid 1 is init');
    // The guest's set of processes is steady (idle), so the latest extraction must match.
    const theirs = new Set(own.filter((p) => !transient(p)).map(key));
    const ours = new Set(extractions.at(-1)!.list.filter((p) => !transient(p)).map(key));
    assert.deepEqual([...ours].filter((k) => !theirs.has(k)), [], 'nothing read from outside that the guest does not list');
    assert.deepEqual([...theirs].filter((k) => !ours.has(k)), [], 'everything the guest lists is read from outside, with its parent');
  } finally {
    a.agent.kill('SIGTERM');
    await a.exited;
    await c.stop();
  }
});

test('vmi: openat only traps the opens (right names, guest measurably faster than with every syscall trapped); a command switches to all and is acknowledged with its prediction', { timeout: 400_000 }, async (t) => {
  const missing = await guestOrReason();
  if (missing) return t.skip(`no guest on this host: ${missing}`);
  const c = await startCluster({ monitoring: true, channels: ['alerts'] });
  const consolePath = join(mkdtempSync(join(tmpdir(), 'fit-vmi-')), 'console.log');
  const events: { seq: number; pid: number; comm: string; syscall: string; args: string[]; configVersion: number }[] = [];
  const a = startAgent(c, 'exec', ['syscalls:openat'], consolePath);
  try {
    const sub = c.subscriber('console', { channel: 'monitor.syscalls', onEvent: (ev) => events.push(JSON.parse(ev.content.toString('utf8')) as (typeof events)[number]) });
    await sub.start();
    await until('opens by two cats and a head', () => new Set(events.filter((e) => e.comm === 'cat').map((e) => e.pid)).size >= 2 && events.some((e) => e.comm === 'head'), 180_000, a.log);
    assert.ok(events.every((e) => e.syscall === 'openat'), `only openat: ${[...new Set(events.map((e) => e.syscall))].join(',')}`);
    assert.ok(events.every((e) => e.configVersion >= 1), 'the census at start publishes nothing');
    const byCat = events.filter((e) => e.comm === 'cat');
    assert.ok(byCat.some((e) => e.args[1] === '"/etc/hostname"'), `cat opens its file: ${JSON.stringify(byCat.slice(0, 4))}`);
    assert.ok(events.some((e) => e.comm === 'head' && e.args[1] === '"/etc/motd"'), 'head opens its file');
    assert.ok(!byCat.some((e) => e.args[1] === '"/etc/motd"'), 'and cat never opens head\'s');
    assert.ok(byCat.every((e) => e.pid > 1) && new Set(byCat.map((e) => e.pid)).size >= 2, 'each cat is a child of its own, with its own pid');

    const r0 = rounds(consolePath);
    await sleep(8000);
    const openatRate = (rounds(consolePath) - r0) / 8;

    const r = await runCliAsync(['reconfigure', '--dir', c.dir, '--as', 'analyst', '--agent', 'agent', '--enable', 'syscalls:all', '--json', '--timeout', '60']);
    const answer = JSON.parse(r.stdout) as { status: string; configVersion: number; config: object; prediction: { slowdown: number | null; traps: { perComputeSec: number } } | null };
    assert.equal(answer.status, 'applied', r.stdout + r.stderr);
    assert.deepEqual(answer.config, { syscalls: { syscalls: 'all' } });
    assert.ok(answer.prediction && answer.prediction.slowdown !== null && answer.prediction.slowdown > 1, `acknowledged with a prediction: ${JSON.stringify(answer.prediction)}`);
    assert.ok(answer.prediction.traps.perComputeSec > 0, 'the census gave every call its rate');
    await until('calls other than openat under the new configuration', () => events.some((e) => e.configVersion === answer.configVersion && e.syscall !== 'openat'), 60_000, a.log);
    const r1 = rounds(consolePath);
    await sleep(8000);
    const allRate = (rounds(consolePath) - r1) / 8;
    assert.ok(openatRate > 2 * allRate, `the guest runs faster with openat trapped (${openatRate} rounds/s) than with every call (${allRate} rounds/s)`);
    const seqs = events.map((e) => e.seq);
    assert.deepEqual(seqs, seqs.map((_, i) => i + 1), 'seqs 1, 2, 3 … across the switch');
    assert.match(a.log(), /QEMU's emulator \(TCG\)|KVM/, 'the agent says how the guest runs');
  } finally {
    a.agent.kill('SIGTERM');
    await a.exited;
    await c.stop();
  }
});
