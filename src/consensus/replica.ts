// One replica of the ordering protocol (docs/consensus.md): PBFT's normal case with batching,
// checkpoints that truncate the log, a view change that replaces a faulty leader, and catch-up
// by fetching decided batches up to a stable checkpoint. A pure state machine: requests,
// messages and clock ticks go in; messages to send and decided batches come out. It owns no
// socket, timer, clock or randomness, so the simulator runs it under seeded faults and the
// replica process runs the same code.
//
// This class is the surface callers use; the protocol is in the files beside it, one concept
// each, as functions of the replica's state (core.ts): admission.ts (requests and batches),
// agreement.ts (PRE-PREPARE, PREPARE, COMMIT), execution.ts, checkpoints.ts, catch-up.ts,
// view-change.ts, timers.ts (timeouts and resends) and recovery.ts (restart from the journal).
//
// It must never: decide a batch at a seq another correct replica decided differently; accept a
// normal-case message of another view than its own; move to a view on anything but 2f+1
// verified view changes (or f+1 to join one); let a faulty replica grow its memory past the
// log window and the bounds below.

import { FitError } from '../core/index.js';
import { leaderOf } from './certs.js';
import { admit, onHold } from './admission.js';
import { onCommit, onPrePrepare, onPrepare } from './agreement.js';
import { onBodies, onBodyFetch } from './execution.js';
import { onCheckpoint } from './checkpoints.js';
import { onBatches, onFetch } from './catch-up.js';
import { onNewView, onStop, onViewChange } from './view-change.js';
import { onTick } from './timers.js';
import { recover } from './recovery.js';
import { Core } from './core.js';
import type { ConsensusMessage, Req, Signer } from './messages.js';
import type { ExecutedRequests, StateMachine } from './state.js';
import type { StoredEntry } from './journal.js';
import type { ConsensusOptions, ConsensusStatus, Output } from './replica-api.js';

export type { Decision, StateMachine } from './state.js';
export type { ConsensusOptions, ConsensusStatus, Output } from './replica-api.js';

export class ConsensusReplica {
  private readonly r: Core;

  constructor(o: ConsensusOptions, signer: Signer, machine?: StateMachine) {
    this.r = new Core(o, signer, machine);
  }

  get status(): ConsensusStatus {
    const r = this.r;
    return {
      view: r.view,
      leader: leaderOf(r.view, r.o.n),
      changingView: r.changing,
      lastDecided: r.lastExecuted,
      stableCheckpoint: r.stable.seq,
      viewChanges: r.viewChangeCount,
      pending: r.pending.size,
      refused: r.refused,
      expired: r.expired,
      emptyBatches: r.emptyBatches,
      secondBodies: r.secondBodies,
      recovering: r.recovering,
      viewsEntered: r.viewsEntered,
      snapshotsInstalled: r.snapshotsInstalled,
      snapshotInstalledAt: r.snapshotInstalledAt,
      snapshotMismatches: r.snapshotMismatches,
      snapshotBytes: r.snapshotBytes,
      idleLeaderSuspicions: r.idleLeaderSuspicions,
    };
  }

  /** Client requests, as every replica receives them (clients send to all); one HOLD announces them all. */
  submit(reqs: Req | readonly Req[]): Output {
    this.assertRecovered();
    admit(this.r, Array.isArray(reqs) ? (reqs as readonly Req[]) : [reqs as Req]);
    return this.r.flush();
  }

  receive(from: number, msg: ConsensusMessage): Output {
    this.assertRecovered();
    const r = this.r;
    // Unsigned messages name their sender; the link authenticated it, and it must agree.
    if (msg.from !== from || from < 0 || from >= r.o.n || from === r.o.id) return r.flush();
    switch (msg.type) {
      case 'pre-prepare':
        onPrePrepare(r, msg);
        break;
      case 'prepare':
        onPrepare(r, msg);
        break;
      case 'commit':
        onCommit(r, msg);
        break;
      case 'checkpoint':
        onCheckpoint(r, msg);
        break;
      case 'stop':
        onStop(r, msg);
        break;
      case 'view-change':
        onViewChange(r, msg);
        break;
      case 'new-view':
        onNewView(r, msg);
        break;
      case 'fetch':
        onFetch(r, msg);
        break;
      case 'batches':
        onBatches(r, msg);
        break;
      case 'hold':
        onHold(r, msg);
        break;
      case 'body-fetch':
        onBodyFetch(r, msg);
        break;
      case 'bodies':
        onBodies(r, msg);
        break;
    }
    return r.flush();
  }

  tick(): Output {
    this.assertRecovered();
    onTick(this.r);
    return this.r.flush();
  }

  /** Requests that can be submitted before pendingMax is reached. */
  get room(): number {
    return Math.max(0, this.r.o.pendingMax - this.r.pending.size);
  }

  /** Whether (client, seq) was decided here already (as far as clientsMax remembers). */
  isDecided(client: string, seq: number): boolean {
    return this.r.wasDecided({ client, seq });
  }

  /** Whether this replica holds a body under (client, seq), to attest it: the request then ends decided or let go. */
  holdsBodyOf(client: string, seq: number): boolean {
    return this.r.avail.holdsBodyOf({ client, seq });
  }

  /** Makes `into` this replica's record of decided seqs for the clients whose name starts with `prefix` (copies). */
  copyDecided(into: ExecutedRequests, prefix: string): void {
    this.r.executed.copyTo(into, prefix);
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
    recover(this.r, entries);
    return this.r.flush();
  }

  private assertRecovered(): void {
    if (this.r.o.journaling === true && !this.r.recovered) throw new FitError('FIT_ERR_INTERNAL', 'invariant broken: a journaling replica was used before recover(); this is a bug, please report it');
  }
}
