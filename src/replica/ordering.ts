// What this replica orders through the consensus protocol (src/consensus, docs/consensus.md),
// and what it does with each decision:
// - control-table changes (`fitbroker acl`): the admin's request comes in on a client
//   connection, is ordered, and is executed at its place in the order (src/broker/control.ts);
//   the replica then answers every connection that asked for it with where it was decided;
// - events of ordered channels: each replica submits what its publishers sent it, consensus
//   orders them (by reference, once f+1 replicas attest holding a body), a run of a publish
//   section as one request (order-requests.ts), and each decided event is numbered and logged
//   for the channel's subscribers (BrokerService.placeOrdered), once: a faulty publisher's
//   overlapping sections are both decided, and the events of the later one that the earlier
//   one decided are skipped.
//
// With a journal (DIR/data/replica-N/consensus), the protocol writes ahead, and nothing leaves
// this replica before the decision behind it is on disk: execute() changes the state at once
// (a checkpoint snapshots it inside the protocol's step), but publishers are acknowledged and
// admins answered from durable(), once the driver has flushed the journal. Restarted, the
// replica rebuilds its state from the journal at start(): restore() from its snapshot, then
// execute() for each batch above it.

import type { KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import { FitError } from '../core/index.js';
import { controlClient, RecordCursor, signedControlSchema } from '../codec/index.js';
import { controlSnapshot, executeControl, restoreControl, type BrokerService, type ClientSnapshot, type ControlOutcome, type UnorderedEvent } from '../broker/index.js';
import { ConsensusDriver, ExecutedRequests, type ConsensusMessage, type Decision, type DriverStatus, type JournalStore, type Req, type StateMachine } from '../consensus/index.js';
import type { ClusterConfig } from '../config/index.js';
import type { TlsIdentity } from '../protection/index.js';
import { Deque } from '../broker/index.js';
import { PeerLinks } from './peers.js';
import { LeaderWatch } from './leader-watch.js';
import { EVENT_PREFIX, eventRequestBody, isEventRequest, sectionRequests, type EventRequestBody } from './order-requests.js';
import { OrderShares, type ShareStatus } from './order-shares.js';
import type { Peer } from './server.js';

export interface OrderingOptions {
  config: ClusterConfig;
  id: number;
  privateKey: KeyObject;
  /** This process is not the replica's first since init (see ReplicaOptions.restarted). */
  restarted: boolean;
  /** Test-only: hold every outgoing protocol message this long (fault slow-order:MS). */
  slowOrderMs: number;
  /** This replica's TLS material for its links to the others; absent: plain TCP. */
  tls?: TlsIdentity | undefined;
  service: BrokerService;
  /** The consensus journal; without one, a restart is amnesia (restarted: true then). */
  journal?: JournalStore | undefined;
  logger: Logger;
  reply(peer: Peer, seq: number, body: Record<string, unknown>): void;
  refuse(peer: Peer, seq: number, err: FitError): void;
  /** How long one publish frame's events waited to be ordered (submitted to last decided), for metrics. */
  ordered?(ms: number): void;
  /** Test-only: the links to the other replicas, instead of TCP ones (an in-memory network). */
  links?: OrderingLinks;
}

/** What the ordering protocol sends through to the other replicas (PeerLinks). */
export interface OrderingLinks {
  start(): void;
  stop(): void;
  send(to: number | 'all', msg: ConsensusMessage): void;
  readonly connected: number[];
  readonly dropped: number;
}

/** A publish frame waiting for its ordered events' requests; `notHeld`: one of them is not on this replica's disk. */
interface EventWaiter {
  remaining: number;
  done: (err?: FitError) => void;
  submittedMs: number;
  notHeld?: FitError;
  /** The requests it waits for (client#seq). */
  keys: string[];
}

/** Outcomes kept to answer an admin that asks again for a change already decided. */
const OUTCOMES_KEPT = 1024;

interface Decided {
  at: number;
  outcome: ControlOutcome;
}

/** What this replica's snapshot holds beside the protocol's own state (src/consensus/state.ts). */
interface AppSnapshot {
  clients: ClientSnapshot[];
  order: ReturnType<BrokerService['sequencer']['snapshot']>;
  /** The events executed, by (process, seq): absent in snapshots from before requests held runs of events. */
  events?: string;
}

export class Ordering implements StateMachine {
  private readonly links: OrderingLinks;
  private readonly driver: ConsensusDriver;
  /** Connections waiting for a change to be decided, by the change's client#seq. */
  private readonly waiting = new Map<string, { peer: Peer; seq: number }[]>();
  /** Outcomes of changes decided and on disk, to answer an admin that asks again. */
  private readonly outcomes = new Map<string, Decided>();
  /** Outcomes of changes executed whose decision is not on disk yet: answered from durable(). */
  private readonly undurable = new Map<string, Decided>();
  /** start() is rebuilding the state from the journal: restore() and execute() replay. */
  private recovering = false;
  private recovered = false;
  private controlApplied = 0;
  private controlRefused = 0;
  /** Decided requests of a kind this build does not order (a newer replica's). */
  private unknownDecided = 0;
  private eventsOrdered = 0;
  /** Event requests executed: eventsOrdered / requestsOrdered is how many events a request carried. */
  private requestsOrdered = 0;
  /** Events of decided requests skipped as decided before: a faulty publisher's overlapping sections. */
  private eventsDecidedTwice = 0;
  /**
   * The events placed, by (process, seq), under the process's name (eventRequestBody); part
   * of the snapshot. The protocol's own record is by request (first seq), which
   * overlapping sections defeat.
   */
  private readonly executedEvents: ExecutedRequests;
  /** Publish frames waiting for their ordered events to be decided, by request (client#seq). */
  private readonly eventWaiters = new Map<string, Set<EventWaiter>>();
  /** The channel of each request in eventWaiters (a run's client name does not say it). */
  private readonly awaitedChannels = new Map<string, string>();
  /** Events in each deferred request, for status. */
  private readonly deferredEvents = new WeakMap<Req, number>();
  private deferredEventCount = 0;
  /**
   * Events waiting for room in the order (consensusPendingMax), oldest first: submitted as
   * decisions make room. Their frames stay unacknowledged meanwhile, which is what holds the
   * publishers back; refusing them instead would fail every publisher at once. Bounded by the
   * events each connection may have waiting (orderBacklogEventsMax: the server stops reading).
   */
  private readonly deferred = new Deque<Req>();
  private drainScheduled = false;
  private deferredTotal = 0;
  /** Each client's share of the order (orderClientRequestsMax), across its connections. */
  private readonly shares: OrderShares;
  private readonly leaderWatch: LeaderWatch;

  constructor(private readonly o: OrderingOptions) {
    const { config } = o;
    this.links = o.links ?? new PeerLinks(config, o.id, o.privateKey, o.slowOrderMs, o.tls);
    this.executedEvents = new ExecutedRequests(config.limits.dedupeStreamsMax);
    this.shares = new OrderShares(config.limits.orderClientRequestsMax);
    this.driver = new ConsensusDriver({
      id: o.id,
      n: config.replicas.length,
      f: config.f,
      limits: config.limits,
      restarted: o.restarted,
      privateKey: o.privateKey,
      publicKeys: config.replicas.map((r) => r.publicKey),
      send: (to, msg) => this.links.send(to, msg),
      machine: this,
      journal: o.journal,
      durable: (d) => this.durable(d.decided, d.installed),
      expired: (reqs) => this.expired(reqs),
      // Fail-stop: a replica that cannot write what it is about to say must say nothing more.
      journalFailed: (err) => {
        o.logger.fatal({ code: err.code, err: err.message }, 'the consensus journal cannot be written; stopping (restart the replica once the disk is fixed)');
        process.exit(70);
      },
    });
    this.leaderWatch = new LeaderWatch(o.logger, () => this.driver.status);
  }

  /**
   * Events of ordered channels from one publish frame of `client`: submitted to be ordered
   * (resends are deduplicated by the order), within the client's share (order-shares.ts), and
   * `done` once every one of them is decided — with an error when this replica cannot stand
   * behind the acknowledgement (see installed()), or let it go. Returns what stops the waiting
   * (its connection closed): a request that is never decided (a faulty publisher's, or one only
   * this replica got) would otherwise keep its waiters for good.
   */
  order(client: string, sections: { channel: string; events: UnorderedEvent[] }[], done: (err?: FitError) => void): () => void {
    const reqs: Req[] = [];
    const resent: Req[] = [];
    const keys: string[] = [];
    const waiter: EventWaiter = { remaining: 0, done, submittedMs: performance.now(), keys };
    for (const { channel, events } of sections) {
      for (const { req, events: count } of sectionRequests(channel, events)) {
        // Resent after it was decided (a reconnect): the whole request, never part of it, or
        // this replica would attest a body no other replica holds.
        if (this.driver.isDecided(req.client, req.seq)) continue;
        const key = `${req.client}#${req.seq}`;
        let set = this.eventWaiters.get(key);
        if (!set) {
          this.eventWaiters.set(key, (set = new Set()));
          this.awaitedChannels.set(key, channel);
        }
        set.add(waiter);
        keys.push(key);
        waiter.remaining++;
        this.deferredEvents.set(req, count);
        // Counted once, whichever connection sends it. A resend of a request the protocol holds
        // goes to it again, which ignores the same body and counts another (secondBodies); one
        // still waiting for room here, or in its client's queue, waits with the first.
        const state = this.shares.state(key);
        if (state === undefined) {
          if (this.shares.take(client, key, req)) reqs.push(req);
        } else if (state === 'counted' && this.driver.holdsBodyOf(req.client, req.seq)) resent.push(req);
      }
    }
    if (waiter.remaining === 0) {
      done();
      return () => undefined;
    }
    this.submit(reqs);
    // Straight to the protocol, never into `deferred`: it turns them away before needing room,
    // and a copy waiting there could outlive the first, be held again once that is let go, and
    // so take the client past its share.
    if (resent.length > 0) this.driver.submit(resent);
    return () => this.stopWaiting(waiter);
  }

  /** Requests within their clients' shares go into the order, behind any waiting for room there, so a publisher's events keep their order. */
  private submit(reqs: Req[]): void {
    if (reqs.length === 0) return;
    if (this.deferred.length > 0) for (const r of reqs) this.defer(r);
    else this.submitNow(reqs);
    this.scheduleDrain();
  }

  /**
   * To the protocol; what it refuses for room waits. What it neither holds nor decided once
   * submit returns would never leave its share: it leaves now (a safety net; the protocol holds
   * or refuses every request it is given that is not decided).
   */
  private submitNow(reqs: Req[]): void {
    const refused = new Set(this.driver.submit(reqs));
    for (const r of refused) this.defer(r);
    for (const r of reqs) if (!refused.has(r) && !this.driver.holdsBodyOf(r.client, r.seq) && !this.driver.isDecided(r.client, r.seq)) this.leaveShare(`${r.client}#${r.seq}`);
  }

  /**
   * The request (client#seq) is decided or let go: it leaves its client's share, and what
   * waited for room in the share goes in, once the current call (perhaps the protocol's) returns.
   */
  private leaveShare(key: string): void {
    for (const r of this.shares.release(key)) this.defer(r);
    this.scheduleDrain();
  }

  /** `w` no longer waits for any of its requests. */
  private stopWaiting(w: EventWaiter): void {
    for (const key of w.keys) {
      const set = this.eventWaiters.get(key);
      if (set?.delete(w) && set.size === 0) {
        this.eventWaiters.delete(key);
        this.awaitedChannels.delete(key);
        this.shares.drop(key);
      }
    }
  }

  private defer(r: Req): void {
    const events = this.deferredEvents.get(r) ?? 1;
    this.deferred.push(r);
    this.deferredEventCount += events;
    this.deferredTotal += events;
  }

  private undefer(): Req {
    const r = this.deferred.shift()!;
    this.deferredEventCount -= this.deferredEvents.get(r) ?? 1;
    return r;
  }

  /** Deferred events are submitted once the current call (perhaps the protocol's own) returns. */
  private scheduleDrain(): void {
    if (this.deferred.length === 0 || this.drainScheduled) return;
    this.drainScheduled = true;
    queueMicrotask(() => this.drain());
  }

  /** Submits deferred events as far as there is room; after a decision, outside the protocol's own call. */
  private drain(): void {
    this.drainScheduled = false;
    const batch: Req[] = [];
    let room = this.driver.room;
    for (let r = this.deferred.peek(); r; r = this.deferred.peek()) {
      const key = `${r.client}#${r.seq}`;
      // Decided meanwhile (the others ordered it and this replica executed it, or the protocol
      // passed over its seq): nothing to submit, and its place in the share is free.
      if (this.driver.isDecided(r.client, r.seq)) {
        this.undefer();
        this.leaveShare(key);
      } else if (this.shares.state(key) !== 'counted') this.undefer(); // let go meanwhile: its publisher was told
      else if (room-- > 0) batch.push(this.undefer());
      else break;
    }
    if (batch.length === 0) return;
    // Within the room just read, nothing is refused; should something be, it waits again.
    this.submitNow(batch);
  }

  /** An event request was decided: frames waiting for it are one closer to their acknowledgement. */
  private released(client: string, seq: number, notHeld?: FitError): void {
    const key = `${client}#${seq}`;
    this.leaveShare(key);
    const set = this.eventWaiters.get(key);
    if (!set) return;
    this.eventWaiters.delete(key);
    this.awaitedChannels.delete(key);
    for (const w of set) {
      if (notHeld) w.notHeld ??= notHeld;
      if (--w.remaining > 0) continue;
      this.o.ordered?.(performance.now() - w.submittedMs);
      w.done(w.notHeld);
    }
  }

  /**
   * Requests this replica let go undecided: fewer than f+1 replicas attested them within
   * consensusAttestationSeqs (a publisher that sent its frame to too few of them, then went
   * away or was cut off). Each frame and change that waited for one is refused, so that its
   * publisher hears of it and can send it again; nothing goes unsaid.
   */
  private expired(reqs: Req[]): void {
    for (const r of reqs) {
      const key = `${r.client}#${r.seq}`;
      const err = new FitError(
        'FIT_ERR_ORDER_EXPIRED',
        `request ${key} reached fewer than f+1=${this.o.config.f + 1} replicas within consensusAttestationSeqs (${this.o.config.limits.consensusAttestationSeqs}) decisions, and replica ${this.o.id} let it go undecided; publish it again (its events may still be ordered if other replicas hold it)`,
        { replica: this.o.id },
      );
      this.o.logger.warn({ request: key, code: err.code }, 'a request reached too few replicas to be ordered and was let go; its publisher is told');
      // The whole frame is refused, though its other requests may still be ordered.
      for (const w of [...(this.eventWaiters.get(key) ?? [])]) {
        this.stopWaiting(w);
        w.done(err);
      }
      for (const { peer, seq } of this.waiting.get(key) ?? []) if (!peer.conn.isClosed) this.o.refuse(peer, seq, err);
      this.waiting.delete(key);
      this.leaveShare(key);
    }
  }

  /**
   * Rebuilds the state from the journal, once (throws FIT_ERR_JOURNAL, or FIT_ERR_STORE when
   * the disk channels' store disagrees with it). Before the replica accepts clients, so that
   * none sees the state half rebuilt.
   */
  recover(): void {
    if (this.recovered) return;
    this.recovered = true;
    const configured = controlSnapshot(this.o.service.controlTable);
    this.recovering = true;
    try {
      this.driver.recover();
    } finally {
      this.recovering = false;
    }
    this.compareWithConfig(configured);
    const s = this.driver.status;
    if (s.journal && s.journal.recoveredEntries > 0) {
      this.o.logger.info(
        { entries: s.journal.recoveredEntries, view: s.view, lastDecided: s.lastDecided, stableCheckpoint: s.stableCheckpoint, eventsOrdered: this.eventsOrdered },
        'recovered the consensus state from the journal: this replica goes on where it stopped',
      );
    } else if (this.o.restarted) {
      this.o.logger.warn('this replica ran before and kept no consensus state (no journal): it stays passive in ordering until it is past every instance it may have voted on (docs/consensus.md)');
    }
  }

  /**
   * The control table is consensus state: recovered from the journal, it wins over what this
   * host's cluster.yaml says of clients, which an operator may have edited or not copied.
   * Said, so that an edit that had no effect does not go unnoticed.
   */
  private compareWithConfig(configured: ClientSnapshot[]): void {
    const agreed = new Map(controlSnapshot(this.o.service.controlTable).map((c) => [c[0], JSON.stringify(c)]));
    const differ = new Set<string>();
    for (const c of configured) if (agreed.get(c[0]) !== JSON.stringify(c)) differ.add(c[0]);
    for (const id of agreed.keys()) if (!configured.some((c) => c[0] === id)) differ.add(id);
    if (differ.size === 0) return;
    this.o.logger.warn(
      { clients: [...differ].sort(), file: this.o.config.file },
      "cluster.yaml's clients differ from the control table the replicas agreed on (recovered from the consensus journal); the agreed table is in force. Change clients with fitbroker acl or fitbroker keys rotate, which also write cluster.yaml",
    );
  }

  /** Recovers (unless recover() did), then takes part in the order. */
  start(): void {
    this.recover();
    this.links.start();
    this.driver.start();
    this.leaderWatch.start();
  }

  stop(): void {
    this.leaderWatch.stop();
    this.driver.stop();
    this.links.stop();
  }

  /** Stops, and resolves once everything it journaled is on disk and what waited for that was sent. */
  async close(): Promise<void> {
    this.stop();
    await this.driver.settled();
  }

  receive(from: number, value: unknown): void {
    this.driver.receive(from, value);
  }

  /** Requests of `client` waiting for room in its share of the order. */
  queuedFor(client: string): number {
    return this.shares.queuedOf(client);
  }

  status(): DriverStatus & {
    eventsDeferred: number;
    eventsDeferredTotal: number;
    peersConnected: number[];
    linkDrops: number;
    controlApplied: number;
    controlRefused: number;
    unknownDecided: number;
    eventsOrdered: number;
    requestsOrdered: number;
    eventsDecidedTwice: number;
    requestsAwaited: number;
    /** Per client with requests in this replica's order: its share (orderClientRequestsMax) in use, and what waits for it. */
    shares: Record<string, ShareStatus>;
  } {
    return {
      ...this.driver.status,
      eventsOrdered: this.eventsOrdered,
      requestsOrdered: this.requestsOrdered,
      eventsDecidedTwice: this.eventsDecidedTwice,
      requestsAwaited: this.eventWaiters.size,
      shares: this.shares.status(),
      eventsDeferred: this.deferredEventCount,
      eventsDeferredTotal: this.deferredTotal,
      peersConnected: this.links.connected,
      linkDrops: this.links.dropped,
      controlApplied: this.controlApplied,
      controlRefused: this.controlRefused,
      unknownDecided: this.unknownDecided,
    };
  }

  /** An admin's signed change, from a client connection: ordered, then answered. */
  control(peer: Peer, seq: number, change: unknown): void {
    const r = signedControlSchema.safeParse(change);
    if (!r.success) throw new FitError('FIT_ERR_MALFORMED', `control needs change: a signed change (${r.error.issues[0]?.message ?? 'malformed'}); use fitbroker acl`);
    const admin = peer.client!;
    // Checked again when it executes; here it keeps other clients from filling the order with junk.
    if (!admin.admin || admin.id !== r.data.admin) {
      throw new FitError('FIT_ERR_NOT_AUTHORIZED', `client "${admin.id}" may not change the control table; connect as an admin client (admin: true in cluster.yaml) and sign as it`, { client: admin.id });
    }
    const client = controlClient(r.data.admin);
    const key = `${client}#${r.data.seq}`;
    const done = this.outcomes.get(key);
    if (done) return this.answer(peer, seq, done);
    if (this.driver.isDecided(client, r.data.seq) && !this.undurable.has(key)) {
      throw new FitError('FIT_ERR_REFUSED', `the change ${key} was decided while this replica was catching up (it installed a snapshot) or too long ago to remember its outcome; the other replicas answer with where`);
    }
    const list = this.waiting.get(key) ?? [];
    list.push({ peer, seq });
    this.waiting.set(key, list);
    this.driver.submit({ client, seq: r.data.seq, payload: JSON.stringify(r.data) });
  }

  snapshot(): string {
    return JSON.stringify({ clients: controlSnapshot(this.o.service.controlTable), order: this.o.service.sequencer.snapshot(), events: this.executedEvents.encode('') } satisfies AppSnapshot);
  }

  /**
   * The state after `seq` as 2f+1 replicas signed it: this replica fell too far behind to
   * execute what it missed. Publishes and changes decided in between are answered now.
   */
  restore(seq: number, snapshot: string): void {
    try {
      const s = JSON.parse(snapshot) as AppSnapshot;
      // The order first: a reader the table adds starts at the snapshot's end, not before it.
      this.o.service.sequencer.restore(s.order, this.recovering);
      restoreControl(this.o.service, s.clients);
      if (s.events === undefined) {
        // A snapshot from before runs: every event request was one event, so the protocol's
        // own record of them (loaded before this, the same at every replica) is what was placed.
        this.driver.copyDecided(this.executedEvents, EVENT_PREFIX);
      } else {
        const decoded = this.executedEvents.decode(s.events);
        if (!decoded) throw new Error('its executed events do not parse');
        decoded.load();
      }
    } catch (e) {
      // 2f+1 replicas signed this state and it cannot be installed here: half installed, this
      // replica would serve a state nobody agreed on. Stop (fail-stop) and say why.
      this.o.logger.fatal({ seq, err: (e as Error).message, recovering: this.recovering }, 'could not install the snapshot the replicas signed; stopping: this is a bug, please report it');
      process.exit(70);
    }
    if (this.recovering) this.o.logger.info({ seq }, 'restored the snapshot at the journal\'s stable checkpoint; replaying the batches above it');
  }

  /**
   * The state after `seq` from the other replicas was installed and is on disk: publishes and
   * changes decided in between are answered now.
   */
  private installed(seq: number): void {
    // Decided in the part this replica skipped: an event of a disk channel is not on its disk,
    // so it does not acknowledge it (the publisher counts the refusal as this replica's answer;
    // the others, which hold it, acknowledge), or 2f+1 acknowledgements could stand for fewer
    // disks than the persistence guarantee counts on.
    const notHeld = new FitError('FIT_ERR_STORE', `the event was decided while this replica was catching up (it installed the others' state after consensus seq ${seq}), so it is not on this replica's disk; the other replicas acknowledge it`);
    for (const key of [...this.eventWaiters.keys()]) {
      const at = key.lastIndexOf('#');
      const client = key.slice(0, at);
      if (!this.driver.isDecided(client, Number(key.slice(at + 1)))) continue;
      const channel = this.awaitedChannels.get(key)!;
      this.released(client, Number(key.slice(at + 1)), this.o.service.sequencer.onDisk(channel) ? notHeld : undefined);
    }
    // Requests whose connections closed have no waiters, and leave their shares all the same.
    for (const key of this.shares.countedKeys()) {
      const at = key.lastIndexOf('#');
      if (this.driver.isDecided(key.slice(0, at), Number(key.slice(at + 1)))) this.leaveShare(key);
    }
    for (const [key, list] of this.waiting) {
      const at = key.lastIndexOf('#');
      if (!this.driver.isDecided(key.slice(0, at), Number(key.slice(at + 1)))) continue;
      const err = new FitError('FIT_ERR_REFUSED', `the change was decided while this replica was catching up (it installed the state after seq ${seq}); the other replicas answer with where`);
      for (const w of list) if (!w.peer.conn.isClosed) this.o.refuse(w.peer, w.seq, err);
      this.waiting.delete(key);
    }
    // Events waiting for room may be decided now.
    this.scheduleDrain();
    this.o.logger.warn({ seq }, 'installed a snapshot from the other replicas: this replica was too far behind to replay what it missed');
  }

  /** Decisions (and a snapshot installed) are on disk: what waited for them is answered, in order. */
  private durable(decided: readonly Decision[], installed: number | undefined): void {
    for (const d of decided) {
      for (const req of d.requests) {
        if (isEventRequest(req.client)) {
          this.released(req.client, req.seq);
          continue;
        }
        const key = `${req.client}#${req.seq}`;
        const outcome = this.undurable.get(key);
        if (!outcome) continue;
        this.undurable.delete(key);
        this.outcomes.set(key, outcome);
        if (this.outcomes.size > OUTCOMES_KEPT) this.outcomes.delete(this.outcomes.keys().next().value!);
        for (const w of this.waiting.get(key) ?? []) if (!w.peer.conn.isClosed) this.answer(w.peer, w.seq, outcome);
        this.waiting.delete(key);
      }
    }
    if (installed !== undefined) this.installed(installed);
  }

  execute(d: Decision): void {
    // Decisions make room.
    this.scheduleDrain();
    for (const req of d.requests) {
      const events = eventRequestBody(req);
      if (events !== undefined && this.o.service.sequencer.log(events.channel)) {
        this.executeEvents(events, req);
        continue;
      }
      if (!req.client.startsWith('control/')) {
        this.unknownDecided++;
        this.o.logger.warn({ seq: d.seq, client: req.client }, 'decided a request of a kind this replica does not order; ignored');
        continue;
      }
      const outcome = executeControl(this.o.service, req.payload);
      const decided: Decided = { at: d.seq, outcome };
      if (outcome.error) {
        this.controlRefused++;
        this.o.logger.warn({ seq: d.seq, admin: outcome.admin, op: outcome.op, code: outcome.error.code }, `control change refused: ${outcome.error.message}`);
      } else {
        this.controlApplied++;
        // Replayed at start from the journal: applied again to rebuild the state, not a new change.
        this.o.logger.info({ seq: d.seq, admin: outcome.admin, op: outcome.op }, this.recovering ? 'control change replayed from the journal' : 'control change applied');
      }
      this.undurable.set(`${req.client}#${req.seq}`, decided);
    }
  }

  /**
   * Places a decided request's events, each at most once: the same at every correct replica,
   * since each skips by what the decisions before this one placed. A body a correct replica
   * formed always parses; one that does not is placed up to where it stops, the same
   * everywhere. Only the parse is caught: placing can refuse (a store that is not this
   * journal's, at recovery), and that must stop the replica as before.
   */
  private executeEvents(events: EventRequestBody, req: Req): void {
    this.requestsOrdered++;
    const { channel, placed: { key, also } } = events;
    const body = Buffer.from(events.records, 'base64');
    const cursor = new RecordCursor(body, 0, Infinity);
    for (;;) {
      try {
        if (!cursor.next()) return;
      } catch (e) {
        this.o.logger.warn({ client: req.client, seq: req.seq, err: (e as Error).message }, 'a decided event request does not parse past this point; its remaining records were not placed');
        return;
      }
      if (this.executedEvents.has(key, cursor.seq)) {
        this.eventsDecidedTwice++;
        continue;
      }
      if (this.executedEvents.has(also, cursor.seq)) {
        // Placed by a run of the other kind (placedEventsKeys): into this record too, which
        // otherwise keeps it as a gap.
        this.executedEvents.add(key, cursor.seq);
        this.eventsDecidedTwice++;
        continue;
      }
      this.executedEvents.add(key, cursor.seq);
      this.o.service.placeOrdered(channel, body.subarray(cursor.start, cursor.end));
      this.eventsOrdered++;
    }
  }

  private answer(peer: Peer, seq: number, d: Decided): void {
    if (d.outcome.error) {
      const e = d.outcome.error;
      this.o.refuse(peer, seq, new FitError(e.code, e.message, { ...e.fields, decided: d.at }));
    } else this.o.reply(peer, seq, { decided: d.at, change: d.outcome.op });
  }
}
