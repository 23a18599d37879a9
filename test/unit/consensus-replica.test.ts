// One ConsensusReplica driven by hand (src/consensus/replica.ts): the checks a Byzantine
// replica's messages meet, each in the positive and the negative, where the simulator would
// only show them as a rare schedule.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  batchDigest,
  ConsensusReplica,
  refOf,
  ExecutedRequests,
  GENESIS,
  GENESIS_STATE,
  snapshotDigest,
  nextState,
  type Batches,
  type Checkpoint,
  type ConsensusMessage,
  type Hold,
  type ConsensusOptions,
  type NewView,
  type Output,
  type PrePrepare,
  type Prepare,
  type Req,
  type StableCheckpoint,
  type ViewChange,
} from '../../src/consensus/index.js';
import { CORE_N, CORE_OPTIONS, coreFixture, SimMachine } from '../helpers/consensus-sim.js';

const N = CORE_N;
const { signers, sign, req, prePrepare } = coreFixture(7);
const OPTIONS: ConsensusOptions = CORE_OPTIONS;

const replica = (id = 1): ConsensusReplica => new ConsensusReplica({ ...OPTIONS, id }, signers[id]!);
/** Replicas `by` attest holding the requests' bodies (HOLD). */
const attest = (r: ConsensusReplica, reqs: Req[], by = [2, 3]): Output[] => by.map((from) => r.receive(from, { type: 'hold', refs: reqs.map(refOf), from }));
const sent = (o: Output, type: ConsensusMessage['type']): ConsensusMessage[] => o.messages.filter((m) => m.msg.type === type).map((m) => m.msg);

/** A valid NEW-VIEW for `view` from view changes of replicas 0, 2, 3 that prepared nothing. */
function newView(view: number): NewView {
  const vcs = [0, 2, 3].map((from) => sign<ViewChange>({ type: 'view-change', view, stable: GENESIS, prepared: [], from, sig: '' }));
  return sign<NewView>({ type: 'new-view', view, viewChanges: vcs, prePrepares: [], from: view % N, sig: '' });
}

test('a backup prepares the leader\'s valid PRE-PREPARE of its view once f+1 replicas attested its requests, and nothing forged or misdirected', () => {
  const r = replica();
  assert.equal(sent(r.receive(0, prePrepare(0, 1, [req(1)])), 'prepare').length, 0, 'nobody attested the request yet');
  const [one, two] = attest(r, [req(1)]);
  assert.equal(sent(one!, 'prepare').length, 0, 'one attestation could be a faulty replica\'s');
  assert.equal(sent(two!, 'prepare').length, 1, 'f+1 attestations: a correct replica holds the body');
  const r2 = replica();
  attest(r2, [req(1), req(2)]);
  const forged = { ...prePrepare(0, 1, [req(1)]), sig: 'forged' };
  assert.equal(sent(r2.receive(0, forged), 'prepare').length, 0, 'a bad signature');
  const wrongDigest = { ...prePrepare(0, 1, [req(1)]), batch: [refOf(req(2))] };
  assert.equal(sent(r2.receive(0, wrongDigest), 'prepare').length, 0, 'a batch that is not the digest\'s');
  const notLeader = sign<PrePrepare>({ ...prePrepare(0, 1, [req(1)]), from: 2 });
  assert.equal(sent(r2.receive(2, notLeader), 'prepare').length, 0, 'a replica that is not the leader of the view');
});

test('a second PRE-PREPARE for the same seq and view (an equivocating leader) is not prepared', () => {
  const r = replica();
  r.receive(0, prePrepare(0, 1, [req(1)]));
  assert.equal(sent(r.receive(0, prePrepare(0, 1, [req(9)])), 'prepare').length, 0);
});

test('after a view change, a valid message of the old view is void (BFT-SMaRt PR #121)', () => {
  const r = replica(2);
  r.receive(1, newView(1));
  assert.equal(r.status.view, 1, 'entered view 1');
  assert.equal(sent(r.receive(0, prePrepare(0, 1, [req(1)])), 'prepare').length, 0, 'view 0 PRE-PREPARE after view 1');
});

