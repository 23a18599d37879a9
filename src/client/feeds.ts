// What a publisher sends each replica, and what it holds back from one that is not reading.
//
// Every batch goes to every replica as the same bytes, and is published once its quorum
// acknowledged it. A replica that stops reading (stalled, overloaded, or holding this
// publisher back on an overflow: block channel) would otherwise keep every batch the others
// already acknowledged waiting in its socket, in this process, without bound. So each replica
// has a lag: the bytes of batches it was sent, that the quorum acknowledged, and that it has
// not. Once that reaches limits.publishLagBytesMax the replica is left behind: nothing more is
// written to it, as long as the others still make the quorum without it. Once its lag is back
// under half the limit (it acknowledged what it had) or it reconnects, it is sent what is still
// in the window, in order; what the others acknowledged meanwhile it never gets from this
// publisher (counted as missed), exactly like a replica that was disconnected.
//
// Lag, not the socket's backlog: a replica that reads keeps up to the whole window waiting in
// its socket when the publisher outruns the replicas (measured: 19 MB on a healthy replica
// while one was stopped), and those bytes are the window's, shared by every socket. What only
// the stopped replica's socket keeps alive is what the others already acknowledged.
//
// What this must never do:
// - leave behind a replica the quorum needs: on cft frames (acknowledged by every replica
//   not known to be down) and whenever fewer than the quorum would be left reading, the
//   replica is caught up at once, whatever its lag (the publish window bounds it then);
// - write a batch after a later one on the same connection: a replica drops every event at or
//   below the last seq it accepted from this process, so a lower one sent later would be lost.

import { invariant, type FaultModel, type FitError } from '../core/index.js';
import type { ReplicaLink } from './link.js';

/** What the feeds use of a ReplicaLink (a fake in unit tests). */
export type FeedLink = Pick<ReplicaLink, 'id' | 'ready' | 'backlogBytes' | 'send'>;

/** A batch in the publisher's window, as the feeds see it. */
export interface FeedBatch {
  readonly seq: number;
  readonly fault: FaultModel;
  readonly frame: Buffer;
  readonly count: number;
  readonly acks: ReadonlySet<number>;
  /** Replicas that refused it: they read it too. */
  readonly errors: ReadonlyMap<number, unknown>;
}

/** What the publisher reports as it happens (a discriminated union on `type`). */
export type PublisherStatus =
  | {
      type: 'replicaBehind';
      replica: number;
      /** Bytes the quorum acknowledged that this replica had not, when it was left behind. */
      lagBytes: number;
      limitBytes: number;
    }
  | {
      type: 'replicaCaughtUp';
      replica: number;
      /** How long it was behind. */
      behindMs: number;
      /** Events the others acknowledged while it was behind: it never got them from this publisher. */
      missedEvents: number;
    }
  | {
      /** The replica is holding this publisher back for a per-client limit (its notice). */
      type: 'replicaNotice';
      replica: number;
      notice: FitError;
    };

/** One line for a log or a terminal. */
export function publisherStatusLine(s: PublisherStatus): string {
  if (s.type === 'replicaNotice') return `${s.notice.code}: ${s.notice.message}`;
  if (s.type === 'replicaBehind') {
    return `replica ${s.replica} is not keeping up: it has not acknowledged ${s.lagBytes} bytes the others did (limits.publishLagBytesMax ${s.limitBytes}); sending it nothing more while the others make the quorum`;
  }
  return `replica ${s.replica} is sent every batch again after ${s.behindMs} ms behind; it missed ${s.missedEvents} events the others acknowledged meanwhile (its subscribers get them from the others)`;
}

/** One replica's feed, for stats and tests. */
export interface ReplicaFeedStats {
  replica: number;
  connected: boolean;
  /** Bytes written to its socket and not yet taken by the kernel. */
  backlogBytes: number;
  /** Bytes of batches it was sent that the quorum acknowledged and it has not. */
  lagBytes: number;
  behind: boolean;
  /** Times it was left behind. */
  behindSpells: number;
  /** Batches, events and bytes acknowledged by the others while it was behind, never sent to it. */
  missedBatches: number;
  missedEvents: number;
  missedBytes: number;
}

export interface FeedsOptions {
  /** limits.publishLagBytesMax. */
  limitBytes: number;
  /** The acknowledgements a batch of this fault class needs (publishQuorum). */
  quorum(fault: FaultModel): number;
  /** The publisher's window, oldest batch first. */
  inflight(): Iterable<FeedBatch>;
  onStatus?(status: PublisherStatus): void;
  nowMs?(): number;
}

interface Feed {
  readonly link: FeedLink;
  /** The last batch seq written to the current connection; 0 for none. */
  sentSeq: number;
  /** Batches sent on this connection that the quorum acknowledged and it has not: seq to bytes. */
  readonly owed: Map<number, number>;
  lagBytes: number;
  behind: boolean;
  behindSinceMs: number;
  missedThisSpell: number;
  stats: Omit<ReplicaFeedStats, 'connected' | 'backlogBytes' | 'lagBytes' | 'behind'>;
}

export class ReplicaFeeds {
  private readonly feeds: Feed[];
  private readonly nowMs: () => number;

  constructor(
    links: readonly FeedLink[],
    private readonly o: FeedsOptions,
  ) {
    this.nowMs = o.nowMs ?? Date.now;
    this.feeds = links.map((link) => ({
      link,
      sentSeq: 0,
      owed: new Map(),
      lagBytes: 0,
      behind: false,
      behindSinceMs: 0,
      missedThisSpell: 0,
      stats: { replica: link.id, behindSpells: 0, missedBatches: 0, missedEvents: 0, missedBytes: 0 },
    }));
  }

