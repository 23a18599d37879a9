// progress.ts: a traced target's wall time split into compute and stopped time by its progress
// (calls while traced over its untraced rate), or by stops × a calibrated cost when no rate is
// known yet.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProgressSplit, RATE_BASIS_MIN_NS } from '../../src/monitoring/progress.js';

const MS = 1e6;

test('while traced, compute is the calls made over the untraced rate, whatever one stop is said to cost', () => {
  // A calibrated stop of 1 µs, far from the truth: the split by progress does not use it.
  const s = new ProgressSplit(1_000);
  s.sample(0, 0, 0, false);
  s.sample(500 * MS, 50_000, 0, false); // untraced: 100 calls per ms of compute
  assert.equal(s.callsPerComputeNs, 50_000 / (500 * MS));
  assert.equal(s.computeNs, 500 * MS);
  s.sample(1500 * MS, 60_000, 10_000, true); // traced for 1 s: 10,000 calls = 100 ms of work
  assert.ok(Math.abs(s.computeNs - 600 * MS) < 1e-3);
  assert.ok(Math.abs(s.stoppedNs - 900 * MS) < 1e-3);
  // Untraced again: the rate of the earlier stretch stands until a new one is long enough.
  s.sample(1600 * MS, 70_000, 10_000, false);
  assert.equal(s.callsPerComputeNs, 50_000 / (500 * MS));
  s.sample(1600 * MS + RATE_BASIS_MIN_NS, 70_000 + 3_000_000, 10_000, false);
  assert.ok(Math.abs(s.callsPerComputeNs! - 3_010_000 / (100 * MS + RATE_BASIS_MIN_NS)) < 1e-12, 'a long enough new stretch (both samples since the detach) gives the new rate');
});

test('without a rate (traced from the first instruction, or no counter) stopped time is stops × the calibrated cost, never more than the wall time', () => {
  const s = new ProgressSplit(50_000);
  s.sample(0, null, 0, true);
  s.sample(100 * MS, null, 1000, true); // 1,000 stops × 50 µs = 50 ms stopped of 100
  assert.equal(s.stoppedNs, 50 * MS);
  assert.equal(s.computeNs, 50 * MS);
  s.sample(200 * MS, null, 5000, true); // 4,000 × 50 µs = 200 ms > 100 ms of wall: all stopped
  assert.equal(s.stoppedNs, 150 * MS);
  assert.equal(s.computeNs, 50 * MS);
});

test('a target idle while untraced does not make its traced compute exceed the wall time', () => {
  const s = new ProgressSplit(10_000);
  s.sample(0, 0, 0, false);
  s.sample(400 * MS, 10, 0, false); // nearly idle: a tiny rate
  s.sample(500 * MS, 10_010, 10_000, true); // then busy while traced
  assert.equal(s.computeNs, 500 * MS, 'compute is capped at the wall time of the interval');
  assert.equal(s.stoppedNs, 0);
});