test('a NEW-VIEW is entered only with 2f+1 valid view changes that back exactly what it re-proposes', () => {
  const tooFew = { ...newView(1), viewChanges: newView(1).viewChanges.slice(0, 2) };
  const r = replica(2);
  r.receive(1, sign<NewView>({ ...tooFew, sig: '' }));
  assert.equal(r.status.view, 0, 'two view changes are not enough');
  const extra = newView(1);
  const smuggled = sign<NewView>({ ...extra, prePrepares: [prePrepare(1, 1, [req(5)])], sig: '' });
  r.receive(1, smuggled);
  assert.equal(r.status.view, 0, 'a re-proposal no view change backs');
  r.receive(1, newView(1));
  assert.equal(r.status.view, 1);
});

test('one replica voting to leave the view moves nobody; f+1 votes make others join, 2f+1 make them leave', () => {
  const r = replica(2);
  let o = r.receive(3, { type: 'stop', view: 1, from: 3 });
  assert.equal(sent(o, 'stop').length, 0);
  assert.equal(r.status.changingView, false);
  o = r.receive(0, { type: 'stop', view: 1, from: 0 });
  assert.equal(sent(o, 'stop').length, 1, 'f+1 votes: one of them is correct, so join');
  assert.equal(sent(o, 'view-change').length, 1, 'with its own vote, 2f+1: leave view 0');
  assert.equal(r.status.changingView, true);
});

/** A valid NEW-VIEW for `view`, from its leader, on view changes of `by` that prepared nothing. */
function newViewBy(view: number, by: number[]): NewView {
  const vcs = by.map((from) => sign<ViewChange>({ type: 'view-change', view, stable: GENESIS, prepared: [], from, sig: '' }));
  return sign<NewView>({ type: 'new-view', view, viewChanges: vcs, prePrepares: [], from: view % N, sig: '' });
}

test('a replica that sent VIEW-CHANGE(2) enters no view below 2 (PBFT TOCS §4.4: its VIEW-CHANGE lists all it will ever prepare below 2), follows by catch-up meanwhile, and enters NEW-VIEW(2)', () => {
  const r = replica(3);
  r.receive(0, { type: 'stop', view: 2, from: 0 });
  const o = r.receive(2, { type: 'stop', view: 2, from: 2 });
  const [vc] = sent(o, 'view-change') as ViewChange[];
  assert.equal(vc?.view, 2, 'f+1 votes for view 2, with its own 2f+1: it left view 0 for view 2');
  r.receive(1, newViewBy(1, [0, 1, 2]));
  assert.deepEqual([r.status.view, r.status.changingView], [0, true], 'NEW-VIEW(1) is valid, but below the view it promised to prepare nothing under');
  r.submit(req(1));
  attest(r, [req(1)], [0, 2]);
  assert.equal(sent(r.receive(1, prePrepare(1, 1, [req(1)])), 'prepare').length, 0, 'a PRE-PREPARE of view 1');
  let asked = false;
  for (let t = 0; t < OPTIONS.resendTicks && !asked; t++) asked = sent(r.tick(), 'fetch').length > 0;
  assert.ok(asked, 'left out of view 1 with a request waiting, it asks the others what they decided');
  r.receive(2, newViewBy(2, [0, 1, 2]));
  assert.deepEqual([r.status.view, r.status.changingView], [2, false], 'NEW-VIEW(2) is entered');
});

/** Decided batches 1 and 2 with the stable checkpoint at 2 that replicas 0, 2, 3 signed. */
function checkpointAt2(): { batches: { seq: number; batch: Req[] }[]; stable: StableCheckpoint } {
  const batches = [1, 2].map((seq) => ({ seq, batch: [req(seq)] }));
  let state = GENESIS_STATE;
  for (const b of batches) state = nextState(state, batchDigest(b.batch.map(refOf)));
  // The state every replica that executed them has: the protocol's part and the application's.
  const executed = new ExecutedRequests();
  const app = new SimMachine();
  for (const b of batches) {
    for (const q of b.batch) executed.add(q.client, q.seq);
    app.execute({ seq: b.seq, view: 0, requests: b.batch });
  }
  const snapshot = snapshotDigest(executed.encode(app.snapshot()));
  const proof = [0, 2, 3].map((from) => sign<Checkpoint>({ type: 'checkpoint', seq: 2, state, snapshot, from, sig: '' }));
  return { batches, stable: { seq: 2, state, snapshot, proof } };
}

