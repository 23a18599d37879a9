// L1 subscribe: one connection per replica, carrying one subscribe stream per channel; every
// copy is fed to that channel's voter, and each event is delivered once the channel's class is
// satisfied (f+1 byte-identical copies for bft, the first copy for cft). A SIEM reading fifty
// channels keeps n connections, not fifty times n. Flow control is by credits, per stream: a
// replica never pushes more than the subscriber granted, and the subscriber grants more only
// as its voter resolves what arrived, so a slow console costs a replica bounded memory, and a
// replica ahead of the others cannot push more copies than the voter has room to hold.
// Acknowledgements tell each replica which of its copies were resolved; the rest go back to
// the client's queue if the session ends.
//
// Voters are per channel: a replica keeps each publisher's order within one channel's queue,
// not across channels, and the voter's stale-copy floors rely on that order.

import type { KeyObject } from 'node:crypto';
import { FitError, maySubscribe, voteQuorum, type BrokerEvent, type ChannelClass, type ClientInfo } from '../core/index.js';
import { decodeEvents, encodeCredit, RecordDecoder, MessageType, RecordCursor, ORDERED_HEADER_BYTES, readOrdered } from '../codec/index.js';
import { tlsIdentityFor, type ClusterConfig } from '../config/index.js';
import { ReplicaLink, believedRefusal } from './link.js';
import { StreamAcks } from './acks.js';
import { Voter, type VoterCounters } from './voter.js';
import { OrderedVoter } from './ordered-voter.js';
import type { EventChecker } from '../protection/index.js';
import { channelChecker, checkOptions, protectionError, PublisherKeys } from './protection.js';

export interface SubscriberOptions {
  /** One channel; or give `channels`. */
  channel?: string;
  /** Several channels over the same n connections. */
  channels?: string[];
  onEvent(event: BrokerEvent): void;
  onError?(err: FitError): void;
  /** A replica is holding this client's connection back for a per-client limit (not an error: nothing is lost). */
  onNotice?(notice: FitError): void;
  creditsEvents?: number;
  /**
   * Deliver at most this many events (all channels together), then stop taking new ones (so
   * the rest stay queued for the client's next session) and call onLimit.
   */
  limit?: number;
  onLimit?(): void;
  /** For ordered channels: deliver from this seq on, if the replicas still hold it (default: where this client left off). */
  from?: number;
}

interface Stream {
  id: number;
  gen: number;
  replica: number;
  ch: ChannelState;
  acks: StreamAcks;
  ackedSent: number;
  /** Listed in creditsDue: enough copies resolved to grant credit after this frame. */
  due: boolean;
}

interface ChannelState {
  name: string;
  cls: ChannelClass;
  /** Unordered channels. */
  voter: Voter | undefined;
  /** Ordered channels: events delivered in the replicas' order, each with its seq. */
  ordered: OrderedVoter | undefined;
  /** The current stream from each replica, by replica id (an array: resolve() looks one up per copy). */
  streams: (Stream | undefined)[];
  subscribed: Set<number>;
  refusals: Map<number, FitError>;
  malformed: number[];
  reported: number[];
  /** Ordered channels: the seq each replica said its session starts at (the oldest it holds, when asked for older). */
  starts: Map<number, number>;
  /** HA / PKS / PKE: checks each version before it is delivered, and opens PKE content. */
  checker: EventChecker | undefined;
  /** Delivered PKE events this subscriber could not decrypt (it lacks the channel key). */
  undecryptable: number;
  /** When a protection failure was last reported through onError (at most one a second). */
  reportedForgeryMs: number;
}

export interface SubscriberSummary extends VoterCounters {
  channel: string;
  /** Copies from each replica that disagreed with the delivered event: evidence of a fault. */
  mismatches: Record<number, number>;
  malformedFrames: Record<number, number>;
  pending: number;
  /** Ordered channels: seqs given up on after voterPendingMs (the replicas dropped them; see their status). */
  skipped?: number;
  /** PKE events delivered by the vote that this subscriber could not decrypt (no channel key). */
  undecryptable: number;
}

