// Requests, from arrival to a batch (docs/consensus.md, "Ordering by reference" and "Normal
// case" steps 1-2): a replica takes the bodies clients send it (up to pendingMax waiting, the
// rest refused), attests them in HOLD, counts the attestations of the others, and as the leader
// batches the references f+1 replicas attested, urgent ones first, into new instances without
// waiting for a batch to fill.
//
// It must never: propose a reference fewer than f+1 replicas attested (a faulty client could
// then stall every replica on a body nobody holds), hold more than pendingMax requests, or,
// restarted without its state, propose at a seq it may have proposed before.

import { MESSAGE_BATCHES_MAX, refOf, batchDigest, type Hold, type PrePrepare, type Ref, type Req } from './messages.js';
import { acceptPrePrepare, checkPrepared, sendPrepare } from './agreement.js';
import { refKey, reqKey } from './availability.js';
import type { Core } from './core.js';

/** Client requests, as every replica receives them (clients send to all); the caller's flush announces them in HOLDs. */
export function admit(r: Core, reqs: readonly Req[]): void {
  for (const req of reqs) {
    if (r.wasDecided(req) || r.avail.body(refOf(req))) continue;
    // A second body under one (client, seq): only a faulty client sends one. Not held, so that
    // the bodies a replica holds (and keeps aside once one is decided) stay one per request.
    if (r.avail.holdsBodyOf(req)) {
      r.secondBodies++;
      continue;
    }
    // A request already waiting, attested by others, takes no more room once held here.
    if (r.pending.size >= r.o.pendingMax && !r.pending.has(refKey(refOf(req)))) {
      r.refused++;
      (r.out.refused ??= []).push(req);
      continue;
    }
    const ref = r.avail.hold(req, r.lastExecuted);
    if (!ref) {
      r.refused++;
      (r.out.refused ??= []).push(req);
      continue;
    }
    r.journalHold(req, ref);
    addPending(r, ref);
  }
  propose(r);
}

export function addPending(r: Core, ref: Ref): void {
  const k = refKey(ref);
  if (r.pending.has(k) || r.wasDecided(ref)) return;
  r.pending.set(k, ref);
  r.toPropose[ref.urgent === true ? 0 : 1].push(ref);
  r.waitingSince ??= r.now;
}

/** Attestations arrived: PRE-PREPAREs waiting for them may be prepared now. */
export function onHold(r: Core, m: Hold): void {
  let readied = false;
  const refs = m.refs.slice(0, MESSAGE_BATCHES_MAX * r.o.batchMax);
  for (let i = 0; i < refs.length; i++) {
    const ref = refs[i]!;
    // Absent: an older replica's, which never lets a body go. No correct replica attests having
    // executed more than a log window past this one (it would be that far ahead of the stable
    // checkpoint): counted as if it said that much, a faulty one's claim ends like any other.
    const since = Math.min(m.since?.[i] ?? Infinity, m.since ? r.lastExecuted + r.o.logWindow : Infinity);
    // A resend of an attestation counted already (about half of them, at a steady load) costs
    // no lookup of the decided ones: a decided reference's attestations are forgotten.
    if (r.avail.attestedBy(m.from, ref) || r.wasDecided(ref)) continue;
    if (r.avail.attest(m.from, ref, since)) {
      readied = true;
      // Whatever room is left: a ready reference the leader left out of pending would never be
      // proposed (the attestations bound these: f+1 per reference, pendingMax per replica).
      addPending(r, ref);
    }
  }
  if (!readied) return;
  for (const [seq, s] of r.slots) {
    if (s.awaiting && s.prePrepare && s.prePrepare.view === r.view && !r.changing && r.avail.allReadyAt(s.prePrepare.batch, seq)) {
      sendPrepare(r, s, s.prePrepare);
      checkPrepared(r, seq);
    }
  }
  propose(r);
}