const batchesMsg = (from: number, stable: StableCheckpoint, batches: { seq: number; batch: Req[] }[]): Batches => ({ type: 'batches', stable, batches, executed: stable.seq, view: 0, top: stable.seq, recovering: false, from });

test('catch-up takes only batches that chain from its state to a stable checkpoint 2f+1 replicas signed', () => {
  const { batches, stable } = checkpointAt2();
  const lying = batchesMsg(3, stable, [{ seq: 1, batch: [req(1)] }, { seq: 2, batch: [req(7)] }]);
  const r = new ConsensusReplica({ ...OPTIONS, id: 1 }, signers[1]!, new SimMachine());
  assert.equal(r.receive(3, lying).decided.length, 0, 'batches that do not chain to the checkpoint');
  assert.equal(r.receive(3, batchesMsg(3, { ...stable, proof: stable.proof.slice(0, 2) }, batches)).decided.length, 0, 'a checkpoint only 2 replicas signed');
  const o = r.receive(2, batchesMsg(2, stable, batches));
  assert.deepEqual(
    o.decided.map((d) => d.requests.map((q) => q.seq)),
    [[1], [2]],
  );
  assert.equal(r.status.lastDecided, 2);
  assert.equal(r.status.stableCheckpoint, 2);
  assert.equal(r.status.snapshotMismatches, 0, 'its own state after seq 2 is the one the others signed');
});

test('state transfer: a snapshot is served to a replica that cannot chain up, at most once per few resend periods to one asker', () => {
  const { batches, stable } = checkpointAt2();
  const server = new ConsensusReplica({ ...OPTIONS, id: 1 }, signers[1]!, new SimMachine());
  server.receive(2, batchesMsg(2, stable, batches));
  const fetch = (after: number, from = 0): Batches | undefined => sent(server.receive(from, { type: 'fetch', after, from }), 'batches')[0] as Batches | undefined;
  const wait = (periods: number): void => {
    for (let t = 0; t < periods * OPTIONS.resendTicks; t++) server.tick();
  };
  const reply = fetch(0);
  assert.equal(reply?.snapshot?.stable.seq, 2, 'a replica that executed nothing gets the snapshot');
  assert.deepEqual(reply?.batches, [], 'alone in its frame');
  wait(1);
  assert.equal(fetch(0)?.snapshot, undefined, 'not again to the same replica so soon');
  assert.equal(fetch(0, 3)?.snapshot?.stable.seq, 2, 'another replica gets it');
  wait(10);
  const chained = fetch(1);
  assert.equal(chained?.snapshot, undefined, 'a replica that can chain up from seq 1 gets batches');
  assert.deepEqual(chained?.batches.map((b) => b.seq), [2]);
});

test('state transfer: installed only when 2f+1 signed its digest, and by a replica that executed something only once f+1 offered one', () => {
  const { batches, stable } = checkpointAt2();
  const servers = [0, 2].map((id) => {
    const x = new ConsensusReplica({ ...OPTIONS, id }, signers[id]!, new SimMachine());
    x.receive(id === 0 ? 2 : 0, batchesMsg(id === 0 ? 2 : 0, stable, batches));
    return x;
  });
  const snapOf = (x: ConsensusReplica): NonNullable<Batches['snapshot']> => (sent(x.receive(1, { type: 'fetch', after: 0, from: 1 }), 'batches')[0] as Batches).snapshot!;
  const [snap0, snap2] = servers.map(snapOf) as [NonNullable<Batches['snapshot']>, NonNullable<Batches['snapshot']>];
  assert.equal(snap0.body, snap2.body, 'replicas that executed the same batches encode the same snapshot');

  const machine = new SimMachine();
  const r = new ConsensusReplica({ ...OPTIONS, id: 1 }, signers[1]!, machine);
  const offer = (from: number, snapshot: NonNullable<Batches['snapshot']>): Output => offerSnapshot(r, from, snapshot);
  offer(0, { stable: snap0.stable, body: snap0.body.replace('p2', 'p9') });
  assert.deepEqual(machine.installs, [], 'a body that is not the one signed');
  offer(0, { stable: { ...snap0.stable, proof: snap0.stable.proof.slice(0, 2) }, body: snap0.body });
  assert.deepEqual(machine.installs, [], 'a checkpoint only 2 replicas signed');
  const o = offer(0, snap0);
  assert.equal(o.installed, 2, 'one offer is enough for a replica that executed nothing');
  assert.deepEqual(machine.installs, [2]);
  assert.deepEqual(machine.executed, ['c#1#p1', 'c#2#p2']);
  assert.deepEqual([r.status.lastDecided, r.status.stableCheckpoint, r.status.snapshotsInstalled], [2, 2, 1]);
  assert.ok(r.isDecided('c', 2), 'requests decided before the snapshot are never executed again');
  assert.equal(offer(2, snap2).installed, undefined, 'nothing twice');

  // A replica that executed seq 1 (reported by f+1) could chain up: one replica's offer does not move it.
  const genesisReport = (from: number): Batches => ({ ...batchesMsg(from, GENESIS, [batches[0]!]), executed: 1, top: 1 });
  const m2 = new SimMachine();
  const behind = new ConsensusReplica({ ...OPTIONS, id: 1 }, signers[1]!, m2);
  behind.receive(0, genesisReport(0));
  behind.receive(2, genesisReport(2));
  assert.equal(behind.status.lastDecided, 1);
  offerSnapshot(behind, 3, snap0);
  assert.deepEqual(m2.installs, [], 'one (perhaps faulty) replica cannot make it throw away what it holds');
  offerSnapshot(behind, 2, snap2);
  assert.deepEqual(m2.installs, [2], 'f+1 offers: a correct replica says it cannot chain up');
});