const GEN = 0x1_0000_0000;
const VOTER_EVENTS_PER_CHANNEL_MIN = 1000;
const CREDITS_MIN = 64;

export class Subscriber {
  private readonly links: ReplicaLink[];
  private readonly channels: ChannelState[];
  /** Streams by replica id, then by stream id: where an EVENTS frame belongs. */
  private readonly byStreamId: Map<number, Stream>[];
  private readonly credits: number;
  private gen = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Set while closing: only late copies of delivered events are taken (and acknowledged). */
  private closing = false;
  private delivered = 0;
  /** Streams with a quarter of their credits resolved since the last grant: granted after the frame. */
  private creditsDue: Stream[] = [];
  /** Publisher and epoch strings decoded once per publishing process. */
  private readonly decoder = new RecordDecoder();
  private readyWaiters: { resolve(): void; reject(e: FitError): void }[] = [];
  private readonly publisherKeys: PublisherKeys;
  failure: FitError | undefined;

  constructor(
    private readonly config: ClusterConfig,
    private readonly clientId: string,
    privateKey: KeyObject,
    private readonly o: SubscriberOptions,
  ) {
    const names = o.channels ?? (o.channel !== undefined ? [o.channel] : []);
    if (names.length === 0 || new Set(names).size !== names.length) {
      throw new FitError('FIT_ERR_USAGE', 'subscribe needs at least one channel, each named once (e.g. --channel alerts or --channel alerts,metrics)');
    }
    const client = config.table.clients.get(clientId);
    if (!client) throw new FitError('FIT_ERR_UNKNOWN_CLIENT', `client "${clientId}" is not in ${config.file}; add it under clients:`, { client: clientId });
    // Every copy a replica pushes may wait in the voter until another replica's copy arrives:
    // n streams' credits must fit in the channel's share of voterPendingEventsMax, or replicas
    // drifting apart at saturation make the voter evict undecided events.
    const pendingShare = Math.max(VOTER_EVENTS_PER_CHANNEL_MIN, Math.ceil(config.limits.voterPendingEventsMax / Math.max(1, (o.channels ?? [o.channel]).length)));
    const fits = Math.max(CREDITS_MIN, Math.floor(pendingShare / config.replicas.length));
    this.credits = Math.min(o.creditsEvents ?? config.limits.subscribeCreditsEvents, fits, o.limit ?? Infinity);
    this.publisherKeys = new PublisherKeys(config);
    this.channels = names.map((name) => this.channelState(name, client, names.length));
    this.byStreamId = config.replicas.map(() => new Map());
    const tls = tlsIdentityFor(config, clientId);
    this.links = config.replicas.map(
      (r) =>
        new ReplicaLink(r, clientId, privateKey, config.limits, {
          onReady: (link) => this.subscribe(link),
          onFrame: (link, body) => this.onFrame(link, body),
          onNotice: (_link, notice) => this.o.onNotice?.(notice),
          onDown: (link, reason) => this.onDown(link, reason),
        }, undefined, tls),
    );
  }

