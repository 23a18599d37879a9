// The leader change (docs/consensus.md, "Leader change"): PBFT's view change (Castro & Liskov
// 2002 §4.4) started by BFT-SMaRt's STOP votes. f+1 votes for higher views make a replica
// vote too; 2f+1 make it leave its view for good and send a VIEW-CHANGE with its certificates;
// the new leader, with 2f+1 of those, re-proposes what they prepared in a NEW-VIEW that every
// replica checks by recomputing the plan (certs.ts) before it enters the view.
//
// It must never: take part in a view below one it sent a VIEW-CHANGE for (so every VIEW-CHANGE
// it signed stays true: it lists all it will ever prepare below that view), leave a view on
// fewer than 2f+1 STOP votes, enter one on anything but a valid NEW-VIEW, accept a message of
// an earlier view in the new one, or, restarted without its state, lead a view it may have led
// before.

import { FitError } from '../core/index.js';
import { leaderOf, planNewView, validNewView, validViewChange } from './certs.js';
import { makeStable } from './checkpoints.js';
import { acceptPrePrepare } from './agreement.js';
import { dropObsolete, propose } from './admission.js';
import { batchDigest, type NewView, type PrePrepare, type PreparedCert, type StableCheckpoint, type Stop, type ViewChange } from './messages.js';
import type { LeaveEntry, ViewEntry } from './journal.js';
import { reqKey } from './availability.js';
import type { Core } from './core.js';

/** Votes to move to `view` (or to a higher one, never back to a lower vote). */
export function stop(r: Core, view: number): void {
  if (view <= (r.stops.get(r.o.id) ?? r.view)) {
    if (r.ownStop) r.send('all', r.ownStop);
    return;
  }
  r.ownStop = { type: 'stop', view, from: r.o.id };
  r.stops.set(r.o.id, view);
  r.send('all', r.ownStop);
  countStops(r);
}

export function onStop(r: Core, m: Stop): void {
  if (m.view <= r.view) return showView(r, m.from);
  if (m.view <= (r.stops.get(m.from) ?? 0)) return;
  r.stops.set(m.from, m.view);
  countStops(r);
}

/**
 * f+1 replicas voting to leave: at least one is correct, so join the lowest view they ask
 * for (without it, views drift apart after a partition heals: BFT-SMaRt issue #19). 2f+1:
 * leave, for the highest view that many vote for.
 */
function countStops(r: Core): void {
  const current = r.changing ? r.target : r.view;
  const votes = [...r.stops.values()].filter((v) => v > current).sort((a, b) => b - a);
  if (votes.length >= r.o.f + 1 && (r.stops.get(r.o.id) ?? 0) <= current) stop(r, votes[votes.length - 1]!);
  const agreed = [...r.stops.values()].filter((v) => v > current).sort((a, b) => b - a)[2 * r.o.f];
  if (agreed !== undefined) leaveView(r, agreed);
}

/**
 * Leaves the current view for `view` for good: from here on this replica takes part in no view
 * below `view` (onNewView refuses their NEW-VIEWs), so the certificates it sends (PBFT's
 * VIEW-CHANGE, BFT-SMaRt's STOPDATA) are all it will ever have prepared below it.
 */
function leaveView(r: Core, view: number): void {
  if (view <= r.view || (r.changing && view <= r.target)) return;
  r.changing = true;
  r.target = view;
  r.viewChangeStartedAt = r.now;
  r.viewChangeCount++;
  // Until it knows where the others are, a restarted replica has no say: it may have sent a
  // VIEW-CHANGE for this view before, with certificates it no longer has.
  if (r.passiveSeq === Infinity) {
    r.journal({ type: 'leave', target: view, viewChange: null } satisfies LeaveEntry);
    return;
  }
  const prepared: PreparedCert[] = [];
  for (const [seq, s] of [...r.slots].sort((a, b) => a[0] - b[0])) if (seq > r.stable.seq && s.cert) prepared.push(s.cert);
  r.ownViewChange = r.signed<ViewChange>({ type: 'view-change', view, stable: r.stable, prepared, from: r.o.id, sig: '' });
  // Journaled first: restarted, it must not prepare again in the view it promised to leave.
  r.journal({ type: 'leave', target: view, viewChange: r.ownViewChange } satisfies LeaveEntry);
  r.send('all', r.ownViewChange);
  r.viewChanges.set(r.o.id, r.ownViewChange);
  tryNewView(r, view);
}

export function onViewChange(r: Core, m: ViewChange): void {
  if (m.view <= r.view) return;
  const had = r.viewChanges.get(m.from);
  if (had && had.view >= m.view) return;
  if (!validViewChange(m, r.g, r.signer)) return;
  r.viewChanges.set(m.from, m);
  if (m.stable.seq > r.stable.seq) makeStable(r, m.stable);
  tryNewView(r, m.view);
}