/** A BATCHES reply from `from` that offers only a snapshot. */
function offerSnapshot(r: ConsensusReplica, from: number, snapshot: NonNullable<Batches['snapshot']>): Output {
  return r.receive(from, { ...batchesMsg(from, snapshot.stable, []), snapshot });
}

test('a request is decided once even when a faulty leader repeats it in two batches', () => {
  const r = replica(1);
  const commitAll = (seq: number, batch: Req[]): Output[] => {
    r.submit(batch);
    const pp = prePrepare(0, seq, batch);
    const outs = [r.receive(0, pp)];
    for (const from of [2, 3]) outs.push(r.receive(from, sign<Prepare>({ type: 'prepare', view: 0, seq, digest: pp.digest, from, sig: '' })));
    for (const from of [0, 2, 3]) outs.push(r.receive(from, { type: 'commit', view: 0, seq, digest: pp.digest, from }));
    return outs;
  };
  const decided = [...commitAll(1, [req(1)]), ...commitAll(2, [req(1), req(2)])].flatMap((o) => o.decided);
  assert.deepEqual(
    decided.map((d) => d.requests.map((q) => q.seq)),
    [[1], [2]],
  );
});

test('requests taken in one step are announced in HOLDs no longer than a replica reads of one, so none waits for a resend', () => {
  const r = replica(1);
  const reqs = Array.from({ length: 5 * OPTIONS.batchMax }, (_, i) => req(i + 1));
  const holds = sent(r.submit(reqs), 'hold') as Hold[];
  assert.deepEqual(
    holds.map((h) => h.refs.length),
    [4 * OPTIONS.batchMax, OPTIONS.batchMax],
  );
  // Another replica takes every attestation in them: with replica 3's, all are ready there.
  const other = replica(2);
  for (const h of holds) other.receive(1, h);
  for (const h of holds) other.receive(3, { ...h, from: 3 });
  assert.equal(other.status.pending, reqs.length);
});

test('a faulty leader that had two bodies of one request prepared in two batches: the second batch still executes (the request skipped), from the body kept aside', () => {
  const r = replica(1);
  const x = req(1);
  const y: Req = { ...x, payload: `${x.payload} again` };
  // A faulty client sent x to this replica and y to others; f+1 replicas attest each.
  r.submit([x]);
  attest(r, [x, y], [2]);
  attest(r, [y], [3]);
  assert.equal(r.status.pending, 2, 'both bodies wait, apart');
  const pp1 = prePrepare(0, 1, [x]);
  const pp2 = prePrepare(0, 2, [y]);
  const vote = (pp: PrePrepare): Output[] => [
    r.receive(0, pp),
    ...[2, 3].map((from) => r.receive(from, sign<Prepare>({ type: 'prepare', view: 0, seq: pp.seq, digest: pp.digest, from, sig: '' }))),
  ];
  const commit = (pp: PrePrepare): Output[] => [0, 2, 3].map((from) => r.receive(from, { type: 'commit', view: 0, seq: pp.seq, digest: pp.digest, from }));
  vote(pp1);
  vote(pp2);
  // Fetched for the second batch before the first executed.
  r.receive(2, { type: 'bodies', reqs: [y], from: 2 });
  const first = commit(pp1).flatMap((o) => o.decided);
  assert.equal(r.status.pending, 0, 'the other body stopped waiting with the decision');
  const decided = [...first, ...commit(pp2).flatMap((o) => o.decided)];
  assert.deepEqual(
    decided.map((d) => [d.seq, d.requests.map((q) => q.payload)]),
    [
      [1, [x.payload]],
      [2, []],
    ],
  );
  // A replica behind it asks for the second body: it is served.
  const served = r.receive(3, { type: 'body-fetch', refs: [refOf(y)], from: 3 });
  assert.deepEqual(served.messages.flatMap((m) => (m.msg.type === 'bodies' ? m.msg.reqs.map((q) => q.payload) : [])), [y.payload]);
});

