// Runs the ordering protocol's pure core (replica.ts) in a replica process: a clock that
// ticks, Ed25519 signatures with the replica keys from cluster.yaml, and a transport to the
// other replicas that the replica server provides. Messages from the wire are checked
// against the schema first (wire.ts); what fails is counted, never acted on.
//
// With a journal (journal.ts, journal-store.ts), it writes ahead: the entries of each output
// are appended as the core returns them, one flush covers every append of an event-loop turn
// (group commit), and the output's messages and its decisions' callback wait until that flush
// is durable, in the order the core produced them. It must never send a message, or report
// a decision, before the journal entries that came with it (and before it) are on disk.

import type { KeyObject } from 'node:crypto';
import type { Limits } from '../core/index.js';
import { signBytes, verifyBytes } from '../protection/index.js';
import { FitError } from '../core/index.js';
import { ConsensusReplica, type ConsensusOptions, type ConsensusStatus, type Output } from './replica.js';
import type { Decision, ExecutedRequests, StateMachine } from './state.js';
import type { JournalStore } from './journal.js';
import type { ConsensusMessage, Req, Signer } from './messages.js';
import { parseConsensusMessage } from './wire.js';

export interface DriverOptions {
  id: number;
  n: number;
  f: number;
  limits: Limits;
  /** This replica ran before and kept none of its consensus state (see ConsensusOptions.restarted). */
  restarted: boolean;
  privateKey: KeyObject;
  /** Every replica's public key (base64 SPKI), by id. */
  publicKeys: readonly string[];
  /** Sends to one replica, or to every other one; a message that cannot leave is dropped (the protocol resends). */
  send(to: number | 'all', msg: ConsensusMessage): void;
  /**
   * What decisions execute on, and what a snapshot holds (see StateMachine). It executes
   * synchronously, inside the protocol's step (checkpoints snapshot it there): whatever must
   * wait until the decision is on disk — acknowledging a publisher, answering an admin — goes
   * in `durable`. With a journal, start() restores it (restore() from the journal's snapshot,
   * then execute() for each batch above it).
   */
  machine: StateMachine;
  /**
   * This replica's consensus journal (journal-store.ts: DIR/data/replica-N/consensus). With it,
   * start() recovers from it, every output is written ahead, and a restart is not amnesia;
   * `restarted` then matters only when the journal is empty (a first start, or a disk replaced).
   */
  journal?: JournalStore;
  /**
   * Called, in order, with the decisions of each output (and the seq of a snapshot it
   * installed) once they are durable: at once without a journal, after the flush with one. At
   * start, with the batches recovery executed again.
   */
  durable?(o: { decided: Decision[]; installed: number | undefined }): void;
  /**
   * Requests whose body this replica let go undecided (Output.expired): fewer than f+1
   * replicas attested them within consensusAttestationSeqs. Their clients must be told.
   */
  expired?(reqs: Req[]): void;
  /**
   * The journal could not be written: the driver stopped, sends nothing more and reports no
   * more decisions; the replica must stop (fail-stop) and be restarted once the disk is fixed.
   * Without it, the error is thrown (an uncaught exception ends the process).
   */
  journalFailed?(err: FitError): void;
}

export interface DriverStatus extends ConsensusStatus {
  /** Messages from other replicas that were not protocol messages (each a sign of a faulty sender). */
  malformed: number;
  /** With a journal: entries read back at start, entries appended, flushes that wrote something, outputs waiting for one. */
  journal?: { recoveredEntries: number; entriesAppended: number; flushes: number; outputsWaiting: number };
}

/** The protocol's options from the replica limits: times in ticks of consensusTickMs. */
export function consensusOptions(id: number, n: number, f: number, l: Limits, restarted: boolean): ConsensusOptions {
  const ticks = (ms: number): number => Math.max(1, Math.round(ms / l.consensusTickMs));
  return {
    id,
    n,
    f,
    checkpointInterval: l.consensusCheckpointInterval,
    logWindow: l.consensusLogWindow,
    batchMax: l.consensusBatchMax,
    inflightMax: l.consensusInflightMax,
    viewChangeTimeoutTicks: ticks(l.consensusTimeoutMs),
    resendTicks: ticks(l.consensusResendMs),
    retainDecided: l.consensusRetainDecided,
    pendingMax: l.consensusPendingMax,
    attestationSeqs: l.consensusAttestationSeqs,
    // JSON of base64 bodies is ~1.4x their size: a quarter of the frame leaves room.
    replyBytesMax: Math.floor(l.peerFrameBytesMax / 4),
    clientsMax: l.dedupeStreamsMax,
    restarted,
  };
}

export function ed25519Signer(privateKey: KeyObject, publicKeys: readonly string[]): Signer {
  return {
    sign: (bytes) => signBytes(privateKey, Buffer.from(bytes, 'utf8')).toString('base64'),
    verify: (replica, bytes, sig) => {
      const key = publicKeys[replica];
      return key !== undefined && verifyBytes(key, Buffer.from(bytes, 'utf8'), Buffer.from(sig, 'base64'));
    },
  };
}

export class ConsensusDriver {
  private readonly replica: ConsensusReplica;
  private timer: NodeJS.Timeout | undefined;
  private malformed = 0;
  private recovered = false;
  private recoveredEntries = 0;
  /** Outputs waiting for a flush, oldest first, each with the appends it needs durable. */
  private readonly waiting: { out: Output; needs: number }[] = [];
  /** Appends so far, and how many of them a flush made durable. */
  private appends = 0;
  private durableAppends = 0;
  private entriesAppended = 0;
  private flushes = 0;
  private flushScheduled = false;
  private failed: FitError | undefined;