/** The leader of `view`, with 2f+1 view changes for it, re-proposes what they prepared. */
function tryNewView(r: Core, view: number): void {
  // A restarted replica may have led this view before: it leads only views above those.
  if (leaderOf(view, r.o.n) !== r.o.id || !r.changing || r.target !== view || (r.recovering && view <= r.passiveView)) return;
  const vcs = [...r.viewChanges.values()].filter((v) => v.view === view);
  if (vcs.length < 2 * r.o.f + 1) return;
  const chosen = vcs.slice(0, 2 * r.o.f + 1);
  const plan = planNewView(chosen);
  const prePrepares = plan.batches.map((b) => r.signed<PrePrepare>({ type: 'pre-prepare', view, seq: b.seq, digest: batchDigest(b.batch), batch: b.batch, from: r.o.id, sig: '' }));
  const nv = r.signed<NewView>({ type: 'new-view', view, viewChanges: chosen, prePrepares, from: r.o.id, sig: '' });
  r.ownNewView = nv;
  r.send('all', nv);
  enterView(r, nv, plan.stable);
}

/**
 * A valid NEW-VIEW for a view above ours is entered, unless this replica sent a VIEW-CHANGE for
 * a higher view (PBFT: a VIEW-CHANGE(t) promises to prepare nothing below t). Entering a lower
 * one breaks that promise: its VIEW-CHANGE, signed and still held by the leader of t, says it
 * prepared nothing at a seq where it then prepares, and maybe decides, a batch; the leader
 * builds NEW-VIEW(t) from it and another batch is decided there (the scenario in
 * test/unit/consensus-view-change.test.ts, found in review). Left out of the view the others
 * entered, it follows what they decide by catch-up, which needs no view (timers.ts), and joins
 * them at a view at or above its target: a NEW-VIEW for one, or their STOP votes above it; if
 * their views below it fail without it, their timers take them up to its target, where its
 * VIEW-CHANGE, resent, waits for them.
 */
export function onNewView(r: Core, m: NewView): void {
  if (m.view <= r.view || (r.changing && m.view < r.target)) return;
  const plan = validNewView(m, r.g, r.signer);
  if (!plan) return;
  enterView(r, m, plan.stable);
}

/**
 * A replica asking to move to a view at or below ours is in an older one: it missed the
 * NEW-VIEW that moved us (cut off while it went round). Without it, it votes for views the
 * others left long ago, and its votes never add up with theirs: a leader that crashed after
 * that view change is then never replaced. The NEW-VIEW proves itself, so anyone may relay
 * it; once per resend period per asker.
 */
function showView(r: Core, to: number): void {
  if (!r.enteredBy || r.enteredBy.view !== r.view) return;
  if (r.now - (r.newViewShownAt.get(to) ?? -Infinity) < r.o.resendTicks) return;
  r.newViewShownAt.set(to, r.now);
  r.send(to, r.enteredBy);
}

/** Enters a new view from a valid NEW-VIEW: its stable checkpoint, then its pre-prepares as in a normal view. */
function enterView(r: Core, nv: NewView, stable: StableCheckpoint): void {
  if (nv.view <= r.view || (r.changing && nv.view < r.target)) {
    throw new FitError('FIT_ERR_INTERNAL', `invariant broken: replica ${r.o.id} entering view ${nv.view} from view ${r.view}${r.changing ? `, having sent a VIEW-CHANGE for view ${r.target}` : ''}; this is a bug, please report it`);
  }
  r.journal({ type: 'view', view: nv.view, newView: nv } satisfies ViewEntry);
  r.enteredBy = nv;
  r.view = nv.view;
  r.viewsEntered++;
  r.changing = false;
  r.target = nv.view;
  r.proposed.clear();
  dropObsolete(r);
  // What waits is proposed again by the new leader (which is why it waits in arrival order).
  r.toPropose[0] = [...r.pending.values()].filter((x) => x.urgent === true);
  r.toPropose[1] = [...r.pending.values()].filter((x) => x.urgent !== true);
  for (const [from, vc] of r.viewChanges) if (vc.view <= nv.view) r.viewChanges.delete(from);
  for (const [from, v] of r.stops) if (v <= nv.view) r.stops.delete(from);
  // This replica's own vote goes too, whatever view it was for: in the view it just entered it
  // votes anew when its timer fires. A vote for a higher view kept without ownStop would make
  // it believe it had voted, count that vote nowhere, and never vote again (campaign seed
  // 3087717: stuck in a view whose leader could not prepare a batch).
  r.stops.delete(r.o.id);
  r.ownViewChange = undefined;
  r.ownStop = undefined;
  if (stable.seq > r.stable.seq) makeStable(r, stable);
  // Messages of earlier views are void in this one; only certificates survive, for later view changes.
  for (const [seq, s] of r.slots) {
    // A PRE-PREPARE of an earlier view that is not part of a certificate is no longer needed on disk.
    if (s.prePrepare && s.journaled && s.prePrepare.view !== s.cert?.prePrepare.view) r.journal({ type: 'drop', seq, view: s.prePrepare.view });
    s.journaled = false;
    s.prePrepare = undefined;
    s.prepares.clear();
    s.commits.clear();
    s.prepared = false;
    s.committed = false;
  }
  let top = r.stable.seq;
  for (const pp of nv.prePrepares) {
    if (!r.inWindow(pp.seq)) continue;
    acceptPrePrepare(r, pp, true);
    for (const x of pp.batch) r.proposed.add(reqKey(x));
    top = Math.max(top, pp.seq);
  }
  r.nextSeq = Math.max(top, r.lastExecuted) + 1;
  r.waitingSince = r.pending.size > 0 ? r.now : undefined;
  r.idleSince = undefined;
  propose(r);
}