/** Decides batch `batch` at `seq` at replica `r` (a backup of view 0): PRE-PREPARE, 2f PREPAREs, 2f+1 COMMITs. */
function decide(r: ConsensusReplica, seq: number, batch: Req[] = []): Output[] {
  const pp = prePrepare(0, seq, batch);
  return [
    r.receive(0, pp),
    ...[2, 3].map((from) => r.receive(from, sign<Prepare>({ type: 'prepare', view: 0, seq, digest: pp.digest, from, sig: '' }))),
    ...[0, 2, 3].map((from) => r.receive(from, { type: 'commit', view: 0, seq, digest: pp.digest, from })),
  ];
}

test('an attestation counts only for batches up to W seqs above the seq its replica had executed (attestationSeqs)', () => {
  const windowed = (): ConsensusReplica => new ConsensusReplica({ ...OPTIONS, id: 1, attestationSeqs: 4 }, signers[1]!);
  const holdSince = (r: ConsensusReplica, since: number): void => {
    for (const from of [2, 3]) r.receive(from, { type: 'hold', refs: [refOf(req(1))], since: [since], from });
  };
  const stale = windowed();
  holdSince(stale, 0);
  assert.equal(sent(stale.receive(0, prePrepare(0, 5, [req(1)])), 'prepare').length, 0, 'seq 5 is more than W=4 above the seq the attesters had executed (0)');
  assert.equal(sent(stale.receive(0, prePrepare(0, 4, [req(1)])), 'prepare').length, 1, 'seq 4 is within it');
  const fresh = windowed();
  holdSince(fresh, 1);
  assert.equal(sent(fresh.receive(0, prePrepare(0, 5, [req(1)])), 'prepare').length, 1, 'attested having executed 1: good up to seq 5');
  // A HOLD without `since` (a replica of an older version, which never lets a body go) counts at every seq.
  const older = windowed();
  attest(older, [req(1)]);
  assert.equal(sent(older.receive(0, prePrepare(0, 8, [req(1)])), 'prepare').length, 1);
  // A replica's first attestation stands: attesting again with a later seq keeps nothing waiting longer.
  const again = windowed();
  holdSince(again, 0);
  again.receive(2, { type: 'hold', refs: [refOf(req(1))], since: [2], from: 2 });
  again.receive(3, { type: 'hold', refs: [refOf(req(1))], since: [3], from: 3 });
  assert.equal(sent(again.receive(0, prePrepare(0, 6, [req(1)])), 'prepare').length, 0);
  // A seq more than a log window past this replica's counts as that much (only a faulty replica claims more).
  const far = windowed();
  for (const from of [2, 3]) far.receive(from, { type: 'hold', refs: [refOf(req(1))], since: [1_000_000], from });
  assert.equal(sent(far.receive(0, prePrepare(0, OPTIONS.logWindow, [req(1)])), 'prepare').length, 1, 'good up to 0 + logWindow + W');
});

