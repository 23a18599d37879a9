// One replica of the ordering protocol (docs/consensus.md): PBFT's normal case with batching,
// checkpoints that truncate the log, a view change that replaces a faulty leader, and catch-up
// by fetching decided batches up to a stable checkpoint. A pure state machine: requests,
// messages and clock ticks go in; messages to send and decided batches come out. It owns no
// socket, timer, clock or randomness, so the simulator runs it under seeded faults and the
// replica process runs the same code.
//
// It must never: decide a batch at a seq another correct replica decided differently; accept a
// normal-case message of another view than its own; move to a view on anything but 2f+1
// verified view changes (or f+1 to join one); let a faulty replica grow its memory past the
// log window and the bounds below.

import { FitError } from '../core/index.js';
import { GENESIS, leaderOf, planNewView, validNewView, validPrePrepare, validPrepare, validStable, validViewChange, type Group } from './certs.js';
import { Availability, refKey } from './availability.js';
import { HeldBodies } from './holds.js';
import {
  batchDigest,
  GENESIS_STATE,
  nextState,
  refOf,
  signable,
  type Batches,
  type Bodies,
  type BodyFetch,
  type Hold,
  type Ref,
  type Checkpoint,
  type Commit,
  type ConsensusMessage,
  type Fetch,
  type NewView,
  type PrePrepare,
  type PreparedCert,
  type Prepare,
  type Req,
  type Signer,
  type StableCheckpoint,
  type Stop,
  type ViewChange,
} from './messages.js';
import { ExecutedRequests, snapshotDigest, type Decision, type StateMachine } from './state.js';
import type { DecidedEntry, HoldEntry, JournalEntry, LeaveEntry, MetaEntry, PrePrepareEntry, PreparedEntry, SnapshotEntry, StableEntry, StoredEntry, ViewEntry } from './journal.js';

export type { Decision, StateMachine } from './state.js';

export interface ConsensusOptions {
  id: number;
  n: number;
  f: number;
  /** A checkpoint every this many seqs. */
  checkpointInterval: number;
  /** Seqs accepted above the stable checkpoint (PBFT's high water mark); a multiple of the interval. */
  logWindow: number;
  /** Requests per batch (one consensus instance). */
  batchMax: number;
  /** Instances the leader keeps undecided at once. */
  inflightMax: number;
  /** Ticks a request may wait before the leader is suspected, at least; grows with observed decision time. */
  viewChangeTimeoutTicks: number;
  /** Ticks between retransmissions of what this replica last said. */
  resendTicks: number;
  /**
   * Decided batches kept below the stable checkpoint, to bring a replica that fell behind up
   * to date. One that fell further behind installs a snapshot.
   */
  retainDecided: number;
  /** Requests waiting to be ordered, all clients together; more are refused (counted). */
  pendingMax: number;
  /** Payload bytes one BATCHES reply carries at most (it must fit a frame between replicas). */
  replyBytesMax?: number;
  /**
   * Clients whose decided seqs are remembered; past it, the one whose last request was decided
   * longest ago is forgotten (a publishing process is a client: they come and go). Driven by
   * decisions alone, so every correct replica forgets the same ones at the same point.
   */
  clientsMax?: number;
  /**
   * This replica restarted without its consensus state. It may have said things before that
   * it no longer remembers, so it stays passive (sends no PREPARE, COMMIT or NEW-VIEW) at every
   * seq it could have voted on before, until a checkpoint above them all is stable.
   */
  restarted?: boolean;
  /**
   * The caller keeps a journal (journal.ts): every output carries in `journal` what must be
   * durable before its messages are sent or its decisions acted on, and `recover()` must be
   * called once, first, with what the journal holds (nothing the first time).
   */
  journaling?: boolean;
}

export interface Output {
  messages: { to: number | 'all'; msg: ConsensusMessage }[];
  decided: Decision[];
  /** With `journaling`: entries to make durable, in order, before any of the above leaves or is acted on. */
  journal: JournalEntry[];
  /** A snapshot was installed: the state is now the one after this seq (decisions up to it were skipped). */
  installed?: number;
  /** Requests submitted past pendingMax, not taken: the caller may submit them again once there is room. */
  refused?: Req[];
}

export interface ConsensusStatus {
  view: number;
  leader: number;
  changingView: boolean;
  lastDecided: number;
  stableCheckpoint: number;
  viewChanges: number;
  pending: number;
  refused: number;
  /** Restarted without its state and not yet past every seq it could have voted on before. */
  recovering: boolean;
  /** Views this replica entered after view 0: leader changes it took part in. */
  viewsEntered: number;
  /** Snapshots installed from other replicas (state transfer), and the seq of the last one. */
  snapshotsInstalled: number;
  snapshotInstalledAt: number;
  /**
   * Checkpoints where this replica's own snapshot differed from the one 2f+1 replicas signed:
   * its application state diverged (a bug, or a replica configured differently). Never 0 → n.
   */
  snapshotMismatches: number;
  /** The size of this replica's last snapshot, encoded: it travels in one frame between replicas (peerFrameBytesMax). */
  snapshotBytes: number;
  /** Times this replica voted to replace a leader that left it idle with requests ready (see watchIdleLeader). */
  idleLeaderSuspicions: number;
}

