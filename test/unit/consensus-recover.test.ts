// A replica rebuilt from its journal (ConsensusReplica.recover, src/consensus/journal.ts,
// docs/consensus.md "Restart from the journal"), driven by hand: it contradicts no vote it gave
// before the crash (PRE-PREPARE, PREPARE, certificate, VIEW-CHANGE), its machine comes back
// from the snapshot and the batches above it, and it refuses a journal that is not its own.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FitError } from '../../src/core/index.js';
import {
  ConsensusReplica,
  GENESIS,
  MemoryJournalStore,
  refOf,
  type Batches,
  type Checkpoint,
  type ConsensusMessage,
  type ConsensusOptions,
  type NewView,
  type Output,
  type PrePrepare,
  type Prepare,
  type Req,
  type ViewChange,
} from '../../src/consensus/index.js';
import { CORE_N, CORE_OPTIONS, coreFixture, SimMachine } from '../helpers/consensus-sim.js';

const N = CORE_N;
const { signers, sign, req, prePrepare } = coreFixture(11);
const OPTIONS: ConsensusOptions = { ...CORE_OPTIONS, resendTicks: 5, journaling: true };

const sent = (o: Output, type: ConsensusMessage['type']): ConsensusMessage[] => o.messages.filter((m) => m.msg.type === type).map((m) => m.msg);

/** A journaling replica, its journal and its machine; `restart` kills it (what was not flushed is lost) and rebuilds it from the journal. */
class Harness {
  readonly journal = new MemoryJournalStore();
  machine = new SimMachine();
  r: ConsensusReplica;
  /** Everything the replica said, since the last restart. */
  out: Output[] = [];

  constructor(
    readonly id = 1,
    private readonly extra: Partial<ConsensusOptions> = {},
  ) {
    this.r = this.build();
    this.take(this.r.recover([]));
  }

  private build(): ConsensusReplica {
    return new ConsensusReplica({ ...OPTIONS, ...this.extra, id: this.id }, signers[this.id]!, this.machine);
  }

  /** Written ahead: entries are flushed before the output counts as said. */
  take(o: Output): Output {
    this.journal.append(o.journal);
    this.journal.sync();
    this.out.push(o);
    return o;
  }

  receive(from: number, m: ConsensusMessage): Output {
    return this.take(this.r.receive(from, m));
  }

  attest(reqs: Req[], by = [0, 2, 3].filter((x) => x !== this.id)): void {
    for (const from of by) this.receive(from, { type: 'hold', refs: reqs.map(refOf), from });
  }

  restart(): Output {
    this.journal.crash();
    this.machine = new SimMachine();
    this.r = this.build();
    this.out = [];
    return this.take(this.r.recover(this.journal.load()));
  }

  ticks(count: number): Output[] {
    const outs: Output[] = [];
    for (let i = 0; i < count; i++) outs.push(this.take(this.r.tick()));
    return outs;
  }

  said(type: ConsensusMessage['type']): ConsensusMessage[] {
    return this.out.flatMap((o) => sent(o, type));
  }
}

/** Replica 1 decides `batch` at (view 0, seq): the bodies from their client, the leader's PRE-PREPARE, PREPAREs of 2 and 3, COMMITs of 0, 2, 3. */
function decide(h: Harness, seq: number, batch: Req[]): void {
  const pp = prePrepare(0, seq, batch);
  h.take(h.r.submit(batch));
  h.attest(batch);
  h.receive(0, pp);
  for (const from of [2, 3]) h.receive(from, sign<Prepare>({ type: 'prepare', view: 0, seq, digest: pp.digest, from, sig: '' }));
  for (const from of [0, 2, 3]) h.receive(from, { type: 'commit', view: 0, seq, digest: pp.digest, from });
}

test('a backup that PREPAREd a batch before the crash prepares no other batch at that (view, seq) after it, and sends its PREPARE again', () => {
  const h = new Harness();
  h.attest([req(1), req(9)]);
  const first = prePrepare(0, 1, [req(1)]);
  assert.equal(sent(h.receive(0, first), 'prepare').length, 1);
  h.restart();
  assert.equal(h.r.status.recovering, false, 'it journaled every vote: no passive period');
  h.attest([req(9)]);
  assert.equal(sent(h.receive(0, prePrepare(0, 1, [req(9)])), 'prepare').length, 0, 'an equivocating leader\'s second PRE-PREPARE for (0, 1)');
  h.ticks(OPTIONS.resendTicks);
  const resent = h.said('prepare') as Prepare[];
  assert.ok(resent.length > 0 && resent.every((p) => p.seq === 1 && p.digest === first.digest), 'its PREPARE for the first batch, resent');
});

