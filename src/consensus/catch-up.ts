// Catching up (docs/consensus.md, "Catching up (state transfer)"): a replica that fell behind
// asks (FETCH, checkpoints.ts) and the others answer with what they decided (BATCHES). Up to a
// stable checkpoint, batches are taken when they chain to its signed state; above it, when f+1
// replicas report the same batch at a seq; a replica too far behind installs a snapshot 2f+1
// signed. Restarted without its state, a replica also learns here how far it may have voted
// before (learnPassiveBound).
//
// It must never: take a view or a leader from a reply (views change only on a NEW-VIEW, which
// proves itself: BFT-SMaRt issue #62), take a batch above the stable checkpoint on fewer than
// f+1 matching reports, install a snapshot whose bytes do not hash to what 2f+1 signed, or
// answer a replica asking in a loop more than once per half resend period.

import { validStable } from './certs.js';
import { makeStable } from './checkpoints.js';
import { apply, execute, progress, spare } from './execution.js';
import { dropObsolete } from './admission.js';
import { batchDigest, nextState, refOf, type Batches, type Fetch, type Req, type StableCheckpoint } from './messages.js';
import { snapshotDigest } from './state.js';
import type { Core } from './core.js';

/** Resend periods before the same snapshot goes to the same asker again. */
const SNAPSHOT_RESEND_PERIODS = 10;

/**
 * Answers with what this replica executed after `after` (a window's worth at most, none
 * if it no longer keeps them), and always with how far it got.
 */
export function onFetch(r: Core, m: Fetch): void {
  // A correct replica asks once per resend period at most; answering a flood would let one
  // faulty replica make every other one send window-sized replies in a loop.
  if (r.now - (r.answeredAt.get(m.from) ?? -Infinity) < Math.max(1, Math.floor(r.o.resendTicks / 2))) return;
  r.answeredAt.set(m.from, r.now);
  const batches: Batches['batches'] = [];
  if (r.decidedBatches.has(m.after + 1)) {
    const top = Math.min(r.lastExecuted, Math.max(r.stable.seq, m.after + r.o.logWindow));
    let bytes = 0;
    for (let s = m.after + 1; s <= top; s++) {
      const batch = r.decidedBatches.get(s)!;
      for (const q of batch) bytes += q.payload.length + q.client.length + 64;
      // Always at least one batch, so a replica far behind still moves.
      if (batches.length > 0 && bytes > (r.o.replyBytesMax ?? Infinity)) break;
      batches.push({ seq: s, batch });
    }
  }
  let top = Math.max(r.lastExecuted, r.nextSeq - 1);
  for (const [seq, sl] of r.slots) if (sl.prePrepare && seq > top) top = seq;
  const view = r.changing ? r.target : r.view;
  const reply: Batches = { type: 'batches', stable: r.stable, batches, executed: r.lastExecuted, view, top, recovering: r.recovering || r.startedOver, from: r.o.id };
  if (snapshotWanted(r, m, batches)) {
    // Alone in its frame: a snapshot can be large, and the asker cannot chain these anyway.
    reply.snapshot = r.served;
    reply.batches = [];
  }
  r.send(m.from, reply);
}

/**
 * A snapshot goes to a replica below it that cannot chain up to the stable checkpoint from
 * this reply: the batch after its last is gone, or the reply stops short of the checkpoint
 * (replyBytesMax), or it executed nothing (a snapshot is the shortest way, and its start from
 * configuration may be newer than ours). At most once per few resend periods to one asker,
 * whatever the seq: snapshots are large, and a faulty replica asking in a loop must not
 * turn every correct one into a firehose.
 */
function snapshotWanted(r: Core, m: Fetch, batches: Batches['batches']): boolean {
  const at = r.served?.stable.seq ?? 0;
  if (m.after >= at) return false;
  const short = batches.length === 0 || batches[batches.length - 1]!.seq < r.stable.seq;
  if (m.after > 0 && !short) return false;
  if (r.now - (r.snapshotSentAt.get(m.from) ?? -Infinity) < SNAPSHOT_RESEND_PERIODS * r.o.resendTicks) return false;
  r.snapshotSentAt.set(m.from, r.now);
  return true;
}

/**
 * Batches that chain from our state to a stable checkpoint's state are the decided ones.
 * Above the checkpoint, a batch is taken once f+1 replicas reported the same one at a seq.
 */
