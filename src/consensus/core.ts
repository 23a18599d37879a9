// Everything one replica of the ordering protocol knows, in one place, and the few operations
// every part of the protocol uses: a slot of the log, sending, signing, and writing ahead to
// the journal. The protocol itself is in the files beside this one, one concept each, as
// functions of this state (admission.ts, agreement.ts, execution.ts, checkpoints.ts,
// catch-up.ts, view-change.ts, timers.ts, recovery.ts); replica.ts is the class callers use.
// Keeping the state in one object, not spread over collaborating classes, is what lets those
// functions read like the protocol: each step sees the whole replica, as PBFT's pseudocode does.
//
// It must never: do I/O, read a clock or draw a random number (time is `now`, counted in
// ticks); hand out its state to anything but the protocol's own files (index.ts does not
// export it).

import { FitError } from '../core/index.js';
import { GENESIS, leaderOf, type Group } from './certs.js';
import { Availability, refKey } from './availability.js';
import { HeldBodies } from './holds.js';
import { GENESIS_STATE, MESSAGE_BATCHES_MAX, refOf, signable, type Checkpoint, type Commit, type ConsensusMessage, type Hold, type NewView, type PrePrepare, type PreparedCert, type Prepare, type Ref, type Req, type Signer, type StableCheckpoint, type Stop, type ViewChange } from './messages.js';
import { ExecutedRequests, type StateMachine } from './state.js';
import type { JournalEntry, MetaEntry, PrePrepareEntry, SnapshotEntry } from './journal.js';
import type { ConsensusOptions, Output } from './replica-api.js';

export interface Slot {
  prePrepare: PrePrepare | undefined;
  /** PREPAREs of this view, by sender; a sender's first digest counts. */
  prepares: Map<number, Prepare>;
  commits: Map<number, Commit>;
  prepared: boolean;
  committed: boolean;
  /** A PRE-PREPARE this replica will PREPARE once every reference in it has f+1 attestations. */
  awaiting: boolean;
  /** The highest-view certificate this replica prepared at this seq, kept across views. */
  cert: PreparedCert | undefined;
  /** When this replica accepted the PRE-PREPARE: the round to COMMIT is timed from here. */
  at: number;
  /** The PRE-PREPARE is in the journal (journaling only). */
  journaled: boolean;
}

