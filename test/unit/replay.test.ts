// Replay by a replica (docs/security.md "Hardening", part (b)): a faulty replica re-pushing
// copies of events already delivered, alone or together with a correct replica that resends
// after a reconnect, never makes a subscriber's voter deliver an event twice: the delivered
// keys turn away recent copies, the per-process floors older ones, for as long as the voter
// remembers the publishing process. The client side of replay (old frames and old signed
// changes resent over real sockets) is test/integration/replay.test.ts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OrderedVoter, Voter, type VoterOptions } from '../../src/client/index.js';
import { encodeOrdered } from '../../src/codec/index.js';
import { makeRecord, EPOCH_A, T0_MS } from '../helpers/records.js';

const NOW = T0_MS;
const BFT_F1: VoterOptions = { replicas: 4, threshold: 2, ttlMs: 60_000, pendingMax: 1000, deliveredMax: 8, pendingMs: 30_000 };

function voter(o: Partial<VoterOptions> = {}) {
  const delivered: string[] = [];
  const v = new Voter({ ...BFT_F1, ...o }, { deliver: (buf, start, end) => delivered.push(buf.toString('hex', start, end)), resolve: () => undefined });
  const pos = [0, 0, 0, 0];
  const offer = (replica: number, rec: Buffer): void => v.offer(replica, rec, pos[replica]!++, NOW);
  return { v, delivered, offer };
}

const ev = (seq: number, epoch = EPOCH_A): Buffer => makeRecord({ seq, epoch, content: `event ${seq}` });

test('a faulty replica re-pushing every delivered copy, again and again, delivers nothing twice (recent: delivered keys)', () => {
  const { v, delivered, offer } = voter();
  for (let seq = 1; seq <= 5; seq++) for (const r of [0, 1, 2]) offer(r, ev(seq));
  assert.equal(delivered.length, 5);
  for (let round = 0; round < 3; round++) for (let seq = 1; seq <= 5; seq++) offer(3, ev(seq));
  assert.equal(delivered.length, 5);
  assert.equal(v.counters.delivered, 5);
});

test('a faulty replica and a correct one resending after a reconnect (f+1 copies) of events long forgotten deliver nothing twice (old: the floors)', () => {
  const { v, delivered, offer } = voter();
  // 100 events: the first 92 have left the delivered keys (deliveredMax 8) for the floor.
  for (let seq = 1; seq <= 100; seq++) for (const r of [0, 1]) offer(r, ev(seq));
  assert.equal(delivered.length, 100);
  for (let seq = 1; seq <= 100; seq++) {
    offer(2, ev(seq)); // correct, resending its queue after a reconnect
    offer(3, ev(seq)); // faulty, replaying what it pushed before
  }
  assert.equal(delivered.length, 100, 'f+1 replayed copies of a delivered event delivered it again');
  assert.ok(v.counters.stale >= 2 * 92, `copies below the floor should be counted stale: ${JSON.stringify(v.counters)}`);
});

test('the documented window: once deliveredMax other publishing processes have come and gone, the voter has forgotten a process, and f+1 copies of its old events are delivered again', () => {
  const { delivered, offer } = voter();
  for (const r of [0, 1]) offer(r, ev(1));
  for (let k = 0; k < 40; k++) {
    const epoch = Buffer.alloc(8, k + 1);
    for (const r of [0, 1]) offer(r, ev(1, epoch));
  }
  const before = delivered.length;
  for (const r of [2, 3]) offer(r, ev(1));
  // This is why replicas refuse replays too (dedupe) and why TTL bounds them: the voter alone
  // is not enough against f+1 replicas that hold a replayed event (docs/security.md).
  assert.equal(delivered.length, before + 1);
});

test('ordered channels: re-pushed envelopes of seqs already delivered are stale, whoever sends them and however many do', () => {
  const delivered: number[] = [];
  const v = new OrderedVoter({ replicas: 4, threshold: 2, pendingMax: 64, gapWaitMs: 1000, from: 1 }, { deliver: (seq) => delivered.push(seq), resolve: () => undefined, skipped: () => undefined });
  const rec = (seq: number): Buffer => {
    const body = Buffer.from(`event ${seq}`);
    const out = Buffer.alloc(4 + body.length);
    out.writeUInt32BE(body.length, 0);
    body.copy(out, 4);
    return out;
  };
  const section = (from: number, to: number): Buffer => Buffer.concat(Array.from({ length: to - from + 1 }, (_, i) => encodeOrdered(from + i, rec(from + i))));
  const pos = [0, 0, 0, 0];
  const send = (r: number, s: Buffer, n: number): void => {
    v.offerSection(r, s, 0, s.length, pos[r]!, NOW);
    pos[r]! += n;
  };
  for (const r of [0, 1]) send(r, section(1, 10), 10);
  assert.deepEqual(delivered, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  for (const r of [2, 3, 3, 2, 3]) send(r, section(1, 10), 10);
  assert.deepEqual(delivered, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'a seq was delivered twice');
  assert.ok(v.counters.stale >= 30);
});