test('a certificate formed before the crash is reported in the VIEW-CHANGE it sends after it', () => {
  const h = new Harness();
  h.attest([req(1)]);
  const pp = prePrepare(0, 1, [req(1)]);
  h.receive(0, pp);
  for (const from of [2, 3]) h.receive(from, sign<Prepare>({ type: 'prepare', view: 0, seq: 1, digest: pp.digest, from, sig: '' }));
  assert.equal(h.said('commit').length, 1, 'prepared: it sent its COMMIT');
  h.restart();
  for (const from of [0, 2]) h.receive(from, { type: 'stop', view: 1, from });
  const [vc] = h.said('view-change') as ViewChange[];
  assert.ok(vc, 'it left view 0');
  assert.deepEqual(
    vc.prepared.map((c) => [c.prePrepare.seq, c.prePrepare.digest]),
    [[1, pp.digest]],
  );
});

test('a replica that left its view before the crash is still leaving it after: the same VIEW-CHANGE again, and nothing of the old view prepared', () => {
  const h = new Harness();
  for (const from of [0, 2]) h.receive(from, { type: 'stop', view: 1, from });
  const [before] = h.said('view-change') as ViewChange[];
  assert.ok(before);
  h.restart();
  assert.equal(h.r.status.changingView, true);
  h.attest([req(3)]);
  assert.equal(sent(h.receive(0, prePrepare(0, 1, [req(3)])), 'prepare').length, 0, 'a PRE-PREPARE of the view it left');
  h.ticks(OPTIONS.resendTicks);
  assert.deepEqual(h.said('view-change'), [before]);
  assert.ok((h.said('stop') as { view: number }[]).some((s) => s.view === 1), 'its vote to leave, resent');
});

test('a replica that sent VIEW-CHANGE(2) before the crash enters no view below 2 after it (the leave entry keeps the promise), and enters NEW-VIEW(2)', () => {
  const h = new Harness(3);
  for (const from of [0, 2]) h.receive(from, { type: 'stop', view: 2, from });
  assert.equal((h.said('view-change') as ViewChange[])[0]?.view, 2);
  h.restart();
  const newView = (view: number): NewView => {
    const vcs = [0, 1, 2].map((from) => sign<ViewChange>({ type: 'view-change', view, stable: GENESIS, prepared: [], from, sig: '' }));
    return sign<NewView>({ type: 'new-view', view, viewChanges: vcs, prePrepares: [], from: view % N, sig: '' });
  };
  h.receive(1, newView(1));
  assert.deepEqual([h.r.status.view, h.r.status.changingView], [0, true], 'NEW-VIEW(1), valid, refused');
  h.receive(2, newView(2));
  assert.deepEqual([h.r.status.view, h.r.status.changingView], [2, false]);
});

test('a leader restarted from its journal proposes above the seqs it proposed before, and sends those PRE-PREPAREs again', () => {
  const h = new Harness(0);
  h.take(h.r.submit(req(1)));
  h.attest([req(1)], [2]);
  const [first] = h.said('pre-prepare') as PrePrepare[];
  assert.equal(first?.seq, 1);
  h.restart();
  h.take(h.r.submit(req(2)));
  h.attest([req(2)], [2]);
  h.ticks(OPTIONS.resendTicks);
  const pps = h.said('pre-prepare') as PrePrepare[];
  assert.ok(pps.some((p) => p.seq === 1 && p.digest === first.digest), 'seq 1 again, the same batch');
  assert.ok(pps.some((p) => p.seq === 2 && p.batch.some((r) => r.seq === 2)), 'the new request at seq 2');
  assert.ok(!pps.some((p) => p.seq === 1 && p.digest !== first.digest), 'another batch at seq 1');
});