interface Slot {
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

const key = (r: { client: string; seq: number }): string => `${r.client}\u0000${r.seq}`;

/** Resend periods before the same snapshot goes to the same asker again. */
const SNAPSHOT_RESEND_PERIODS = 10;

export class ConsensusReplica {
  private readonly g: Group;
  private view = 0;
  private changing = false;
  /** The view this replica is changing to while `changing`. */
  private target = 0;
  private viewChangeCount = 0;
  private readonly slots = new Map<number, Slot>();
  private stable: StableCheckpoint = GENESIS;
  private lastExecuted = 0;
  private state = GENESIS_STATE;
  /** Decided batches kept to serve catch-up: the last retainDecided below the stable checkpoint, and all above. */
  private readonly decidedBatches = new Map<number, Req[]>();
  /**
   * Each replica's latest CHECKPOINT above the stable one: one per replica, so a faulty one
   * cannot fill memory with made-up seqs, and a replica far behind still learns where the
   * others are (2f+1 of them at one seq and state make it stable).
   */
  private readonly checkpoints = new Map<number, Checkpoint>();
  /**
   * Decided batches above the stable checkpoint as other replicas reported them, by seq then
   * sender, for seqs in the log window above the last executed one. f+1 matching reports
   * include a correct replica's, so the batch is the decided one.
   */
  private readonly reported = new Map<number, Map<number, { digest: string; batch: Req[] }>>();
  /** This replica's own latest checkpoint message, resent until it is stable. */
  private ownCheckpoint: Checkpoint | undefined;
  /** The highest view each replica voted to move to (STOP), above ours. */
  private readonly stops = new Map<number, number>();
  private ownStop: Stop | undefined;
  /** The latest view change of each replica for a view above ours. */
  private readonly viewChanges = new Map<number, ViewChange>();
  private ownViewChange: ViewChange | undefined;
  private ownNewView: NewView | undefined;
  /** The NEW-VIEW that moved this replica into its current view, to show replicas still in an older one. */
  private enteredBy: NewView | undefined;
  private readonly newViewShownAt = new Map<number, number>();
  /** Per client, which seqs were decided, so no request executes twice. */
  private readonly executed: ExecutedRequests;
  /** This replica's snapshots at its checkpoints that are not stable yet, by seq, with its state digest there. */
  private readonly ownSnapshots = new Map<number, { body: string; state: string }>();
  /** The snapshot at the latest stable checkpoint this replica has one for: what it serves. */
  private served: { stable: StableCheckpoint; body: string } | undefined;
  private snapshotsInstalled = 0;
  private snapshotInstalledAt = 0;
  private snapshotMismatches = 0;
  /** When a snapshot was last sent to each replica. */
  private readonly snapshotSentAt = new Map<number, number>();
  /** The latest snapshot each replica offered above what this one executed. */
  private readonly snapshotOffers = new Map<number, { stable: StableCheckpoint; body: string }>();
  /** While applying batches up to a stable checkpoint: checkpoints below it are not signed. */
  private catchingUpTo = 0;
  private snapshotBytes = 0;
  /**
   * Requests waiting to be decided, by reference, in arrival order: the ones this replica holds
   * the body of, and the ones f+1 replicas attested (so a leader that ignores them is suspected).
   */
  private readonly pending = new Map<string, Ref>();
  /** Of those, the ones not yet in a batch of this view, urgent ones apart: what the leader proposes next. */
  private readonly toPropose: [Ref[], Ref[]] = [[], []];
  private readonly avail: Availability;
  /** Retained decided requests by reference, to answer BODY-FETCH from a replica executing them. */
  private readonly decidedBodies = new Map<string, Req>();
  /** When the bodies missing for the next seq were last asked for. */
  private bodiesAskedAt = -Infinity;
  private readonly proposed = new Set<string>();
  private nextSeq = 1;
  private now = 0;
  /** When the oldest request still waiting started to wait, or since the last decision. */
  private waitingSince: number | undefined;
  private decisionTicksAvg = 0;
  private roundTicksAvg = 0;
  /** Since when this backup has had requests ready to order and nothing of the leader's in flight. */
  private idleSince: number | undefined;
  private idleCheckedAt = -Infinity;
  private idleLeaderSuspicions = 0;
  private viewChangeStartedAt = 0;
  private fetchAskedAt = -Infinity;
  private refused = 0;
  /**
   * After a restart without state (see `restarted`), this replica votes on nothing at a seq up
   * to passiveSeq in a view up to passiveView: it may have voted there before and forgotten.
   * Both unknown (Infinity) until 2f other replicas said where they are; then the highest view
   * and the highest seq in any of their logs, beyond anything a vote of ours could have
   * reached; -1 and 0 once this replica is past them (or never restarted).
   */
  private passiveView: number;
  private passiveSeq: number;
  /** What each replica said in its BATCHES replies: how far it executed, its view, the top of its log. */
  private readonly peerExecuted = new Map<number, number>();
  private readonly peerReach = new Map<number, { view: number; top: number }>();
  /** Replicas that said they are recovering from a restart too. */
  private readonly peerRecovering = new Set<number>();
  /** This replica restarted and found that every replica it heard from had too, with nothing executed. */
  private startedOver = false;
  /** When each replica's last FETCH was answered: a faulty one asking in a loop gets one answer per half resend period. */
  private readonly answeredAt = new Map<number, number>();
  private viewsEntered = 0;
  /** Journaling: recover() was called; while `replaying`, the batches it executes again are on disk already. */
  private recovered = false;
  private replaying = false;
  /** Journaling: the seq of the snapshot in the journal, where recovery starts; batches above it stay on disk. */
  private baseSeq = 0;
  /** Journaling: the bodies this replica attests, in hold groups on disk (holds.ts). */
  private readonly held = new HeldBodies();
  private out: Output = { messages: [], decided: [], journal: [] };

  constructor(
    private readonly o: ConsensusOptions,
    private readonly signer: Signer,
    private readonly machine?: StateMachine,
  ) {
    if (o.n < 3 * o.f + 1) throw new FitError('FIT_ERR_CONFIG', `ordering needs n >= 3f+1 replicas; got n=${o.n}, f=${o.f}`);
    if (o.logWindow % o.checkpointInterval !== 0 || o.logWindow < 2 * o.checkpointInterval) {
      throw new FitError('FIT_ERR_CONFIG', `logWindow (${o.logWindow}) must be a multiple of checkpointInterval (${o.checkpointInterval}) and at least twice it`);
    }
    this.g = { n: o.n, f: o.f };
    this.avail = new Availability(o.n, o.f, o.id, o.pendingMax);
    this.executed = new ExecutedRequests(o.clientsMax);
    this.passiveView = o.restarted === true ? Infinity : -1;
    this.passiveSeq = o.restarted === true ? Infinity : 0;
  }

  private get recovering(): boolean {
    if (this.passiveView >= 0 && (this.view > this.passiveView || this.stable.seq >= this.passiveSeq)) {
      // Past every (view, seq) it could have voted on: a replica like any other from now on.
      this.passiveView = -1;
      this.passiveSeq = 0;
      this.journalMeta();
    }
    return this.passiveView >= 0;
  }

  /** The highest seq at which this replica may not vote in `view` (0: none). */
  private passiveThrough(view: number): number {
    return this.recovering && view <= this.passiveView ? this.passiveSeq : 0;
  }

  get status(): ConsensusStatus {
    return {
      view: this.view,
      leader: leaderOf(this.view, this.o.n),
      changingView: this.changing,
      lastDecided: this.lastExecuted,
      stableCheckpoint: this.stable.seq,
      viewChanges: this.viewChangeCount,
      pending: this.pending.size,
      refused: this.refused,
      recovering: this.recovering,
      viewsEntered: this.viewsEntered,
      snapshotsInstalled: this.snapshotsInstalled,
      snapshotInstalledAt: this.snapshotInstalledAt,
      snapshotMismatches: this.snapshotMismatches,
      snapshotBytes: this.snapshotBytes,
      idleLeaderSuspicions: this.idleLeaderSuspicions,
    };
  }

  /** Client requests, as every replica receives them (clients send to all); one HOLD announces them all. */
  submit(reqs: Req | readonly Req[]): Output {
    this.assertRecovered();
    for (const req of Array.isArray(reqs) ? (reqs as readonly Req[]) : [reqs as Req]) {
      if (this.wasDecided(req) || this.avail.body(refOf(req))) continue;
      if (this.pending.size >= this.o.pendingMax && !this.pending.has(key(req))) {
        this.refused++;
        (this.out.refused ??= []).push(req);
        continue;
      }
      const ref = this.avail.hold(req);
      this.journalHold(req, ref);
      this.addPending(ref);
    }
    this.propose();
    return this.flush();
  }

  private addPending(ref: Ref): void {
    const k = key(ref);
    if (this.pending.has(k) || this.wasDecided(ref)) return;
    this.pending.set(k, ref);
    this.toPropose[ref.urgent === true ? 0 : 1].push(ref);
    this.waitingSince ??= this.now;
  }

  receive(from: number, msg: ConsensusMessage): Output {
    this.assertRecovered();
    // Unsigned messages name their sender; the link authenticated it, and it must agree.
    if (msg.from !== from || from < 0 || from >= this.o.n || from === this.o.id) return this.flush();
    switch (msg.type) {
      case 'pre-prepare':
        this.onPrePrepare(msg);
        break;
      case 'prepare':
        this.onPrepare(msg);
        break;
      case 'commit':
        this.onCommit(msg);
        break;
      case 'checkpoint':
        this.onCheckpoint(msg);
        break;
      case 'stop':
        this.onStop(msg);
        break;
      case 'view-change':
        this.onViewChange(msg);
        break;
      case 'new-view':
        this.onNewView(msg);
        break;
      case 'fetch':
        this.onFetch(msg);
        break;
      case 'batches':
        this.onBatches(msg);
        break;
      case 'hold':
        this.onHold(msg);
        break;
      case 'body-fetch':
        this.onBodyFetch(msg);
        break;
      case 'bodies':
        this.onBodies(msg);
        break;
    }
    return this.flush();
  }

  tick(): Output {
    this.assertRecovered();
    this.now++;
    const timeout = this.timeoutTicks();
    if (this.changing) {
      if (this.now - this.viewChangeStartedAt >= timeout) {
        this.viewChangeStartedAt = this.now;
        this.stop(this.target + 1);
      }
    } else if (this.waitingSince !== undefined && this.now - this.waitingSince >= timeout) {
      // Requests decided meanwhile (a resend, a client's seq given up on) are no reason to suspect anyone.
      this.dropObsolete();
      // The others may have decided without this replica (cut off, or sent another batch by the
      // leader alone): it asks what they decided, and catches up from their reports.
      if (this.pending.size > 0) this.askForBatches();
      // Only a request f+1 replicas attested is the leader's to propose: a client that sent one
      // to a few replicas alone must not be able to set off leader changes.
      if (this.anyReadyPending()) this.stop(this.view + 1);
      this.waitingSince = this.pending.size > 0 ? this.now : undefined;
    }
    this.watchIdleLeader();
    if (this.now % this.o.resendTicks === 0) this.resend();
    this.propose();
    return this.flush();
  }

