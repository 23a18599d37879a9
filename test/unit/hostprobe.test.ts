// The host probe reports what really happens on this machine: these tests make something
// happen (start a process, write a failed login to a log) and wait for the probe to say so.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { authFailure, hostProbe, parseLoadavg, parseMeminfo, parseProcStat, parseUptime, type HostEvent, type HostProbeOptions } from '../../src/adapters/index.js';

const QUIET: HostProbeOptions = { metricsIntervalMs: 60_000, processIntervalMs: 60_000, authPollMs: 60_000, authLogPath: '/nonexistent/auth.log', journal: false };

function run(o: HostProbeOptions): { events: HostEvent[]; stop(): void; waitFor(what: string, pred: (e: HostEvent) => boolean, timeoutMs?: number): Promise<HostEvent> } {
  const events: HostEvent[] = [];
  const probe = hostProbe({ ...QUIET, ...o });
  probe.start((e) => events.push(e));
  return {
    events,
    stop: () => probe.stop(),
    async waitFor(what, pred, timeoutMs = 5000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const hit = events.find(pred);
        if (hit) return hit;
        if (Date.now() > until) assert.fail(`no ${what} within ${timeoutMs} ms; got ${JSON.stringify(events.map((e) => e.content.type))}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}

test('reports a process started after the baseline scan, with its parent, command line and uid', async () => {
  const p = run({ processIntervalMs: 100 });
  const child = spawn('sleep', ['2'], { stdio: 'ignore' });
  try {
    const e = await p.waitFor('process.start for sleep', (e) => e.content.type === 'process.start' && e.content.pid === child.pid);
    assert.equal(e.channel, 'alerts');
    assert.equal(e.content.host, hostname());
    assert.equal(e.content.comm, 'sleep');
    assert.equal(e.content.cmdline, 'sleep 2');
    assert.equal(e.content.ppid, process.pid);
    assert.equal(e.content.uid, process.getuid?.());
    // The first scan is a baseline: processes that already ran (pid 1, this one) are not news.
    assert.ok(!p.events.some((e) => e.content.type === 'process.start' && (e.content.pid === 1 || e.content.pid === process.pid)));
  } finally {
    p.stop();
    child.kill();
  }
});

test('publishes host metrics read from /proc: load average, memory, processes, uptime', async () => {
  const p = run({});
  try {
    const e = await p.waitFor('host.metrics', (e) => e.content.type === 'host.metrics');
    assert.equal(e.channel, 'metrics');
    assert.match(String(e.content.loadavg), /^\d+\.\d\d \d+\.\d\d \d+\.\d\d$/);
    const memTotalKb = Number(/^MemTotal:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1]);
    assert.equal(e.content.memTotalKb, memTotalKb);
    assert.ok(Number(e.content.memAvailableKb) > 0 && Number(e.content.memAvailableKb) <= memTotalKb);
    assert.ok(Number(e.content.processes) > 1);
    assert.ok(Number(e.content.uptimeS) >= 0);
  } finally {
    p.stop();
  }
});

test('follows the auth log: reports new failure lines only, not old ones or successes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fitbroker-hostprobe-'));
  const log = join(dir, 'auth.log');
  writeFileSync(log, 'sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2 (old)\n');
  const p = run({ authLogPath: log, authPollMs: 30 });
  try {
    appendFileSync(log, 'sshd[2]: Accepted publickey for alice from 192.0.2.2\n');
    appendFileSync(log, 'sshd[3]: Invalid user bob from 192.0.2.3 port 4');
    await new Promise((r) => setTimeout(r, 150));
    assert.ok(!p.events.some((e) => e.content.type === 'auth.failure'), 'a line is reported only once it is complete');
    appendFileSync(log, '2222\n');
    const e = await p.waitFor('auth.failure', (e) => e.content.type === 'auth.failure');
    assert.equal(e.content.line, 'sshd[3]: Invalid user bob from 192.0.2.3 port 42222');
    assert.equal(e.priority, 2);
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(p.events.filter((e) => e.content.type === 'auth.failure').length, 1);
  } finally {
    p.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an unavailable source is reported once, with the reason, and is not fatal', async () => {
  const p = run({ processIntervalMs: 50, authPollMs: 50 });
  try {
    await new Promise((r) => setTimeout(r, 200));
    const skips = p.events.filter((e) => e.content.type === 'probe.source.skipped');
    assert.equal(skips.length, 1);
    assert.equal(skips[0]!.content.source, 'auth');
    assert.match(String(skips[0]!.content.reason), /\/nonexistent\/auth\.log does not exist/);
  } finally {
    p.stop();
  }
});

test('the probe\'s parsers take the kernel\'s formats, a process that names itself oddly, and refuse what is not a number', () => {
  assert.deepEqual(parseLoadavg('0.66 0.44 0.22 3/105 4155\n'), { load1: 0.66, load5: 0.44, load15: 0.22, loadavg: '0.66 0.44 0.22' });
  assert.equal(parseLoadavg('0.66 x 0.22'), undefined);
  assert.deepEqual(parseMeminfo('MemTotal:  1000 kB\nMemFree: 5 kB\nMemAvailable:  600 kB\n'), { memTotalKb: 1000, memAvailableKb: 600 });
  assert.equal(parseMeminfo('MemTotal:  1000 kB\n'), undefined);
  assert.equal(parseUptime('12345.67 999.00\n'), 12345);
  assert.equal(parseUptime('9'.repeat(21)), undefined, 'not a safe integer');
  assert.deepEqual(parseProcStat('42 (a) b (c) S 7 42 42 0'), { comm: 'a) b (c', ppid: 7 }, 'the last ")" ends comm');
  assert.equal(parseProcStat('42 no parentheses'), undefined);
  assert.deepEqual(authFailure('auth.log', 'sshd[1]: Failed password for root', 12), { source: 'auth.log', line: 'sshd[1]: Fai' });
  assert.equal(authFailure('auth.log', 'sshd[1]: Accepted publickey for root', 100), undefined);
});