test('a faulty replica that attests a reference with its urgency flipped first does not keep this replica from holding and attesting the real one', () => {
  const r = new ConsensusReplica({ ...OPTIONS, id: 1, attestationSeqs: 3 }, signers[1]!);
  r.receive(2, { type: 'hold', refs: [{ ...refOf(req(1)), urgent: true }], since: [0], from: 2 });
  const held = sent(r.submit([req(1)]), 'hold') as Hold[];
  assert.deepEqual(held.map((h) => h.refs.map((x) => [x.seq, x.urgent === true])), [[[1, false]]]);
  // Its attestation is recorded: once it ended, the body goes, and the resend announces nothing more.
  const expired = [1, 2, 3].flatMap((seq) => decide(r, seq)).flatMap((o) => o.expired ?? []);
  assert.deepEqual(expired.map((q) => q.seq), [1]);
  // Nor one whose made-up digest ends as the real urgent reference's key would, were urgency after it.
  const urgent = { ...req(1), urgent: true };
  const poisoned = new ConsensusReplica({ ...OPTIONS, id: 1, attestationSeqs: 3 }, signers[1]!);
  poisoned.receive(2, { type: 'hold', refs: [{ client: urgent.client, seq: urgent.seq, digest: `${refOf(urgent).digest}\u0000u` }], since: [0], from: 2 });
  assert.equal(sent(poisoned.submit([urgent]), 'hold').length, 1, 'this replica holds and attests the real body');
  attest(poisoned, [urgent], [0, 3]);
  assert.equal(sent(poisoned.receive(0, prePrepare(0, 1, [urgent])), 'prepare').length, 1, 'and prepares it once f+1 attested it');
});

test('a replica lets a body go once it executed W seqs past its attestation while fewer than f+1 attested it, and says so; one that became ready is kept', () => {
  const r = new ConsensusReplica({ ...OPTIONS, id: 1, attestationSeqs: 3 }, signers[1]!);
  const lonely = req(1);
  const ready = req(2);
  const held = sent(r.submit([lonely, ready]), 'hold') as Hold[];
  assert.deepEqual(held.map((h) => h.since), [[0, 0]], 'the HOLD carries the seq this replica had executed');
  r.receive(2, { type: 'hold', refs: [refOf(ready)], since: [1], from: 2 });
  r.receive(3, { type: 'hold', refs: [refOf(ready)], since: [2], from: 3 });
  assert.equal(r.status.pending, 2);
  const expired = [1, 2, 3].flatMap((seq) => decide(r, seq)).flatMap((o) => o.expired ?? []);
  assert.deepEqual(expired.map((q) => q.seq), [1], 'seq 3 executed: its own attestation of the lonely body (0 + W) ended');
  assert.equal(r.status.expired, 1);
  assert.equal(r.status.pending, 1, 'the request 2 and 3 attested still waits');
  assert.equal(sent(r.receive(2, { type: 'body-fetch', refs: [refOf(lonely)], from: 2 }), 'bodies').length, 0, 'the body is gone');
  // Replica 2's attestation (1 + W) ends at 4: then request 2 has one, and its body goes too.
  const later = decide(r, 4).flatMap((o) => o.expired ?? []);
  assert.deepEqual(later.map((q) => q.seq), [2]);
  assert.equal(r.status.pending, 0);
  // An attestation that ended counts for nothing, even when it arrives late.
  r.receive(3, { type: 'hold', refs: [refOf(lonely)], since: [1], from: 3 });
  r.receive(2, { type: 'hold', refs: [refOf(lonely)], since: [1], from: 2 });
  assert.equal(r.status.pending, 0);
});

test('a leader proposes empty batches while requests that are not ready wait, after a resend period, and none when attestations never end', () => {
  const leader = (attestationSeqs?: number): ConsensusReplica => new ConsensusReplica({ ...OPTIONS, id: 0, resendTicks: 5, ...(attestationSeqs ? { attestationSeqs } : {}) }, signers[0]!);
  const proposals = (r: ConsensusReplica, ticks: number): PrePrepare[] => Array.from({ length: ticks }, () => sent(r.tick(), 'pre-prepare') as PrePrepare[]).flat();
  const r = leader(16);
  r.submit([req(1)]);
  assert.equal(proposals(r, 4).length, 0, 'not before a resend period: the others\' HOLDs may be on their way');
  const empties = proposals(r, 3);
  assert.ok(empties.every((pp) => pp.batch.length === 0), 'then empty batches');
  assert.equal(empties.length, 3, 'one a tick');
  assert.equal(r.status.emptyBatches, empties.length);
  // Only a request another replica attested (which a faulty one can make up): one a resend period.
  const elsewhere = leader(16);
  elsewhere.receive(2, { type: 'hold', refs: [refOf(req(9))], since: [0], from: 2 });
  assert.equal(proposals(elsewhere, 4).length, 0);
  // (Counted by seq: every resend period also resends the PRE-PREPAREs of its log.)
  assert.deepEqual([...new Set(proposals(elsewhere, 15).map((pp) => pp.seq))], [1, 2, 3], 'at ticks 5, 10 and 15');
  const forGood = leader();
  forGood.submit([req(1)]);
  assert.equal(proposals(forGood, 20).length, 0, 'attestations that never end: nothing to move on for');
});