  /**
   * A leader that leaves the backups idle while requests are ready to order — nothing of its
   * view in flight and room in the window — is suspected after the base timeout (or 4x the
   * round the replicas take among themselves, if longer), however slow decisions have become.
   * The adaptive timeout stretches for a leader busy deciding (BFT-SMaRt issue #57); it must
   * not stretch for a leader slow to propose, or a slow leader stays forever (Aardvark).
   */
  private watchIdleLeader(): void {
    if (this.changing || leaderOf(this.view, this.o.n) === this.o.id || this.pending.size === 0 || this.leaderBusy()) {
      this.idleSince = undefined;
      return;
    }
    if (this.idleSince === undefined) {
      // Finding a ready request may scan many that are not (a client that sent to few replicas): not every tick.
      if (this.now - this.idleCheckedAt < this.o.resendTicks) return;
      this.idleCheckedAt = this.now;
      if (this.anyReadyPending()) this.idleSince = this.now;
      return;
    }
    if (this.now - this.idleSince < Math.max(this.o.viewChangeTimeoutTicks, Math.ceil(4 * this.roundTicksAvg))) return;
    this.idleSince = undefined;
    if (!this.anyReadyPending()) return;
    this.idleLeaderSuspicions++;
    this.stop(this.view + 1);
  }

  /** Something of this view not executed here yet, or the window full: the leader has reason to wait. */
  private leaderBusy(): boolean {
    let top = this.lastExecuted;
    for (const [seq, s] of this.slots) {
      if (!s.prePrepare) continue;
      if (seq > this.lastExecuted) return true;
      top = Math.max(top, seq);
    }
    return top >= this.stable.seq + this.o.logWindow;
  }

  // ---- normal case ------------------------------------------------------------------------

  private isLeader(): boolean {
    return !this.changing && leaderOf(this.view, this.o.n) === this.o.id;
  }

  private inWindow(seq: number): boolean {
    return seq > this.stable.seq && seq <= this.stable.seq + this.o.logWindow;
  }

  private slot(seq: number): Slot {
    let s = this.slots.get(seq);
    if (!s) this.slots.set(seq, (s = { prePrepare: undefined, prepares: new Map(), commits: new Map(), prepared: false, committed: false, awaiting: false, cert: undefined, at: 0, journaled: false }));
    return s;
  }

  /** The leader batches waiting requests, urgent ones first, into new instances. */
  private propose(): void {
    if (!this.isLeader()) return;
    if (this.nextSeq <= this.passiveThrough(this.view)) {
      // Restarted as the leader of a view it led before: it may have proposed these seqs
      // already. Until it knows how far, it proposes nothing; then only above.
      if (this.passiveSeq === Infinity) return;
      this.nextSeq = this.passiveSeq + 1;
    }
    while (this.nextSeq - 1 - this.lastExecuted < this.o.inflightMax && this.inWindow(this.nextSeq)) {
      const batch: Ref[] = [];
      for (let q = 0; q < this.toPropose.length; q++) {
        // References not attested by f+1 yet stay queued, in order; the rest go.
        const later: Ref[] = [];
        const queue = this.toPropose[q]!;
        let i = 0;
        for (; i < queue.length && batch.length < this.o.batchMax; i++) {
          const r = queue[i]!;
          const k = key(r);
          if (!this.pending.has(k) || this.proposed.has(k)) continue;
          if (this.avail.ready(r)) batch.push(r);
          else later.push(r);
        }
        this.toPropose[q] = later.concat(queue.slice(i));
      }
      if (batch.length === 0) return;
      for (const r of batch) this.proposed.add(key(r));
      const pp = this.signed<PrePrepare>({ type: 'pre-prepare', view: this.view, seq: this.nextSeq++, digest: batchDigest(batch), batch, from: this.o.id, sig: '' });
      this.send('all', pp);
      this.acceptPrePrepare(pp, false);
      // A leader that forgot this could propose another batch at the seq after a restart.
      const s = this.slot(pp.seq);
      if (!s.journaled) this.journalPrePrepare(s, false);
    }
  }

  private onPrePrepare(m: PrePrepare): void {
    if (this.changing || m.view !== this.view || !this.inWindow(m.seq)) return;
    const s = this.slot(m.seq);
    if (s.prePrepare) return; // the first one of this view stands; a second is equivocation
    if (!validPrePrepare(m, this.g, this.signer)) return;
    this.acceptPrePrepare(m, false);
  }

  /**
   * `proven`: re-proposed by a NEW-VIEW, whose certificates show 2f+1 replicas prepared it
   * (or an empty batch); a new proposal is prepared only once f+1 attested every reference.
   */
  private acceptPrePrepare(m: PrePrepare, proven: boolean): void {
    const s = this.slot(m.seq);
    s.prePrepare = m;
    s.journaled = false;
    s.at = this.now;
    this.idleSince = undefined;
    s.awaiting = m.from !== this.o.id && m.seq > this.passiveThrough(m.view);
    if (s.awaiting && (proven || this.avail.allReady(m.batch))) this.sendPrepare(s, m);
    this.checkPrepared(m.seq);
  }

  private sendPrepare(s: Slot, m: PrePrepare): void {
    s.awaiting = false;
    // Journaled first: a replica that forgot it could PREPARE another batch at (view, seq) after a restart.
    this.journalPrePrepare(s, true);
    const p = this.signed<Prepare>({ type: 'prepare', view: m.view, seq: m.seq, digest: m.digest, from: this.o.id, sig: '' });
    s.prepares.set(this.o.id, p);
    this.send('all', p);
  }

  /** Attestations arrived: PRE-PREPAREs waiting for them may be prepared now. */
  private onHold(m: Hold): void {
    let readied = false;
    for (const ref of m.refs.slice(0, 4 * this.o.batchMax)) {
      if (this.wasDecided(ref)) continue;
      if (this.avail.attest(m.from, ref)) {
        readied = true;
        if (this.pending.size < this.o.pendingMax) this.addPending(ref);
      }
    }
    if (!readied) return;
    for (const [seq, s] of this.slots) {
      if (s.awaiting && s.prePrepare && s.prePrepare.view === this.view && !this.changing && this.avail.allReady(s.prePrepare.batch)) {
        this.sendPrepare(s, s.prePrepare);
        this.checkPrepared(seq);
      }
    }
    this.propose();
  }

  private onPrepare(m: Prepare): void {
    if (this.changing || m.view !== this.view || !this.inWindow(m.seq) || m.from === leaderOf(m.view, this.o.n)) return;
    const s = this.slot(m.seq);
    if (s.prepares.has(m.from) || !validPrepare(m, this.signer)) return;
    s.prepares.set(m.from, m);
    this.checkPrepared(m.seq);
  }

  private checkPrepared(seq: number): void {
    const s = this.slot(seq);
    const pp = s.prePrepare;
    if (s.prepared || !pp) return;
    const matching = [...s.prepares.values()].filter((p) => p.digest === pp.digest && p.view === pp.view);
    if (matching.length < 2 * this.o.f) return;
    s.prepared = true;
    // The certificate is journaled before the COMMIT leaves: a replica that prepared a decided
    // batch must report it in every later VIEW-CHANGE (docs/consensus.md, the safety argument).
    if (!s.journaled) this.journalPrePrepare(s, false);
    const older = s.cert && s.cert.prePrepare.view !== pp.view ? s.cert.prePrepare.view : undefined;
    s.cert = { prePrepare: pp, prepares: matching.slice(0, 2 * this.o.f) };
    this.journal({ type: 'prepared', view: pp.view, seq, prepares: s.cert.prepares } satisfies PreparedEntry);
    // The certificate it replaces goes after the new one is written: no prefix of the journal lacks both.
    if (older !== undefined) this.journal({ type: 'drop', seq, view: older });
    if (seq <= this.passiveThrough(pp.view)) return this.checkCommitted(seq);
    const c: Commit = { type: 'commit', view: pp.view, seq, digest: pp.digest, from: this.o.id };
    s.commits.set(this.o.id, c);
    this.send('all', c);
    this.checkCommitted(seq);
  }