  private channelState(name: string, client: ClientInfo, channelCount: number): ChannelState {
    const cls = this.config.table.channels.get(name);
    if (!cls) throw new FitError('FIT_ERR_UNKNOWN_CHANNEL', `channel "${name}" is not in ${this.config.file}; add it under channels:`, { channel: name });
    if (!maySubscribe(client, name)) {
      throw new FitError('FIT_ERR_NOT_AUTHORIZED', `client "${this.clientId}" may not subscribe to channel "${name}"; add the channel to clients.${this.clientId}.subscribe in cluster.yaml`, {
        channel: name,
        client: this.clientId,
      });
    }
    const n = this.config.replicas.length;
    const limits = this.config.limits;
    const ch: ChannelState = {
      name,
      cls,
      voter: undefined,
      ordered: undefined,
      streams: new Array<Stream | undefined>(n).fill(undefined),
      subscribed: new Set(),
      refusals: new Map(),
      malformed: new Array<number>(n).fill(0),
      reported: new Array<number>(n).fill(0),
      starts: new Map(),
      checker: channelChecker(this.config, name, cls, this.publisherKeys),
      undecryptable: 0,
      reportedForgeryMs: -Infinity,
    };
    const threshold = voteQuorum(cls.fault, this.config.f);
    const checker = ch.checker;
    const check = checker ? (buf: Buffer, start: number, end: number) => checker.check(buf, start, end) : undefined;
    const protection = checkOptions(checker, this.config, cls);
    const pendingMax = Math.max(VOTER_EVENTS_PER_CHANNEL_MIN, Math.ceil(limits.voterPendingEventsMax / channelCount));
    if (cls.order !== 'none') {
      ch.ordered = new OrderedVoter(
        { replicas: n, threshold, pendingMax, gapWaitMs: limits.voterPendingMs, ...(this.o.from !== undefined ? { from: this.o.from } : {}), ...(check ? { check, checkReason: () => checker!.reason } : {}) },
        {
          deliver: (seq, buf, start) => this.deliver(ch, buf, start, seq),
          resolve: (replica, pos) => this.resolve(ch, replica, pos),
          rejected: (_seq, buf, start, _end, mask, reason) => this.forged(ch, buf, start, mask, true, reason),
        },
      );
      return ch;
    }
    ch.voter = new Voter(
      {
        replicas: n,
        threshold: voteQuorum(cls.fault, this.config.f),
        ttlMs: cls.ttlMs,
        // The limits bound the whole Subscriber: fifty channels must not mean fifty times the
        // memory (a 5-million-event run over 50 channels grew subscribers past 2 GB before).
        pendingMax: Math.max(VOTER_EVENTS_PER_CHANNEL_MIN, Math.ceil(limits.voterPendingEventsMax / channelCount)),
        deliveredMax: Math.max(VOTER_EVENTS_PER_CHANNEL_MIN, Math.ceil(limits.voterDeliveredEventsMax / channelCount)),
        pendingMs: limits.voterPendingMs,
        ...protection,
      },
      {
        deliver: (buf, start) => this.deliver(ch, buf, start),
        resolve: (replica, pos) => this.resolve(ch, replica, pos),
        forged: (buf, start, _end, mask, byPublisher, reason) => this.forged(ch, buf, start, mask, byPublisher, reason),
        unverifiable: (buf, start, _end, reason) => this.unverifiable(ch, buf, start, reason),
        equivocated: (buf, start) => this.equivocated(ch, buf, start),
      },
    );
    return ch;
  }

  /** Events f+1 replicas vouch for, from a publisher this subscriber's config lacks: said, at most once a second per channel. */
  private unverifiable(ch: ChannelState, buf: Buffer, start: number, reason: string): void {
    const now = performance.now();
    if (now - ch.reportedForgeryMs < 1000) return;
    ch.reportedForgeryMs = now;
    const publisher = this.decoder.decodeAt(buf, start, ch.name).publisher;
    this.o.onError?.(
      new FitError('FIT_ERR_UNKNOWN_CLIENT', `events on channel "${ch.name}" from "${publisher}" cannot be verified here: ${reason}; they wait (up to voterPendingMs) for this subscriber's cluster.yaml to list that client`, {
        channel: ch.name,
        client: publisher,
      }),
    );
  }

  /**
   * A version failed the channel's check. The replicas that sent it are blamed through the
   * mismatch evidence once another version wins; one the publisher sealed wrongly is reported
   * here, at most once a second per channel (the counters keep the full count).
   */
  private forged(ch: ChannelState, buf: Buffer, start: number, mask: number, byPublisher: boolean, reason: string): void {
    const now = performance.now();
    if (!byPublisher || now - ch.reportedForgeryMs < 1000) return;
    ch.reportedForgeryMs = now;
    const replicas = this.config.replicas.map((r) => r.id).filter((id) => mask & (1 << id));
    this.o.onError?.(protectionError(ch.name, this.decoder.decodeAt(buf, start, ch.name).publisher, reason || 'it was sealed wrongly', replicas));
  }

