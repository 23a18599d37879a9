// The messages of the ordering protocol (docs/consensus.md): PBFT's normal case, checkpoints,
// view change and catch-up. Plain objects, so the same values go through the deterministic
// simulator and, later, the replica's wire. A signature covers the canonical encoding that
// signable() builds from the fields by name, never a received object's own layout, so a
// sender cannot make two readers see different signed contents.

import { createHash } from 'node:crypto';

/**
 * A HOLD, BODY-FETCH or BODIES is read up to this many batches' worth of references or bodies
 * (a faulty replica's longer one costs no more), so correct replicas send no longer ones.
 */
export const MESSAGE_BATCHES_MAX = 4;

/** A request to order: a client's seq rises with each request it makes (PBFT's timestamp). */
export interface Req {
  client: string;
  seq: number;
  /** Opaque to the protocol: what the state machine above executes. */
  payload: string;
  /** Proposed before queued ordinary requests, and never waits for a batch to fill. */
  urgent?: boolean;
}

/**
 * A request by reference: what consensus orders. Its body (the Req) travels apart, from the
 * client to every replica and, for a replica without it, from a peer that attested holding
 * it; `digest` binds the two (reqDigest).
 */
export interface Ref {
  client: string;
  seq: number;
  digest: string;
  urgent?: boolean;
}

export interface PrePrepare {
  type: 'pre-prepare';
  view: number;
  seq: number;
  digest: string;
  batch: Ref[];
  from: number;
  sig: string;
}

export interface Prepare {
  type: 'prepare';
  view: number;
  seq: number;
  digest: string;
  from: number;
  sig: string;
}

/** Not signed: it is never part of a certificate, so the authenticated link is enough. */
export interface Commit {
  type: 'commit';
  view: number;
  seq: number;
  digest: string;
  from: number;
}

export interface Checkpoint {
  type: 'checkpoint';
  seq: number;
  /** The state digest after executing every batch up to seq (a hash chain of batch digests). */
  state: string;
  /** The digest of the sender's snapshot after executing seq (state.ts): what state transfer installs. */
  snapshot: string;
  from: number;
  sig: string;
}

/** A stable checkpoint and its proof: 2f+1 matching signed CHECKPOINT messages. */
export interface StableCheckpoint {
  seq: number;
  state: string;
  snapshot: string;
  proof: Checkpoint[];
}

/** A request prepared at a replica: the leader's PRE-PREPARE and 2f matching PREPAREs of other replicas. */
export interface PreparedCert {
  prePrepare: PrePrepare;
  prepares: Prepare[];
}

/**
 * A vote to leave the current view for `view` (BFT-SMaRt's STOP). It promises nothing: the
 * sender goes on in its view until 2f+1 replicas want to leave, so a replica that suspects
 * the leader alone (cut off by a partition, say) never strands itself in a view change.
 */
export interface Stop {
  type: 'stop';
  view: number;
  from: number;
}

export interface ViewChange {
  type: 'view-change';
  /** The view the sender moves to. */
  view: number;
  stable: StableCheckpoint;
  /** For every seq above the stable checkpoint the sender prepared, its highest-view certificate. */
  prepared: PreparedCert[];
  from: number;
  sig: string;
}

export interface NewView {
  type: 'new-view';
  view: number;
  viewChanges: ViewChange[];
  /** What the new leader re-proposes, recomputable by anyone from viewChanges. */
  prePrepares: PrePrepare[];
  from: number;
  sig: string;
}

/**
 * Asks for the decided batches after `after`: up to the responder's stable checkpoint (proved
 * by its signatures) and, above it, what the responder executed (believed once f+1 agree).
 */
export interface Fetch {
  type: 'fetch';
  after: number;
  from: number;
}

/**
 * "I hold these requests' bodies": an attestation. A reference is proposed, and prepared, only
 * once f+1 replicas attested it, so one of them is correct and will hand the body out: a
 * request no correct replica holds (made up by a faulty leader, or sent by a faulty client to
 * faulty replicas alone) is never ordered, and every ordered one can be fetched.
 *
 * An attestation holds for a window of seqs (attestationSeqs, W): `since[i]` is the seq the
 * sender had executed when it attested `refs[i]`, and a batch at seq q counts it only if
 * since[i] >= q - W. Past that, the sender may let an undecided body go (availability.ts).
 * Absent (a replica of an older version, which never lets a body go): valid at every seq.
 */
export interface Hold {
  type: 'hold';
  refs: Ref[];
  since?: number[];
  from: number;
}

