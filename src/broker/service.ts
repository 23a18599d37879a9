// L3, the event broker service (paper §3.3, §4): the control table, channels, routing to
// per-subscriber output queues, TTL and dedupe. Pure: no sockets, no timers; the clock is
// injected. The replica server (src/replica) feeds it frames and drains its queues.
// Channels share nothing but this object's maps: no lock or loop spans two of them.

import { FitError, mayPublish, maySubscribe, PRIORITY_URGENT, type ChannelClass, type ClientInfo, type ControlTable, type Limits } from '../core/index.js';
import { RecordCursor, RecordIndex, sameBytesAt, type PublishSection } from '../codec/index.js';
import { PROTECTION_CODE, PROTECTION_NAMES } from '../protection/index.js';
import { ClientQueue, QueueBudget, type QueueCounters, type QueueOverflow } from './queue.js';
import { Dedupe, type DedupeStream } from './dedupe.js';
import { Sequencer } from './sequencer.js';
import type { OrderedLog } from './ordered-log.js';
import { DurableChannel, type DiskStats } from './durable.js';
import { SLAB_BYTES, type SlabTable } from './entries.js';
import type { LogDiskStats } from './durable-log.js';
import type { EventStore } from './store.js';

/** An event of an ordered channel as received from its publisher, before consensus orders it. */
export interface UnorderedEvent {
  /** The whole record, copied out of the frame. */
  record: Buffer;
  /** The publishing process (publisher id and epoch) and its seq: the event's identity. */
  process: string;
  seq: number;
  urgent: boolean;
}

export interface ChannelCounters {
  eventsIn: number;
  duplicates: number;
  droppedTtl: number;
  /** Events that were queued for a client when it was unsubscribed (`fitbroker acl unsubscribe`). */
  droppedUnsubscribed: number;
  /** overflow: block: the times a full subscriber queue started holding the channel's publishers. */
  blocks: number;
  /** overflow: block: how long the channel's publishers were held in all, ms (the current spell not included). */
  blockedMs: number;
}

/** Drops by reason, each counted once: the queue was full, the replica's byte budget was, the event expired, its client was unsubscribed. */
export interface DropCounts {
  capacity: number;
  bytes: number;
  ttl: number;
  unsubscribed: number;
}

export interface Channel {
  readonly tag: string;
  readonly cls: ChannelClass;
  readonly queues: Map<string, ClientQueue>;
  /** queues' entries, for the per-record loop (a Map iterator per record showed in profiles); rebuilt when a subscriber comes or goes. */
  queueList: readonly (readonly [string, ClientQueue])[];
  readonly dedupe: Dedupe;
  readonly counters: ChannelCounters;
  readonly slab: Slab;
  /** `persist: disk`: what writes its records and its subscribers' positions to the store. */
  readonly durable: DurableChannel | undefined;
  /** What its full subscriber queues do; shared by them. */
  readonly overflow: QueueOverflow;
  /** overflow: block: its queues that are full now; its publishers are held while any is. */
  blockingQueues: number;
  blockedSinceMs: number;
}

/** The byte ranges [starts[i], ends[i]) of buf (pairs in `ranges`), back to back in a new buffer. */
function gather(buf: Buffer, ranges: readonly number[]): Buffer {
  let n = 0;
  for (let i = 0; i < ranges.length; i += 2) n += ranges[i + 1]! - ranges[i]!;
  const out = Buffer.allocUnsafe(n);
  let at = 0;
  for (let i = 0; i < ranges.length; i += 2) at += buf.copy(out, at, ranges[i]!, ranges[i + 1]!);
  return out;
}

/**
 * Where a channel's queued records live: sections are copied back to back into 16 KiB
 * buffers, so a section of a few events costs no allocation of its own (an ArrayBuffer each
 * measured as a cost in replica GC), and a buffer holds one channel's records only.
 */