  /** A batch just entered the window (it is in inflight()): write it to every replica reading. */
  send(b: FeedBatch): void {
    if (b.fault === 'bft') this.chooseBehind();
    for (const feed of this.feeds) {
      const link = feed.link;
      // One not connected is sent what it lacks once it is (ready()).
      if (!link.ready) continue;
      if (feed.behind) {
        if (!this.mayLeave(feed, b.fault)) this.catchUp(feed);
        continue;
      }
      // chooseBehind() may have caught it up, this batch included.
      if (b.seq <= feed.sentSeq) continue;
      link.send(b.frame);
      feed.sentSeq = b.seq;
    }
  }

  /** The replica answered batch `seq` (an acknowledgement or a refusal: either way it read it). */
  answered(link: FeedLink, seq: number): void {
    const feed = this.feedOf(link);
    const bytes = feed.owed.get(seq);
    if (bytes === undefined) return;
    feed.owed.delete(seq);
    feed.lagBytes -= bytes;
    // Half, so that a replica reading at about the publishers' pace is not left behind and
    // caught up at every batch.
    if (feed.behind && feed.lagBytes <= this.o.limitBytes / 2) this.catchUp(feed);
  }

  /** A replica (re)connected: nothing was sent on this connection yet, nor is owed. */
  ready(link: FeedLink): void {
    const feed = this.feedOf(link);
    feed.sentSeq = 0;
    feed.owed.clear();
    feed.lagBytes = 0;
    this.catchUp(feed);
  }

  /** A connection dropped: a replica left behind may now be needed for the quorum. */
  down(): void {
    const quorum = this.o.quorum('bft');
    for (const feed of this.feeds) {
      if (this.reading() >= quorum) return;
      if (feed.behind && feed.link.ready) this.catchUp(feed);
    }
  }

  /** A batch left the window, acknowledged by its quorum. */
  done(b: FeedBatch): void {
    for (const feed of this.feeds) {
      if (b.acks.has(feed.link.id) || b.errors.has(feed.link.id)) continue;
      if (b.seq <= feed.sentSeq) {
        // Sent on this connection and not answered: it is all this socket keeps it alive for.
        if (!feed.link.ready) continue;
        feed.owed.set(b.seq, b.frame.length);
        feed.lagBytes += b.frame.length;
      } else if (feed.behind) {
        feed.stats.missedBatches++;
        feed.stats.missedEvents += b.count;
        feed.stats.missedBytes += b.frame.length;
        feed.missedThisSpell += b.count;
      }
    }
  }

  stats(): ReplicaFeedStats[] {
    return this.feeds.map((f) => ({ ...f.stats, connected: f.link.ready, backlogBytes: f.link.backlogBytes, lagBytes: f.lagBytes, behind: f.behind }));
  }

  /** Replicas behind now. */
  get behind(): number[] {
    return this.feeds.filter((f) => f.behind).map((f) => f.link.id);
  }

  private feedOf(link: FeedLink): Feed {
    const feed = this.feeds.find((f) => f.link === link);
    invariant(feed !== undefined, `replica ${link.id} has no feed`);
    return feed;
  }

  /** Connected replicas being sent every batch. */
  private reading(): number {
    let n = 0;
    for (const f of this.feeds) if (f.link.ready && !f.behind) n++;
    return n;
  }

  /** Only bft frames may skip a replica, and only while the others reading make the quorum. */
  private mayLeave(feed: Feed, fault: FaultModel): boolean {
    if (fault !== 'bft') return false;
    return this.reading() - (feed.link.ready && !feed.behind ? 1 : 0) >= this.o.quorum('bft');
  }

  /**
   * Leaves behind the replicas at the limit, most lag first, while the others make the quorum.
   * One that cannot be left behind is needed by the quorum: no batch sent from then on
   * completes without it, so its lag stops growing, and the window bounds what waits for it.
   */
  private chooseBehind(): void {
    const over = this.feeds.filter((f) => f.link.ready && !f.behind && f.lagBytes >= this.o.limitBytes).sort((x, y) => y.lagBytes - x.lagBytes);
    for (const feed of over) if (this.mayLeave(feed, 'bft')) this.leave(feed);
  }

  private leave(feed: Feed): void {
    feed.behind = true;
    feed.behindSinceMs = this.nowMs();
    feed.missedThisSpell = 0;
    feed.stats.behindSpells++;
    const behind = this.feeds.filter((f) => f.behind).length;
    invariant(behind <= this.feeds.length - this.o.quorum('bft'), `${behind} replicas left behind of ${this.feeds.length}, more than the bft quorum allows`);
    this.o.onStatus?.({ type: 'replicaBehind', replica: feed.link.id, lagBytes: feed.lagBytes, limitBytes: this.o.limitBytes });
  }

  /** Sends the replica every batch in the window it lacks, oldest first, and counts it as reading. */
  private catchUp(feed: Feed): void {
    const link = feed.link;
    if (!link.ready) return;
    for (const b of this.o.inflight()) {
      if (b.seq <= feed.sentSeq || b.acks.has(link.id)) continue;
      link.send(b.frame);
      feed.sentSeq = b.seq;
    }
    if (!feed.behind) return;
    feed.behind = false;
    this.o.onStatus?.({ type: 'replicaCaughtUp', replica: link.id, behindMs: this.nowMs() - feed.behindSinceMs, missedEvents: feed.missedThisSpell });
  }
}
