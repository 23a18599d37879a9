// PBFT's three phases within one view (docs/consensus.md, "Normal case", Castro & Liskov
// 2002 §4.2): a backup accepts the leader's first PRE-PREPARE at (view, seq) and PREPAREs it
// once f+1 replicas attested every reference in it; a PRE-PREPARE and 2f matching PREPAREs are
// a prepared certificate, journaled before the COMMIT leaves; 2f+1 matching COMMITs decide the
// batch, which execution.ts runs in seq order.
//
// It must never: accept a message of another view than its own or outside the log window,
// PREPARE a second batch at one (view, seq), send a COMMIT before its certificate is in the
// journal, or vote at a seq a restarted replica may have voted on before (passiveThrough).

import { FitError } from '../core/index.js';
import { leaderOf, validPrePrepare, validPrepare } from './certs.js';
import { execute } from './execution.js';
import { batchDigest, refOf, type Commit, type PrePrepare, type Prepare } from './messages.js';
import type { PreparedEntry } from './journal.js';
import type { Core, Slot } from './core.js';

export function onPrePrepare(r: Core, m: PrePrepare): void {
  if (r.changing || m.view !== r.view || !r.inWindow(m.seq)) return;
  const s = r.slot(m.seq);
  if (s.prePrepare) return; // the first one of this view stands; a second is equivocation
  if (!validPrePrepare(m, r.g, r.signer)) return;
  acceptPrePrepare(r, m, false);
}

/**
 * `proven`: re-proposed by a NEW-VIEW, whose certificates show 2f+1 replicas prepared it
 * (or an empty batch); a new proposal is prepared only once f+1 attested every reference.
 */
export function acceptPrePrepare(r: Core, m: PrePrepare, proven: boolean): void {
  const s = r.slot(m.seq);
  s.prePrepare = m;
  s.journaled = false;
  s.at = r.now;
  r.idleSince = undefined;
  s.awaiting = m.from !== r.o.id && m.seq > r.passiveThrough(m.view);
  if (s.awaiting && (proven || r.avail.allReadyAt(m.batch, m.seq))) sendPrepare(r, s, m);
  checkPrepared(r, m.seq);
}

export function sendPrepare(r: Core, s: Slot, m: PrePrepare): void {
  s.awaiting = false;
  // Journaled first: a replica that forgot it could PREPARE another batch at (view, seq) after a restart.
  r.journalPrePrepare(s, true);
  const p = r.signed<Prepare>({ type: 'prepare', view: m.view, seq: m.seq, digest: m.digest, from: r.o.id, sig: '' });
  s.prepares.set(r.o.id, p);
  r.send('all', p);
}

export function onPrepare(r: Core, m: Prepare): void {
  if (r.changing || m.view !== r.view || !r.inWindow(m.seq) || m.from === leaderOf(m.view, r.o.n)) return;
  const s = r.slot(m.seq);
  if (s.prepares.has(m.from) || !validPrepare(m, r.signer)) return;
  s.prepares.set(m.from, m);
  checkPrepared(r, m.seq);
}

export function checkPrepared(r: Core, seq: number): void {
  const s = r.slot(seq);
  const pp = s.prePrepare;
  if (s.prepared || !pp) return;
  const matching = [...s.prepares.values()].filter((p) => p.digest === pp.digest && p.view === pp.view);
  if (matching.length < 2 * r.o.f) return;
  s.prepared = true;
  // The certificate is journaled before the COMMIT leaves: a replica that prepared a decided
  // batch must report it in every later VIEW-CHANGE (docs/consensus.md, the safety argument).
  if (!s.journaled) r.journalPrePrepare(s, false);
  const older = s.cert && s.cert.prePrepare.view !== pp.view ? s.cert.prePrepare.view : undefined;
  s.cert = { prePrepare: pp, prepares: matching.slice(0, 2 * r.o.f) };
  r.journal({ type: 'prepared', view: pp.view, seq, prepares: s.cert.prepares } satisfies PreparedEntry);
  // The certificate it replaces goes after the new one is written: no prefix of the journal lacks both.
  if (older !== undefined) r.journal({ type: 'drop', seq, view: older });
  if (seq <= r.passiveThrough(pp.view)) return checkCommitted(r, seq);
  const c: Commit = { type: 'commit', view: pp.view, seq, digest: pp.digest, from: r.o.id };
  s.commits.set(r.o.id, c);
  r.send('all', c);
  checkCommitted(r, seq);
}

export function onCommit(r: Core, m: Commit): void {
  if (r.changing || m.view !== r.view || !r.inWindow(m.seq)) return;
  const s = r.slot(m.seq);
  if (s.commits.has(m.from)) return;
  s.commits.set(m.from, m);
  checkCommitted(r, m.seq);
}

function checkCommitted(r: Core, seq: number): void {
  const s = r.slot(seq);
  if (s.committed || !s.prepared) return;
  const pp = s.prePrepare!;
  let matching = 0;
  for (const c of s.commits.values()) if (c.digest === pp.digest && c.view === pp.view) matching++;
  if (matching < 2 * r.o.f + 1) return;
  s.committed = true;
  // The round among the replicas, from PRE-PREPARE to COMMIT: what the leader's pace is measured against.
  const round = r.now - s.at;
  r.roundTicksAvg = r.roundTicksAvg === 0 ? round : 0.8 * r.roundTicksAvg + 0.2 * round;
  // A seq executed here in an earlier view is decided again only with the same batch: the
  // view change carries it over. Anything else means more than f replicas are faulty.
  const done = seq <= r.lastExecuted ? r.decidedBatches.get(seq) : undefined;
  if (done && batchDigest(done.map(refOf)) !== pp.digest) {
    throw new FitError('FIT_ERR_INTERNAL', `invariant broken: seq ${seq} committed in view ${pp.view} with a batch other than the one executed; more than f=${r.o.f} replicas are faulty`);
  }
  execute(r);
}