class Slab {
  /** Where the last copyOf() put its bytes: [at, end) of buf. No view: one per section showed in profiles. */
  buf: Buffer = Buffer.alloc(0);
  /** buf's id in the replica's SlabTable, which queued entries name it by; this writer holds it until it moves on. */
  id = -1;
  at = 0;
  end = 0;
  /** Bytes of buf taken; SLAB_BYTES once a section got a buffer of its own. */
  private used = SLAB_BYTES;

  constructor(
    private readonly slabs: SlabTable,
    /** Slabs go back to the SlabTable's pool once every queue is done with them: not a disk channel's, whose store is handed views. */
    private readonly recycle: boolean,
  ) {}

  copyOf(src: Buffer, start: number, end: number): void {
    const n = end - start;
    if (n > SLAB_BYTES / 4) {
      this.use(this.slabs.hold(Buffer.allocUnsafeSlow(n)));
      this.used = SLAB_BYTES;
    } else {
      if (this.used + n > SLAB_BYTES) {
        this.use(this.recycle ? this.slabs.slab() : this.slabs.hold(Buffer.allocUnsafeSlow(SLAB_BYTES)));
        this.used = 0;
      }
      this.at = this.used;
      this.used += n;
    }
    this.end = this.at + n;
    src.copy(this.buf, this.at, start, end);
  }

  /** Moves on to the slab held as `id`, letting go of the one before. */
  private use(id: number): void {
    if (this.id >= 0) this.slabs.release(this.id);
    this.id = id;
    this.buf = this.slabs.buf(id);
    this.at = 0;
  }
}

export interface ChannelStats extends ChannelCounters {
  tag: string;
  fault: string;
  order: string;
  protection: string;
  overflow: string;
  /** Every drop of the channel by reason: on arrival (ttl) and from its subscribers' queues. */
  dropped: DropCounts;
  /** overflow: block: its publishers are held now, by the full queues of these clients. */
  blocked: boolean;
  blockedBy: string[];
  /** An ordered channel's log: the seqs held, and per subscribing client the events it missed (evicted before it acknowledged them). */
  log?: { low: number; high: number; depth: number; evictedCapacity: number; evictedTtl: number; skipped: number; positions: Record<string, { next: number; missed: number; sent: number }> };
  queues: Record<string, QueueCounters & { depth: number; sessions: number; dropped: DropCounts; blocking: boolean }>;
  persist: string;
  /** A disk channel's store: the next index, sections held and deleted, each client's position on disk. */
  disk?: DiskStats;
  /** An ordered disk channel's store: events held and deleted, read back at start, each reader's acknowledged seq on disk. */
  logDisk?: LogDiskStats;
}

export class BrokerService {
  private readonly channels = new Map<string, Channel>();
  /** Every queue of this replica together: limits.queuedBytesMax. */
  private readonly budget: QueueBudget;
  /** One cursor for every section: publish() walks them one after another, never two at once. */
  private readonly cursor: RecordCursor;
  /** The records of the PUBLISH frame being handled, as its check found them, for route(). */
  private readonly found = new RecordIndex();
  /** Called after events were queued for a client on a channel, so sessions can be flushed. */
  onQueued: (channel: string, client: string, queue: ClientQueue) => void = () => {};
  /** Called when a client was unsubscribed from a channel: its sessions on the queue or log `key` must end. */
  onSubscriptionEnded: (key: object, client: string) => void = () => {};
  /** `client`'s key was replaced: connections it opened with the old one must end. */
  onClientRekeyed: (client: string) => void = () => {};
  /** An ordered channel's log grew: sessions reading it can be flushed. */
  onAppended: (channel: string, log: OrderedLog) => void = () => {};
  /** overflow: block: a full queue started (true) or stopped (false) holding the channel's publishers. */
  onBlocked: (channel: string, blocked: boolean) => void = () => {};
  /** The numbering and logs of ordered channels. */
  readonly sequencer: Sequencer;