  private onCommit(m: Commit): void {
    if (this.changing || m.view !== this.view || !this.inWindow(m.seq)) return;
    const s = this.slot(m.seq);
    if (s.commits.has(m.from)) return;
    s.commits.set(m.from, m);
    this.checkCommitted(m.seq);
  }

  private checkCommitted(seq: number): void {
    const s = this.slot(seq);
    if (s.committed || !s.prepared) return;
    const pp = s.prePrepare!;
    let matching = 0;
    for (const c of s.commits.values()) if (c.digest === pp.digest && c.view === pp.view) matching++;
    if (matching < 2 * this.o.f + 1) return;
    s.committed = true;
    // The round among the replicas, from PRE-PREPARE to COMMIT: what the leader's pace is measured against.
    const round = this.now - s.at;
    this.roundTicksAvg = this.roundTicksAvg === 0 ? round : 0.8 * this.roundTicksAvg + 0.2 * round;
    // A seq executed here in an earlier view is decided again only with the same batch: the
    // view change carries it over. Anything else means more than f replicas are faulty.
    const done = seq <= this.lastExecuted ? this.decidedBatches.get(seq) : undefined;
    if (done && batchDigest(done.map(refOf)) !== pp.digest) {
      throw new FitError('FIT_ERR_INTERNAL', `invariant broken: seq ${seq} committed in view ${pp.view} with a batch other than the one executed; more than f=${this.o.f} replicas are faulty`);
    }
    this.execute();
  }

  /** Executes committed batches in seq order, once it holds every body in them. */
  private execute(): void {
    for (let s = this.slots.get(this.lastExecuted + 1); s?.committed; s = this.slots.get(this.lastExecuted + 1)) {
      const refs = s.prePrepare!.batch;
      const bodies = refs.map((r) => this.avail.body(r) ?? this.decidedBodies.get(refKey(r)));
      const missing = refs.filter((_, i) => bodies[i] === undefined);
      if (missing.length > 0) return this.askForBodies(missing);
      this.apply(this.lastExecuted + 1, s.prePrepare!.view, bodies as Req[]);
    }
  }

  /** Asks the replicas that attested the missing bodies (one of them is correct) for them. */
  private askForBodies(missing: Ref[]): void {
    if (this.now - this.bodiesAskedAt < Math.max(1, Math.floor(this.o.resendTicks / 2))) return;
    this.bodiesAskedAt = this.now;
    const to = new Map<number, Ref[]>();
    for (const r of missing) for (const h of this.avail.holders(r)) (to.get(h) ?? to.set(h, []).get(h)!).push(r);
    for (const [h, refs] of to) this.send(h, { type: 'body-fetch', refs, from: this.o.id } satisfies BodyFetch);
  }

  private onBodyFetch(m: BodyFetch): void {
    const reqs: Req[] = [];
    for (const r of m.refs.slice(0, 4 * this.o.batchMax)) {
      const b = this.avail.body(r) ?? this.decidedBodies.get(refKey(r));
      if (b) reqs.push(b);
    }
    if (reqs.length > 0) this.send(m.from, { type: 'bodies', reqs, from: this.o.id } satisfies Bodies);
  }

  /** Bodies are believed by their digest: only those of references this replica must execute are kept. */
  private onBodies(m: Bodies): void {
    const wanted = new Set<string>();
    for (let s = this.slots.get(this.lastExecuted + 1), seq = this.lastExecuted + 1; s?.prePrepare; s = this.slots.get(++seq)) for (const r of s.prePrepare.batch) wanted.add(refKey(r));
    let added = false;
    for (const req of m.reqs.slice(0, 4 * this.o.batchMax)) if (this.avail.addBody(req, (ref) => wanted.has(refKey(ref)))) added = true;
    if (added) this.execute();
  }

  private apply(seq: number, view: number, batch: Req[]): void {
    // With its bodies (by reference to the hold groups that have them on disk): what the
    // machine executes again after a restart, and what catch-up serves.
    if (!this.replaying && this.o.journaling === true) this.journal({ type: 'decided', seq, view, batch: this.held.batch(seq, batch) } satisfies DecidedEntry);
    const requests: Req[] = [];
    for (const r of batch) {
      this.pending.delete(key(r));
      this.proposed.delete(key(r));
      this.avail.forget(r);
      if (this.o.journaling === true) for (const e of this.held.decided(r)) this.journal(e);
      this.decidedBodies.set(refKey(refOf(r)), r);
      if (this.wasDecided(r)) continue;
      this.executed.add(r.client, r.seq);
      requests.push(r);
    }
    this.lastExecuted = seq;
    if (this.nextSeq <= seq) this.nextSeq = seq + 1;
    this.state = nextState(this.state, batchDigest(batch.map(refOf)));
    this.decidedBatches.set(seq, batch);
    const decision = { seq, view, requests };
    this.machine?.execute(decision);
    this.out.decided.push(decision);
    this.progress();
    if (seq % this.o.checkpointInterval === 0) this.checkpoint(seq);
  }

  /** Signs this replica's state after `seq` and keeps the snapshot until a later one is stable. */
  private checkpoint(seq: number): void {
    // Catching up below a stable checkpoint: nothing to sign, nobody needs it.
    if (seq < this.stable.seq || seq < this.catchingUpTo) return;
    const body = this.executed.encode(this.machine?.snapshot() ?? '');
    this.snapshotBytes = body.length;
    const digest = snapshotDigest(body);
    if (seq === this.stable.seq) return this.checkOwnSnapshot(this.stable, body, this.state, digest);
    this.ownSnapshots.set(seq, { body, state: this.state });
    this.ownCheckpoint = this.signed<Checkpoint>({ type: 'checkpoint', seq, state: this.state, snapshot: digest, from: this.o.id, sig: '' });
    this.send('all', this.ownCheckpoint);
    this.onCheckpoint(this.ownCheckpoint);
  }

  /**
   * This replica's own snapshot at a stable checkpoint: served if 2f+1 signed the same. Either
   * way it is where a restart resumes from (a diverged replica comes back diverged, as it was).
   */
  private checkOwnSnapshot(st: StableCheckpoint, body: string, state: string, digest = snapshotDigest(body)): void {
    if (digest === st.snapshot) this.served = { stable: st, body };
    else this.snapshotMismatches++;
    this.journalSnapshot(st.seq, state, body);
  }

  /** Requests that can be submitted before pendingMax is reached. */
  get room(): number {
    return Math.max(0, this.o.pendingMax - this.pending.size);
  }

  /** Whether (client, seq) was decided here already (as far as clientsMax remembers). */
  isDecided(client: string, seq: number): boolean {
    return this.wasDecided({ client, seq });
  }

  private wasDecided(r: { client: string; seq: number }): boolean {
    return this.executed.has(r.client, r.seq);
  }

  private anyReadyPending(): boolean {
    for (const ref of this.pending.values()) if (this.avail.ready(ref)) return true;
    return false;
  }

  private dropObsolete(): void {
    for (const [k, r] of this.pending) if (this.wasDecided(r)) (this.pending.delete(k), this.proposed.delete(k));
  }

  /**
   * A decision is progress: the leader is not replaced while it keeps deciding, however busy
   * (BFT-SMaRt issue #57), and the timeout follows how long decisions take.
   */
  private progress(): void {
    // How long requests waited for this decision (since the previous one, while some waited
    // all along): idle time between decisions says nothing about how fast the leader is.
    const took = this.now - (this.waitingSince ?? this.now);
    this.decisionTicksAvg = this.decisionTicksAvg === 0 ? took : 0.8 * this.decisionTicksAvg + 0.2 * took;
    this.waitingSince = this.pending.size > 0 ? this.now : undefined;
    this.viewChangeCount = 0;
  }

