// bench/kernel.ts: what DAMON the bench finds, and --pause-damon switching only the running
// kdamonds off and every one of them on again, on a sysfs tree of the test's own.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { damonInfo, kernelThreadsCpuSec, pauseDamon } from '../../bench/kernel.js';

function fakeAdmin(states: string[]): string {
  const admin = join(mkdtempSync(join(tmpdir(), 'fit-damon-')), 'kdamonds');
  mkdirSync(admin);
  writeFileSync(join(admin, 'nr_kdamonds'), `${states.length}\n`);
  states.forEach((state, i) => {
    const ctx = join(admin, String(i), 'contexts', '0');
    mkdirSync(join(ctx, 'monitoring_attrs', 'intervals'), { recursive: true });
    mkdirSync(join(ctx, 'schemes', '0'), { recursive: true });
    writeFileSync(join(admin, String(i), 'state'), `${state}\n`);
    writeFileSync(join(ctx, 'operations'), 'paddr\n');
    writeFileSync(join(ctx, 'monitoring_attrs', 'intervals', 'sample_us'), '500000\n');
    writeFileSync(join(ctx, 'schemes', '0', 'action'), 'pageout\n');
  });
  return admin;
}

const stateOf = (admin: string, i: number): string => readFileSync(join(admin, String(i), 'state'), 'utf8').trim();

test('damonInfo lists each kdamond with what it monitors, how often, and its action', () => {
  const admin = fakeAdmin(['on', 'off']);
  try {
    assert.deepEqual(damonInfo(false, admin), {
      kdamonds: [
        { index: 0, state: 'on', operations: 'paddr', sampleUs: 500000, action: 'pageout' },
        { index: 1, state: 'off', operations: 'paddr', sampleUs: 500000, action: 'pageout' },
      ],
      pausedForRun: false,
    });
    assert.equal(damonInfo(false, join(admin, 'missing')), undefined, 'no DAMON: nothing to report');
  } finally {
    rmSync(join(admin, '..'), { recursive: true, force: true });
  }
});

test('pauseDamon switches the running kdamonds off, and restore() on again, once', () => {
  const admin = fakeAdmin(['on', 'off', 'on']);
  const exitListeners = process.listenerCount('exit');
  const sigintListeners = process.listenerCount('SIGINT');
  try {
    const paused = pauseDamon(admin);
    assert.notEqual(typeof paused, 'string');
    if (typeof paused === 'string') return;
    assert.deepEqual(paused.paused, [0, 2]);
    assert.deepEqual([0, 1, 2].map((i) => stateOf(admin, i)), ['off', 'off', 'off']);
    assert.equal(process.listenerCount('exit'), exitListeners + 1, 'restored when the bench exits');
    assert.equal(process.listenerCount('SIGINT'), sigintListeners + 1, 'restored when the bench is interrupted');
    paused.restore();
    assert.deepEqual([0, 1, 2].map((i) => stateOf(admin, i)), ['on', 'off', 'on'], 'the one that was off stays off');
    assert.equal(process.listenerCount('exit'), exitListeners);
    assert.equal(process.listenerCount('SIGINT'), sigintListeners);
    writeFileSync(join(admin, '0', 'state'), 'off');
    paused.restore();
    assert.equal(stateOf(admin, 0), 'off', 'a second restore() does nothing');
  } finally {
    rmSync(join(admin, '..'), { recursive: true, force: true });
  }
});

test('pauseDamon says why it paused nothing', () => {
  const admin = fakeAdmin(['off']);
  try {
    assert.match(String(pauseDamon(admin)), /no kdamond is running/);
    assert.match(String(pauseDamon(join(admin, 'missing'))), /no DAMON sysfs interface/);
  } finally {
    rmSync(join(admin, '..'), { recursive: true, force: true });
  }
});

test('kernelThreadsCpuSec reads a count that only grows', () => {
  const a = kernelThreadsCpuSec();
  const b = kernelThreadsCpuSec();
  assert.ok(Number.isFinite(a) && a >= 0, `got ${a}`);
  assert.ok(b >= a - 0.05, `${b} after ${a}: a kernel thread may exit between the reads, nothing more`);
});