/** Asks for the bodies of references this replica must execute and does not hold. */
export interface BodyFetch {
  type: 'body-fetch';
  refs: Ref[];
  from: number;
}

export interface Bodies {
  type: 'bodies';
  reqs: Req[];
  from: number;
}

export interface Batches {
  type: 'batches';
  stable: StableCheckpoint;
  /**
   * Consecutive decided batches from after+1: up to stable.seq they chain to its state; above
   * it, the sender's word alone, so the asker takes one only when f+1 replicas sent its digest.
   */
  batches: { seq: number; batch: Req[] }[];
  /** The highest seq the sender executed: how far behind the asker is, and how far a restarted one stays passive. */
  executed: number;
  /** The sender's view, or the view it is changing to. */
  view: number;
  /** The highest seq in the sender's log: executed, or with a PRE-PREPARE it accepted or sent. */
  top: number;
  /**
   * The sender restarted without its state and is still recovering, or concluded, having
   * executed nothing, that every replica it heard from had restarted too (the cluster started over).
   */
  recovering: boolean;
  /**
   * The sender's snapshot at a stable checkpoint, sent when the asker is below the sender's
   * stable checkpoint and the batches after it are no longer kept (or it has executed nothing).
   */
  snapshot?: { stable: StableCheckpoint; body: string };
  from: number;
}

export type ConsensusMessage = PrePrepare | Prepare | Commit | Checkpoint | Stop | ViewChange | NewView | Fetch | Batches | Hold | BodyFetch | Bodies;

/** Signs and checks the signed messages; injected, so the simulator runs without real keys. */
export interface Signer {
  sign(bytes: string): string;
  verify(replica: number, bytes: string, sig: string): boolean;
}

export function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

/** Binds a request's body to its reference: the payload and whether it is urgent. */
export function reqDigest(r: Req): string {
  return sha256(`req|${JSON.stringify([r.payload, r.urgent === true])}`);
}

/**
 * A body's reference is asked for at every step it passes (held, proposed, executed, kept):
 * hashed once, and kept on the body under a symbol no encoding or comparison sees (see refKey).
 */
const REF = Symbol('ref');

export function refOf(r: Req): Ref {
  const kept = (r as Req & { [REF]?: Ref })[REF];
  if (kept !== undefined) return kept;
  const ref: Ref = { client: r.client, seq: r.seq, digest: reqDigest(r) };
  if (r.urgent === true) ref.urgent = true;
  Object.defineProperty(r, REF, { value: ref });
  return ref;
}

/** The same request, by reference: client, seq, body digest and urgency all agree. */
export function sameRef(a: Ref, b: Ref): boolean {
  return a.client === b.client && a.seq === b.seq && a.digest === b.digest && (a.urgent === true) === (b.urgent === true);
}

const refText = (r: Ref): string => JSON.stringify([r.client, r.seq, r.digest, r.urgent === true]);

export function batchDigest(batch: readonly Ref[]): string {
  return sha256(`batch|${batch.map(refText).join('|')}`);
}

/** The state digest chain: the state after a batch, from the state before it. */
export function nextState(state: string, digest: string): string {
  return sha256(`state|${state}|${digest}`);
}

export const GENESIS_STATE = sha256('fitbroker consensus genesis');

/** The bytes a signature covers, built from the fields by name. */
export function signable(m: PrePrepare | Prepare | Checkpoint | ViewChange | NewView): string {
  switch (m.type) {
    case 'pre-prepare':
      return JSON.stringify(['pre-prepare', m.view, m.seq, m.digest, m.from]);
    case 'prepare':
      return JSON.stringify(['prepare', m.view, m.seq, m.digest, m.from]);
    case 'checkpoint':
      return JSON.stringify(['checkpoint', m.seq, m.state, m.snapshot, m.from]);
    case 'view-change':
      return JSON.stringify([
        'view-change',
        m.view,
        m.stable.seq,
        m.stable.state,
        m.stable.proof.map((c) => [c.from, c.sig]),
        m.prepared.map((p) => [p.prePrepare.view, p.prePrepare.seq, p.prePrepare.digest, p.prePrepare.sig, p.prepares.map((q) => [q.from, q.sig])]),
        m.from,
      ]);
    case 'new-view':
      return JSON.stringify([
        'new-view',
        m.view,
        m.viewChanges.map((v) => [v.from, v.sig]),
        m.prePrepares.map((p) => [p.seq, p.digest, p.sig]),
        m.from,
      ]);
  }
}