/** The leader batches waiting requests, urgent ones first, into new instances. */
export function propose(r: Core): void {
  if (!r.isLeader()) return void (r.stuckSince = undefined);
  if (r.nextSeq <= r.passiveThrough(r.view)) {
    // Restarted as the leader of a view it led before: it may have proposed these seqs
    // already. Until it knows how far, it proposes nothing; then only above.
    if (r.passiveSeq === Infinity) return;
    r.nextSeq = r.passiveSeq + 1;
  }
  while (r.nextSeq - 1 - r.lastExecuted < r.o.inflightMax && r.inWindow(r.nextSeq)) {
    const batch: Ref[] = [];
    for (let q = 0; q < r.toPropose.length; q++) {
      // References not attested by f+1 yet stay queued, in order; the rest go.
      const later: Ref[] = [];
      const queue = r.toPropose[q]!;
      let i = 0;
      for (; i < queue.length && batch.length < r.o.batchMax; i++) {
        const x = queue[i]!;
        const k = refKey(x);
        if (!r.pending.has(k) || r.proposed.has(reqKey(x))) continue;
        if (r.avail.readyAt(x, r.nextSeq)) {
          // Marked now, so that the other body of the request, if ready too, waits.
          r.proposed.add(reqKey(x));
          batch.push(x);
        } else later.push(x);
      }
      r.toPropose[q] = later.concat(queue.slice(i));
    }
    if (batch.length > 0) r.stuckSince = undefined;
    else {
      const waits = waitsForSeqs(r);
      if (waits === undefined) return void (r.stuckSince = undefined);
      if (!emptyDue(r, waits)) return void (r.stuckSince ??= r.now);
      r.emptyBatches++;
      r.emptyAt = r.now;
    }
    const pp = r.signed<PrePrepare>({ type: 'pre-prepare', view: r.view, seq: r.nextSeq++, digest: batchDigest(batch), batch, from: r.o.id, sig: '' });
    r.send('all', pp);
    acceptPrePrepare(r, pp, false);
    // A leader that forgot this could propose another batch at the seq after a restart.
    const s = r.slot(pp.seq);
    if (!s.journaled) r.journalPrePrepare(s, false);
  }
}

/** Attestations end (attestationSeqs is finite): requests that never become ready wait only so many seqs. */
export const attestationsEnd = (r: Core): boolean => r.o.attestationSeqs !== undefined && r.o.attestationSeqs !== Infinity;

/**
 * What waits for seqs to move on, since only that can end its attestations: requests here
 * that no batch of this view carries ('here'), or only requests another replica attested
 * (its HOLD says so) that wait there ('elsewhere'); undefined: nothing.
 */
function waitsForSeqs(r: Core): 'here' | 'elsewhere' | undefined {
  if (r.pending.size > r.proposed.size) return 'here';
  return attestationsEnd(r) && r.avail.endsBy(r.lastExecuted + r.o.attestationSeqs! + r.o.logWindow) ? 'elsewhere' : undefined;
}

/**
 * Requests have waited, none of them ready to propose, for a resend period: an empty batch
 * moves the seqs on, so that attestations that will never make a request ready end
 * (attestationSeqs) and their bodies go. Without them, a pending full of such requests would
 * propose nothing, decide nothing, and wait for good. Never with attestations that hold for
 * good: nothing would ever end. Paced, because each is a round of the protocol (and a journal
 * flush) at every replica: one a tick for requests held here; one a resend period for ones
 * only another replica attested, since a faulty replica can make those up (one a period, for
 * as long as it likes, is what it can cost).
 */
function emptyDue(r: Core, waits: 'here' | 'elsewhere'): boolean {
  if (!attestationsEnd(r) || r.stuckSince === undefined || r.now - r.stuckSince < r.o.resendTicks) return false;
  return r.now - r.emptyAt >= (waits === 'here' ? 1 : r.o.resendTicks);
}

export function anyReadyPending(r: Core): boolean {
  for (const ref of r.pending.values()) if (r.avail.ready(ref)) return true;
  return false;
}

/** Forgets waiting requests decided meanwhile (a resend, a snapshot, a batch learned by catch-up). */
export function dropObsolete(r: Core): void {
  for (const [k, x] of r.pending) if (r.wasDecided(x)) (r.pending.delete(k), r.proposed.delete(reqKey(x)));
}