  constructor(
    private readonly table: ControlTable,
    private readonly limits: Limits,
    private readonly nowMs: () => number,
    /** Where `persist: disk` channels are written; without one, every channel is in memory. */
    private readonly store?: EventStore,
  ) {
    this.budget = new QueueBudget(limits.queuedBytesMax);
    this.cursor = new RecordCursor(Buffer.alloc(0), 0, limits.eventBytesMax);
    this.sequencer = new Sequencer(table.channels, limits, store);
    for (const [tag, cls] of table.channels) {
      const queues = new Map<string, ClientQueue>();
      const overflow: QueueOverflow = { policy: cls.overflow, nowMs, onBlock: (_q, blocking) => this.queueBlocked(this.channels.get(tag)!, blocking) };
      const log = this.sequencer.log(tag);
      // Every subscriber in the control table has its queue (or its place in the ordered log)
      // from the start, so events published before a console first connects wait for it.
      for (const client of table.clients.values()) {
        if (!maySubscribe(client, tag)) continue;
        if (log) log.addClient(client.id, true);
        else queues.set(client.id, new ClientQueue(cls.capacityEvents, cls.ttlMs, this.budget, overflow));
      }
      const durable = store && cls.persist === 'disk' && !log ? new DurableChannel(tag, store) : undefined;
      const ch: Channel = {
        tag,
        cls,
        queues,
        queueList: [...queues],
        dedupe: new Dedupe(limits.dedupeStreamsMax),
        counters: { eventsIn: 0, duplicates: 0, droppedTtl: 0, droppedUnsubscribed: 0, blocks: 0, blockedMs: 0 },
        slab: new Slab(this.budget.slabs, !durable),
        overflow,
        blockingQueues: 0,
        blockedSinceMs: 0,
        durable,
      };
      this.channels.set(tag, ch);
      if (durable) this.restore(ch, durable);
    }
    this.sequencer.restorePositions();
  }

  /**
   * Refills a disk channel's queues from the store: each client gets the records above its
   * position, in index order. Expired ones are dropped and counted as the queue would.
   */
  private restore(ch: Channel, durable: DurableChannel): void {
    const stored = durable.load();
    for (const [client, q] of ch.queues) q.done = durable.track(client);
    for (const [key, last] of stored.streams) ch.dedupe.accept(key, last);
    let next = stored.sections.length > 0 ? stored.sections[0]!.first : 0;
    for (const { first, records } of stored.sections) {
      const cursor = this.cursor.reset(records, 0, records.length);
      let idx = first;
      while (cursor.next()) {
        durable.restored++;
        for (const [, q] of ch.queueList) if (idx > q.done!.ackedPos) q.enqueueAt(records, cursor.start, cursor.end - cursor.start, cursor.priority, cursor.timestampMs, idx);
        idx++;
      }
      next = idx;
    }
    // Sections every client was done with are gone; positions still say how far indexes went.
    for (const pos of stored.positions.values()) next = Math.max(next, pos + 1);
    durable.loaded(next);
  }

  /** Disk channels: writes positions that moved and deletes what every subscriber is done with. */
  flushStore(): void {
    for (const ch of this.channels.values()) ch.durable?.flush();
    this.sequencer.flush();
  }

  /** Resolves once everything written to the store so far is on disk (at once without a store). */
  durable(): Promise<void> {
    return this.store ? this.store.durable() : Promise.resolve();
  }

  client(id: string): ClientInfo | undefined {
    return this.table.clients.get(id);
  }

  get controlTable(): ControlTable {
    return this.table;
  }

  /** Bytes every queue of this replica holds together, as counted against queuedBytesMax (for metrics). */
  get queuedBytes(): number {
    return this.budget.bytes;
  }

  /** Gives `client` a queue on `tag` (it was just allowed to subscribe): events from now on wait for it. */
  openQueue(tag: string, client: string): void {
    const ch = this.channel(tag);
    const log = this.sequencer.log(tag);
    if (log) return log.addClient(client, false);
    if (ch.queues.has(client)) return;
    const q = new ClientQueue(ch.cls.capacityEvents, ch.cls.ttlMs, this.budget, ch.overflow);
    // From the next record on: what was published before it was allowed is not its to read.
    if (ch.durable) q.done = ch.durable.track(client, ch.durable.nextIdx - 1);
    ch.queues.set(client, q);
    ch.queueList = [...ch.queues];
  }