export function onBatches(r: Core, m: Batches): void {
  r.peerExecuted.set(m.from, m.executed);
  if (m.recovering) r.peerRecovering.add(m.from);
  else r.peerRecovering.delete(m.from);
  if (r.passiveSeq === Infinity) {
    r.peerReach.set(m.from, { view: m.view, top: m.top });
    if (r.peerReach.size >= 2 * r.o.f) learnPassiveBound(r);
  }
  if (m.snapshot && m.snapshot.stable.seq > r.lastExecuted) r.snapshotOffers.set(m.from, m.snapshot);
  // A replica that executed nothing installs a snapshot first (see snapshotWanted).
  if (r.lastExecuted === 0) installOffered(r);
  const st = m.stable;
  if (st.seq > r.lastExecuted) {
    if (!validStable(st, r.g, r.signer)) return;
    let state = r.state;
    let seq = r.lastExecuted;
    for (const b of m.batches) {
      if (b.seq !== seq + 1) return;
      state = nextState(state, batchDigest(b.batch.map(refOf)));
      seq = b.seq;
      if (seq === st.seq) break;
    }
    if (seq === st.seq && state === st.state) {
      r.catchingUpTo = st.seq;
      for (const b of m.batches) if (b.seq <= st.seq && b.seq > r.lastExecuted) apply(r, b.seq, -1, b.batch);
      r.catchingUpTo = 0;
      makeStable(r, st);
    } else {
      installOffered(r);
      if (st.seq > r.lastExecuted) return;
    }
  }
  for (const b of m.batches) {
    if (b.seq <= r.lastExecuted || b.seq > r.lastExecuted + r.o.logWindow) continue;
    let at = r.reported.get(b.seq);
    if (!at) r.reported.set(b.seq, (at = new Map()));
    at.set(m.from, { digest: batchDigest(b.batch.map(refOf)), batch: b.batch });
  }
  applyReported(r);
  execute(r);
}

/**
 * A vote this replica gave before it went down reached someone's log, or it cannot matter:
 * with this replica counted among the f faulty, the 2f others that answered are correct, and
 * the highest view and seq in their logs bound every (view, seq) it may have voted on. When
 * all of them restarted too and nothing was executed, the cluster started over (every
 * replica lost its memory): nobody remembers a vote to contradict, and waiting would
 * deadlock everyone.
 */
function learnPassiveBound(r: Core): void {
  const reach = [...r.peerReach.values()];
  const top = Math.max(...reach.map((x) => x.top));
  r.startedOver = top === 0 && r.peerRecovering.size === r.peerExecuted.size;
  r.passiveView = r.startedOver ? -1 : Math.max(...reach.map((x) => x.view));
  r.passiveSeq = r.startedOver ? 0 : top;
  r.peerReach.clear();
  r.journalMeta();
}

/**
 * Installs the highest valid snapshot offered, once f+1 replicas offered one: at least one
 * correct replica then says this one cannot chain up from where it is, so a faulty replica
 * cannot make a replica that could catch up batch by batch throw away what it holds. One
 * offer is enough for a replica that executed nothing: it holds nothing to lose.
 */
function installOffered(r: Core): void {
  for (const [from, o] of r.snapshotOffers) if (o.stable.seq <= r.lastExecuted) r.snapshotOffers.delete(from);
  if (r.snapshotOffers.size < (r.lastExecuted === 0 ? 1 : r.o.f + 1)) return;
  const offers = [...r.snapshotOffers.values()].sort((a, b) => b.stable.seq - a.stable.seq);
  for (const o of offers) if (install(r, o)) break;
}

/**
 * Installs another replica's snapshot at a stable checkpoint above what this one executed:
 * its bytes are believed because 2f+1 replicas signed their digest. Like batch catch-up, it
 * carries no view.
 */
function install(r: Core, snap: { stable: StableCheckpoint; body: string }): boolean {
  const st = snap.stable;
  if (st.seq <= r.lastExecuted || !validStable(st, r.g, r.signer) || snapshotDigest(snap.body) !== st.snapshot) return false;
  const decoded = r.executed.decode(snap.body);
  if (decoded === undefined) return false;
  // The protocol's part first: the application asks it which requests the snapshot decided.
  decoded.load();
  r.machine?.restore(st.seq, decoded.app);
  r.snapshotOffers.clear();
  r.lastExecuted = st.seq;
  r.state = st.state;
  if (r.nextSeq <= st.seq) r.nextSeq = st.seq + 1;
  // What this replica kept no longer chains to its state: batches are served only from here on.
  r.decidedBatches.clear();
  r.decidedBodies.clear();
  r.served = snap;
  r.journalSnapshot(st.seq, st.state, snap.body);
  if (r.o.journaling === true) r.journalTruncate(st.seq);
  r.snapshotsInstalled++;
  r.snapshotInstalledAt = st.seq;
  r.out.installed = st.seq;
  makeStable(r, st);
  dropObsolete(r);
  // A batch above the snapshot may still hold one of them (a faulty leader's second body): kept aside.
  spare(r, r.avail.forgetDecided((client, seq) => r.executed.has(client, seq)), undefined, st.seq);
  if (r.o.journaling === true) for (const e of r.held.decidedWhere((client, seq) => r.executed.has(client, seq), st.seq + r.o.logWindow)) r.journal(e);
  r.expireAttestations();
  progress(r);
  return true;
}

function applyReported(r: Core): void {
  for (let at = r.reported.get(r.lastExecuted + 1); at; at = r.reported.get(r.lastExecuted + 1)) {
    const votes = new Map<string, number>();
    let agreed: Req[] | undefined;
    for (const x of at.values()) {
      const c = (votes.get(x.digest) ?? 0) + 1;
      votes.set(x.digest, c);
      if (c >= r.o.f + 1) agreed = x.batch;
    }
    if (!agreed) break;
    apply(r, r.lastExecuted + 1, -1, agreed);
  }
  for (const seq of r.reported.keys()) if (seq <= r.lastExecuted) r.reported.delete(seq);
}