test('a reference that becomes ready while the leader\'s pending is full is still proposed', () => {
  const r = new ConsensusReplica({ ...OPTIONS, id: 0, pendingMax: 1, attestationSeqs: 16 }, signers[0]!);
  r.submit([req(1)]);
  assert.equal(r.room, 0, 'its own request, which no other replica holds, fills it');
  r.receive(1, { type: 'hold', refs: [refOf(req(2))], since: [0], from: 1 });
  const o = r.receive(2, { type: 'hold', refs: [refOf(req(2))], since: [0], from: 2 });
  assert.deepEqual((sent(o, 'pre-prepare') as PrePrepare[]).map((pp) => pp.batch.map((x) => x.seq)), [[2]]);
});

test('empty batches are no progress for a ready request that waits: a leader that proposes only those is suspected', () => {
  // A window wide enough for a decision every tick past the timeout.
  const r = new ConsensusReplica({ ...OPTIONS, id: 1, attestationSeqs: 64, logWindow: 64, checkpointInterval: 32 }, signers[1]!);
  r.submit([req(1)]);
  r.receive(2, { type: 'hold', refs: [refOf(req(1))], since: [0], from: 2 });
  let stops = 0;
  for (let seq = 1; seq <= 3 * OPTIONS.viewChangeTimeoutTicks; seq++) stops += decide(r, seq).concat(r.tick()).flatMap((o) => sent(o, 'stop')).length;
  assert.equal(r.status.lastDecided, 3 * OPTIONS.viewChangeTimeoutTicks);
  assert.ok(stops > 0, 'the leader decided only empty batches while a ready request waited, and nobody suspected it');
});

test('a correct leader proposes one body of a request, though both became ready in one step; a second body from the client is not held', () => {
  const r = replica(0);
  const x = req(1);
  const y: Req = { ...x, payload: `${x.payload} again` };
  r.submit([x]);
  const second = r.submit([y]);
  assert.equal(sent(second, 'hold').length, 0, 'the second body is not attested');
  assert.equal(r.status.secondBodies, 1);
  r.receive(1, { type: 'hold', refs: [refOf(y)], from: 1 });
  // One HOLD makes both ready at once.
  const o = r.receive(2, { type: 'hold', refs: [refOf(x), refOf(y)], from: 2 });
  const proposed = (sent(o, 'pre-prepare') as PrePrepare[]).flatMap((pp) => pp.batch.map((ref) => ref.digest));
  assert.equal(proposed.length, 1, `proposed ${proposed.length} bodies of one request`);
});

test('above the stable checkpoint, a reported batch is taken only once f+1 replicas report the same one', () => {
  const genesis = GENESIS;
  const report = (from: number, batch: Req[]) => ({ type: 'batches' as const, stable: genesis, batches: [{ seq: 1, batch }], executed: 1, view: 0, top: 1, recovering: false, from });
  const r = replica();
  assert.equal(r.receive(3, report(3, [req(9)])).decided.length, 0, 'one faulty replica\'s word');
  assert.equal(r.receive(0, report(0, [req(1)])).decided.length, 0, 'two replicas, two different batches');
  const o = r.receive(2, report(2, [req(1)]));
  assert.deepEqual(
    o.decided.map((d) => d.requests.map((q) => q.seq)),
    [[1]],
  );
  assert.equal(r.receive(3, report(3, [req(9)])).decided.length, 0, 'nothing twice');
});

test('a replica left alone with its timeout (the leader sent it another batch) asks the others what they decided', () => {
  const r = replica(1);
  r.submit(req(1));
  attest(r, [req(1)], [2]);
  let asked = false;
  for (let t = 0; t < 20 && !asked; t++) asked = sent(r.tick(), 'fetch').length > 0;
  assert.ok(asked, 'no FETCH after the request timeout');
});