  /** The base timeout, stretched to 4x the observed time between decisions, doubled per failed view change. */
  private timeoutTicks(): number {
    const base = Math.max(this.o.viewChangeTimeoutTicks, Math.ceil(4 * this.decisionTicksAvg));
    const failed = this.changing ? this.target - this.view - 1 : 0;
    return base * 2 ** Math.min(failed, 10);
  }

  // ---- checkpoints and catch-up ---------------------------------------------------------------

  private onCheckpoint(m: Checkpoint): void {
    if (m.seq <= this.stable.seq || m.seq % this.o.checkpointInterval !== 0 || (this.checkpoints.get(m.from)?.seq ?? 0) >= m.seq) return;
    if (m.from !== this.o.id && !this.signer.verify(m.from, signable(m), m.sig)) return;
    this.checkpoints.set(m.from, m);
    const same = [...this.checkpoints.values()].filter((c) => c.seq === m.seq && c.state === m.state && c.snapshot === m.snapshot);
    if (same.length >= 2 * this.o.f + 1) this.makeStable({ seq: m.seq, state: m.state, snapshot: m.snapshot, proof: same });
  }

  /** A checkpoint 2f+1 replicas signed: the log below it is no longer needed. */
  private makeStable(st: StableCheckpoint): void {
    if (st.seq <= this.stable.seq) return;
    this.stable = st;
    this.journal({ type: 'stable', stable: st } satisfies StableEntry);
    const own = this.ownSnapshots.get(st.seq);
    if (own !== undefined) this.checkOwnSnapshot(st, own.body, own.state);
    for (const seq of this.ownSnapshots.keys()) if (seq <= st.seq) this.ownSnapshots.delete(seq);
    for (const seq of this.slots.keys()) if (seq <= st.seq) this.slots.delete(seq);
    for (const [from, c] of this.checkpoints) if (c.seq <= st.seq) this.checkpoints.delete(from);
    for (const [seq, batch] of this.decidedBatches) {
      if (seq > st.seq - this.o.retainDecided) continue;
      this.decidedBatches.delete(seq);
      for (const r of batch) this.decidedBodies.delete(refKey(refOf(r)));
    }
    if (this.nextSeq <= st.seq) this.nextSeq = st.seq + 1;
    this.journalTruncate();
    if (this.lastExecuted < st.seq) this.askForBatches();
  }

  private askForBatches(): void {
    if (this.now - this.fetchAskedAt < this.o.resendTicks) return;
    this.fetchAskedAt = this.now;
    this.send('all', { type: 'fetch', after: this.lastExecuted, from: this.o.id } satisfies Fetch);
  }

  /**
   * Answers with what this replica executed after `after` (a window's worth at most, none
   * if it no longer keeps them), and always with how far it got.
   */
  private onFetch(m: Fetch): void {
    // A correct replica asks once per resend period at most; answering a flood would let one
    // faulty replica make every other one send window-sized replies in a loop.
    if (this.now - (this.answeredAt.get(m.from) ?? -Infinity) < Math.max(1, Math.floor(this.o.resendTicks / 2))) return;
    this.answeredAt.set(m.from, this.now);
    const batches: Batches['batches'] = [];
    if (this.decidedBatches.has(m.after + 1)) {
      const top = Math.min(this.lastExecuted, Math.max(this.stable.seq, m.after + this.o.logWindow));
      let bytes = 0;
      for (let s = m.after + 1; s <= top; s++) {
        const batch = this.decidedBatches.get(s)!;
        for (const r of batch) bytes += r.payload.length + r.client.length + 64;
        // Always at least one batch, so a replica far behind still moves.
        if (batches.length > 0 && bytes > (this.o.replyBytesMax ?? Infinity)) break;
        batches.push({ seq: s, batch });
      }
    }
    let top = Math.max(this.lastExecuted, this.nextSeq - 1);
    for (const [seq, sl] of this.slots) if (sl.prePrepare && seq > top) top = seq;
    const view = this.changing ? this.target : this.view;
    const reply: Batches = { type: 'batches', stable: this.stable, batches, executed: this.lastExecuted, view, top, recovering: this.recovering || this.startedOver, from: this.o.id };
    if (this.snapshotWanted(m, batches)) {
      // Alone in its frame: a snapshot can be large, and the asker cannot chain these anyway.
      reply.snapshot = this.served;
      reply.batches = [];
    }
    this.send(m.from, reply);
  }

  /**
   * A snapshot goes to a replica below it that cannot chain up to the stable checkpoint from
   * this reply: the batch after its last is gone, or the reply stops short of the checkpoint
   * (replyBytesMax), or it executed nothing (a snapshot is the shortest way, and its start from
   * configuration may be newer than ours). At most once per few resend periods to one asker,
   * whatever the seq: snapshots are large, and a faulty replica asking in a loop must not
   * turn every correct one into a firehose.
   */
  private snapshotWanted(m: Fetch, batches: Batches['batches']): boolean {
    const at = this.served?.stable.seq ?? 0;
    if (m.after >= at) return false;
    const short = batches.length === 0 || batches[batches.length - 1]!.seq < this.stable.seq;
    if (m.after > 0 && !short) return false;
    if (this.now - (this.snapshotSentAt.get(m.from) ?? -Infinity) < SNAPSHOT_RESEND_PERIODS * this.o.resendTicks) return false;
    this.snapshotSentAt.set(m.from, this.now);
    return true;
  }

  /**
   * Batches that chain from our state to a stable checkpoint's state are the decided ones.
   * Above the checkpoint, a batch is taken once f+1 replicas reported the same one at a seq.
   */
  private onBatches(m: Batches): void {
    this.peerExecuted.set(m.from, m.executed);
    if (m.recovering) this.peerRecovering.add(m.from);
    else this.peerRecovering.delete(m.from);
    if (this.passiveSeq === Infinity) {
      this.peerReach.set(m.from, { view: m.view, top: m.top });
      if (this.peerReach.size >= 2 * this.o.f) this.learnPassiveBound();
    }
    if (m.snapshot && m.snapshot.stable.seq > this.lastExecuted) this.snapshotOffers.set(m.from, m.snapshot);
    // A replica that executed nothing installs a snapshot first (see snapshotWanted).
    if (this.lastExecuted === 0) this.installOffered();
    const st = m.stable;
    if (st.seq > this.lastExecuted) {
      if (!validStable(st, this.g, this.signer)) return;
      let state = this.state;
      let seq = this.lastExecuted;
      for (const b of m.batches) {
        if (b.seq !== seq + 1) return;
        state = nextState(state, batchDigest(b.batch.map(refOf)));
        seq = b.seq;
        if (seq === st.seq) break;
      }
      if (seq === st.seq && state === st.state) {
        this.catchingUpTo = st.seq;
        for (const b of m.batches) if (b.seq <= st.seq && b.seq > this.lastExecuted) this.apply(b.seq, -1, b.batch);
        this.catchingUpTo = 0;
        this.makeStable(st);
      } else {
        this.installOffered();
        if (st.seq > this.lastExecuted) return;
      }
    }
    for (const b of m.batches) {
      if (b.seq <= this.lastExecuted || b.seq > this.lastExecuted + this.o.logWindow) continue;
      let at = this.reported.get(b.seq);
      if (!at) this.reported.set(b.seq, (at = new Map()));
      at.set(m.from, { digest: batchDigest(b.batch.map(refOf)), batch: b.batch });
    }
    this.applyReported();
    this.execute();
  }

  /**
   * A vote this replica gave before it went down reached someone's log, or it cannot matter:
   * with this replica counted among the f faulty, the 2f others that answered are correct, and
   * the highest view and seq in their logs bound every (view, seq) it may have voted on. When
   * all of them restarted too and nothing was executed, the cluster started over (every
   * replica lost its memory): nobody remembers a vote to contradict, and waiting would
   * deadlock everyone.
   */
  private learnPassiveBound(): void {
    const reach = [...this.peerReach.values()];
    const top = Math.max(...reach.map((r) => r.top));
    this.startedOver = top === 0 && this.peerRecovering.size === this.peerExecuted.size;
    this.passiveView = this.startedOver ? -1 : Math.max(...reach.map((r) => r.view));
    this.passiveSeq = this.startedOver ? 0 : top;
    this.peerReach.clear();
    this.journalMeta();
  }

