// Leader changes in the replica's log. The consensus core is pure and logs nothing, and its
// counters (fitbroker status) say that a view changed, not when; an operator reading the log
// of a cluster whose ordered channels paused for a second, or whose latency jumped, needs the
// moment and the reason there, as Kafka's controller and Raft's leader changes are logged.

import type { Logger } from 'pino';
import type { ConsensusStatus } from '../consensus/index.js';

/** How often the protocol's status is looked at: a leader change takes a second or more. */
export const LEADER_WATCH_MS = 250;

type Watched = Pick<ConsensusStatus, 'view' | 'leader' | 'changingView' | 'idleLeaderSuspicions' | 'pending'>;

export class LeaderWatch {
  private last: Watched | undefined;
  private changingSinceMs = 0;
  /** idleLeaderSuspicions when this replica last left a view: a vote of its own since then is why it leaves. */
  private suspicionsAtLastChange = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly logger: Logger,
    private readonly status: () => Watched,
    private readonly nowMs: () => number = () => performance.now(),
  ) {}

  start(): void {
    this.check();
    this.timer ??= setInterval(() => this.check(), LEADER_WATCH_MS).unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Logs what changed since the last look. */
  check(): void {
    const s = this.status();
    const before = this.last;
    this.last = { view: s.view, leader: s.leader, changingView: s.changingView, idleLeaderSuspicions: s.idleLeaderSuspicions, pending: s.pending };
    if (!before) {
      this.suspicionsAtLastChange = s.idleLeaderSuspicions;
      return;
    }
    if (s.changingView && !before.changingView) {
      this.changingSinceMs = this.nowMs();
      // The suspicion (a STOP vote) comes before the view change it may start, often a look earlier.
      const idle = s.idleLeaderSuspicions > this.suspicionsAtLastChange;
      this.suspicionsAtLastChange = s.idleLeaderSuspicions;
      this.logger.warn(
        { view: s.view, leader: s.leader, pending: s.pending, reason: idle ? 'idle-leader' : 'timeout' },
        idle
          ? `leaving view ${s.view}: leader ${s.leader} left this replica idle with requests ready to order`
          : `leaving view ${s.view} (leader ${s.leader}): requests waited past the timeout, or f+1 replicas asked to move on`,
      );
    }
    if (s.view !== before.view) {
      // Timed only from a start this watch saw: a change begun and ended between two looks is not.
      const tookMs = before.changingView ? Math.round(this.nowMs() - this.changingSinceMs) : undefined;
      this.logger.warn(
        { view: s.view, leader: s.leader, previousView: before.view, previousLeader: before.leader, ...(tookMs !== undefined ? { tookMs } : {}) },
        `leader changed: replica ${s.leader} leads view ${s.view} (was replica ${before.leader}, view ${before.view})`,
      );
    }
  }
}
