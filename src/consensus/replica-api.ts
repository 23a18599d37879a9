// What a replica of the ordering protocol takes and gives (docs/consensus.md): the options it
// runs with, what each call returns, and what `status` reports. Types alone, in a file of
// their own so that the replica's state (core.ts) can use them without importing the class
// built on it; callers import them from replica.ts or index.ts, which re-export them.

import type { ConsensusMessage, Req } from './messages.js';
import type { Decision } from './state.js';
import type { JournalEntry } from './journal.js';

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
  /**
   * W: an attestation (HOLD) counts for batches up to W seqs above the seq its sender had
   * executed, and a replica lets an undecided body go that is not ready once it executed W
   * seqs past its own attestation (availability.ts). While requests wait that are not ready,
   * the leader proposes empty batches so that seqs move on. Default (absent): Infinity, for
   * good: nothing ever goes, and no empty batch is proposed.
   */
  attestationSeqs?: number;
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
  /**
   * Bodies this replica held and let go undecided: fewer than f+1 replicas attested them
   * within attestationSeqs. Their client must be told (they may never be ordered).
   */
  expired?: Req[];
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
  /** Requests whose body this replica held and let go undecided: fewer than f+1 replicas attested them within attestationSeqs. */
  expired: number;
  /** Empty batches this replica proposed as the leader, so that seqs move on while requests that are not ready wait. */
  emptyBatches: number;
  /** Bodies a client sent under a (client, seq) this replica held another body of: not held (only a faulty client sends two). */
  secondBodies: number;
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