  /**
   * The publisher signed two versions of one event: said, at most once a second per channel
   * (the counter keeps the full count); the replicas that passed the second on are not blamed.
   */
  private equivocated(ch: ChannelState, buf: Buffer, start: number): void {
    const now = performance.now();
    if (now - ch.reportedForgeryMs < 1000) return;
    ch.reportedForgeryMs = now;
    const publisher = this.decoder.decodeAt(buf, start, ch.name).publisher;
    this.o.onError?.(
      new FitError('FIT_ERR_FORGED', `publisher "${publisher}" signed two different versions of one event on channel "${ch.name}": it equivocated (the one delivered is the first valid version; no replica is blamed for passing the other on)`, {
        channel: ch.name,
        publisher,
      }),
    );
  }

  /** Connects to every replica; resolves once enough of them accepted every subscription. */
  start(): Promise<void> {
    for (const l of this.links) l.start();
    this.timer = setInterval(() => this.tick(), 100);
    return new Promise((resolve, reject) => {
      this.readyWaiters.push({ resolve, reject });
    });
  }

  /** One summary per channel. */
  summaries(): SubscriberSummary[] {
    return this.channels.map((ch) => {
      if (ch.ordered) {
        const c = ch.ordered.counters;
        return {
          channel: ch.name,
          delivered: c.delivered,
          expired: 0,
          undecided: 0,
          stale: c.stale + c.ahead,
          duplicateCopies: c.duplicateCopies,
          skipped: c.skipped,
          forged: c.rejected,
          rejected: c.rejected,
          // An ordered channel delivers the version f+1 replicas decided: a second signed one is never compared.
          equivocations: 0,
          floorsForced: 0,
          undecryptable: ch.undecryptable,
          mismatches: Object.fromEntries(c.mismatches.map((m, i) => [i, m])),
          malformedFrames: Object.fromEntries(ch.malformed.map((m, i) => [i, m + c.malformed[i]!])),
          pending: ch.ordered.pending,
        };
      }
      const v = ch.voter!;
      return {
        channel: ch.name,
        ...v.counters,
        undecryptable: ch.undecryptable,
        mismatches: Object.fromEntries(v.mismatches.map((m, i) => [i, m])),
        malformedFrames: Object.fromEntries(ch.malformed.map((m, i) => [i, m])),
        pending: v.pendingCount,
      };
    });
  }

  /** The channels' summaries added up (the channel field lists them). */
  summary(): SubscriberSummary {
    const all = this.summaries();
    const total = { ...all[0]!, channel: all.map((s) => s.channel).join(','), mismatches: { ...all[0]!.mismatches }, malformedFrames: { ...all[0]!.malformedFrames } };
    for (const s of all.slice(1)) {
      for (const k of ['delivered', 'expired', 'undecided', 'stale', 'duplicateCopies', 'pending', 'forged', 'rejected', 'equivocations', 'floorsForced', 'undecryptable'] as const) total[k] += s[k];
      if (s.skipped !== undefined) total.skipped = (total.skipped ?? 0) + s.skipped;
      for (const [r, m] of Object.entries(s.mismatches)) total.mismatches[Number(r)] = (total.mismatches[Number(r)] ?? 0) + m;
      for (const [r, m] of Object.entries(s.malformedFrames)) total.malformedFrames[Number(r)] = (total.malformedFrames[Number(r)] ?? 0) + m;
    }
    return total;
  }

  /**
   * Stops delivering, waits up to lingerMs for the replicas' remaining copies of what was
   * delivered (so they are acknowledged and not sent again to the client's next session),
   * then sends the final acknowledgements and evidence and closes every link.
   */
  async close(lingerMs = 500): Promise<void> {
    this.closing = true;
    const until = Date.now() + lingerMs;
    while (this.channels.some((ch) => (ch.voter?.incompleteCount ?? 0) > 0) && Date.now() < until && this.links.some((l) => l.ready)) {
      this.grantAll();
      await new Promise((r) => setTimeout(r, 10));
    }
    clearInterval(this.timer);
    this.grantAll();
    await this.report().catch(() => undefined);
    for (const l of this.links) l.stop();
  }

