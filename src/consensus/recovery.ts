// Rebuilding a replica from its journal (docs/consensus.md, "Restart from the journal";
// journal.ts holds what is written and when). The machine comes back from the snapshot and the
// decided batches above it, executed again; then the view, the view change under way, the
// PRE-PREPAREs it sent or prepared with its own PREPAREs and COMMITs, its certificates, and the
// bodies it attested. That is every vote it gave, so it needs no passive period.
//
// It must never: run on a journal that is damaged or another replica's (it refuses with
// FIT_ERR_JOURNAL), or come back able to contradict a vote it gave before the crash: a second
// batch at a (view, seq) it PREPAREd, a VIEW-CHANGE without a certificate it formed, a vote in
// a view below one it sent a VIEW-CHANGE for.

import { FitError } from '../core/index.js';
import { refKey, reqKey } from './availability.js';
import { letGoKey } from './holds.js';
import { askForBatches } from './checkpoints.js';
import { apply, spare } from './execution.js';
import { addPending, propose } from './admission.js';
import { refOf, type PrePrepare, type Prepare, type Req } from './messages.js';
import { snapshotDigest } from './state.js';
import type { DecidedEntry, HoldEntry, LeaveEntry, PrePrepareEntry, PreparedEntry, SnapshotEntry, StableEntry, StoredEntry, ViewEntry } from './journal.js';
import type { Core } from './core.js';

/**
 * Rebuilds the replica from what JournalStore.load() read, once, before anything else. An
 * empty journal starts it as its options say (`restarted`: amnesiac and passive) and journals
 * who it is first.
 */
export function recover(r: Core, entries: readonly StoredEntry[]): void {
  if (r.o.journaling !== true || r.recovered) throw new FitError('FIT_ERR_INTERNAL', 'invariant broken: recover() is for a journaling replica, once; this is a bug, please report it');
  r.recovered = true;
  const of = <T extends StoredEntry['type']>(type: T): Extract<StoredEntry, { type: T }>[] => entries.filter((e): e is Extract<StoredEntry, { type: T }> => e.type === type);
  const meta = of('meta')[0];
  if (!meta) {
    if (entries.length > 0) throw new FitError('FIT_ERR_JOURNAL', `the consensus journal holds ${entries.length} entries but no header: it is damaged or was written by another version; move it away and restart the replica (it then recovers from the others, passively)`);
    r.journalMeta();
    return;
  }
  if (meta.id !== r.o.id || meta.n !== r.o.n || meta.f !== r.o.f) {
    throw new FitError(
      'FIT_ERR_JOURNAL',
      `the consensus journal is replica ${meta.id}'s of a cluster with n=${meta.n}, f=${meta.f}, not replica ${r.o.id}'s with n=${r.o.n}, f=${r.o.f}: a data directory from another replica or cluster.yaml; give each replica its own, or init the cluster again`,
      { replica: r.o.id },
    );
  }
  r.passiveView = meta.passiveView ?? Infinity;
  r.passiveSeq = meta.passiveSeq ?? Infinity;
  r.startedOver = meta.startedOver;
  r.replaying = true;
  const bodies = new Map<string, Req>();
  for (const g of of('hold')) for (const q of g.reqs) bodies.set(refKey(refOf(q)), q);
  const pins = restoreDecided(r, of('snapshot')[0], of('stable')[0], of('decided'), bodies);
  restoreView(r, of('view')[0], of('leave')[0]);
  restoreSlots(r, of('pre-prepare'), of('prepared'));
  restoreHolds(r, of('hold'), pins, new Set(of('letgo').map((e) => letGoKey(e.id, e.ref))));
  r.replaying = false;
  if (r.lastExecuted < r.stable.seq) askForBatches(r);
  propose(r);
}

/** Bodies it attested and that are not decided: held, pending and attested again (a HOLD goes out with this output). */
function restoreHolds(r: Core, groups: HoldEntry[], pins: Map<string, number>, letGo: ReadonlySet<string>): void {
  // At least this far the journal was truncated (a truncation entry came with every stable checkpoint and snapshot).
  const truncatedTo = Math.min(r.stable.seq - r.o.retainDecided, r.baseSeq);
  const out = r.held.restore(
    groups,
    pins,
    truncatedTo,
    (ref) => r.wasDecided(ref),
    (req, ref) => {
      if (r.avail.body(ref)) return true;
      // Attested again from where the replay left it: at least as far as any attestation it
      // sent before the crash (a decision is on disk before the HOLDs that follow it leave).
      if (!r.avail.hold(req, r.lastExecuted)) return false;
      addPending(r, ref);
      return true;
    },
    {
      // A body of a decided request that is not the one decided was kept aside before the crash
      // (a faulty leader may have a second batch prepared with it): kept aside again, from here.
      to: r.lastExecuted + r.o.logWindow,
      spare: (req, ref) => {
        if (r.decidedBodies.has(refKey(ref))) return false;
        spare(r, [req], undefined, r.lastExecuted);
        return true;
      },
    },
    letGo,
  );
  for (const e of out) r.journal(e);
}