  constructor(private readonly o: DriverOptions) {
    const options = { ...consensusOptions(o.id, o.n, o.f, o.limits, o.restarted), journaling: o.journal !== undefined };
    this.replica = new ConsensusReplica(options, ed25519Signer(o.privateKey, o.publicKeys), o.machine);
  }

  /** Not recovering for it: a scrape of /metrics before start() must not run recovery out of turn. */
  get status(): DriverStatus {
    const s: DriverStatus = { ...this.replica.status, malformed: this.malformed };
    if (this.o.journal) s.journal = { recoveredEntries: this.recoveredEntries, entriesAppended: this.entriesAppended, flushes: this.flushes, outputsWaiting: this.waiting.length };
    return s;
  }

  /**
   * Rebuilds the protocol's state, and the machine's, from the journal: at once, so that the
   * caller knows its machine's restore() and execute() calls are recovery. Any other first use
   * does it too. Throws FIT_ERR_JOURNAL for a journal it cannot recover from.
   */
  recover(): void {
    void this.core;
  }

  /** Recovers from the journal (unless recover() did), then ticks. */
  start(): void {
    if (this.timer || this.failed) return;
    const core = this.core;
    this.timer = setInterval(() => this.handle(core.tick()), this.o.limits.consensusTickMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Resolves once everything so far is durable and sent (for a clean shutdown); at once without a journal. */
  async settled(): Promise<void> {
    if (!this.o.journal) return;
    const mark = this.appends;
    await this.o.journal.durable();
    this.flushedTo(mark);
  }

  isDecided(client: string, seq: number): boolean {
    return this.core.isDecided(client, seq);
  }

  holdsBodyOf(client: string, seq: number): boolean {
    return this.core.holdsBodyOf(client, seq);
  }

  /** Makes `into` the protocol's record of decided seqs for the clients whose name starts with `prefix` (copies). */
  copyDecided(into: ExecutedRequests, prefix: string): void {
    this.core.copyDecided(into, prefix);
  }

  /** Submits requests to be ordered; returns the ones refused for want of room (see room). */
  submit(req: Req | readonly Req[]): Req[] {
    const out = this.core.submit(req);
    this.handle(out);
    return out.refused ?? [];
  }

  /** Requests that can be submitted before consensusPendingMax is reached. */
  get room(): number {
    return this.core.room;
  }

  /** A message from replica `from` (the link authenticated it), as parsed JSON. */
  receive(from: number, value: unknown): void {
    const msg = parseConsensusMessage(value);
    if (!msg) {
      this.malformed++;
      return;
    }
    this.handle(this.core.receive(from, msg));
  }

  /**
   * The core, recovered from the journal on first use: not in the constructor, because
   * recovery executes batches on the machine, which may be the object still constructing this
   * driver.
   */
  private get core(): ConsensusReplica {
    if (!this.recovered && this.o.journal) {
      this.recovered = true;
      const entries = this.o.journal.load();
      this.recoveredEntries = entries.length;
      this.handle(this.replica.recover(entries));
    }
    return this.replica;
  }

  private handle(out: Output): void {
    if (this.failed) return;
    const journal = this.o.journal;
    if (!journal) return this.release(out);
    if (out.journal.length > 0) {
      journal.append(out.journal);
      this.appends++;
      this.entriesAppended += out.journal.length;
    }
    if (this.waiting.length === 0 && this.durableAppends === this.appends) return this.release(out);
    this.waiting.push({ out, needs: this.appends });
    this.scheduleFlush();
  }

  /** One flush for everything appended in this turn of the event loop (group commit). */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => {
      this.flushScheduled = false;
      const mark = this.appends;
      if (mark > this.durableAppends) this.flushes++;
      this.o.journal!.durable().then(
        () => this.flushedTo(mark),
        (e: unknown) => this.fail(e),
      );
    });
  }

  /** Appends up to `mark` are durable: what waited for them goes, in order. */
  private flushedTo(mark: number): void {
    if (this.failed) return;
    this.durableAppends = Math.max(this.durableAppends, mark);
    // One at a time from the head: a callback may produce a new output, which must go after these.
    while (!this.failed && this.waiting.length > 0 && this.waiting[0]!.needs <= this.durableAppends) this.release(this.waiting.shift()!.out);
    if (this.waiting.length > 0) this.scheduleFlush();
  }

  private release(out: Output): void {
    for (const m of out.messages) this.o.send(m.to, m.msg);
    if (out.decided.length > 0 || out.installed !== undefined) this.o.durable?.({ decided: out.decided, installed: out.installed });
    if (out.expired) this.o.expired?.(out.expired);
  }

  /** Fail-stop: a replica that cannot write what it is about to say must say nothing more. */
  private fail(e: unknown): void {
    if (this.failed) return;
    this.failed = e instanceof FitError ? e : new FitError('FIT_ERR_JOURNAL', `cannot write the consensus journal: ${(e as Error).message}; check free space and permissions on the data directory's disk, then restart the replica`);
    this.stop();
    this.waiting.length = 0;
    const err = this.failed;
    if (this.o.journalFailed) this.o.journalFailed(err);
    else
      process.nextTick(() => {
        throw err;
      });
  }
}