test('the machine comes back: restored from the snapshot at the stable checkpoint, the batches above it executed again; the batches kept are served to a replica catching up', () => {
  const h = new Harness();
  for (let seq = 1; seq <= 3; seq++) decide(h, seq, [req(seq)]);
  const own = h.said('checkpoint') as Checkpoint[];
  assert.equal(own[0]?.seq, 2);
  for (const from of [0, 2]) h.receive(from, sign<Checkpoint>({ ...own[0]!, from, sig: '' }));
  assert.equal(h.r.status.stableCheckpoint, 2);
  const executed = [...h.machine.executed];
  const o = h.restart();
  assert.deepEqual(h.machine.installs, [2], 'restored from the snapshot at 2');
  assert.deepEqual(o.decided.map((d) => d.seq), [3], 'the batch above it, executed again');
  assert.deepEqual(h.machine.executed, executed);
  assert.equal(h.r.status.lastDecided, 3);
  assert.equal(h.r.status.snapshotsInstalled, 0, 'recovery is not state transfer');
  // A replica that executed seq 1 (one that executed nothing is offered the snapshot instead).
  const reply = sent(h.receive(3, { type: 'fetch', after: 1, from: 3 }), 'batches')[0] as Batches;
  assert.deepEqual(reply.batches.map((b) => b.seq), [2, 3]);
  assert.equal(reply.stable.seq, 2);
  // Below the snapshot, the batches it retains (retainDecided) came back too: their bodies are served.
  assert.equal(sent(h.receive(2, { type: 'body-fetch', refs: [refOf(req(1))], from: 2 }), 'bodies').length, 1);
});

test('a replica restarted from its journal resends the CHECKPOINT it signed at its stable checkpoint, as before the crash', () => {
  const h = new Harness();
  for (let seq = 1; seq <= 2; seq++) decide(h, seq, [req(seq)]);
  const [own] = h.said('checkpoint') as Checkpoint[];
  assert.equal(own?.seq, 2);
  for (const from of [0, 2]) h.receive(from, sign<Checkpoint>({ ...own!, from, sig: '' }));
  assert.equal(h.r.status.stableCheckpoint, 2);
  h.restart();
  h.ticks(OPTIONS.resendTicks);
  // Replica 3, away while it became stable, needs it: 0 and 2 alone are not 2f+1.
  assert.deepEqual(h.said('checkpoint'), [own], 'its CHECKPOINT at 2, resent');
});

test('a decided batch is journaled by reference to bodies already on disk (written once); a journal that lost such a body is refused', () => {
  const h = new Harness();
  decide(h, 1, [req(1), req(2)]);
  const entries = h.journal.load();
  const d = entries.find((e) => e.type === 'decided');
  assert.ok(d?.type === 'decided' && d.batch.every((x) => !('payload' in x)), 'by reference: the bodies are in the hold group');
  assert.ok(entries.some((e) => e.type === 'hold'), 'the group stays while the batch refers to it');
  const lost = new ConsensusReplica({ ...OPTIONS, id: 1 }, signers[1]!, new SimMachine());
  assert.throws(
    () => lost.recover(entries.filter((e) => e.type !== 'hold')),
    (e: unknown) => e instanceof FitError && e.code === 'FIT_ERR_JOURNAL' && /refers to a body/.test(e.message),
  );
});

test('bodies it attested come back: held, announced again, and handed to a replica that asks', () => {
  const h = new Harness();
  h.take(h.r.submit(req(5)));
  const o = h.restart();
  assert.ok(sent(o, 'hold').some((m) => m.type === 'hold' && m.refs.some((r) => r.seq === 5)), 'attested again');
  const bodies = sent(h.receive(2, { type: 'body-fetch', refs: [refOf(req(5))], from: 2 }), 'bodies');
  assert.deepEqual(bodies.length, 1);
});

test('a body let go undecided (its attestation ended) stays gone after a restart, though the rest of its hold group stays on disk', () => {
  const h = new Harness(1, { attestationSeqs: 3 });
  // One step, one hold group: request 1 reached this replica alone, request 2 others too.
  h.take(h.r.submit([req(1), req(2)]));
  h.attest([req(2)], [0, 2]);
  for (let seq = 1; seq <= 3; seq++) decide(h, seq, []);
  assert.deepEqual(h.out.flatMap((o) => o.expired ?? []).map((q) => q.seq), [1]);
  assert.equal(h.journal.load().filter((e) => e.type === 'letgo').length, 1, 'the journal says request 1 went');
  const o = h.restart();
  assert.deepEqual((sent(o, 'hold') as { refs: { seq: number }[] }[]).flatMap((m) => m.refs.map((x) => x.seq)), [2], 'request 2 is attested again, request 1 is not');
  assert.equal(h.r.status.pending, 1);
  assert.equal(sent(h.receive(2, { type: 'body-fetch', refs: [refOf(req(1))], from: 2 }), 'bodies').length, 0);
  // Its client sends it again: held and attested again, in a later group, which a restart keeps.
  assert.deepEqual((sent(h.take(h.r.submit([req(1)])), 'hold') as { refs: { seq: number }[] }[]).flatMap((m) => m.refs.map((x) => x.seq)), [1]);
  const again = h.restart();
  assert.deepEqual((sent(again, 'hold') as { refs: { seq: number }[] }[]).flatMap((m) => m.refs.map((x) => x.seq)).sort(), [1, 2], 'both held and attested after the restart');
  assert.equal(sent(h.receive(2, { type: 'body-fetch', refs: [refOf(req(1))], from: 2 }), 'bodies').length, 1, 'and the body it attested is served');
});

