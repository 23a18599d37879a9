// L1 subscribe and receive: one subscribe stream per replica, every copy fed to the voter,
// each event delivered once the channel's class is satisfied (f+1 byte-identical copies for
// bft, the first copy for cft). Flow control is by credits: a replica never pushes more than
// the subscriber granted, and the subscriber grants more only as it processes what arrived,
// so a slow console costs a replica bounded memory. Acknowledgements tell each replica which
// of its copies were resolved; the rest go back to the client's queue if the session ends.

import type { KeyObject } from 'node:crypto';
import { FitError, maySubscribe, voteQuorum, type BrokerEvent, type ChannelClass } from '../core/index.js';
import { decodeEventsHeader, decodeRecord, encodeCredit, MessageType, RecordCursor } from '../codec/index.js';
import type { ClusterConfig } from '../config/index.js';
import { ReplicaLink, believedRefusal } from './link.js';
import { StreamAcks } from './acks.js';
import { Voter, type Copy, type VoterCounters } from './voter.js';

export interface SubscriberOptions {
  channel: string;
  onEvent(event: BrokerEvent): void;
  onError?(err: FitError): void;
  creditsEvents?: number;
  /**
   * Deliver at most this many events, then stop taking new ones (so the rest stay queued
   * for the client's next session) and call onLimit.
   */
  limit?: number;
  onLimit?(): void;
}

interface Stream {
  id: number;
  gen: number;
  acks: StreamAcks;
  ackedSent: number;
}

export interface SubscriberSummary extends VoterCounters {
  channel: string;
  /** Copies from each replica that disagreed with the delivered event: evidence of a fault. */
  mismatches: Record<number, number>;
  malformedFrames: Record<number, number>;
  pending: number;
}

const GEN = 0x1_0000_0000;

export class Subscriber {
  private readonly links: ReplicaLink[];
  private readonly streams = new Map<number, Stream>();
  private readonly refusals = new Map<number, FitError>();
  private readonly malformed: number[];
  private readonly voter: Voter;
  private readonly cls: ChannelClass;
  private readonly credits: number;
  private gen = 0;
  private timer: NodeJS.Timeout | undefined;
  private reported: number[];
  private subscribed = new Set<number>();
  /** Set while closing: only late copies of delivered events are taken (and acknowledged). */
  private closing = false;
  private delivered = 0;
  private readyWaiters: { resolve(): void; reject(e: FitError): void }[] = [];
  failure: FitError | undefined;

  constructor(
    private readonly config: ClusterConfig,
    private readonly clientId: string,
    privateKey: KeyObject,
    private readonly o: SubscriberOptions,
  ) {
    const cls = config.table.channels.get(o.channel);
    if (!cls) throw new FitError('FIT_ERR_UNKNOWN_CHANNEL', `channel "${o.channel}" is not in ${config.file}; add it under channels:`, { channel: o.channel });
    const client = config.table.clients.get(clientId);
    if (!client) throw new FitError('FIT_ERR_UNKNOWN_CLIENT', `client "${clientId}" is not in ${config.file}; add it under clients:`, { client: clientId });
    if (!maySubscribe(client, o.channel)) {
      throw new FitError('FIT_ERR_NOT_AUTHORIZED', `client "${clientId}" may not subscribe to channel "${o.channel}"; add the channel to clients.${clientId}.subscribe in cluster.yaml`, {
        channel: o.channel,
        client: clientId,
      });
    }
    this.cls = cls;
    this.credits = Math.min(o.creditsEvents ?? config.limits.subscribeCreditsEvents, o.limit ?? Infinity);
    const n = config.replicas.length;
    this.malformed = new Array<number>(n).fill(0);
    this.reported = new Array<number>(n).fill(0);
    const limits = config.limits;
    this.voter = new Voter(
      {
        replicas: n,
        threshold: voteQuorum(cls.fault, config.f),
        ttlMs: cls.ttlMs,
        pendingMax: limits.voterPendingEventsMax,
        deliveredMax: limits.voterDeliveredEventsMax,
        pendingMs: limits.voterPendingMs,
      },
      { deliver: (rec) => this.deliver(rec), resolve: (c) => this.resolve(c) },
    );
    this.links = config.replicas.map(
      (r) =>
        new ReplicaLink(r, clientId, privateKey, limits, {
          onReady: (link) => this.subscribe(link),
          onFrame: (link, body) => this.onFrame(link, body),
          onDown: (link, reason) => this.onDown(link, reason),
        }),
    );
  }

  /** Connects to every replica; resolves once enough of them accepted the subscription. */
  start(): Promise<void> {
    for (const l of this.links) l.start();
    this.timer = setInterval(() => this.tick(), 100);
    return new Promise((resolve, reject) => {
      this.readyWaiters.push({ resolve, reject });
    });
  }

  summary(): SubscriberSummary {
    return {
      channel: this.o.channel,
      ...this.voter.counters,
      mismatches: Object.fromEntries(this.voter.mismatches.map((m, i) => [i, m])),
      malformedFrames: Object.fromEntries(this.malformed.map((m, i) => [i, m])),
      pending: this.voter.pendingCount,
    };
  }