/** The snapshot, the stable checkpoint, then the batches: kept below the snapshot, executed again above it. */
function restoreDecided(r: Core, snap: SnapshotEntry | undefined, st: StableEntry | undefined, decided: DecidedEntry[], bodies: Map<string, Req>): Map<string, number> {
  /** For each body a decided entry refers to, the highest such seq: its hold group stays until then. */
  const pins = new Map<string, number>();
  const resolve = (d: DecidedEntry): Req[] =>
    d.batch.map((x) => {
      if ('payload' in x) return x;
      const k = refKey(x);
      const body = bodies.get(k);
      if (!body) throw new FitError('FIT_ERR_JOURNAL', `the consensus journal's batch at seq ${d.seq} refers to a body it does not hold: it is damaged; move it away and restart the replica (it then recovers from the others, passively)`);
      pins.set(k, Math.max(pins.get(k) ?? 0, d.seq));
      return body;
    });
  if (snap) {
    const decoded = r.executed.decode(snap.body);
    if (decoded === undefined) throw new FitError('FIT_ERR_JOURNAL', `the snapshot at seq ${snap.seq} in the consensus journal cannot be read: the journal is damaged; move it away and restart the replica (it then recovers from the others, passively)`);
    decoded.load();
    r.machine?.restore(snap.seq, decoded.app);
    r.lastExecuted = snap.seq;
    r.state = snap.state;
    r.baseSeq = snap.seq;
    r.nextSeq = snap.seq + 1;
    r.snapshotBytes = snap.body.length;
  }
  if (st) {
    r.stable = st.stable;
    if (snap && snap.seq === st.stable.seq && snapshotDigest(snap.body) === st.stable.snapshot) r.served = { stable: st.stable, body: snap.body };
    // Its own CHECKPOINT at the stable seq (in the proof if it signed one before the checkpoint
    // was stable here) is resent as before the crash: the log below is gone everywhere, and a
    // replica that was away with nothing waiting learns where the others are only from 2f+1 of
    // these. Without it, one that needed this replica's stays behind for good once the cluster
    // is idle. The batches executed again below sign their own checkpoints above.
    r.ownCheckpoint = st.stable.proof.find((c) => c.from === r.o.id);
  }
  for (const d of [...decided].sort((a, b) => a.seq - b.seq)) {
    const batch = resolve(d);
    if (d.seq <= r.lastExecuted) {
      r.decidedBatches.set(d.seq, batch);
      for (const q of batch) r.decidedBodies.set(refKey(refOf(q)), q);
      continue;
    }
    if (d.seq !== r.lastExecuted + 1) {
      throw new FitError('FIT_ERR_JOURNAL', `the consensus journal has the batch at seq ${d.seq} but not the one at ${r.lastExecuted + 1}: it is damaged; move it away and restart the replica (it then recovers from the others, passively)`);
    }
    apply(r, d.seq, d.view, batch);
  }
  return pins;
}

function restoreView(r: Core, v: ViewEntry | undefined, leave: LeaveEntry | undefined): void {
  if (v) {
    r.view = v.view;
    r.target = v.view;
    r.enteredBy = v.newView ?? undefined;
    if (v.newView && v.newView.from === r.o.id) r.ownNewView = v.newView;
  }
  if (leave && leave.target > r.view) {
    // It had left its view for leave.target: it takes part in no view below that (what its
    // VIEW-CHANGE says it prepared there must stay all it ever prepared), and votes (STOP) as it did.
    r.changing = true;
    r.target = leave.target;
    r.viewChangeStartedAt = r.now;
    r.ownStop = { type: 'stop', view: leave.target, from: r.o.id };
    r.stops.set(r.o.id, leave.target);
    if (leave.viewChange) {
      r.ownViewChange = leave.viewChange;
      r.viewChanges.set(r.o.id, leave.viewChange);
    }
  }
}

/** PRE-PREPAREs of the current view (its NEW-VIEW's and the journaled ones), own PREPAREs and COMMITs, and certificates. */
function restoreSlots(r: Core, pps: PrePrepareEntry[], certs: PreparedEntry[]): void {
  const above = (seq: number): boolean => seq > r.stable.seq;
  for (const pp of r.enteredBy?.view === r.view ? r.enteredBy.prePrepares : []) if (r.inWindow(pp.seq)) r.slot(pp.seq).prePrepare = pp;
  const byKey = new Map<string, PrePrepare>();
  for (const e of pps) {
    byKey.set(`${e.pp.seq}/${e.pp.view}`, e.pp);
    if (e.pp.view !== r.view || !above(e.pp.seq)) continue;
    const s = r.slot(e.pp.seq);
    s.prePrepare = e.pp;
    s.journaled = true;
    if (e.prepare) s.prepares.set(r.o.id, r.signed<Prepare>({ type: 'prepare', view: e.pp.view, seq: e.pp.seq, digest: e.pp.digest, from: r.o.id, sig: '' }));
  }
  for (const c of certs) {
    if (!above(c.seq)) continue;
    const pp = byKey.get(`${c.seq}/${c.view}`);
    if (!pp) throw new FitError('FIT_ERR_JOURNAL', `the consensus journal has a certificate at seq ${c.seq}, view ${c.view} without its PRE-PREPARE: it is damaged; move it away and restart the replica (it then recovers from the others, passively)`);
    const s = r.slot(c.seq);
    if (!s.cert || s.cert.prePrepare.view < c.view) s.cert = { prePrepare: pp, prepares: c.prepares };
  }
  let top = Math.max(r.lastExecuted, r.stable.seq);
  for (const [seq, s] of r.slots) {
    const pp = s.prePrepare;
    if (!pp) continue;
    top = Math.max(top, seq);
    if (seq > r.lastExecuted) for (const x of pp.batch) r.proposed.add(reqKey(x));
    if (s.cert?.prePrepare.view !== pp.view || s.cert.prePrepare.digest !== pp.digest) continue;
    s.prepared = true;
    for (const p of s.cert.prepares) if (!s.prepares.has(p.from)) s.prepares.set(p.from, p);
    if (seq > r.passiveThrough(pp.view)) s.commits.set(r.o.id, { type: 'commit', view: pp.view, seq, digest: pp.digest, from: r.o.id });
  }
  r.nextSeq = Math.max(r.nextSeq, top + 1);
}
