// The voters on protected channels (src/client/voter.ts settle(), ordered-voter.ts): with
// real sealed records and a real checker, what one faulty replica can and cannot make a
// subscriber do. One valid signed copy delivers a fresh event, but never an old one again (the
// replay horizon); a failing version never wins and is blamed on its replica, or on the
// publisher once f+1 replicas sent it; a version that cannot be checked yet is not judged; the
// floor an event leaves is at its signed priority, not the priority of a faulty first copy.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { contentOffset, numberRecords, recordBytes, writeRecord, encodeOrdered } from '../../src/codec/index.js';
import { BatchSigner, EventChecker, EventSealer, generateIdentity, trailerBytes, PROTECTION_CODE, VerifiedNodes } from '../../src/protection/index.js';
import { Voter, OrderedVoter } from '../../src/client/index.js';
import type { Priority } from '../../src/core/index.js';

const probe = generateIdentity();
const probeKey = createPrivateKey(probe.privatePem);
const EPOCH = Buffer.from('0102030405060708', 'hex');
const NOW = 1_800_000_000_000;

/** A pks record on "alerts" by probe, sealed alone (a tree of one). */
function sealed(seq: number, content: string, o: { priority?: Priority; timestampMs?: number; publisher?: string } = {}): Buffer {
  const publisher = Buffer.from(o.publisher ?? 'probe');
  const trailer = trailerBytes('pks', 0);
  const buf = Buffer.alloc(recordBytes(publisher.length, Buffer.byteLength(content), trailer));
  writeRecord(buf, 0, { publisher, epoch: EPOCH, seq: 0, timestampMs: o.timestampMs ?? NOW, priority: o.priority ?? 0, contentType: 0, content: Buffer.from(content), protection: PROTECTION_CODE.pks, trailerBytes: trailer });
  numberRecords(buf, 0, seq - 1);
  const signer = new BatchSigner(probeKey, 0);
  new EventSealer({ channel: 'alerts', protection: 'pks' }).seal(buf, 0, buf.length, signer);
  signer.finish();
  return buf;
}

/** A copy a faulty replica altered (content byte flipped): still parses, fails the signature. */
function tampered(rec: Buffer): Buffer {
  const copy = Buffer.from(rec);
  copy[contentOffset(copy).start]! ^= 1;
  return copy;
}

function setup(o: { known?: Set<string>; deliveredMax?: number; horizonMs?: number } = {}) {
  const known = o.known ?? new Set(['probe']);
  const checker = new EventChecker({ channel: 'alerts', protection: 'pks', publicKeyOf: (c) => (known.has(c) ? probe.publicKey : undefined), verified: new VerifiedNodes() });
  const delivered: string[] = [];
  const reports: { byPublisher: boolean; mask: number; reason: string }[] = [];
  const voter = new Voter(
    {
      replicas: 4,
      threshold: 2,
      ttlMs: 3_600_000,
      pendingMax: 100,
      deliveredMax: o.deliveredMax ?? 100,
      pendingMs: 60_000,
      check: (b, s, e) => checker.check(b, s, e),
      checkReason: () => checker.reason,
      oneValidEnough: true,
      blameQuorum: 2,
      horizonMs: o.horizonMs ?? NOW - 60_000,
    },
    {
      deliver: (buf, start, end) => delivered.push(buf.subarray(start, end).toString('latin1')),
      resolve: () => undefined,
      forged: (_b, _s, _e, mask, byPublisher, reason) => reports.push({ byPublisher, mask, reason }),
    },
  );
  let pos = 0;
  const offer = (replica: number, rec: Buffer): void => voter.offer(replica, rec, pos++, NOW);
  return { voter, delivered, reports, offer, known };
}

test('one valid copy delivers a fresh event; the other copies are checked against it, not delivered again', () => {
  const { voter, delivered, offer } = setup();
  const rec = sealed(1, 'fresh');
  offer(0, rec);
  assert.equal(delivered.length, 1);
  for (const r of [1, 2, 3]) offer(r, rec);
  assert.equal(delivered.length, 1);
  assert.deepEqual(voter.mismatches, [0, 0, 0, 0]);
});

test("a faulty replica's altered first copy never wins, is blamed on that replica alone, and the valid copy is delivered", () => {
  const { voter, delivered, reports, offer } = setup();
  const rec = sealed(1, 'the real one');
  offer(2, tampered(rec));
  assert.equal(delivered.length, 0);
  assert.equal(voter.counters.forged, 1);
  assert.deepEqual(reports.map((r) => r.byPublisher), [false], 'one replica is not f+1: not the publisher');
  offer(0, rec);
  assert.deepEqual(delivered, [rec.toString('latin1')]);
  offer(1, rec);
  offer(3, rec);
  assert.deepEqual(voter.mismatches, [0, 0, 1, 0]);
  assert.equal(voter.counters.rejected, 0);
});