  private subscribe(link: ReplicaLink): void {
    for (const ch of this.channels) {
      const stream: Stream = { id: link.peekSeq(), gen: ++this.gen, replica: link.id, ch, acks: new StreamAcks(), ackedSent: 0, due: false };
      ch.streams[link.id] = stream;
      this.byStreamId[link.id]!.set(stream.id, stream);
      const from = ch.ordered && this.o.from !== undefined ? { from: this.o.from } : {};
      link.request('subscribe', { channel: ch.name, credits: this.credits, ...from }).then(
        (reply) => {
          if (ch.ordered && typeof reply.from === 'number') this.startedAt(ch, link.id, reply.from);
          ch.refusals.delete(link.id);
          ch.subscribed.add(link.id);
          ch.voter?.setLive(link.id, true);
          if (this.channels.every((c) => c.subscribed.size >= voteQuorum(c.cls.fault, this.config.f))) this.settle();
        },
        (err: FitError) => {
          if (ch.streams[link.id] === stream) ch.streams[link.id] = undefined;
          this.byStreamId[link.id]!.delete(stream.id);
          ch.refusals.set(link.id, err);
          this.checkRefusals(ch);
        },
      );
    }
  }

  /**
   * Asked for seqs older than the replicas hold, every session starts later: once fewer than
   * f+1 replicas can still send a seq it can never be delivered, so the voter gives those up at
   * once (counted as skipped) rather than waiting voterPendingMs for the hole. The (f+1)-th
   * smallest start of 2f+1 replicas: the f faulty cannot make it skip what f+1 correct hold.
   */
  private startedAt(ch: ChannelState, replica: number, start: number): void {
    ch.starts.set(replica, start);
    const f = this.config.f;
    if (this.o.from === undefined || ch.starts.size < 2 * f + 1) return;
    const sorted = [...ch.starts.values()].sort((a, b) => a - b);
    ch.ordered!.skipTo(sorted[f]!, Date.now());
  }

  private onDown(link: ReplicaLink, reason: FitError | undefined): void {
    this.byStreamId[link.id]!.clear();
    for (const ch of this.channels) {
      ch.streams[link.id] = undefined;
      ch.subscribed.delete(link.id);
      ch.voter?.setLive(link.id, false);
      if (reason) ch.refusals.set(link.id, reason);
      this.checkRefusals(ch);
    }
  }

  private checkRefusals(ch: ChannelState): void {
    const err = believedRefusal(ch.refusals.values(), voteQuorum(ch.cls.fault, this.config.f));
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
    let sections;
    try {
      sections = decodeEvents(body);
    } catch {
      this.channels[0]!.malformed[link.id]!++;
      return;
    }
    const now = Date.now();
    const streams = this.byStreamId[link.id]!;
    for (const h of sections) {
      const stream = streams.get(h.streamId);
      if (!stream || stream.ch.streams[link.id] !== stream) continue;
      let pos = stream.gen * GEN + h.firstPos;
      const ordered = stream.ch.ordered;
      if (ordered) {
        // While closing, nothing new is taken: what was not resolved is read again next session.
        if (!this.closing) ordered.offerSection(link.id, body, h.recordsAt, h.recordsEnd, pos, now);
        continue;
      }
      const voter = stream.ch.voter!;
      const eventBytesMax = this.config.limits.eventBytesMax;
      try {
        if (!this.closing) {
          voter.offerSection(link.id, body, h.recordsAt, h.recordsEnd, pos, now, eventBytesMax);
          continue;
        }
        const cursor = new RecordCursor(body, h.recordsAt, eventBytesMax, h.recordsEnd);
        while (cursor.next()) voter.offerLateAt(link.id, body, cursor.start, cursor.end, pos++);
      } catch {
        // A replica that sends unparseable records is faulty; what parsed before still counts.
        stream.ch.malformed[link.id]!++;
      }
    }
    // Copies of any stream may have been resolved by this frame (an event decided by this
    // replica's copy resolves the other replicas' copies of it): resolve() listed those due.
    this.grantDue();
  }