  /** Takes `client`'s queue on `tag` away (it may no longer subscribe); what it held is dropped and counted. */
  closeQueue(tag: string, client: string): void {
    const ch = this.channel(tag);
    const log = this.sequencer.log(tag);
    if (log) {
      log.removeClient(client);
      this.sequencer.untrack(tag, client);
      return this.onSubscriptionEnded(log, client);
    }
    const q = ch.queues.get(client);
    if (!q) return;
    ch.queues.delete(client);
    ch.queueList = [...ch.queues];
    q.close();
    ch.durable?.untrack(client);
    ch.counters.droppedUnsubscribed += q.counters.droppedUnsubscribed;
    this.onSubscriptionEnded(q, client);
  }

  channel(tag: string): Channel {
    const ch = this.channels.get(tag);
    if (!ch) {
      throw new FitError('FIT_ERR_UNKNOWN_CHANNEL', `channel "${tag}" is not in the control table; add it under channels: in cluster.yaml`, { channel: tag });
    }
    return ch;
  }

  /** Throws FIT_ERR_NOT_AUTHORIZED unless `client` may publish on `tag`. */
  checkPublish(client: ClientInfo, tag: string): Channel {
    const ch = this.channel(tag);
    if (!mayPublish(client, tag)) {
      throw new FitError('FIT_ERR_NOT_AUTHORIZED', `client "${client.id}" may not publish on channel "${tag}"; add the channel to clients.${client.id}.publish in cluster.yaml`, {
        channel: tag,
        client: client.id,
      });
    }
    return ch;
  }

  /** The log of an ordered channel `client` may subscribe to; undefined for an unordered channel. */
  logFor(client: ClientInfo, tag: string): OrderedLog | undefined {
    const log = this.sequencer.log(tag);
    if (log && !maySubscribe(client, tag)) this.queueFor(client, tag);
    return log;
  }

  /** Throws FIT_ERR_NOT_AUTHORIZED unless `client` may subscribe to `tag`; returns its queue. */
  queueFor(client: ClientInfo, tag: string): ClientQueue {
    const ch = this.channel(tag);
    if (ch.cls.order !== 'none' && maySubscribe(client, tag)) {
      throw new FitError('FIT_ERR_NOT_SUPPORTED', `channel "${tag}" is ordered: read it with subscribe (which can resume from a seq), not receive`, { channel: tag });
    }
    const q = ch.queues.get(client.id);
    if (!q) {
      throw new FitError('FIT_ERR_NOT_AUTHORIZED', `client "${client.id}" may not subscribe to channel "${tag}"; add the channel to clients.${client.id}.subscribe in cluster.yaml`, {
        channel: tag,
        client: client.id,
      });
    }
    return q;
  }

