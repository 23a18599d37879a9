// The view change (src/consensus/view-change.ts, docs/consensus.md "Leader change") with four
// real replicas on a network scripted by hand: which message reaches whom, and when. The
// simulator draws its schedules at random; the ones here are too precise for it to find
// often, so each is written out step by step, and every step checks that no two replicas
// decided differently at a seq.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FitError } from '../../src/core/index.js';
import { ConsensusReplica, type ConsensusMessage, type NewView, type Output, type Req } from '../../src/consensus/index.js';
import { CORE_N, CORE_OPTIONS, coreFixture } from '../helpers/consensus-sim.js';

const N = CORE_N;
const { signers, req } = coreFixture(13);

interface InFlight {
  from: number;
  to: number;
  msg: ConsensusMessage;
}
type Pick = (m: InFlight) => boolean;

/** n correct replicas and the messages between them, delivered or dropped as a test says. */
class Cluster {
  readonly replicas = Array.from({ length: N }, (_, id) => new ConsensusReplica({ ...CORE_OPTIONS, id }, signers[id]!));
  inFlight: InFlight[] = [];
  /** What each replica decided, by seq: the batch's requests as text. */
  readonly decided = Array.from({ length: N }, () => new Map<number, string>());
  /** Broken invariants: two replicas deciding differently at a seq, or a replica's own assertion. */
  readonly violations: string[] = [];
  /** Replicas stopped by an assertion of their own: they take no further part. */
  readonly halted = new Set<number>();
  /** Every NEW-VIEW sent, with what some replica had decided by then (seq to batch). */
  readonly newViews: { nv: NewView; decidedBefore: Map<number, string> }[] = [];

  private take(from: number, o: Output): void {
    for (const d of o.decided) {
      const text = JSON.stringify(d.requests.map((q) => `${q.client}#${q.seq}`));
      this.decided[from]!.set(d.seq, text);
      for (let other = 0; other < N; other++) {
        const theirs = this.decided[other]!.get(d.seq);
        if (theirs !== undefined && theirs !== text) this.violations.push(`replicas ${other} and ${from} decided different batches at seq ${d.seq}: ${theirs} vs ${text}`);
      }
    }
    for (const { to, msg } of o.messages) {
      if (msg.type === 'new-view') this.newViews.push({ nv: msg, decidedBefore: new Map(this.decided.flatMap((d) => [...d])) });
      for (const t of to === 'all' ? Array.from({ length: N }, (_, i) => i) : [to]) if (t !== from) this.inFlight.push({ from, to: t, msg: structuredClone(msg) });
    }
  }

  /** Runs one step of a replica; an assertion it raises (FIT_ERR_INTERNAL) halts it and is recorded. */
  private step(id: number, call: (r: ConsensusReplica) => Output): void {
    if (this.halted.has(id)) return;
    try {
      this.take(id, call(this.replicas[id]!));
    } catch (e) {
      if (!(e instanceof FitError)) throw e;
      this.halted.add(id);
      this.violations.push(`replica ${id}: ${e.message}`);
    }
  }

  submit(q: Req, to: number[] = [0, 1, 2, 3]): void {
    for (const id of to) this.step(id, (r) => r.submit(q));
  }

  tick(times = 1, who: number[] = [0, 1, 2, 3]): void {
    for (let k = 0; k < times; k++) for (const id of who) this.step(id, (r) => r.tick());
  }

  /** Delivers the messages in flight that `pick` selects, and those they cause, until none is left. */
  deliver(pick: Pick): void {
    for (let round = 0; round < 1000; round++) {
      const now = this.inFlight.filter(pick);
      if (now.length === 0) return;
      this.inFlight = this.inFlight.filter((m) => !pick(m));
      for (const m of now) this.step(m.to, (r) => r.receive(m.from, m.msg));
    }
    throw new Error('test bug: messages kept coming');
  }

  /** The network loses these messages. */
  drop(pick: Pick): void {
    this.inFlight = this.inFlight.filter((m) => !pick(m));
  }

  /** Every message arrives from now on: delivers what is in flight, ticks, and again, up to `rounds` times or until `done`. */
  heal(done: () => boolean, rounds = 400): void {
    for (let k = 0; k < rounds && !done(); k++) {
      this.deliver(() => true);
      this.tick();
    }
  }
}