  /**
   * Installs another replica's snapshot at a stable checkpoint above what this one executed:
   * one reply from anyone is enough, because 2f+1 replicas signed its digest. Like batch
   * catch-up, it carries no view.
   */
  /**
   * Installs the highest valid snapshot offered, once f+1 replicas offered one: at least one
   * correct replica then says this one cannot chain up from where it is, so a faulty replica
   * cannot make a replica that could catch up batch by batch throw away what it holds. One
   * offer is enough for a replica that executed nothing: it holds nothing to lose.
   */
  private installOffered(): void {
    for (const [from, o] of this.snapshotOffers) if (o.stable.seq <= this.lastExecuted) this.snapshotOffers.delete(from);
    if (this.snapshotOffers.size < (this.lastExecuted === 0 ? 1 : this.o.f + 1)) return;
    const offers = [...this.snapshotOffers.values()].sort((a, b) => b.stable.seq - a.stable.seq);
    for (const o of offers) if (this.install(o)) break;
  }

  private install(snap: { stable: StableCheckpoint; body: string }): boolean {
    const st = snap.stable;
    if (st.seq <= this.lastExecuted || !validStable(st, this.g, this.signer) || snapshotDigest(snap.body) !== st.snapshot) return false;
    const decoded = this.executed.decode(snap.body);
    if (decoded === undefined) return false;
    // The protocol's part first: the application asks it which requests the snapshot decided.
    decoded.load();
    this.machine?.restore(st.seq, decoded.app);
    this.snapshotOffers.clear();
    this.lastExecuted = st.seq;
    this.state = st.state;
    if (this.nextSeq <= st.seq) this.nextSeq = st.seq + 1;
    // What this replica kept no longer chains to its state: batches are served only from here on.
    this.decidedBatches.clear();
    this.decidedBodies.clear();
    this.served = snap;
    this.journalSnapshot(st.seq, st.state, snap.body);
    if (this.o.journaling === true) this.journalTruncate(st.seq);
    this.snapshotsInstalled++;
    this.snapshotInstalledAt = st.seq;
    this.out.installed = st.seq;
    this.makeStable(st);
    this.dropObsolete();
    this.avail.forgetDecided((client, seq) => this.executed.has(client, seq));
    if (this.o.journaling === true) for (const e of this.held.decidedWhere((client, seq) => this.executed.has(client, seq))) this.journal(e);
    this.progress();
    return true;
  }

  private applyReported(): void {
    for (let at = this.reported.get(this.lastExecuted + 1); at; at = this.reported.get(this.lastExecuted + 1)) {
      const votes = new Map<string, number>();
      let agreed: Req[] | undefined;
      for (const r of at.values()) {
        const c = (votes.get(r.digest) ?? 0) + 1;
        votes.set(r.digest, c);
        if (c >= this.o.f + 1) agreed = r.batch;
      }
      if (!agreed) break;
      this.apply(this.lastExecuted + 1, -1, agreed);
    }
    for (const seq of this.reported.keys()) if (seq <= this.lastExecuted) this.reported.delete(seq);
  }

  // ---- view change ----------------------------------------------------------------------------

  /** Votes to move to `view` (or to a higher one, never back to a lower vote). */
  private stop(view: number): void {
    if (view <= (this.stops.get(this.o.id) ?? this.view)) {
      if (this.ownStop) this.send('all', this.ownStop);
      return;
    }
    this.ownStop = { type: 'stop', view, from: this.o.id };
    this.stops.set(this.o.id, view);
    this.send('all', this.ownStop);
    this.countStops();
  }

  private onStop(m: Stop): void {
    if (m.view <= this.view) return this.showView(m.from);
    if (m.view <= (this.stops.get(m.from) ?? 0)) return;
    this.stops.set(m.from, m.view);
    this.countStops();
  }

  /**
   * f+1 replicas voting to leave: at least one is correct, so join the lowest view they ask
   * for (without it, views drift apart after a partition heals: BFT-SMaRt issue #19). 2f+1:
   * leave, for the highest view that many vote for.
   */
  private countStops(): void {
    const current = this.changing ? this.target : this.view;
    const votes = [...this.stops.values()].filter((v) => v > current).sort((a, b) => b - a);
    if (votes.length >= this.o.f + 1 && (this.stops.get(this.o.id) ?? 0) <= current) this.stop(votes[votes.length - 1]!);
    const agreed = [...this.stops.values()].filter((v) => v > current).sort((a, b) => b - a)[2 * this.o.f];
    if (agreed !== undefined) this.leaveView(agreed);
  }

  /**
   * Leaves the current view for `view` for good: from here on this replica prepares nothing
   * in it, so the certificates it sends (PBFT's VIEW-CHANGE, BFT-SMaRt's STOPDATA) are all it
   * will ever have prepared there.
   */
  private leaveView(view: number): void {
    if (view <= this.view || (this.changing && view <= this.target)) return;
    this.changing = true;
    this.target = view;
    this.viewChangeStartedAt = this.now;
    this.viewChangeCount++;
    // Until it knows where the others are, a restarted replica has no say: it may have sent a
    // VIEW-CHANGE for this view before, with certificates it no longer has.
    if (this.passiveSeq === Infinity) {
      this.journal({ type: 'leave', target: view, viewChange: null } satisfies LeaveEntry);
      return;
    }
    const prepared: PreparedCert[] = [];
    for (const [seq, s] of [...this.slots].sort((a, b) => a[0] - b[0])) if (seq > this.stable.seq && s.cert) prepared.push(s.cert);
    this.ownViewChange = this.signed<ViewChange>({ type: 'view-change', view, stable: this.stable, prepared, from: this.o.id, sig: '' });
    // Journaled first: restarted, it must not prepare again in the view it promised to leave.
    this.journal({ type: 'leave', target: view, viewChange: this.ownViewChange } satisfies LeaveEntry);
    this.send('all', this.ownViewChange);
    this.viewChanges.set(this.o.id, this.ownViewChange);
    this.tryNewView(view);
  }

  private onViewChange(m: ViewChange): void {
    if (m.view <= this.view) return;
    const had = this.viewChanges.get(m.from);
    if (had && had.view >= m.view) return;
    if (!validViewChange(m, this.g, this.signer)) return;
    this.viewChanges.set(m.from, m);
    if (m.stable.seq > this.stable.seq) this.makeStable(m.stable);
    this.tryNewView(m.view);
  }

  /** The leader of `view`, with 2f+1 view changes for it, re-proposes what they prepared. */
  private tryNewView(view: number): void {
    // A restarted replica may have led this view before: it leads only views above those.
    if (leaderOf(view, this.o.n) !== this.o.id || !this.changing || this.target !== view || (this.recovering && view <= this.passiveView)) return;
    const vcs = [...this.viewChanges.values()].filter((v) => v.view === view);
    if (vcs.length < 2 * this.o.f + 1) return;
    const chosen = vcs.slice(0, 2 * this.o.f + 1);
    const plan = planNewView(chosen);
    const prePrepares = plan.batches.map((b) => this.signed<PrePrepare>({ type: 'pre-prepare', view, seq: b.seq, digest: batchDigest(b.batch), batch: b.batch, from: this.o.id, sig: '' }));
    const nv = this.signed<NewView>({ type: 'new-view', view, viewChanges: chosen, prePrepares, from: this.o.id, sig: '' });
    this.ownNewView = nv;
    this.send('all', nv);
    this.enterView(nv, plan.stable);
  }

  /**
   * A valid NEW-VIEW for any view above ours is entered, even one below the view we are asking
   * for: 2f+1 replicas moved there, and a replica that waits alone for a higher view would
   * never take part again.
   */
  private onNewView(m: NewView): void {
    if (m.view <= this.view) return;
    const plan = validNewView(m, this.g, this.signer);
    if (!plan) return;
    this.enterView(m, plan.stable);
  }

