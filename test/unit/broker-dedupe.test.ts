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

test('streams found by identity bytes: equal bytes in any buffer are one stream, a shared epoch tail is not', () => {
  const d = new Dedupe(10);
  const id = (publisher: string, epochHex: string): Buffer => Buffer.concat([Buffer.from([publisher.length]), Buffer.from(publisher), Buffer.from(epochHex, 'hex')]);
  const a = id('probe', 'a1a2a3a4a5a6a7a8');
  const sameTail = id('agent', '00000000a5a6a7a8'); // the same 30-bit tag: only the bytes tell them apart
  const s = d.streamAt(Buffer.concat([Buffer.from('xx'), a]), 2, 2 + a.length);
  d.accepted(s, 7);
  assert.equal(d.streamAt(Buffer.from(a), 0, a.length), s, 'the same process in another frame');
  const t = d.streamAt(sameTail, 0, sameTail.length);
  assert.notEqual(t, s);
  assert.equal(t.last, -1, 'a new process has accepted nothing');
  assert.equal(d.streamAt(a, 0, a.length).last, 7, 'found again after the other took its tag');
  assert.equal(d.streams, 2);
});

test('a stream forgotten for room is not found by its bytes either', () => {
  const d = new Dedupe(1);
  const a = Buffer.from('\x05probeAAAAAAAA', 'latin1');
  const b = Buffer.from('\x05probeBBBBBBBB', 'latin1');
  d.accepted(d.streamAt(a, 0, a.length), 9);
  d.accepted(d.streamAt(b, 0, b.length), 1);
  assert.equal(d.streams, 1);
  assert.equal(d.streamAt(a, 0, a.length).last, -1, 'a was forgotten: its old seqs would be accepted again');
});