  /**
   * Stops delivering, waits up to lingerMs for the replicas' remaining copies of what was
   * delivered (so they are acknowledged and not sent again to the client's next session),
   * then sends the final acknowledgements and evidence and closes every link.
   */
  async close(lingerMs = 500): Promise<void> {
    this.closing = true;
    const until = Date.now() + lingerMs;
    while (this.voter.incompleteCount > 0 && Date.now() < until && this.links.some((l) => l.ready)) {
      this.sendCredits(true);
      await new Promise((r) => setTimeout(r, 10));
    }
    clearInterval(this.timer);
    this.sendCredits(true);
    await this.report().catch(() => undefined);
    for (const l of this.links) l.stop();
  }

  private subscribe(link: ReplicaLink): void {
    const id = link.peekSeq();
    const stream = { id, gen: ++this.gen, acks: new StreamAcks(), ackedSent: 0 };
    this.streams.set(link.id, stream);
    link.request('subscribe', { channel: this.o.channel, credits: this.credits }).then(
      () => {
        this.refusals.delete(link.id);
        this.subscribed.add(link.id);
        if (this.subscribed.size >= voteQuorum(this.cls.fault, this.config.f)) this.settle();
      },
      (err: FitError) => {
        if (this.streams.get(link.id) === stream) this.streams.delete(link.id);
        this.refusals.set(link.id, err);
        this.checkRefusals();
      },
    );
  }

  private onDown(link: ReplicaLink, reason: FitError | undefined): void {
    this.streams.delete(link.id);
    this.subscribed.delete(link.id);
    if (reason) this.refusals.set(link.id, reason);
    this.checkRefusals();
  }

  private checkRefusals(): void {
    const err = believedRefusal(this.refusals.values(), voteQuorum(this.cls.fault, this.config.f));
    if (!err || this.failure) return;
    this.failure = err;
    this.settle(err);
    this.o.onError?.(err);
  }

  private settle(err?: FitError): void {
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const w of waiters) {
      if (err) w.reject(err);
      else w.resolve();
    }
  }

  private onFrame(link: ReplicaLink, body: Buffer): void {
    if (body[0] !== MessageType.Events) return;
    const stream = this.streams.get(link.id);
    let h;
    try {
      h = decodeEventsHeader(body);
    } catch {
      this.malformed[link.id]!++;
      return;
    }
    if (!stream || h.streamId !== stream.id) return;
    const now = Date.now();
    const cursor = new RecordCursor(body, h.recordsAt, this.config.limits.eventBytesMax);
    let pos = h.firstPos;
    try {
      while (cursor.next()) {
        stream.acks.received++;
        if (this.closing) this.voter.offerLate(link.id, cursor.record(), stream.gen * GEN + pos++);
        else this.voter.offer(link.id, cursor.record(), stream.gen * GEN + pos++, now);
      }
    } catch {
      // A replica that sends unparseable records is faulty; what parsed before still counts.
      this.malformed[link.id]!++;
    }
    if (stream.acks.received >= this.credits / 4) this.sendCredits(false);
  }

  private deliver(rec: Buffer): void {
    this.delivered++;
    this.o.onEvent(decodeRecord(rec, this.o.channel));
    if (this.o.limit !== undefined && this.delivered >= this.o.limit && !this.closing) {
      this.closing = true;
      this.o.onLimit?.();
    }
  }

  private resolve(c: Copy): void {
    const stream = this.streams.get(c.replica);
    if (stream && Math.floor(c.pos / GEN) === stream.gen) stream.acks.resolve(c.pos % GEN);
  }

  private tick(): void {
    this.voter.sweep(Date.now());
    this.sendCredits(true);
    void this.report().catch(() => undefined);
  }

  private sendCredits(evenIfFew: boolean): void {
    for (const l of this.links) {
      const s = this.streams.get(l.id);
      if (!s || !l.ready) continue;
      const ackedBelow = s.acks.ackedPos + 1;
      if (s.acks.received === 0 && ackedBelow === s.ackedSent) continue;
      if (!evenIfFew && s.acks.received < this.credits / 4) continue;
      l.send(encodeCredit(s.id, s.acks.received, ackedBelow));
      s.acks.received = 0;
      s.ackedSent = ackedBelow;
    }
  }

  /** Tells every replica how many copies each replica sent that did not match (the deltas). */
  private async report(): Promise<void> {
    const delta: Record<number, number> = {};
    let any = false;
    this.voter.mismatches.forEach((m, i) => {
      const d = m + this.malformed[i]! - this.reported[i]!;
      if (d > 0) {
        delta[i] = d;
        any = true;
      }
    });
    if (!any) return;
    this.reported = this.voter.mismatches.map((m, i) => m + this.malformed[i]!);
    await Promise.allSettled(this.links.filter((l) => l.ready).map((l) => l.request('report', { channel: this.o.channel, mismatches: delta })));
  }
}