test('a restarted replica votes on nothing until 2f others said where they are, then nowhere it may have voted before', () => {
  const r = new ConsensusReplica({ ...OPTIONS, id: 1, restarted: true }, signers[1]!);
  assert.equal(sent(r.receive(0, prePrepare(0, 1, [req(1)])), 'prepare').length, 0, 'before any report');
  const report = (from: number, view: number, top: number, recovering = false) => ({ type: 'batches' as const, stable: GENESIS, batches: [], executed: 0, view, top, recovering, from });
  r.receive(0, report(0, 0, 3));
  assert.equal(sent(r.receive(0, prePrepare(0, 2, [req(2)])), 'prepare').length, 0, 'after one report of two');
  r.receive(3, report(3, 0, 5));
  assert.equal(r.status.recovering, true);
  // In view 0 (the highest the others are in), seqs up to 5 (the top of their logs) may hold votes it forgot.
  assert.equal(sent(r.receive(0, prePrepare(0, 5, [req(5)])), 'prepare').length, 0, 'a seq it may have voted on before');
  attest(r, [req(6), req(3)], [0, 2]);
  assert.equal(sent(r.receive(0, prePrepare(0, 6, [req(6)])), 'prepare').length, 1, 'a seq nobody had reached');
  // In a view above any the others were in, it cannot have voted: a full member again.
  r.receive(2, newView(2));
  assert.equal(r.status.recovering, false);
  assert.equal(sent(r.receive(2, prePrepare(2, 3, [req(3)])), 'prepare').length, 1, 'a new view');
  const fresh = new ConsensusReplica({ ...OPTIONS, id: 1 }, signers[1]!);
  attest(fresh, [req(1)]);
  assert.equal(sent(fresh.receive(0, prePrepare(0, 1, [req(1)])), 'prepare').length, 1, 'a replica that did not restart votes at once');
  const allRestarted = new ConsensusReplica({ ...OPTIONS, id: 1, restarted: true }, signers[1]!);
  attest(allRestarted, [req(1)]);
  allRestarted.receive(0, report(0, 0, 0, true));
  allRestarted.receive(2, report(2, 0, 0, true));
  assert.equal(sent(allRestarted.receive(0, prePrepare(0, 1, [req(1)])), 'prepare').length, 1, 'the whole cluster started over: nobody to contradict');
});

test('a restarted leader proposes nothing until it knows how far it may have proposed, then only above that', () => {
  const r = new ConsensusReplica({ ...OPTIONS, id: 0, restarted: true }, signers[0]!);
  attest(r, [req(1)], [2]);
  assert.equal(sent(r.submit(req(1)), 'pre-prepare').length, 0);
  const report = (from: number, top: number) => ({ type: 'batches' as const, stable: GENESIS, batches: [], executed: 0, view: 0, top, recovering: false, from });
  r.receive(1, report(1, 2));
  const o = r.receive(2, report(2, 1));
  const pps = sent(o, 'pre-prepare').concat(sent(r.tick(), 'pre-prepare')) as PrePrepare[];
  assert.deepEqual(
    pps.map((p) => p.seq),
    [3],
  );
});

test('clients whose requests were decided longest ago are forgotten past clientsMax, the same way on every replica', () => {
  const r = new ConsensusReplica({ ...OPTIONS, id: 1, clientsMax: 2 }, signers[1]!);
  const of = (client: string, seq: number): Req => ({ client, seq, payload: `${client}${seq}` });
  const decide = (seq: number, batch: Req[]): number => {
    r.submit(batch);
    attest(r, batch);
    const pp = prePrepare(0, seq, batch);
    r.receive(0, pp);
    for (const from of [2, 3]) r.receive(from, sign<Prepare>({ type: 'prepare', view: 0, seq, digest: pp.digest, from, sig: '' }));
    let decided = 0;
    for (const from of [0, 2, 3]) decided += r.receive(from, { type: 'commit', view: 0, seq, digest: pp.digest, from }).decided.reduce((n, d) => n + d.requests.length, 0);
    return decided;
  };
  assert.equal(decide(1, [of('a', 1), of('b', 1)]), 2);
  assert.equal(decide(2, [of('c', 1)]), 1, 'a third client: "a" is forgotten');
  assert.equal(decide(3, [of('b', 1), of('a', 1)]), 1, '"b" is remembered, "a" was forgotten and is decided again');
});