  /**
   * Routes a PUBLISH frame's records (one section per channel) to every subscriber queue.
   * Records are queued as slices of the received frame: never decoded, never re-encoded. The
   * publisher named in each record must be the authenticated client (SI: identification).
   * All or nothing: every section is checked before any record is queued, so a bad section
   * cannot leave part of a frame queued (and remembered by dedupe) with the client unsure
   * what to resend.
   */
  publish(
    client: ClientInfo,
    body: Buffer,
    sections: readonly PublishSection[],
  ): { accepted: number; duplicates: number; unordered?: { channel: string; events: UnorderedEvent[] }[]; blocked?: string[]; stored?: boolean } {
    const channels = sections.map((s) => this.checkPublish(client, s.channel));
    // Section i's records are found[firstFound[i], firstFound[i + 1]).
    const found = this.found;
    found.clear();
    const firstFound: number[] = [];
    for (let i = 0; i < sections.length; i++) {
      firstFound.push(found.length);
      this.checkSection(client, channels[i]!, body, sections[i]!);
    }
    firstFound.push(found.length);
    const now = this.nowMs();
    let accepted = 0;
    let duplicates = 0;
    let stored = false;
    const unordered: { channel: string; events: UnorderedEvent[] }[] = [];
    let blocked: string[] | undefined;
    for (let i = 0; i < sections.length; i++) {
      if (channels[i]!.cls.order !== 'none') {
        const events = this.toOrder(body, sections[i]!);
        unordered.push({ channel: channels[i]!.tag, events });
        accepted += events.length;
        // Its events are written as they are placed: acknowledged once ordered and on disk.
        if (events.length > 0 && channels[i]!.cls.persist === 'disk' && this.store) stored = true;
        continue;
      }
      const r = this.route(channels[i]!, body, sections[i]!, firstFound[i]!, firstFound[i + 1]!, now);
      accepted += r.accepted;
      duplicates += r.duplicates;
      // Queued (none is lost), and the sender is to be held until the full queue has room.
      if (channels[i]!.blockingQueues > 0) (blocked ??= []).push(channels[i]!.tag);
      if (channels[i]!.durable && r.accepted > 0) stored = true;
    }
    // Events of ordered channels, for the replica to have them ordered (absent when none);
    // channels whose full queues hold their publishers (absent when none); `stored`: records
    // went (or, ordered, go once decided) to the store, so acknowledge once durable() resolves
    // (after the order, for ordered events).
    const r = unordered.length > 0 ? { accepted, duplicates, unordered } : { accepted, duplicates };
    return blocked || stored ? { ...r, ...(blocked ? { blocked } : {}), ...(stored ? { stored } : {}) } : r;
  }

  /** overflow: block: one of the channel's queues filled up, or has room again. */
  private queueBlocked(ch: Channel, blocking: boolean): void {
    const now = this.nowMs();
    if (blocking) {
      if (ch.blockingQueues++ > 0) return;
      ch.counters.blocks++;
      ch.blockedSinceMs = now;
      return this.onBlocked(ch.tag, true);
    }
    if (--ch.blockingQueues > 0) return;
    ch.counters.blockedMs += Math.max(0, now - ch.blockedSinceMs);
    this.onBlocked(ch.tag, false);
  }

  /**
   * Drops what expired from the queues that hold their channels' publishers: a console that
   * never reads runs no take() that would, and TTL bounds how long it can hold a channel.
   */
  expireBlocked(): void {
    const now = this.nowMs();
    for (const ch of this.channels.values()) {
      if (ch.blockingQueues === 0) continue;
      for (const [, q] of ch.queueList) if (q.blocking) q.expire(now);
    }
  }

  private checkSection(client: ClientInfo, ch: Channel, body: Buffer, s: PublishSection): void {
    const idBytes = this.idBytes(client.id);
    const check = this.cursor.reset(body, s.recordsAt, s.recordsEnd);
    const level = PROTECTION_CODE[ch.cls.protection];
    let seen = 0;
    while (check.next()) {
      seen++;
      this.found.note(check);
      if (!check.publisherEquals(idBytes)) {
        throw new FitError('FIT_ERR_NOT_AUTHORIZED', `an event names publisher "${check.publisher()}" but the connection is authenticated as "${client.id}"; publish only as yourself`, {
          channel: ch.tag,
          client: client.id,
        });
      }
      // Subscribers would reject it anyway; refused here, the publisher learns why at once.
      if (check.protection !== level) {
        throw new FitError(
          'FIT_ERR_MALFORMED',
          `an event on channel "${ch.tag}" is sealed as ${PROTECTION_NAMES[check.protection]} but the channel's protection is ${ch.cls.protection}; the publisher's cluster.yaml or fitbroker version is out of date`,
          { channel: ch.tag, client: client.id },
        );
      }
    }
    if (seen !== s.count) {
      throw new FitError('FIT_ERR_MALFORMED', `a publish batch announced ${s.count} events on channel "${ch.tag}" but held ${seen}`, { channel: ch.tag });
    }
  }

