// Executing what was decided (docs/consensus.md, "Normal case" step 5 and "Ordering by
// reference"): committed batches run strictly in seq order, each once the replica holds every
// body in it; a body it lacks is fetched from the replicas that attested it and believed by its
// digest. Every decision extends the hash chain, comes out in `decided`, counts as progress for
// the leader's timeout, and every checkpointInterval seqs is signed (checkpoints.ts).
//
// It must never: execute a seq before the one below it, execute a request a client had decided
// already, or keep a fetched body nobody asked it to execute.

import { refKey, reqKey } from './availability.js';
import { checkpoint } from './checkpoints.js';
import { MESSAGE_BATCHES_MAX, batchDigest, nextState, refOf, type Bodies, type BodyFetch, type Ref, type Req } from './messages.js';
import type { DecidedEntry } from './journal.js';
import { anyReadyPending } from './admission.js';
import type { Core } from './core.js';

/** Executes committed batches in seq order, once it holds every body in them. */
export function execute(r: Core): void {
  for (let s = r.slots.get(r.lastExecuted + 1); s?.committed; s = r.slots.get(r.lastExecuted + 1)) {
    const refs = s.prePrepare!.batch;
    const bodies = refs.map((x) => bodyOf(r, x));
    const missing = refs.filter((_, i) => bodies[i] === undefined);
    if (missing.length > 0) return askForBodies(r, missing);
    apply(r, r.lastExecuted + 1, s.prePrepare!.view, bodies as Req[]);
  }
}

/** Keeps aside the bodies of a request decided at `seq` under another reference than `decided` (Core.spareBodies). */
export function spare(r: Core, bodies: readonly Req[], decided: string | undefined, seq: number): void {
  for (const b of bodies) {
    const bk = refKey(refOf(b));
    if (bk !== decided) r.spareBodies.set(bk, { req: b, seq });
  }
}

/** A body this replica holds: waiting, decided and retained, or spared (Core.spareBodies). */
function bodyOf(r: Core, x: Ref): Req | undefined {
  return r.avail.body(x) ?? r.decidedBodies.get(refKey(x)) ?? r.spareBodies.get(refKey(x))?.req;
}

/** Asks the replicas that attested the missing bodies (one of them is correct) for them. */
function askForBodies(r: Core, missing: Ref[]): void {
  if (r.now - r.bodiesAskedAt < Math.max(1, Math.floor(r.o.resendTicks / 2))) return;
  r.bodiesAskedAt = r.now;
  const to = new Map<number, Ref[]>();
  for (const x of missing) for (const h of r.avail.holders(x)) (to.get(h) ?? to.set(h, []).get(h)!).push(x);
  for (const [h, refs] of to) r.send(h, { type: 'body-fetch', refs, from: r.o.id } satisfies BodyFetch);
}

export function onBodyFetch(r: Core, m: BodyFetch): void {
  const reqs: Req[] = [];
  for (const x of m.refs.slice(0, MESSAGE_BATCHES_MAX * r.o.batchMax)) {
    const b = bodyOf(r, x);
    if (b) reqs.push(b);
  }
  if (reqs.length > 0) r.send(m.from, { type: 'bodies', reqs, from: r.o.id } satisfies Bodies);
}

/** Bodies are believed by their digest: only those of references this replica must execute are kept. */
export function onBodies(r: Core, m: Bodies): void {
  const wanted = new Set<string>();
  for (let s = r.slots.get(r.lastExecuted + 1), seq = r.lastExecuted + 1; s?.prePrepare; s = r.slots.get(++seq)) for (const x of s.prePrepare.batch) wanted.add(refKey(x));
  let added = false;
  for (const req of m.reqs.slice(0, MESSAGE_BATCHES_MAX * r.o.batchMax)) if (r.avail.addBody(req, (ref) => wanted.has(refKey(ref)))) added = true;
  if (added) execute(r);
}

/** Executes the batch decided at `seq` (view -1: learned by catch-up), the next one above the last executed. */
export function apply(r: Core, seq: number, view: number, batch: Req[]): void {
  // With its bodies (by reference to the hold groups that have them on disk): what the
  // machine executes again after a restart, and what catch-up serves.
  if (!r.replaying && r.o.journaling === true) r.journal({ type: 'decided', seq, view, batch: r.held.batch(seq, batch) } satisfies DecidedEntry);
  const requests: Req[] = [];
  for (const q of batch) {
    const k = refKey(refOf(q));
    r.proposed.delete(reqKey(q));
    // Every reference under the request's (client, seq) stops waiting: another body of it (a
    // faulty client's) left pending would take room and be scanned at every proposal.
    const forgotten = r.avail.forget(q);
    r.pending.delete(k);
    for (const fk of forgotten.keys) r.pending.delete(fk);
    spare(r, forgotten.bodies, k, seq);
    if (r.o.journaling === true) for (const e of r.held.decided(q, { decided: k, to: seq + r.o.logWindow })) r.journal(e);
    r.decidedBodies.set(k, q);
    if (r.wasDecided(q)) continue;
    r.executed.add(q.client, q.seq);
    requests.push(q);
  }
  r.lastExecuted = seq;
  r.expireAttestations();
  if (r.nextSeq <= seq) r.nextSeq = seq + 1;
  r.state = nextState(r.state, batchDigest(batch.map(refOf)));
  r.decidedBatches.set(seq, batch);
  const decision = { seq, view, requests };
  r.machine?.execute(decision);
  r.out.decided.push(decision);
  progress(r, batch.length === 0);
  if (seq % r.o.checkpointInterval === 0) checkpoint(r, seq);
}

/**
 * A decision is progress: the leader is not replaced while it keeps deciding, however busy
 * (BFT-SMaRt issue #57), and the timeout follows how long decisions take. An empty batch is
 * not progress for a ready request that waits: a leader that proposes only empty ones while
 * one does is suspected as if it proposed nothing.
 */
export function progress(r: Core, empty = false): void {
  if (empty && anyReadyPending(r)) return;
  // How long requests waited for this decision (since the previous one, while some waited
  // all along): idle time between decisions says nothing about how fast the leader is.
  const took = r.now - (r.waitingSince ?? r.now);
  r.decisionTicksAvg = r.decisionTicksAvg === 0 ? took : 0.8 * r.decisionTicksAvg + 0.2 * took;
  r.waitingSince = r.pending.size > 0 ? r.now : undefined;
  r.viewChangeCount = 0;
}