const is =
  (type: ConsensusMessage['type'], o: { view?: number; from?: number[]; to?: number[] } = {}): Pick =>
  (m) =>
    m.msg.type === type && (o.view === undefined || ('view' in m.msg && m.msg.view === o.view)) && (o.from === undefined || o.from.includes(m.from)) && (o.to === undefined || o.to.includes(m.to));

test('a replica that sent VIEW-CHANGE(t) never takes part in a view below t, so a leader cannot build NEW-VIEW(t) from VIEW-CHANGEs that left out a batch decided meanwhile (PBFT TOCS §4.4; found in review)', () => {
  const c = new Cluster();
  const x = req(1);
  const y = req(2);
  // View 0: the leader's PRE-PREPAREs are lost; every replica votes to leave (STOP(1)) and
  // leaves. Replica 2 never hears of x (its client's message and the attestations are lost).
  c.submit(x, [0, 1, 3]);
  c.deliver(is('hold', { to: [0, 1, 3] }));
  c.drop(is('hold'));
  c.drop(is('pre-prepare'));
  c.tick(CORE_OPTIONS.viewChangeTimeoutTicks);
  c.deliver(is('stop', { view: 1 }));
  assert.ok(c.replicas.every((r) => r.status.changingView), 'every replica left view 0');
  // The VIEW-CHANGE(1)s are slow to reach replica 1, the leader of view 1; the view change
  // times out, and everyone votes STOP(2). Only replicas 0 and 3 receive enough of those votes:
  // they leave for view 2, and their VIEW-CHANGE(2)s, which carry no certificate (nothing was
  // prepared yet), reach replica 2, the leader of view 2.
  c.tick(CORE_OPTIONS.viewChangeTimeoutTicks);
  c.deliver(is('stop', { view: 2, from: [0, 1, 3], to: [0, 3] }));
  c.drop(is('stop', { view: 2 }));
  c.deliver(is('view-change', { view: 2, from: [0, 3], to: [2] }));
  c.drop(is('view-change', { view: 2 }));
  // Now the VIEW-CHANGE(1)s reach replica 1, whose NEW-VIEW(1) reaches everyone; replica 1
  // proposes x at seq 1 in view 1, and the messages of that round reach everyone but replica 2.
  c.deliver(is('view-change', { view: 1, to: [1] }));
  c.drop(is('view-change', { view: 1 }));
  c.deliver(is('new-view', { view: 1 }));
  const votes: Pick = (m) => ['pre-prepare', 'prepare', 'commit'].includes(m.msg.type);
  c.deliver((m) => votes(m) && m.to !== 2 && m.from !== 2);
  c.drop(votes);
  // Then leader 1 fails to get y ordered (its PRE-PREPAREs are lost): everyone votes STOP(2).
  c.submit(y);
  c.deliver(is('hold'));
  c.drop(is('pre-prepare'));
  c.tick(CORE_OPTIONS.viewChangeTimeoutTicks);
  // Replica 2 asks what it missed (FETCH), but the answers are late: the view change comes first.
  const catchUp: Pick = (m) => m.msg.type === 'fetch' || m.msg.type === 'batches';
  c.drop(catchUp);
  c.deliver((m) => !catchUp(m));
  // From here every message arrives.
  const everywhere = (q: Req): boolean => c.decided.every((d) => [...d.values()].some((text) => text.includes(`${q.client}#${q.seq}`)));
  c.heal(() => c.violations.length > 0 || (everywhere(x) && everywhere(y)));
  assert.deepEqual(c.violations, []);
  // A batch decided at a seq above a NEW-VIEW's checkpoint is what that NEW-VIEW re-proposes there.
  for (const { nv, decidedBefore } of c.newViews) {
    const stable = Math.max(...nv.viewChanges.map((vc) => vc.stable.seq));
    for (const [seq, text] of decidedBefore) {
      if (seq <= stable) continue;
      const pp = nv.prePrepares.find((p) => p.seq === seq);
      const carried = pp === undefined ? 'nothing' : JSON.stringify(pp.batch.map((q) => `${q.client}#${q.seq}`));
      assert.equal(carried, text, `NEW-VIEW(${nv.view}) from replica ${nv.from} re-proposes ${carried} at seq ${seq}, where ${text} was decided before`);
    }
  }
  assert.ok(everywhere(x) && everywhere(y), `x and y decided at every replica: ${c.decided.map((d) => JSON.stringify([...d])).join(' / ')}`);
});