  /** Queues section `s`, whose records its check noted as found[from, to). */
  private route(ch: Channel, body: Buffer, s: PublishSection, from: number, to: number, now: number): { accepted: number; duplicates: number } {
    // One copy of the section, in the channel's own slab, that every queue of the channel keeps
    // views of: one memcpy per section instead of per record, and what the queues pin is this
    // channel's records, not the socket read (see queue.ts).
    const slab = ch.slab;
    slab.copyOf(body, s.recordsAt, s.recordsEnd);
    const own = slab.buf;
    const slabId = slab.id;
    // The records lie in the copy where they lay in the frame, moved by this much.
    const moved = slab.at - s.recordsAt;
    const found = this.found;
    const queues = ch.queueList;
    // A disk channel numbers what it accepts; with no subscriber there is nothing to keep.
    const durable = queues.length > 0 ? ch.durable : undefined;
    const firstIdx = durable ? durable.nextIdx : -1;
    // Accepted records as [start, end) pairs, when some were not (a gap makes the stored copy differ).
    let kept: number[] | undefined;
    let keptFrom = -1;
    let keptTo = -1;
    let accepted = 0;
    let duplicates = 0;
    // A section is almost always one publishing process: look its stream up once per run of
    // records, not once per event.
    let run: DedupeStream | undefined;
    let runFrom = -1;
    let runTo = -1;
    let runLast = -1;
    for (let i = from; i < to; i++) {
      const start = found.start[i]! + moved;
      const streamTo = found.streamTo[i]! + moved;
      if (run === undefined || streamTo - start - 8 !== runTo - runFrom || !sameBytesAt(own, runFrom, own, start + 8, runTo - runFrom)) {
        if (run !== undefined) this.acceptedRun(ch, run, runLast);
        runFrom = start + 8;
        runTo = streamTo;
        run = ch.dedupe.streamAt(own, runFrom, runTo);
        runLast = run.last;
      }
      const seq = found.seq[i]!;
      if (seq <= runLast) {
        duplicates++;
        continue;
      }
      runLast = seq;
      const timestampMs = found.timestampMs[i]!;
      if (timestampMs + ch.cls.ttlMs < now) {
        ch.counters.droppedTtl++;
        continue;
      }
      accepted++;
      const end = found.end[i]! + moved;
      const len = end - start;
      const priority = found.priorityAt(i);
      if (durable) {
        const idx = durable.nextIdx++;
        for (let q = 0; q < queues.length; q++) queues[q]![1].enqueueIn(slabId, start, len, priority, timestampMs, idx);
        if (keptFrom < 0) keptFrom = start;
        else if (start !== keptTo) (kept ??= [keptFrom, keptTo]).push(start, end);
        else kept?.push(start, end);
        keptTo = end;
        continue;
      }
      for (let q = 0; q < queues.length; q++) queues[q]![1].enqueueIn(slabId, start, len, priority, timestampMs);
    }
    if (run !== undefined) this.acceptedRun(ch, run, runLast);
    if (durable && accepted > 0) durable.append(firstIdx, accepted, kept ? gather(own, kept) : own.subarray(keptFrom, keptTo));
    ch.counters.eventsIn += accepted;
    ch.counters.duplicates += duplicates;
    if (accepted > 0) for (const [clientId, q] of queues) this.onQueued(ch.tag, clientId, q);
    return { accepted, duplicates };
  }

  /** A run of one publishing process's records ends at `last`; a disk channel keeps that too. */
  private acceptedRun(ch: Channel, run: DedupeStream, last: number): void {
    if (ch.durable && run.last !== last) ch.durable.accepted(run.key, last);
    ch.dedupe.accepted(run, last);
  }

