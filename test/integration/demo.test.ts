// `fitbroker demo` end to end, as a user runs it: a real child process that starts a real
// 4-replica cluster, publishes this host's real metrics through it, prints what the console
// delivered, and leaves no replica behind.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, freeBasePort } from '../helpers/cluster.js';
import { defaultVmCache, prepareGuest } from '../../src/monitoring/vmi/index.js';

function runDemo(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'demo', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Processes whose command line mentions `needle`, from /proc (no pgrep needed). */
function processesMentioning(needle: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmd.includes(needle)) found.push(`${pid}: ${cmd}`);
    } catch {
      // exited while we looked
    }
  }
  return found;
}

test('demo runs a 4-replica cluster, delivers this host\'s real metrics, exits 0 and leaves no replica running', { timeout: 90_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fitbroker-demo-'));
  try {
    const basePort = await freeBasePort(4);
    const r = await runDemo(['--dir', dir, '--duration', '14', '--base-port', String(basePort)]);
    const context = `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
    assert.equal(r.code, 0, context);
    assert.match(r.stdout, new RegExp(`4 replicas on 127\\.0\\.0\\.1 ports ${basePort}-${basePort + 3}, f=1`), context);
    assert.match(r.stdout, /FITBROKER_ALLOW_FAULTS=1 .* up --dir .* --fault 2:tamper/, context);

    // Real data from this host: the load average in /proc/loadavg's format, this machine's
    // CPU count, and its total memory exactly as /proc/meminfo has it.
    const metrics = r.stdout.split('\n').filter((l) => / metrics .*host\.metrics/.test(l));
    assert.ok(metrics.length > 0, context);
    const m = /load (\d+\.\d\d) (\d+\.\d\d) (\d+\.\d\d) on (\d+) cpus · mem (\d+) of (\d+) MiB available/.exec(metrics[0]!);
    assert.ok(m, `metrics line has no load and memory: ${metrics[0]}`);
    assert.equal(Number(m[4]), availableParallelism());
    const memTotalKb = Number(/^MemTotal:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1]);
    assert.equal(Number(m[6]), Math.round(memTotalKb / 1024));

    const delivered = /delivered\s+alerts (\d+), metrics (\d+) \(total (\d+)\)/.exec(r.stdout);
    assert.ok(delivered, context);
    assert.ok(Number(delivered[2]) > 0 && Number(delivered[3]) > 0, context);
    assert.match(r.stdout, /no mismatching copies: every replica agreed/, context);
    const published = /published\s+(\d+) events as probe, (\d+) acknowledged/.exec(r.stdout);
    assert.ok(published && Number(published[2]) > 0, context);

    // The monitoring agent: a real workload traced, the analyst's command answered with its
    // prediction, traced calls and cost reports delivered through the replicas.
    assert.match(r.stdout, /monitor {3}a monitoring agent \(as "agent", (ptrace|sim) back end\)/, context);
    assert.match(r.stdout, /monitor {3}agent agent applied c-\S+: syscalls enabled \(syscalls:openat,execve\)/, context);
    assert.match(r.stdout, /monitor {3}predicted slowdown \d+\.\d+×/, context);
    assert.match(r.stdout, / monitor\.syscalls .* syscall +pid \d+ (openat|execve)\(/, context);
    assert.match(r.stdout, / monitor\.perf .* slowdown now \d+\.\d+×/, context);
    const monitored = /monitor {4}(\d+) traced syscalls and (\d+) cost reports/.exec(r.stdout);
    assert.ok(monitored && Number(monitored[1]) > 0 && Number(monitored[2]) > 0, context);
    assert.ok(existsSync(join(dir, 'replicas.log')));
    assert.match(readFileSync(join(dir, 'replicas.log'), 'utf8'), /replica listening/);
    assert.deepEqual(processesMentioning(dir), [], 'replica processes were left running');
    assert.deepEqual(processesMentioning('cat /etc/hostname /etc/os-release'), [], "the monitored workload was left running");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('demo on a port that is taken names the port and suggests --base-port, and starts nothing', { timeout: 30_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fitbroker-demo-'));
  const basePort = await freeBasePort(4);
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(basePort + 2, '127.0.0.1', resolve));
  try {
    const r = await runDemo(['--dir', dir, '--duration', '2', '--base-port', String(basePort)]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`port ${basePort + 2} on 127\\.0\\.0\\.1, for replica 2, is already in use`));
    assert.match(r.stderr, /--base-port/);
    assert.ok(!existsSync(join(dir, 'cluster.yaml')), 'nothing is written before the ports are known to be free');
    assert.deepEqual(processesMentioning(dir), []);
  } finally {
    blocker.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('demo --monitor vmi: the agent watches a QEMU guest from outside it, and the analyst\'s command is answered with its prediction', { timeout: 300_000 }, async (t) => {
  const missing = await prepareGuest({ cache: defaultVmCache(), say: () => undefined }).then(
    () => undefined,
    (err: Error) => err.message,
  );
  if (missing) return t.skip(`no guest on this host: ${missing}`);
  const dir = mkdtempSync(join(tmpdir(), 'fitbroker-demo-'));
  try {
    const basePort = await freeBasePort(4);
    const r = await runDemo(['--dir', dir, '--duration', '20', '--base-port', String(basePort), '--monitor', 'vmi']);
    const context = `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
    assert.equal(r.code, 0, context);
    assert.match(r.stdout, /monitor {3}a monitoring agent \(as "agent", vmi back end\) watches a QEMU guest/, context);
    assert.match(r.stdout, /monitor {3}agent agent applied c-\S+: syscalls enabled \(syscalls:openat,execve\)/, context);
    assert.match(r.stdout, /monitor {3}predicted slowdown \d+\.\d+×/, context);
    assert.match(r.stdout, / monitor\.syscalls .* syscall +pid \d+ (cat|head|init|sh): (openat|execve)\(/, context);
    assert.ok(existsSync(join(dir, 'guest-console.log')), 'the guest console is kept');
    assert.deepEqual(processesMentioning('fitbroker.mode=run'), [], 'no guest left running');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