  /**
   * A replica asking to move to a view at or below ours is in an older one: it missed the
   * NEW-VIEW that moved us (cut off while it went round). Without it, it votes for views the
   * others left long ago, and its votes never add up with theirs: a leader that crashed after
   * that view change is then never replaced. The NEW-VIEW proves itself, so anyone may relay
   * it; once per resend period per asker.
   */
  private showView(to: number): void {
    if (!this.enteredBy || this.enteredBy.view !== this.view) return;
    if (this.now - (this.newViewShownAt.get(to) ?? -Infinity) < this.o.resendTicks) return;
    this.newViewShownAt.set(to, this.now);
    this.send(to, this.enteredBy);
  }

  /** Enters a new view from a valid NEW-VIEW: its stable checkpoint, then its pre-prepares as in a normal view. */
  private enterView(nv: NewView, stable: StableCheckpoint): void {
    this.journal({ type: 'view', view: nv.view, newView: nv } satisfies ViewEntry);
    this.enteredBy = nv;
    this.view = nv.view;
    this.viewsEntered++;
    this.changing = false;
    this.target = nv.view;
    this.proposed.clear();
    this.dropObsolete();
    // What waits is proposed again by the new leader (which is why it waits in arrival order).
    this.toPropose[0] = [...this.pending.values()].filter((r) => r.urgent === true);
    this.toPropose[1] = [...this.pending.values()].filter((r) => r.urgent !== true);
    for (const [from, vc] of this.viewChanges) if (vc.view <= nv.view) this.viewChanges.delete(from);
    for (const [from, v] of this.stops) if (v <= nv.view) this.stops.delete(from);
    // This replica's own vote goes too, whatever view it was for: in the view it just entered it
    // votes anew when its timer fires. A vote for a higher view kept without ownStop would make
    // it believe it had voted, count that vote nowhere, and never vote again (campaign seed
    // 3087717: stuck in a view whose leader could not prepare a batch).
    this.stops.delete(this.o.id);
    this.ownViewChange = undefined;
    this.ownStop = undefined;
    if (stable.seq > this.stable.seq) this.makeStable(stable);
    // Messages of earlier views are void in this one; only certificates survive, for later view changes.
    for (const [seq, s] of this.slots) {
      // A PRE-PREPARE of an earlier view that is not part of a certificate is no longer needed on disk.
      if (s.prePrepare && s.journaled && s.prePrepare.view !== s.cert?.prePrepare.view) this.journal({ type: 'drop', seq, view: s.prePrepare.view });
      s.journaled = false;
      s.prePrepare = undefined;
      s.prepares.clear();
      s.commits.clear();
      s.prepared = false;
      s.committed = false;
    }
    let top = this.stable.seq;
    for (const pp of nv.prePrepares) {
      if (!this.inWindow(pp.seq)) continue;
      this.acceptPrePrepare(pp, true);
      for (const r of pp.batch) this.proposed.add(key(r));
      top = Math.max(top, pp.seq);
    }
    this.nextSeq = Math.max(top, this.lastExecuted) + 1;
    this.waitingSince = this.pending.size > 0 ? this.now : undefined;
    this.idleSince = undefined;
    this.propose();
  }

  // ---- journal (journal.ts, docs/consensus.md "Restart from the journal") ---------------------

  private journal(e: JournalEntry): void {
    if (this.o.journaling === true) this.out.journal.push(e);
  }

  private assertRecovered(): void {
    if (this.o.journaling === true && !this.recovered) throw new FitError('FIT_ERR_INTERNAL', 'invariant broken: a journaling replica was used before recover(); this is a bug, please report it');
  }

  private journalMeta(): void {
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

  private journalPrePrepare(s: Slot, prepare: boolean): void {
    s.journaled = true;
    this.journal({ type: 'pre-prepare', pp: s.prePrepare!, prepare } satisfies PrePrepareEntry);
  }

  /** A body this replica attests: on disk (in this step's hold group) before the HOLD that says so leaves. */
  private journalHold(req: Req, ref: Ref): void {
    if (this.o.journaling === true) this.held.add(req, ref);
  }

  /** The state recovery starts from; the batches below it (but the retained ones) can go. */
  private journalSnapshot(seq: number, state: string, body: string): void {
    if (this.o.journaling !== true) return;
    this.baseSeq = seq;
    this.journal({ type: 'snapshot', seq, state, body } satisfies SnapshotEntry);
    this.journalTruncate();
  }

  /** Truncation at the stable checkpoint: the log below it, and batches below both the retained ones and the snapshot recovery starts from. */
  private journalTruncate(decidedThrough = Math.min(this.stable.seq - this.o.retainDecided, this.baseSeq)): void {
    this.journal({ type: 'truncate', slotsThrough: this.stable.seq, decidedThrough });
    for (const e of this.held.truncated(decidedThrough)) this.journal(e);
  }

  /**
   * Rebuilds this replica from its journal (JournalStore.load()), once, before anything else.
   * The machine is restored from the snapshot in the journal and executes the decided batches
   * above it again, in order (they come out in `decided`, as at first); the view, the view
   * change under way, the PRE-PREPAREs it sent or prepared, its certificates and the bodies it
   * attested come back as they were, so it contradicts no vote it gave before the crash and
   * needs no passive period. Nothing it held only in memory (others' votes, attestations) is
   * needed for that: losing it is losing messages, which the protocol survives. An empty
   * journal starts the replica as its options say (`restarted`: amnesiac and passive), and
   * journals who it is first.
   */
  recover(entries: readonly StoredEntry[]): Output {
    if (this.o.journaling !== true || this.recovered) throw new FitError('FIT_ERR_INTERNAL', 'invariant broken: recover() is for a journaling replica, once; this is a bug, please report it');
    this.recovered = true;
    const of = <T extends StoredEntry['type']>(type: T): Extract<StoredEntry, { type: T }>[] => entries.filter((e): e is Extract<StoredEntry, { type: T }> => e.type === type);
    const meta = of('meta')[0];
    if (!meta) {
      if (entries.length > 0) throw new FitError('FIT_ERR_JOURNAL', `the consensus journal holds ${entries.length} entries but no header: it is damaged or was written by another version; move it away and restart the replica (it then recovers from the others, passively)`);
      this.journalMeta();
      return this.flush();
    }
    if (meta.id !== this.o.id || meta.n !== this.o.n || meta.f !== this.o.f) {
      throw new FitError(
        'FIT_ERR_JOURNAL',
        `the consensus journal is replica ${meta.id}'s of a cluster with n=${meta.n}, f=${meta.f}, not replica ${this.o.id}'s with n=${this.o.n}, f=${this.o.f}: a data directory from another replica or cluster.yaml; give each replica its own, or init the cluster again`,
        { replica: this.o.id },
      );
    }
    this.passiveView = meta.passiveView ?? Infinity;
    this.passiveSeq = meta.passiveSeq ?? Infinity;
    this.startedOver = meta.startedOver;
    this.replaying = true;
    const bodies = new Map<string, Req>();
    for (const g of of('hold')) for (const q of g.reqs) bodies.set(refKey(refOf(q)), q);
    const pins = this.restoreDecided(of('snapshot')[0], of('stable')[0], of('decided'), bodies);
    this.restoreView(of('view')[0], of('leave')[0]);
    this.restoreSlots(of('pre-prepare'), of('prepared'));
    this.restoreHolds(of('hold'), pins);
    this.replaying = false;
    if (this.lastExecuted < this.stable.seq) this.askForBatches();
    this.propose();
    return this.flush();
  }

  /** Bodies it attested and that are not decided: held, pending and attested again (a HOLD goes out with this output). */
  private restoreHolds(groups: HoldEntry[], pins: Map<string, number>): void {
    // At least this far the journal was truncated (a truncation entry came with every stable checkpoint and snapshot).
    const truncatedTo = Math.min(this.stable.seq - this.o.retainDecided, this.baseSeq);
    const out = this.held.restore(groups, pins, truncatedTo, (ref) => this.wasDecided(ref), (req, ref) => {
      if (this.avail.body(ref)) return;
      this.avail.hold(req);
      this.addPending(ref);
    });
    for (const e of out) this.journal(e);
  }

  /** The snapshot, the stable checkpoint, then the batches: kept below the snapshot, executed again above it. */
  private restoreDecided(snap: SnapshotEntry | undefined, st: StableEntry | undefined, decided: DecidedEntry[], bodies: Map<string, Req>): Map<string, number> {
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
      const decoded = this.executed.decode(snap.body);
      if (decoded === undefined) throw new FitError('FIT_ERR_JOURNAL', `the snapshot at seq ${snap.seq} in the consensus journal cannot be read: the journal is damaged; move it away and restart the replica (it then recovers from the others, passively)`);
      decoded.load();
      this.machine?.restore(snap.seq, decoded.app);
      this.lastExecuted = snap.seq;
      this.state = snap.state;
      this.baseSeq = snap.seq;
      this.nextSeq = snap.seq + 1;
      this.snapshotBytes = snap.body.length;
    }
    if (st) {
      this.stable = st.stable;
      if (snap && snap.seq === st.stable.seq && snapshotDigest(snap.body) === st.stable.snapshot) this.served = { stable: st.stable, body: snap.body };
    }
    for (const d of [...decided].sort((a, b) => a.seq - b.seq)) {
      const batch = resolve(d);
      if (d.seq <= this.lastExecuted) {
        this.decidedBatches.set(d.seq, batch);
        for (const r of batch) this.decidedBodies.set(refKey(refOf(r)), r);
        continue;
      }
      if (d.seq !== this.lastExecuted + 1) {
        throw new FitError('FIT_ERR_JOURNAL', `the consensus journal has the batch at seq ${d.seq} but not the one at ${this.lastExecuted + 1}: it is damaged; move it away and restart the replica (it then recovers from the others, passively)`);
      }
      this.apply(d.seq, d.view, batch);
    }
    return pins;
  }

