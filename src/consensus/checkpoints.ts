// Checkpoints (docs/consensus.md, "Checkpoints and bounded memory"): every checkpointInterval
// seqs a replica signs its state and snapshot; 2f+1 matching signatures make the checkpoint
// stable, and the log below it goes. This is what bounds memory and what catch-up (catch-up.ts)
// proves batches and snapshots against.
//
// It must never: make a checkpoint stable on fewer than 2f+1 matching signatures, move the
// stable checkpoint back, or keep more than one CHECKPOINT per replica (a faulty one would fill
// memory with made-up seqs).

import { refKey } from './availability.js';
import { refOf, signable, type Checkpoint, type Fetch, type StableCheckpoint } from './messages.js';
import { snapshotDigest } from './state.js';
import type { StableEntry } from './journal.js';
import type { Core } from './core.js';

/** Signs this replica's state after `seq` and keeps the snapshot until a later one is stable. */
export function checkpoint(r: Core, seq: number): void {
  // Catching up below a stable checkpoint: nothing to sign, nobody needs it.
  if (seq < r.stable.seq || seq < r.catchingUpTo) return;
  const body = r.executed.encode(r.machine?.snapshot() ?? '');
  r.snapshotBytes = body.length;
  const digest = snapshotDigest(body);
  if (seq === r.stable.seq) return checkOwnSnapshot(r, r.stable, body, r.state, digest);
  r.ownSnapshots.set(seq, { body, state: r.state, digest });
  r.ownCheckpoint = r.signed<Checkpoint>({ type: 'checkpoint', seq, state: r.state, snapshot: digest, from: r.o.id, sig: '' });
  r.send('all', r.ownCheckpoint);
  onCheckpoint(r, r.ownCheckpoint);
}

/**
 * This replica's own snapshot at a stable checkpoint: served if 2f+1 signed the same. Either
 * way it is where a restart resumes from (a diverged replica comes back diverged, as it was).
 */
function checkOwnSnapshot(r: Core, st: StableCheckpoint, body: string, state: string, digest: string): void {
  if (digest === st.snapshot) r.served = { stable: st, body };
  else r.snapshotMismatches++;
  r.journalSnapshot(st.seq, state, body);
}

export function onCheckpoint(r: Core, m: Checkpoint): void {
  if (m.seq <= r.stable.seq || m.seq % r.o.checkpointInterval !== 0 || (r.checkpoints.get(m.from)?.seq ?? 0) >= m.seq) return;
  if (m.from !== r.o.id && !r.signer.verify(m.from, signable(m), m.sig)) return;
  r.checkpoints.set(m.from, m);
  const same = [...r.checkpoints.values()].filter((c) => c.seq === m.seq && c.state === m.state && c.snapshot === m.snapshot);
  if (same.length >= 2 * r.o.f + 1) makeStable(r, { seq: m.seq, state: m.state, snapshot: m.snapshot, proof: same });
}

/** A checkpoint 2f+1 replicas signed: the log below it is no longer needed. */
export function makeStable(r: Core, st: StableCheckpoint): void {
  if (st.seq <= r.stable.seq) return;
  r.stable = st;
  r.journal({ type: 'stable', stable: st } satisfies StableEntry);
  const own = r.ownSnapshots.get(st.seq);
  if (own !== undefined) checkOwnSnapshot(r, st, own.body, own.state, own.digest);
  for (const seq of r.ownSnapshots.keys()) if (seq <= st.seq) r.ownSnapshots.delete(seq);
  for (const seq of r.slots.keys()) if (seq <= st.seq) r.slots.delete(seq);
  for (const [from, c] of r.checkpoints) if (c.seq <= st.seq) r.checkpoints.delete(from);
  for (const [seq, batch] of r.decidedBatches) {
    if (seq > st.seq - r.o.retainDecided) continue;
    r.decidedBatches.delete(seq);
    for (const q of batch) r.decidedBodies.delete(refKey(refOf(q)));
  }
  for (const [k, s] of r.spareBodies) if (s.seq + r.o.logWindow <= r.lastExecuted) r.spareBodies.delete(k);
  if (r.nextSeq <= st.seq) r.nextSeq = st.seq + 1;
  r.journalTruncate();
  if (r.lastExecuted < st.seq) askForBatches(r);
}

/** FETCH: what the others decided after the last seq executed here (catch-up.ts answers it), once per resend period. */
export function askForBatches(r: Core): void {
  if (r.now - r.fetchAskedAt < r.o.resendTicks) return;
  r.fetchAskedAt = r.now;
  r.send('all', { type: 'fetch', after: r.lastExecuted, from: r.o.id } satisfies Fetch);
}
