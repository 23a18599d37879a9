// Replica-side duplicate suppression (src/broker/dedupe.ts, DESIGN §2): within one publishing
// process (publisher + epoch) a sequence number at or below the last accepted one is a
// duplicate; streams are independent; the number of remembered streams is bounded, least
// recently active forgotten first.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Dedupe } from '../../src/broker/index.js';

test('accepts rising seqs and refuses any seq at or below the last accepted', () => {
  const d = new Dedupe(10);
  assert.equal(d.accept('p1', 1), true);
  assert.equal(d.accept('p1', 2), true);
  assert.equal(d.accept('p1', 2), false);
  assert.equal(d.accept('p1', 1), false);
  assert.equal(d.accept('p1', 5), true, 'gaps are fine: the client numbers events as it sends them');
  assert.equal(d.accept('p1', 4), false);
});

test('streams (publisher + epoch) are independent: a restarted process starts afresh', () => {
  const d = new Dedupe(10);
  assert.equal(d.accept('probe|epoch1', 100), true);
  assert.equal(d.accept('probe|epoch2', 1), true);
  assert.equal(d.accept('probe|epoch1', 1), false);
  assert.equal(d.streams, 2);
});

test('remembers at most streamsMax streams and forgets the least recently active first', () => {
  const d = new Dedupe(2);
  d.accept('a', 1);
  d.accept('b', 1);
  d.accept('a', 2); // a is now the most recently active
  d.accept('c', 1); // evicts b
  assert.equal(d.streams, 2);
  assert.equal(d.accept('a', 2), false, 'a is still remembered');
  assert.equal(d.accept('b', 1), true, 'b was forgotten, so its old seq is accepted again');
});

test('a refused duplicate does not count as activity', () => {
  const d = new Dedupe(2);
  d.accept('a', 5);
  d.accept('b', 1);
  assert.equal(d.accept('a', 5), false);
  d.accept('c', 1); // a is still the least recently accepted: evicted
  assert.equal(d.accept('a', 5), true);
});