  private restoreView(v: ViewEntry | undefined, leave: LeaveEntry | undefined): void {
    if (v) {
      this.view = v.view;
      this.target = v.view;
      this.enteredBy = v.newView ?? undefined;
      if (v.newView && v.newView.from === this.o.id) this.ownNewView = v.newView;
    }
    if (leave && leave.target > this.view) {
      // It had left its view: it prepares nothing more there, and votes (STOP) as it did.
      this.changing = true;
      this.target = leave.target;
      this.viewChangeStartedAt = this.now;
      this.ownStop = { type: 'stop', view: leave.target, from: this.o.id };
      this.stops.set(this.o.id, leave.target);
      if (leave.viewChange) {
        this.ownViewChange = leave.viewChange;
        this.viewChanges.set(this.o.id, leave.viewChange);
      }
    }
  }

  /** PRE-PREPAREs of the current view (its NEW-VIEW's and the journaled ones), own PREPAREs and COMMITs, and certificates. */
  private restoreSlots(pps: PrePrepareEntry[], certs: PreparedEntry[]): void {
    const above = (seq: number): boolean => seq > this.stable.seq;
    for (const pp of this.enteredBy?.view === this.view ? this.enteredBy.prePrepares : []) if (this.inWindow(pp.seq)) this.slot(pp.seq).prePrepare = pp;
    const byKey = new Map<string, PrePrepare>();
    for (const e of pps) {
      byKey.set(`${e.pp.seq}/${e.pp.view}`, e.pp);
      if (e.pp.view !== this.view || !above(e.pp.seq)) continue;
      const s = this.slot(e.pp.seq);
      s.prePrepare = e.pp;
      s.journaled = true;
      if (e.prepare) s.prepares.set(this.o.id, this.signed<Prepare>({ type: 'prepare', view: e.pp.view, seq: e.pp.seq, digest: e.pp.digest, from: this.o.id, sig: '' }));
    }
    for (const c of certs) {
      if (!above(c.seq)) continue;
      const pp = byKey.get(`${c.seq}/${c.view}`);
      if (!pp) throw new FitError('FIT_ERR_JOURNAL', `the consensus journal has a certificate at seq ${c.seq}, view ${c.view} without its PRE-PREPARE: it is damaged; move it away and restart the replica (it then recovers from the others, passively)`);
      const s = this.slot(c.seq);
      if (!s.cert || s.cert.prePrepare.view < c.view) s.cert = { prePrepare: pp, prepares: c.prepares };
    }
    let top = Math.max(this.lastExecuted, this.stable.seq);
    for (const [seq, s] of this.slots) {
      const pp = s.prePrepare;
      if (!pp) continue;
      top = Math.max(top, seq);
      if (seq > this.lastExecuted) for (const r of pp.batch) this.proposed.add(key(r));
      if (s.cert?.prePrepare.view !== pp.view || s.cert.prePrepare.digest !== pp.digest) continue;
      s.prepared = true;
      for (const p of s.cert.prepares) if (!s.prepares.has(p.from)) s.prepares.set(p.from, p);
      if (seq > this.passiveThrough(pp.view)) s.commits.set(this.o.id, { type: 'commit', view: pp.view, seq, digest: pp.digest, from: this.o.id });
    }
    this.nextSeq = Math.max(this.nextSeq, top + 1);
  }

  // ---- plumbing -------------------------------------------------------------------------------

  /** Re-sends what this replica last said that others may have missed (the network may drop it). */
  private resend(): void {
    // A replica in a view change with requests waiting asks too: the others may have decided
    // them without it (it left, on votes they withdrew, a view they stayed in; campaign seed
    // 1005760, after a restart of the whole cluster). It cannot go back to that view, so it
    // follows what they decide by catch-up until a view change moves them all.
    if (this.behind() || (this.changing && this.pending.size > 0)) this.askForBatches();
    // A committed batch waiting for bodies asks again (the last answer may have been lost).
    this.execute();
    // Attestations may have been lost, or a replica restarted and forgot them.
    const held: Ref[] = [];
    for (const ref of this.pending.values()) {
      if (held.length >= 4 * this.o.batchMax) break;
      const body = this.avail.body(ref);
      if (!body) continue;
      // An attestation promises a body on disk: one fetched from a peer is journaled first.
      this.journalHold(body, ref);
      held.push(ref);
    }
    if (held.length > 0) this.send('all', { type: 'hold', refs: held, from: this.o.id } satisfies Hold);
    if (this.ownStop) this.send('all', this.ownStop);
    if (this.changing) {
      if (this.ownViewChange) this.send('all', this.ownViewChange);
      return;
    }
    if (this.ownNewView && this.ownNewView.view === this.view) this.send('all', this.ownNewView);
    for (const [seq, s] of this.slots) {
      if (seq <= this.stable.seq || !s.prePrepare) continue;
      if (s.prePrepare.from === this.o.id) this.send('all', s.prePrepare);
      const mine = s.prepares.get(this.o.id);
      if (mine) this.send('all', mine);
      const commit = s.commits.get(this.o.id);
      if (commit) this.send('all', commit);
    }
    // Also once stable: a replica that was cut off learns from 2f+1 of these where the others
    // are, and fetches what it missed (the slots below are gone from everyone's log).
    if (this.ownCheckpoint) this.send('all', this.ownCheckpoint);
  }

  /** Below a stable checkpoint, recovering, or behind what f+1 replicas said they executed. */
  private behind(): boolean {
    if (this.lastExecuted < this.stable.seq || this.recovering) return true;
    const reported = [...this.peerExecuted.values()].sort((a, b) => b - a);
    return reported.length > this.o.f && this.lastExecuted < reported[this.o.f]!;
  }

  private signed<T extends PrePrepare | Prepare | Checkpoint | ViewChange | NewView>(m: T): T {
    m.sig = this.signer.sign(signable(m));
    return m;
  }

  private send(to: number | 'all', msg: ConsensusMessage): void {
    this.out.messages.push({ to, msg });
  }

  private flush(): Output {
    const holds = this.avail.takeHolds();
    if (holds.length > 0) this.send('all', { type: 'hold', refs: holds, from: this.o.id } satisfies Hold);
    const group = this.o.journaling === true ? this.held.takeGroup() : undefined;
    if (group) this.journal(group);
    const o = this.out;
    this.out = { messages: [], decided: [], journal: [] };
    return o;
  }
}
