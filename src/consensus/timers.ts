// What a clock tick does (docs/consensus.md, "Leader change" and the normal case's resends):
// the timeouts that suspect a leader — requests waiting too long, with a timeout that follows
// how long decisions take (BFT-SMaRt issue #57), and backups left idle by a leader that slows
// down by degrees (Aardvark) — and the periodic resend of what this replica last said, which
// is how the protocol survives message loss without acknowledgements.
//
// It must never: suspect a leader over a request fewer than f+1 replicas attested (a client
// that sent it to a few replicas alone would set off leader changes), replace a leader that
// keeps deciding, or resend more than what it said last (its votes in the window, its
// checkpoint, a bounded number of attestations).

import { leaderOf } from './certs.js';
import { askForBatches } from './checkpoints.js';
import { execute } from './execution.js';
import { anyReadyPending, attestationsEnd, dropObsolete, propose } from './admission.js';
import { stop } from './view-change.js';
import { MESSAGE_BATCHES_MAX, type Hold, type Ref } from './messages.js';
import type { Core } from './core.js';

export function onTick(r: Core): void {
  r.now++;
  const timeout = timeoutTicks(r);
  if (r.changing) {
    if (r.now - r.viewChangeStartedAt >= timeout) {
      r.viewChangeStartedAt = r.now;
      stop(r, r.target + 1);
    }
  } else if (r.waitingSince !== undefined && r.now - r.waitingSince >= timeout) {
    // Requests decided meanwhile (a resend, a client's seq given up on) are no reason to suspect anyone.
    dropObsolete(r);
    // The others may have decided without this replica (cut off, or sent another batch by the
    // leader alone): it asks what they decided, and catches up from their reports.
    if (r.pending.size > 0) askForBatches(r);
    // Only a request f+1 replicas attested is the leader's to propose: a client that sent one
    // to a few replicas alone must not be able to set off leader changes. When attestations
    // end, though, a correct leader moves the seqs on with empty batches while such a request
    // waits (its HOLD reached the leader), so a timeout without any decision is its fault.
    if (anyReadyPending(r) || (attestationsEnd(r) && r.pending.size > 0)) stop(r, r.view + 1);
    r.waitingSince = r.pending.size > 0 ? r.now : undefined;
  }
  watchIdleLeader(r);
  if (r.now % r.o.resendTicks === 0) resend(r);
  propose(r);
}

/**
 * A leader that leaves the backups idle while requests are ready to order — nothing of its
 * view in flight and room in the window — is suspected after the base timeout (or 4x the
 * round the replicas take among themselves, if longer), however slow decisions have become.
 * The adaptive timeout stretches for a leader busy deciding (BFT-SMaRt issue #57); it must
 * not stretch for a leader slow to propose, or a slow leader stays forever (Aardvark).
 */
function watchIdleLeader(r: Core): void {
  if (r.changing || leaderOf(r.view, r.o.n) === r.o.id || r.pending.size === 0 || leaderBusy(r)) {
    r.idleSince = undefined;
    return;
  }
  if (r.idleSince === undefined) {
    // Finding a ready request may scan many that are not (a client that sent to few replicas): not every tick.
    if (r.now - r.idleCheckedAt < r.o.resendTicks) return;
    r.idleCheckedAt = r.now;
    if (anyReadyPending(r)) r.idleSince = r.now;
    return;
  }
  if (r.now - r.idleSince < Math.max(r.o.viewChangeTimeoutTicks, Math.ceil(4 * r.roundTicksAvg))) return;
  r.idleSince = undefined;
  if (!anyReadyPending(r)) return;
  r.idleLeaderSuspicions++;
  stop(r, r.view + 1);
}

/** Something of this view not executed here yet, or the window full: the leader has reason to wait. */
function leaderBusy(r: Core): boolean {
  let top = r.lastExecuted;
  for (const [seq, s] of r.slots) {
    if (!s.prePrepare) continue;
    if (seq > r.lastExecuted) return true;
    top = Math.max(top, seq);
  }
  return top >= r.stable.seq + r.o.logWindow;
}

/** The base timeout, stretched to 4x the observed time between decisions, doubled per failed view change. */
function timeoutTicks(r: Core): number {
  const base = Math.max(r.o.viewChangeTimeoutTicks, Math.ceil(4 * r.decisionTicksAvg));
  const failed = r.changing ? r.target - r.view - 1 : 0;
  return base * 2 ** Math.min(failed, 10);
}

/** Re-sends what this replica last said that others may have missed (the network may drop it). */
function resend(r: Core): void {
  // A replica in a view change with requests waiting asks too: the others may have decided
  // them without it (it left, on votes they withdrew, a view they stayed in; campaign seed
  // 1005760, after a restart of the whole cluster). It cannot go back to that view, so it
  // follows what they decide by catch-up until a view change moves them all.
  if (behind(r) || (r.changing && r.pending.size > 0)) askForBatches(r);
  // A committed batch waiting for bodies asks again (the last answer may have been lost).
  execute(r);
  // Attestations may have been lost, or a replica restarted and forgot them.
  const held: Ref[] = [];
  const since: number[] = [];
  for (const ref of r.pending.values()) {
    if (held.length >= MESSAGE_BATCHES_MAX * r.o.batchMax) break;
    const body = r.avail.body(ref);
    if (!body) continue;
    // With the seq of its first attestation, which is what its body is let go by; none recorded, none announced.
    const at = r.avail.attestOwn(ref, r.lastExecuted, false);
    if (at === undefined) continue;
    // An attestation promises a body on disk: one fetched from a peer is journaled first.
    r.journalHold(body, ref);
    held.push(ref);
    since.push(at);
  }
  if (held.length > 0) r.send('all', { type: 'hold', refs: held, since, from: r.o.id } satisfies Hold);
  if (r.ownStop) r.send('all', r.ownStop);
  if (r.changing) {
    if (r.ownViewChange) r.send('all', r.ownViewChange);
    return;
  }
  if (r.ownNewView && r.ownNewView.view === r.view) r.send('all', r.ownNewView);
  for (const [seq, s] of r.slots) {
    if (seq <= r.stable.seq || !s.prePrepare) continue;
    if (s.prePrepare.from === r.o.id) r.send('all', s.prePrepare);
    const mine = s.prepares.get(r.o.id);
    if (mine) r.send('all', mine);
    const commit = s.commits.get(r.o.id);
    if (commit) r.send('all', commit);
  }
  // Also once stable: a replica that was cut off learns from 2f+1 of these where the others
  // are, and fetches what it missed (the slots below are gone from everyone's log).
  if (r.ownCheckpoint) r.send('all', r.ownCheckpoint);
}

/** Below a stable checkpoint, recovering, or behind what f+1 replicas said they executed. */
function behind(r: Core): boolean {
  if (r.lastExecuted < r.stable.seq || r.recovering) return true;
  const reported = [...r.peerExecuted.values()].sort((a, b) => b - a);
  return reported.length > r.o.f && r.lastExecuted < reported[r.o.f]!;
}