  /**
   * An ordered channel's events are not queued here: consensus orders them first (every
   * correct replica submits what it received; the order dedupes), and placeOrdered() puts each
   * at its position once decided.
   */
  private toOrder(body: Buffer, s: PublishSection): UnorderedEvent[] {
    const events: UnorderedEvent[] = [];
    const cursor = this.cursor.reset(body, s.recordsAt, s.recordsEnd);
    while (cursor.next()) {
      events.push({
        record: Buffer.from(body.subarray(cursor.start, cursor.end)),
        process: body.toString('hex', cursor.streamFrom, cursor.streamTo),
        seq: cursor.seq,
        urgent: cursor.priority === PRIORITY_URGENT,
      });
    }
    return events;
  }

  /** A decided event of an ordered channel: numbered, logged, and its readers woken. */
  placeOrdered(tag: string, record: Buffer): void {
    const ch = this.channel(tag);
    const cursor = this.cursor.reset(record, 0, record.length);
    // Checked when it was received by f+1 replicas, one of them correct; read again for its time.
    const timestampMs = cursor.next() ? cursor.timestampMs : this.nowMs();
    this.sequencer.place(tag, record, timestampMs);
    ch.counters.eventsIn++;
    this.onAppended(tag, this.sequencer.log(tag)!);
  }

  private readonly idCache = new Map<string, Buffer>();
  private idBytes(id: string): Buffer {
    let b = this.idCache.get(id);
    if (!b) this.idCache.set(id, (b = Buffer.from(id, 'utf8')));
    return b;
  }

  private logStats(tag: string, now: number): Pick<ChannelStats, 'log'> {
    const log = this.sequencer.log(tag);
    if (!log) return {};
    log.expire(now);
    const positions: Record<string, { next: number; missed: number; sent: number }> = {};
    for (const c of this.table.clients.values()) if (maySubscribe(c, tag)) positions[c.id] = { next: log.position(c.id), missed: log.missedBy(c.id), sent: log.sentTo(c.id) };
    return { log: { low: log.low, high: log.high, depth: log.depth, evictedCapacity: log.counters.evictedCapacity, evictedTtl: log.counters.evictedTtl, skipped: log.counters.skipped, positions } };
  }

  stats(): ChannelStats[] {
    const now = this.nowMs();
    return [...this.channels.values()].map((ch) => {
      const queues = Object.fromEntries(
        [...ch.queues].map(([id, q]) => {
          q.expire(now);
          const c = q.counters;
          const dropped = { capacity: c.droppedCapacity - c.droppedBytes, bytes: c.droppedBytes, ttl: c.droppedTtl, unsubscribed: c.droppedUnsubscribed };
          return [id, { ...c, blockedMs: q.blockedMsAt(now), depth: q.depth, sessions: q.sessionCount, dropped, blocking: q.blocking }];
        }),
      );
      // Queues closed by an unsubscribe took their counters with them; the channel kept what they dropped then.
      const dropped: DropCounts = { capacity: 0, bytes: 0, ttl: ch.counters.droppedTtl, unsubscribed: ch.counters.droppedUnsubscribed };
      for (const q of Object.values(queues)) {
        dropped.capacity += q.dropped.capacity;
        dropped.bytes += q.dropped.bytes;
        dropped.ttl += q.dropped.ttl;
      }
      return {
        tag: ch.tag,
        fault: ch.cls.fault,
        order: ch.cls.order,
        protection: ch.cls.protection,
        overflow: ch.cls.overflow,
        persist: ch.cls.persist,
        ...(ch.durable ? { disk: ch.durable.stats() } : {}),
        ...(this.sequencer.diskStats(ch.tag) ? { logDisk: this.sequencer.diskStats(ch.tag)! } : {}),
        ...this.logStats(ch.tag, now),
        ...ch.counters,
        blockedMs: ch.counters.blockedMs + (ch.blockingQueues > 0 ? Math.max(0, now - ch.blockedSinceMs) : 0),
        blocked: ch.blockingQueues > 0,
        blockedBy: Object.entries(queues)
          .filter(([, q]) => q.blocking)
          .map(([id]) => id),
        dropped,
        queues,
      };
    });
  }
}