test('a body kept aside for a faulty leader\'s second batch survives a restart between the two batches (its hold group stays on disk), and the second batch executes without asking anyone', () => {
  const h = new Harness(1, { retainDecided: 2 });
  const x = req(1);
  const y: Req = { ...x, payload: `${x.payload} again` };
  // A faulty client gave this replica x and others y; a faulty leader decides y, then x.
  h.take(h.r.submit([x]));
  h.attest([x, y], [2]);
  h.attest([y], [3]);
  const pp1 = prePrepare(0, 1, [y]);
  const pp2 = prePrepare(0, 2, [x]);
  for (const pp of [pp1, pp2]) {
    h.receive(0, pp);
    for (const from of [2, 3]) h.receive(from, sign<Prepare>({ type: 'prepare', view: 0, seq: pp.seq, digest: pp.digest, from, sig: '' }));
  }
  h.receive(2, { type: 'bodies', reqs: [y], from: 2 });
  const commit = (pp: PrePrepare): Output[] => [0, 2, 3].map((from) => h.receive(from, { type: 'commit', view: 0, seq: pp.seq, digest: pp.digest, from }));
  assert.deepEqual(commit(pp1).flatMap((o) => o.decided.map((d) => d.seq)), [1]);
  h.restart();
  const second = commit(pp2);
  assert.deepEqual(
    second.flatMap((o) => o.decided.map((d) => [d.seq, d.requests.length])),
    [[2, 0]],
    'the second batch executes from x, which only this replica held, the request skipped',
  );
  assert.equal(h.said('body-fetch').length, 0, 'nobody was asked for x');
  // x stays on disk while it may be needed, and goes with it (its group unheld) once the log moved on.
  const groupOf = (): boolean => h.journal.load().some((e) => e.type === 'hold' && e.reqs.some((q) => q.payload === x.payload));
  assert.ok(groupOf(), 'x is on disk still');
  for (let seq = 3; seq <= 3 + OPTIONS.logWindow + 2 + 2 * OPTIONS.checkpointInterval; seq++) {
    decide(h, seq, [req(seq)]);
    const own = (h.said('checkpoint') as Checkpoint[]).find((c) => c.seq === seq);
    if (own) for (const from of [0, 2]) h.receive(from, sign<Checkpoint>({ ...own, from, sig: '' }));
  }
  assert.ok(h.r.status.stableCheckpoint >= 3 + OPTIONS.logWindow + 2, `the log moved on (stable at ${h.r.status.stableCheckpoint})`);
  assert.ok(!groupOf(), 'x left the journal once the log moved past where it could be needed');
});

test('an amnesiac replica (restarted, empty journal) journals that it is passive, and restarted from that journal is passive still', () => {
  const h = new Harness(1, { restarted: true });
  assert.equal(h.r.status.recovering, true);
  h.restart();
  assert.equal(h.r.status.recovering, true, 'it may have voted before its journal began');
  const fresh = new Harness(2);
  fresh.restart();
  assert.equal(fresh.r.status.recovering, false);
});

test('a journal that is not this replica\'s, or has no header, is refused', () => {
  const h = new Harness(2);
  const other = new ConsensusReplica({ ...OPTIONS, id: 1 }, signers[1]!, new SimMachine());
  assert.throws(() => other.recover(h.journal.load()), (e: unknown) => e instanceof FitError && e.code === 'FIT_ERR_JOURNAL' && /replica 2's/.test(e.message));
  const headless = new ConsensusReplica({ ...OPTIONS, id: 1 }, signers[1]!, new SimMachine());
  assert.throws(() => headless.recover([{ type: 'stable', stable: { seq: 0, state: 'x', snapshot: '', proof: [] } }]), (e: unknown) => e instanceof FitError && e.code === 'FIT_ERR_JOURNAL');
  const unrecovered = new ConsensusReplica({ ...OPTIONS, id: 1 }, signers[1]!, new SimMachine());
  assert.throws(() => unrecovered.tick(), (e: unknown) => e instanceof FitError && e.code === 'FIT_ERR_INTERNAL', 'used before recover()');
});