export class Core {
  readonly g: Group;
  view = 0;
  changing = false;
  /** The view this replica is changing to while `changing`. */
  target = 0;
  viewChangeCount = 0;
  readonly slots = new Map<number, Slot>();
  stable: StableCheckpoint = GENESIS;
  lastExecuted = 0;
  state = GENESIS_STATE;
  /** Decided batches kept to serve catch-up: the last retainDecided below the stable checkpoint, and all above. */
  readonly decidedBatches = new Map<number, Req[]>();
  /**
   * Each replica's latest CHECKPOINT above the stable one: one per replica, so a faulty one
   * cannot fill memory with made-up seqs, and a replica far behind still learns where the
   * others are (2f+1 of them at one seq and state make it stable).
   */
  readonly checkpoints = new Map<number, Checkpoint>();
  /**
   * Decided batches above the stable checkpoint as other replicas reported them, by seq then
   * sender, for seqs in the log window above the last executed one. f+1 matching reports
   * include a correct replica's, so the batch is the decided one.
   */
  readonly reported = new Map<number, Map<number, { digest: string; batch: Req[] }>>();
  /** This replica's own latest checkpoint message, resent until it is stable. */
  ownCheckpoint: Checkpoint | undefined;
  /** The highest view each replica voted to move to (STOP), above ours. */
  readonly stops = new Map<number, number>();
  ownStop: Stop | undefined;
  /** The latest view change of each replica for a view above ours. */
  readonly viewChanges = new Map<number, ViewChange>();
  ownViewChange: ViewChange | undefined;
  ownNewView: NewView | undefined;
  /** The NEW-VIEW that moved this replica into its current view, to show replicas still in an older one. */
  enteredBy: NewView | undefined;
  readonly newViewShownAt = new Map<number, number>();
  /** Per client, which seqs were decided, so no request executes twice. */
  readonly executed: ExecutedRequests;
  /**
   * This replica's snapshots at its checkpoints that are not stable yet, by seq, with its state
   * digest there and the snapshot's own (hashing it again at stability cost as much as the first time).
   */
  readonly ownSnapshots = new Map<number, { body: string; state: string; digest: string }>();
  /** The snapshot at the latest stable checkpoint this replica has one for: what it serves. */
  served: { stable: StableCheckpoint; body: string } | undefined;
  snapshotsInstalled = 0;
  snapshotInstalledAt = 0;
  snapshotMismatches = 0;
  /** When a snapshot was last sent to each replica. */
  readonly snapshotSentAt = new Map<number, number>();
  /** The latest snapshot each replica offered above what this one executed. */
  readonly snapshotOffers = new Map<number, { stable: StableCheckpoint; body: string }>();
  /** While applying batches up to a stable checkpoint: checkpoints below it are not signed. */
  catchingUpTo = 0;
  snapshotBytes = 0;
  /**
   * Requests waiting to be decided, by reference (client, seq and body digest: a faulty client's
   * two bodies under one seq wait apart, so the one f+1 replicas hold is proposed whatever the
   * leader holds), in arrival order: the ones this replica holds the body of, and the ones f+1
   * replicas attested (so a leader that ignores them is suspected).
   */
  readonly pending = new Map<string, Ref>();
  /** Of those, the ones not yet in a batch of this view, urgent ones apart: what the leader proposes next. */
  readonly toPropose: [Ref[], Ref[]] = [[], []];
  readonly avail: Availability;
  /** Retained decided requests by reference, to answer BODY-FETCH from a replica executing them. */
  readonly decidedBodies = new Map<string, Req>();
  /**
   * Bodies of a request decided under another body (a faulty client's two under one seq), by
   * reference, with the seq that decided it. A faulty leader may have had both prepared at once:
   * the second batch still executes (the request skipped), and needs the body to. Such a batch
   * was prepared by replicas that had not executed the first, so its seq is below the first's
   * plus logWindow: past that, the body is let go. Bounded: a replica holds one body per request
   * from clients (admission.ts) and fetches only bodies of batches in its window. A held one
   * stays in the journal as long (its hold group pinned, holds.ts), and recovery keeps it aside
   * again (recovery.ts).
   */
  readonly spareBodies = new Map<string, { req: Req; seq: number }>();
  /** When the bodies missing for the next seq were last asked for. */
  bodiesAskedAt = -Infinity;
  /** Requests (client and seq, whatever the body) in a batch of this view: a leader proposes one body of a request, not two. */
  readonly proposed = new Set<string>();
  nextSeq = 1;
  now = 0;
  /** When the oldest request still waiting started to wait, or since the last decision. */
  waitingSince: number | undefined;
  decisionTicksAvg = 0;
  roundTicksAvg = 0;
  /** Since when this backup has had requests ready to order and nothing of the leader's in flight. */
  idleSince: number | undefined;
  idleCheckedAt = -Infinity;
  idleLeaderSuspicions = 0;
  viewChangeStartedAt = 0;
  fetchAskedAt = -Infinity;
  refused = 0;
  /** Requests whose body this replica let go undecided (Availability.expire). */
  expired = 0;
  /** Empty batches proposed (admission.ts, emptyDue), and when the last one was. */
  emptyBatches = 0;
  emptyAt = -Infinity;
  /**
   * As the leader: since when it has found nothing to propose while requests wait that are
   * not ready (undefined: it proposed something since, or nothing waits).
   */
  stuckSince: number | undefined;
  /** Second bodies a client sent under one (client, seq), not held (admission.ts). */
  secondBodies = 0;
  /**
   * After a restart without state (see `restarted`), this replica votes on nothing at a seq up
   * to passiveSeq in a view up to passiveView: it may have voted there before and forgotten.
   * Both unknown (Infinity) until 2f other replicas said where they are; then the highest view
   * and the highest seq in any of their logs, beyond anything a vote of ours could have
   * reached; -1 and 0 once this replica is past them (or never restarted).
   */
  passiveView: number;
  passiveSeq: number;
  /** What each replica said in its BATCHES replies: how far it executed, its view, the top of its log. */
  readonly peerExecuted = new Map<number, number>();
  readonly peerReach = new Map<number, { view: number; top: number }>();
  /** Replicas that said they are recovering from a restart too. */
  readonly peerRecovering = new Set<number>();
  /** This replica restarted and found that every replica it heard from had too, with nothing executed. */
  startedOver = false;
  /** When each replica's last FETCH was answered: a faulty one asking in a loop gets one answer per half resend period. */
  readonly answeredAt = new Map<number, number>();
  viewsEntered = 0;
  /** Journaling: recover() was called; while `replaying`, the batches it executes again are on disk already. */
  recovered = false;
  replaying = false;
  /** Journaling: the seq of the snapshot in the journal, where recovery starts; batches above it stay on disk. */
  baseSeq = 0;
  /** Journaling: the bodies this replica attests, in hold groups on disk (holds.ts). */
  readonly held = new HeldBodies();
  out: Output = { messages: [], decided: [], journal: [] };

  constructor(
    readonly o: ConsensusOptions,
    readonly signer: Signer,
    readonly machine?: StateMachine,
  ) {
    if (o.n < 3 * o.f + 1) throw new FitError('FIT_ERR_CONFIG', `ordering needs n >= 3f+1 replicas; got n=${o.n}, f=${o.f}`);
    if (o.logWindow % o.checkpointInterval !== 0 || o.logWindow < 2 * o.checkpointInterval) {
      throw new FitError('FIT_ERR_CONFIG', `logWindow (${o.logWindow}) must be a multiple of checkpointInterval (${o.checkpointInterval}) and at least twice it`);
    }
    this.g = { n: o.n, f: o.f };
    this.avail = new Availability(o.n, o.f, o.id, o.pendingMax, o.attestationSeqs ?? Infinity);
    this.executed = new ExecutedRequests(o.clientsMax);
    this.passiveView = o.restarted === true ? Infinity : -1;
    this.passiveSeq = o.restarted === true ? Infinity : 0;
  }

