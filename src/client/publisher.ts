// L1 publish, with the service proxy underneath: events are written straight into a batch
// frame (no intermediate objects), each batch goes to every replica as the same bytes, and a
// batch counts as published once the channel's quorum acknowledged it: 2f+1 replicas for bft
// (so f+1 correct ones hold it and every voter can reach f+1 matching copies), and for cft
// every replica not known to be down (at least one) — the paper's "publishing in all replicas".
// A replica that stops reading while the others make the quorum is left behind rather than
// buffered for without bound (feeds.ts, limits.publishLagBytesMax).
//
// Event ids: a random 8-byte epoch per Publisher and a sequence number that rises in the order
// events are sent, so a restarted or concurrent process never reuses an id, and a replica can
// drop anything at or below the last sequence number it accepted from this epoch. Sequence
// numbers are written when a batch leaves the outbox, not when an event is queued: that is what
// lets an urgent batch overtake queued ones without ever sending a lower seq after a higher.

import { randomBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import {
  ContentType,
  FitError,
  PRIORITY_URGENT,
  mayPublish,
  publishQuorum,
  voteQuorum,
  type ChannelClass,
  type Priority,
} from '../core/index.js';
import {
  decodeAck,
  decodeJson,
  MessageType,
  numberRecords,
  PUBLISH_SEQ_AT,
  PUBLISH_FIXED_BYTES,
  publishSectionHeaderBytes,
  recordBytes,
  writePublishFrameHeader,
  writePublishSection,
  writeRecord,
  EPOCH_BYTES,
} from '../codec/index.js';
import { PROTECTION_CODE, type BatchSigner, type EventSealer } from '../protection/index.js';
import { tlsIdentityFor, type ClusterConfig } from '../config/index.js';
import { ReplicaLink, believedRefusal } from './link.js';
import { batchSigner, channelSealer } from './protection.js';
import { ReplicaFeeds, type PublisherStatus, type ReplicaFeedStats } from './feeds.js';

export interface PublishOptions {
  priority?: Priority;
  /** Content type when content is a Buffer or string; objects are always JSON. */
  contentType?: ContentType;
  timestampMs?: number;
}

/** Events queued for one channel of the next frame; the buffer is reused from frame to frame. */
interface OpenSection {
  channel: string;
  channelBytes: Buffer;
  fault: ChannelClass['fault'];
  /** An ordered channel: its events count against limits.publishWindowOrderedEvents. */
  ordered: boolean;
  /** HA / PKS / PKE: fills the records' trailers once they are numbered. */
  sealer: EventSealer | undefined;
  buf: Buffer;
  offset: number;
  count: number;
  /** Frames sealed in a row without an event of this channel. */
  idleSeals: number;
}

/** First allocation of a section's buffer; it doubles as events arrive. */
const SECTION_BYTES_INITIAL = 8 * 1024;
/**
 * A channel's section buffer is given back after this many frames without an event of it.
 * At a paced load most frames hold a few of many channels' events; a buffer given back at the
 * first silent frame was allocated again a frame later (an 8 KiB allocation per event, the
 * largest publisher cost at 30,000 events/s over 50 channels).
 */
const SECTION_IDLE_SEALS_MAX = 256;

interface Batch {
  seq: number;
  fault: ChannelClass['fault'];
  frame: Buffer;
  /** [recordsAt, recordsEnd) of each section, to number the records when the frame is sent. */
  ranges: number[];
  /** Each section's sealer, to seal its records once numbered. */
  sealers: (EventSealer | undefined)[];
  count: number;
  /** Of count, events of ordered channels (limits.publishWindowOrderedEvents). */
  orderedCount: number;
  acks: Set<number>;
  errors: Map<number, FitError>;
}

export interface PublisherOptions {
  /** Told when a replica is left behind (not reading) and when it caught up; see feeds.ts. */
  onStatus?(status: PublisherStatus): void;
}

export interface PublisherCounters {
  events: number;
  batches: number;
  acknowledged: number;
  duplicates: number;
  /** Notices of replicas holding this publisher back for a per-client limit (reported through onStatus). */
  notices: number;
}

/** Refusals at the handshake that no retry will change: the client, its key or its certificate. */
const FINAL_AT_HANDSHAKE = new Set(['FIT_ERR_UNKNOWN_CLIENT', 'FIT_ERR_AUTH_FAILED', 'FIT_ERR_TLS_HANDSHAKE', 'FIT_ERR_TLS_REQUIRED']);

export class Publisher {
  private readonly links: ReplicaLink[];
  private readonly feeds: ReplicaFeeds;
  private readonly epoch = randomBytes(EPOCH_BYTES);
  private readonly idBytes: Buffer;
  private seq = 0;
  /** Published on an ordered channel: a timeout may then be the order's queue (timeoutError). */
  private orderedUsed = false;
  /** Events of ordered channels published and not yet acknowledged (open, outbox and in flight). */
  private orderedUnacked = 0;
  /** Of orderedUnacked, the events in batches sent: what pump() keeps within the window. */
  private orderedInflight = 0;
  private nextBatchSeq = 1;
  /** The next frame, by channel: one frame carries every channel's events (a section each). */
  private readonly open = new Map<string, OpenSection>();
  private openBytes = 0;
  private openEvents = 0;
  private readonly outbox: Batch[] = [];
  private readonly inflight = new Map<number, Batch>();
  /** One per protected channel this process published on: it keeps the tree and PKE key state. */
  private readonly sealers = new Map<string, EventSealer | undefined>();
  /** Signs the pks and pke events of each frame as it leaves, in trees that may span its channels. */
  private readonly signer: BatchSigner;
  private sealScheduled = false;
  /** When the last frame was sealed (performance.now()), for limits.publishLingerMs. */
  private lastSealMs = -Infinity;
  private failure: FitError | undefined;
  private waiters: (() => boolean)[] = [];
  readonly counters: PublisherCounters = { events: 0, batches: 0, acknowledged: 0, duplicates: 0, notices: 0 };

  constructor(
    private readonly config: ClusterConfig,
    private readonly clientId: string,
    privateKey: KeyObject,
    options: PublisherOptions = {},
  ) {
    this.idBytes = Buffer.from(clientId, 'utf8');
    this.signer = batchSigner(config, privateKey);
    const tls = tlsIdentityFor(config, clientId);
    this.links = config.replicas.map(
      (r) =>
        new ReplicaLink(r, clientId, privateKey, config.limits, {
          onReady: (link) => this.resend(link),
          onFrame: (link, body) => this.onFrame(link, body),
          onNotice: (link, notice) => {
            this.counters.notices++;
            options.onStatus?.({ type: 'replicaNotice', replica: link.id, notice });
          },
          onDown: () => this.onDown(),
        }, undefined, tls),
    );
    this.feeds = new ReplicaFeeds(this.links, {
      limitBytes: config.limits.publishLagBytesMax,
      quorum: (fault) => publishQuorum(fault, config.f),
      inflight: () => this.inflight.values(),
      ...(options.onStatus ? { onStatus: options.onStatus } : {}),
    });
  }

  /** The epoch that makes this process's event ids unique, as it appears in delivered ids. */
  get epochHex(): string {
    return this.epoch.toString('hex');
  }

  connect(): this {
    for (const l of this.links) l.start();
    return this;
  }

  /** Events of ordered channels sent and not yet acknowledged: at most publishWindowOrderedEvents, or one batch when that is more. */
  get orderedInFlight(): number {
    return this.orderedInflight;
  }

  get readyReplicas(): number {
    return this.links.filter((l) => l.ready).length;
  }

  /**
   * Per replica: what waits in this process for it, how far it lags the quorum, whether it is
   * left behind (not reading, past limits.publishLagBytesMax) and what it missed while it was.
   */
  replicaStats(): ReplicaFeedStats[] {
    return this.feeds.stats();
  }

  /**
   * Queues one event. Returns false when the window of unacknowledged batches is full:
   * await drained() before publishing more. Throws at once on a channel this client may not
   * use or an event over the size limit, without sending anything.
   */
  publish(channel: string, content: string | Buffer | object, opts: PublishOptions = {}): boolean {
    if (this.failure) throw this.failure;
    const cls = this.checkChannel(channel);
    const ordered = cls.order !== 'none';
    if (ordered) this.orderedUsed = true;
    const priority = opts.priority ?? cls.priority;
    let bytes: Buffer;
    let contentType: ContentType;
    if (Buffer.isBuffer(content)) [bytes, contentType] = [content, opts.contentType ?? ContentType.Binary];
    else if (typeof content === 'string') [bytes, contentType] = [Buffer.from(content, 'utf8'), opts.contentType ?? ContentType.Text];
    else [bytes, contentType] = [Buffer.from(JSON.stringify(content), 'utf8'), ContentType.Json];
    const sealer = this.sealerOf(channel, cls);
    const trailerBytes = sealer?.trailerBytes(this.signer.treeDepth) ?? 0;
    const size = recordBytes(this.idBytes.length, bytes.length, trailerBytes);
    const limits = this.config.limits;
    if (size > limits.eventBytesMax) {
      throw new FitError('FIT_ERR_EVENT_TOO_LARGE', `an event of ${size} bytes is over the limit of ${limits.eventBytesMax}; split the content or raise limits.eventBytesMax`, {
        channel,
        eventBytes: size,
        limitBytes: limits.eventBytesMax,
      });
    }
    let sec = this.open.get(channel);
    const sectionBytes = sec && sec.count > 0 ? 0 : publishSectionHeaderBytes(sec?.channelBytes ?? Buffer.from(channel, 'utf8'));
    if (this.openEvents > 0 && this.openBytes + sectionBytes + size > limits.batchBytesMax) {
      this.sealAll();
      sec = this.open.get(channel);
    }
    sec ??= this.openSection(channel, cls, sealer);
    if (sec.offset + size > sec.buf.length) this.grow(sec, sec.offset + size);
    const before = sec.offset;
    sec.offset = writeRecord(sec.buf, sec.offset, {
      publisher: this.idBytes,
      epoch: this.epoch,
      seq: 0,
      timestampMs: opts.timestampMs ?? Date.now(),
      priority,
      contentType,
      content: bytes,
      protection: PROTECTION_CODE[cls.protection],
      trailerBytes,
    });
    if (sec.count++ === 0) this.openBytes += publishSectionHeaderBytes(sec.channelBytes);
    this.openBytes += sec.offset - before;
    this.openEvents++;
    if (ordered) this.orderedUnacked++;
    this.counters.events++;
    // Urgent events never wait for a frame to fill, nor behind frames waiting for the window:
    // the frame holding one goes to the front of the outbox.
    if (priority === PRIORITY_URGENT) this.sealAll(true);
    else if (this.openEvents >= limits.batchEventsMax) this.sealAll();
    else this.scheduleSeal();
    return this.hasRoom();
  }

  /** Resolves when there is room in the window again; rejects after timeoutMs without. */
  drained(timeoutMs = 30_000): Promise<void> {
    return this.waitWithin(this.hasRoom, timeoutMs);
  }

  /**
   * The window: batches unacknowledged, and events of ordered channels unacknowledged. The
   * second bounds how long a saturating publisher's events wait in front of the order (about
   * the window over the order's rate), and holds its unordered events too: one window per
   * publisher, as a Kafka producer has one buffer.
   */
  private readonly hasRoom = (): boolean => {
    const limits = this.config.limits;
    return this.inflight.size + this.outbox.length < limits.publishWindowBatches && this.orderedUnacked < limits.publishWindowOrderedEvents;
  };

  /** Resolves once every event published so far is acknowledged by its quorum. */
  flush(timeoutMs = 30_000): Promise<void> {
    this.sealAll();
    return this.waitWithin(() => this.inflight.size === 0 && this.outbox.length === 0, timeoutMs);
  }

  private async waitWithin(cond: () => boolean, timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(this.timeoutError(timeoutMs)), timeoutMs);
    });
    try {
      await Promise.race([this.waitFor(cond), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    for (const l of this.links) l.stop();
  }

  private checkChannel(channel: string): ChannelClass {
    const cls = this.config.table.channels.get(channel);
    if (!cls) throw new FitError('FIT_ERR_UNKNOWN_CHANNEL', `channel "${channel}" is not in ${this.config.file}; add it under channels:`, { channel });
    const client = this.config.table.clients.get(this.clientId);
    if (!client) throw new FitError('FIT_ERR_UNKNOWN_CLIENT', `client "${this.clientId}" is not in ${this.config.file}; add it under clients:`, { client: this.clientId });
    if (!mayPublish(client, channel)) {
      throw new FitError('FIT_ERR_NOT_AUTHORIZED', `client "${this.clientId}" may not publish on channel "${channel}"; add the channel to clients.${this.clientId}.publish in cluster.yaml`, {
        channel,
        client: this.clientId,
      });
    }
    return cls;
  }

  /** The channel's sealer, made at its first event: a missing channel key fails that publish, clearly. */
  private sealerOf(channel: string, cls: ChannelClass): EventSealer | undefined {
    if (this.sealers.has(channel)) return this.sealers.get(channel);
    const sealer = channelSealer(this.config, channel, cls);
    this.sealers.set(channel, sealer);
    return sealer;
  }

  private openSection(channel: string, cls: ChannelClass, sealer: EventSealer | undefined): OpenSection {
    const sec: OpenSection = { channel, channelBytes: Buffer.from(channel, 'utf8'), fault: cls.fault, ordered: cls.order !== 'none', sealer, buf: Buffer.allocUnsafe(SECTION_BYTES_INITIAL), offset: 0, count: 0, idleSeals: 0 };
    this.open.set(channel, sec);
    return sec;
  }

  private grow(sec: OpenSection, needed: number): void {
    let capacity = sec.buf.length;
    while (capacity < needed) capacity *= 2;
    const buf = Buffer.allocUnsafe(capacity);
    sec.buf.copy(buf, 0, 0, sec.offset);
    sec.buf = buf;
  }

  /**
   * Seals at the end of this event-loop turn, or, if a frame left less than publishLingerMs
   * ago, once that much time has passed: at a steady rate each frame (and its n acks) then
   * carries what arrived meanwhile, while an event after a quiet spell leaves at once.
   */
  private scheduleSeal(): void {
    if (this.sealScheduled) return;
    this.sealScheduled = true;
    const wait = this.lastSealMs + this.config.limits.publishLingerMs - performance.now();
    if (wait <= 0) setImmediate(this.sealScheduledNow);
    else setTimeout(this.sealScheduledNow, wait);
  }

  private readonly sealScheduledNow = (): void => {
    this.sealScheduled = false;
    this.sealAll();
  };

  /**
   * Turns the open sections into frames: one per fault class, because a frame is acknowledged
   * as a whole and cft and bft count their quorums differently (nearly always just one).
   */
  private sealAll(urgent = false): void {
    if (this.openEvents === 0) return;
    this.lastSealMs = performance.now();
    const frames: Batch[] = [];
    for (const fault of ['bft', 'cft'] as const) {
      const secs = [...this.open.values()].filter((s) => s.fault === fault && s.count > 0);
      if (secs.length > 0) frames.push(this.frameOf(fault, secs));
    }
    // Section buffers are kept for the next frames; a channel silent for long gives its back.
    for (const [channel, sec] of this.open) {
      if (sec.count > 0) sec.idleSeals = 0;
      else if (++sec.idleSeals > SECTION_IDLE_SEALS_MAX) this.open.delete(channel);
      sec.offset = 0;
      sec.count = 0;
    }
    this.openBytes = 0;
    this.openEvents = 0;
    if (urgent) this.outbox.unshift(...frames);
    else this.outbox.push(...frames);
    this.pump();
  }

  private frameOf(fault: ChannelClass['fault'], secs: OpenSection[]): Batch {
    let bytes = PUBLISH_FIXED_BYTES;
    for (const s of secs) bytes += publishSectionHeaderBytes(s.channelBytes) + s.offset;
    const frame = Buffer.allocUnsafe(bytes);
    let o = writePublishFrameHeader(frame, secs.length, bytes);
    const ranges: number[] = [];
    const sealers: (EventSealer | undefined)[] = [];
    let count = 0;
    let orderedCount = 0;
    for (const s of secs) {
      o = writePublishSection(frame, o, s.channelBytes, s.count, s.offset);
      ranges.push(o, o + s.offset);
      sealers.push(s.sealer);
      o += s.buf.copy(frame, o, 0, s.offset);
      count += s.count;
      if (s.ordered) orderedCount += s.count;
    }
    return { seq: 0, fault, frame, ranges, sealers, count, orderedCount, acks: new Set<number>(), errors: new Map<number, FitError>() };
  }

  private pump(): void {
    const window = this.config.limits.publishWindowBatches;
    const orderedWindow = this.config.limits.publishWindowOrderedEvents;
    while (this.outbox.length > 0 && this.inflight.size < window) {
      // Sent ordered events stay within their window even when the caller ignores publish()
      // returning false: the replicas remember a process's requests with at most that many
      // out of order, and one decided behind more would be taken for decided (limits.md).
      const next = this.outbox[0]!;
      if (next.orderedCount > 0 && this.orderedInflight > 0 && this.orderedInflight + next.orderedCount > orderedWindow) break;
      const b = this.outbox.shift()!;
      this.orderedInflight += b.orderedCount;
      b.seq = this.nextBatchSeq++;
      for (let i = 0; i < b.ranges.length; i += 2) {
        this.seq = numberRecords(b.frame, b.ranges[i]!, this.seq, b.ranges[i + 1]);
        b.sealers[i / 2]?.seal(b.frame, b.ranges[i]!, b.ranges[i + 1]!, this.signer);
      }
      this.signer.finish();
      b.frame.writeUInt32BE(b.seq, PUBLISH_SEQ_AT);
      this.inflight.set(b.seq, b);
      this.counters.batches++;
      this.feeds.send(b);
    }
  }

  /** A replica (re)connected: send it every batch in flight it has not acknowledged, in order. */
  private resend(link: ReplicaLink): void {
    this.feeds.ready(link);
    this.recheckAll();
  }

  private onFrame(link: ReplicaLink, body: Buffer): void {
    if (body[0] === MessageType.Ack) {
      const a = decodeAck(body);
      this.feeds.answered(link, a.reqSeq);
      const b = this.inflight.get(a.reqSeq);
      if (!b) return;
      b.acks.add(link.id);
      b.errors.delete(link.id);
      this.counters.duplicates += a.duplicates;
      this.check(b);
    } else if (body[0] === MessageType.Reply) {
      const msg = decodeJson(body);
      this.feeds.answered(link, Number(msg.seq));
      const b = this.inflight.get(Number(msg.seq));
      if (!b || msg.ok !== false || b.acks.has(link.id)) return;
      b.errors.set(link.id, FitError.fromJSON(msg.error));
      this.check(b);
    }
  }

  private onDown(): void {
    // A refusal at the handshake (unknown client, wrong key) believed by f+1 replicas is final.
    const refusal = believedRefusal(
      this.links.map((l) => l.lastError),
      Math.min(this.links.length, this.config.f + 1),
    );
    if (refusal && FINAL_AT_HANDSHAKE.has(refusal.code)) return this.fail(refusal);
    this.feeds.down();
    this.recheckAll();
  }

  private recheckAll(): void {
    for (const b of [...this.inflight.values()]) this.check(b);
  }

  private check(b: Batch): void {
    const f = this.config.f;
    const n = this.links.length;
    const quorum = publishQuorum(b.fault, f);
    const done =
      b.fault === 'bft'
        ? b.acks.size >= quorum
        : b.acks.size >= quorum && this.links.every((l) => l.down || b.acks.has(l.id) || b.errors.has(l.id));
    if (done) {
      this.inflight.delete(b.seq);
      this.feeds.done(b);
      this.counters.acknowledged += b.count;
      this.orderedUnacked -= b.orderedCount;
      this.orderedInflight -= b.orderedCount;
      this.pump();
      return this.wake();
    }
    // A refusal is believed once enough replicas agree on it that one of them is correct,
    // or once the refusals leave too few replicas to ever reach the quorum.
    const byCode = new Map<string, FitError[]>();
    for (const e of b.errors.values()) byCode.set(e.code, [...(byCode.get(e.code) ?? []), e]);
    for (const errs of byCode.values()) {
      if (errs.length >= voteQuorum(b.fault, f) || n - b.errors.size < quorum) return this.fail(errs[0]!);
    }
  }

  private fail(err: FitError): void {
    this.failure = err;
    this.wake();
  }

  private waitFor(cond: () => boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      const test = (): boolean => {
        if (this.failure) reject(this.failure);
        else if (cond()) resolve();
        else return false;
        return true;
      };
      if (!test()) this.waiters.push(test);
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) if (!w()) this.waiters.push(w);
  }

  private timeoutError(timeoutMs: number): FitError {
    const pending = [...this.inflight.values()];
    const reachable = this.links.filter((l) => l.ready).map((l) => l.id);
    const refused = this.links.find((l) => l.lastError)?.lastError;
    const needed = pending[0] ? publishQuorum(pending[0].fault, this.config.f) : 0;
    // Enough replicas connected and none acknowledging: they are holding this publisher back.
    const held = needed > 0 && reachable.length >= needed;
    return new FitError(
      'FIT_ERR_QUORUM_TIMEOUT',
      `${pending.reduce((n, b) => n + b.count, 0) + this.outbox.reduce((n, b) => n + b.count, 0)} events were not acknowledged by ${needed} replicas within ${timeoutMs} ms; ` +
        `replicas reachable: [${reachable.join(', ')}] of ${this.links.length}${refused ? ` (last refusal: ${refused.message})` : ''}; ` +
        (held
          ? 'they are connected but not reading: ' +
            (this.orderedUsed
              ? 'on an ordered channel the events ahead of these in the order may take longer than that (at saturation every publisher\'s window waits in front of it: fitbroker status shows consensus pending and paused connections; publish at a rate the order sustains, wait longer, or lower limits.publishWindowOrderedEvents); '
              : '') +
            'on a channel with overflow: block a full subscriber queue holds its publishers until that console reads (fitbroker status shows BLOCKED), or the replicas are overloaded'
          : 'start the missing replicas (fitbroker up) or check the network'),
      { timeoutMs, reachable: reachable.length, needed },
    );
  }
}