  private deliver(ch: ChannelState, buf: Buffer, start: number, seq?: number): void {
    const event = this.decoder.decodeAt(buf, start, ch.name);
    if (ch.checker?.protection === 'pke') {
      const plain = ch.checker.open(buf, start);
      if (plain === undefined) {
        ch.undecryptable++;
        if (performance.now() - ch.reportedForgeryMs < 1000) return;
        ch.reportedForgeryMs = performance.now();
        this.o.onError?.(new FitError('FIT_ERR_KEY', `cannot decrypt an event of channel "${ch.name}" from ${event.publisher}: ${ch.checker.reason}`, { channel: ch.name, publisher: event.publisher }));
        return;
      }
      event.content = plain;
    }
    this.delivered++;
    if (seq !== undefined) {
      event.seq = seq;
      if (ch.cls.order === 'global') event.global = readOrdered(buf, start - ORDERED_HEADER_BYTES).global;
    }
    this.o.onEvent(event);
    if (this.o.limit !== undefined && this.delivered >= this.o.limit && !this.closing) {
      this.closing = true;
      this.o.onLimit?.();
    }
  }

  private resolve(ch: ChannelState, replica: number, pos: number): void {
    const stream = ch.streams[replica];
    if (!stream || Math.floor(pos / GEN) !== stream.gen) return;
    stream.acks.resolve(pos % GEN);
    if (!stream.due && stream.acks.resolved >= this.credits / 4) {
      stream.due = true;
      this.creditsDue.push(stream);
    }
  }

  /**
   * Grants credit to the streams resolve() found due, not to every stream of every link: with
   * fifty channels that scan ran after every frame, most of the time for nothing.
   */
  private grantDue(): void {
    const due = this.creditsDue;
    if (due.length === 0) return;
    this.creditsDue = [];
    for (const s of due) {
      s.due = false;
      const link = this.links[s.replica]!;
      if (link.ready && s.ch.streams[s.replica] === s) this.grant(link, s);
    }
  }

  private tick(): void {
    const now = Date.now();
    for (const ch of this.channels) {
      ch.voter?.sweep(now);
      ch.ordered?.tick(now);
    }
    this.grantAll();
    void this.report().catch(() => undefined);
  }

  /** Grants every stream what it has resolved, however little (the timer, and closing). */
  private grantAll(): void {
    for (const l of this.links) {
      if (!l.ready) continue;
      for (const ch of this.channels) {
        const s = ch.streams[l.id];
        if (s && (s.acks.resolved > 0 || s.acks.ackedPos + 1 !== s.ackedSent)) this.grant(l, s);
      }
    }
  }

  private grant(link: ReplicaLink, s: Stream): void {
    const ackedBelow = s.acks.ackedPos + 1;
    link.send(encodeCredit(s.id, s.acks.resolved, ackedBelow));
    s.acks.resolved = 0;
    s.ackedSent = ackedBelow;
  }

  /** Tells every replica how many copies each replica sent that did not match (the deltas). */
  private async report(): Promise<void> {
    const requests: Promise<unknown>[] = [];
    for (const ch of this.channels) {
      const delta: Record<number, number> = {};
      let any = false;
      const mismatches = ch.ordered ? ch.ordered.counters.mismatches.map((m, i) => m + ch.ordered!.counters.malformed[i]!) : ch.voter!.mismatches;
      mismatches.forEach((m, i) => {
        const d = m + ch.malformed[i]! - ch.reported[i]!;
        if (d > 0) {
          delta[i] = d;
          any = true;
        }
      });
      if (!any) continue;
      ch.reported = mismatches.map((m, i) => m + ch.malformed[i]!);
      for (const l of this.links) if (l.ready) requests.push(l.request('report', { channel: ch.name, mismatches: delta }));
    }
    await Promise.allSettled(requests);
  }
}