  get recovering(): boolean {
    if (this.passiveView >= 0 && (this.view > this.passiveView || this.stable.seq >= this.passiveSeq)) {
      // Past every (view, seq) it could have voted on: a replica like any other from now on.
      this.passiveView = -1;
      this.passiveSeq = 0;
      this.journalMeta();
    }
    return this.passiveView >= 0;
  }

  /** The highest seq at which this replica may not vote in `view` (0: none). */
  passiveThrough(view: number): number {
    return this.recovering && view <= this.passiveView ? this.passiveSeq : 0;
  }

  isLeader(): boolean {
    return !this.changing && leaderOf(this.view, this.o.n) === this.o.id;
  }

  inWindow(seq: number): boolean {
    return seq > this.stable.seq && seq <= this.stable.seq + this.o.logWindow;
  }

  slot(seq: number): Slot {
    let s = this.slots.get(seq);
    if (!s) this.slots.set(seq, (s = { prePrepare: undefined, prepares: new Map(), commits: new Map(), prepared: false, committed: false, awaiting: false, cert: undefined, at: 0, journaled: false }));
    return s;
  }

  /** Whether (client, seq) was decided here already (as far as clientsMax remembers). */
  wasDecided(r: { client: string; seq: number }): boolean {
    return this.executed.has(r.client, r.seq);
  }

  signed<T extends PrePrepare | Prepare | Checkpoint | ViewChange | NewView>(m: T): T {
    m.sig = this.signer.sign(signable(m));
    return m;
  }

  send(to: number | 'all', msg: ConsensusMessage): void {
    this.out.messages.push({ to, msg });
  }

  /** What this step produced, with the HOLD for the bodies it took and their hold group; the next step starts empty. */
  flush(): Output {
    const holds = this.avail.takeHolds();
    // In HOLDs of at most what a replica reads of one (onHold): the rest of a larger one would
    // wait for resends, a period each.
    const most = MESSAGE_BATCHES_MAX * this.o.batchMax;
    for (let i = 0; i < holds.refs.length; i += most) this.send('all', { type: 'hold', refs: holds.refs.slice(i, i + most), since: holds.since.slice(i, i + most), from: this.o.id } satisfies Hold);
    const group = this.o.journaling === true ? this.held.takeGroup() : undefined;
    if (group) this.journal(group);
    const o = this.out;
    this.out = { messages: [], decided: [], journal: [] };
    return o;
  }

  /** This replica executed up to lastExecuted: attestations whose window ended go, and what they held up. */
  expireAttestations(): void {
    const { gone, letGo } = this.avail.expire(this.lastExecuted);
    for (const ref of gone) this.pending.delete(refKey(ref));
    for (const body of letGo) {
      this.expired++;
      (this.out.expired ??= []).push(body);
      if (this.o.journaling === true) for (const e of this.held.dropped(refOf(body))) this.journal(e);
    }
  }

  // ---- journal (journal.ts, docs/consensus.md "Restart from the journal") ---------------------

  journal(e: JournalEntry): void {
    if (this.o.journaling === true) this.out.journal.push(e);
  }

  journalMeta(): void {
    const unknown = this.passiveSeq === Infinity;
    this.journal({
      type: 'meta',
      id: this.o.id,
      n: this.o.n,
      f: this.o.f,
      passiveView: unknown ? null : this.passiveView,
      passiveSeq: unknown ? null : this.passiveSeq,
      startedOver: this.startedOver,
    } satisfies MetaEntry);
  }

  journalPrePrepare(s: Slot, prepare: boolean): void {
    s.journaled = true;
    this.journal({ type: 'pre-prepare', pp: s.prePrepare!, prepare } satisfies PrePrepareEntry);
  }

  /** A body this replica attests: on disk (in this step's hold group) before the HOLD that says so leaves. */
  journalHold(req: Req, ref: Ref): void {
    if (this.o.journaling === true) this.held.add(req, ref);
  }

  /** The state recovery starts from; the batches below it (but the retained ones) can go. */
  journalSnapshot(seq: number, state: string, body: string): void {
    if (this.o.journaling !== true) return;
    this.baseSeq = seq;
    this.journal({ type: 'snapshot', seq, state, body } satisfies SnapshotEntry);
    this.journalTruncate();
  }

  /** Truncation at the stable checkpoint: the log below it, and batches below both the retained ones and the snapshot recovery starts from. */
  journalTruncate(decidedThrough = Math.min(this.stable.seq - this.o.retainDecided, this.baseSeq)): void {
    this.journal({ type: 'truncate', slotsThrough: this.stable.seq, decidedThrough });
    for (const e of this.held.truncated(decidedThrough)) this.journal(e);
  }
}