test('f+1 replicas sending the same failing version: the publisher sealed it wrongly — rejected, reported with the reason, never delivered', () => {
  const { voter, delivered, reports, offer } = setup();
  const bad = tampered(sealed(1, 'forged by its publisher'));
  offer(0, bad);
  offer(1, bad);
  offer(2, bad);
  assert.equal(delivered.length, 0);
  assert.equal(voter.counters.rejected, 1);
  const last = reports.at(-1)!;
  assert.equal(last.byPublisher, true);
  assert.equal(last.mask, 0b11);
  assert.match(last.reason, /does not verify under probe's key/);
});

test('a publisher not known here is not judged: nothing is rejected, and once it is known its event is delivered', () => {
  const { voter, delivered, reports, offer, known } = setup({ known: new Set() });
  const rec = sealed(1, 'from a client registered later', { publisher: 'probe' });
  offer(0, rec);
  offer(1, rec);
  assert.equal(delivered.length, 0);
  assert.equal(voter.counters.rejected + voter.counters.forged, 0);
  assert.equal(reports.length, 0);
  known.add('probe');
  offer(2, rec);
  assert.equal(delivered.length, 1);
});

test('one faulty replica cannot replay an event older than the horizon: it needs f+1 copies, as on an si channel', () => {
  const { delivered, offer } = setup({ horizonMs: NOW });
  const old = sealed(1, 'published before this subscriber started', { timestampMs: NOW - 5_000 });
  offer(3, old);
  assert.equal(delivered.length, 0, 'one valid copy of an old event must not deliver it');
  offer(0, old);
  assert.equal(delivered.length, 1);
});

test('one faulty replica cannot replay a delivered event the voter has forgotten: forgetting raises the horizon', () => {
  const { voter, delivered, offer } = setup({ deliveredMax: 2 });
  const first = sealed(1, 'first', { timestampMs: NOW - 1000 });
  offer(0, first);
  for (let seq = 2; seq <= 4; seq++) offer(0, sealed(seq, `later ${seq}`, { timestampMs: NOW - 1000 + seq }));
  assert.equal(delivered.length, 4);
  // `first` is forgotten now (deliveredMax 2), and its floor is there; a new process's copy of it is not.
  const replayedAlone = sealed(1, 'first', { timestampMs: NOW - 1000 });
  offer(3, replayedAlone);
  assert.equal(delivered.length, 4, 'a forgotten event replayed by one replica was delivered again');
  assert.ok(voter.counters.stale + voter.pendingCount > 0);
});

test("an event's floor is at its signed priority, not at a faulty replica's first copy's", () => {
  const { delivered, offer } = setup({ deliveredMax: 1 });
  const urgent = sealed(3, 'urgent', { priority: 3 });
  // Replica 2 relabels it priority 0 (the copy fails the signature; the real one wins).
  const relabelled = Buffer.from(urgent);
  relabelled[5] = 0;
  offer(2, relabelled);
  offer(0, urgent);
  // Normal events 1 and 2 overtaken by the urgent one arrive now (f+1 copies each: forgetting
  // `urgent` raised the horizon past them); it must not have floored priority 0 at seq 3.
  for (const seq of [1, 2]) {
    const normal = sealed(seq, `normal ${seq}`);
    for (const r of [0, 1]) offer(r, normal);
  }
  assert.deepEqual(
    delivered.map((d) => d.includes('normal') || d.includes('urgent')),
    [true, true, true],
  );
  assert.equal(delivered.length, 3);
});

test('ordered voter: a decided version that fails its check is passed over, reported with its reason, and delivery goes on', () => {
  const checker = new EventChecker({ channel: 'alerts', protection: 'pks', publicKeyOf: () => probe.publicKey, verified: new VerifiedNodes() });
  const out: number[] = [];
  const rejected: [number, string][] = [];
  const v = new OrderedVoter(
    { replicas: 4, threshold: 2, pendingMax: 100, gapWaitMs: 1000, from: 1, check: (b, s, e) => checker.check(b, s, e), checkReason: () => checker.reason },
    { deliver: (seq) => out.push(seq), resolve: () => undefined, rejected: (seq, _b, _s, _e, _m, reason) => rejected.push([seq, reason]) },
  );
  const env = (seq: number, rec: Buffer): Buffer => encodeOrdered(seq, rec);
  const good1 = env(1, sealed(1, 'one'));
  const bad2 = env(2, tampered(sealed(2, 'two')));
  const good3 = env(3, sealed(3, 'three'));
  let pos = 0;
  for (const e of [good1, bad2, good3]) for (const r of [0, 1]) v.offerSection(r, e, 0, e.length, pos++, NOW);
  assert.deepEqual(out, [1, 3]);
  assert.equal(rejected.length, 1);
  assert.equal(rejected[0]![0], 2);
  assert.match(rejected[0]![1], /does not verify/);
  assert.equal(v.counters.rejected, 1);
});

test('a publisher that signs two versions of one event is the one blamed: the first valid version is delivered once, and no replica is counted as a mismatch', () => {
  const { voter, delivered, offer } = setup();
  const first = sealed(7, 'version A');
  const second = sealed(7, 'version B: same event, signed again');
  // Replicas 0 and 1 pass on the first, 2 and 3 the second: both verify, so neither pair lied.
  offer(0, first);
  offer(2, second);
  offer(1, first);
  offer(3, second);
  assert.deepEqual(delivered, [first.toString('latin1')], 'the first valid version, once');
  assert.deepEqual(voter.mismatches, [0, 0, 0, 0], 'no replica is blamed for a version its publisher signed');
  assert.ok(voter.counters.equivocations >= 1, `the equivocation is counted: ${voter.counters.equivocations}`);
  // A replica that alters the delivered version is still blamed as before.
  offer(0, sealed(8, 'honest'));
  offer(1, tampered(sealed(8, 'honest')));
  assert.deepEqual(voter.mismatches, [0, 1, 0, 0]);
});
