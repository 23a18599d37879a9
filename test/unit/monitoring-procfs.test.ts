// Reading /proc for the host back ends (src/monitoring/procfs.ts): a command name may hold
// spaces and parentheses, so it runs from the first "(" to the LAST ")" of /proc/PID/stat;
// processes and fds that vanish mid-read are skipped, never thrown; the tree is the root and
// its live descendants. Also perf's interval lines (src/monitoring/rates.ts), parsed alone.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { descendants, parsePerfInterval, parseStat, readOpenFiles, readProcessList, readStat } from '../../src/monitoring/index.js';

const statLine = (pid: number, comm: string, state: string, ppid: number): string => `${pid} (${comm}) ${state} ${ppid} ${pid} ${pid} 34816 ${pid} 4194560 110 0 0 0 0 0 0 0 20 0 1 0 123456 2506752 144\n`;

test('the command name runs from the first "(" to the last ")", spaces and parentheses included', () => {
  for (const comm of ['sh', 'a b', 'x) S 1 (y', '((', '))', ') R 9 (', 'kworker/0:1-events', '', 'tab\there']) {
    assert.deepEqual(parseStat(statLine(4242, comm, 'S', 17)), { pid: 4242, ppid: 17, name: comm, state: 'S' }, `comm ${JSON.stringify(comm)}`);
  }
  assert.equal(parseStat(statLine(7, 'dd', 'T', 1))?.state, 'T');
});

test('a malformed stat line gives undefined, not a half-parsed process', () => {
  for (const bad of ['', '12 sh S 1', '(sh) S 1', '12 (sh', '12 (sh) ', '12 (sh) S x', 'x (sh) S 1']) assert.equal(parseStat(bad), undefined, JSON.stringify(bad));
});

test('this process reads as itself, with its parent', () => {
  const me = readStat(process.pid);
  assert.equal(me?.pid, process.pid);
  assert.equal(me?.ppid, process.ppid);
  assert.ok(readProcessList().some((p) => p.pid === process.pid && p.name === me?.name));
});

test('descendants: root first, then every live descendant by generation; none when the root is gone', () => {
  const list = [
    { pid: 1, ppid: 0, name: 'init' },
    { pid: 10, ppid: 1, name: 'root' },
    { pid: 30, ppid: 10, name: 'b' },
    { pid: 20, ppid: 10, name: 'a' },
    { pid: 40, ppid: 20, name: 'aa' },
    { pid: 50, ppid: 1, name: 'other' },
  ];
  assert.deepEqual(descendants(10, list), [10, 20, 30, 40]);
  assert.deepEqual(descendants(40, list), [40]);
  assert.deepEqual(descendants(99, list), []);
  // A pid that is its own parent (a corrupt listing) must not loop.
  assert.deepEqual(descendants(5, [{ pid: 5, ppid: 5, name: 'x' }]), [5]);
});

test('a fake /proc with a process gone mid-listing and fds without links reads what is there', () => {
  const root = mkdtempSync(join(tmpdir(), 'fit-procfs-'));
  try {
    mkdirSync(join(root, '100', 'fd'), { recursive: true });
    writeFileSync(join(root, '100', 'stat'), statLine(100, 'svc (main)', 'S', 1));
    symlinkSync('/var/log/app.log', join(root, '100', 'fd', '12'));
    symlinkSync('socket:[777]', join(root, '100', 'fd', '3'));
    mkdirSync(join(root, '200')); // exited between readdir and open: no stat, no fd
    mkdirSync(join(root, 'self'));
    assert.deepEqual(readProcessList(root), [{ pid: 100, ppid: 1, name: 'svc (main)' }]);
    assert.deepEqual(readOpenFiles(100, root), [
      { fd: 3, path: 'socket:[777]' },
      { fd: 12, path: '/var/log/app.log' },
    ]);
    assert.deepEqual(readOpenFiles(200, root), []);
    assert.equal(readStat(200, root), undefined);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a process that has exited reads as absent, and listing while processes come and go never throws', async () => {
  const done = spawnSync('true');
  assert.equal(done.status, 0);
  const gonePid = done.pid!;
  assert.equal(readStat(gonePid), undefined); // spawnSync reaped it: not even a zombie
  assert.deepEqual(readOpenFiles(gonePid), []);
  // Short-lived children churn while we read the whole of /proc over and over.
  const churn = spawn('/bin/sh', ['-c', 'i=0; while [ $i -lt 200 ]; do /bin/true & i=$((i+1)); done; wait'], { stdio: 'ignore' });
  const exited = new Promise((r) => churn.once('exit', r));
  let reads = 0;
  let running = true;
  void exited.then(() => (running = false));
  while (running) {
    for (const p of readProcessList()) readOpenFiles(p.pid);
    reads++;
    await new Promise((r) => setImmediate(r));
  }
  assert.ok(reads > 0);
});

test("perf's interval lines give their count; <not counted> is 0; other lines are not counts", () => {
  assert.equal(parsePerfInterval('     0.503932040,192902,,raw_syscalls:sys_enter,40917327,100.00,,'), 192902);
  assert.equal(parsePerfInterval('     0.250338225,<not counted>,,raw_syscalls:sys_enter,0,100.00,,'), 0);
  assert.equal(parsePerfInterval('# started on Mon Nov 30 09:01:47 2026'), undefined);
  assert.equal(parsePerfInterval(''), undefined);
  assert.equal(parsePerfInterval('Problems finding threads of monitor'), undefined);
});
