// L2, the replica server: accepts connections from any duplex stream, authenticates the
// client, and hands each request to the broker service (L3). It forwards the records it
// received without re-encoding them. Expected failures (a refused channel, a malformed
// batch) become error replies on that connection only; everyone else keeps being served.

import { createServer, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import { FitError, isFitError, type ClientInfo } from '../core/index.js';
import { readHugePagesState } from './huge-pages.js';
import { decodeCredit, decodeJson, decodePublish, encodeAck, encodeEvents, encodeJson, MessageType } from '../codec/index.js';
import { BrokerService, type ClientQueue, type EventStore } from '../broker/index.js';
import { Ordering } from './ordering.js';
import type { JournalStore } from '../consensus/index.js';
import { authTranscript, newNonce, replicaTlsName, signBytes, verifyBytes, AUTH_VERSION, type TlsIdentity } from '../protection/index.js';
import { Connection, startsTls, tlsAcceptor } from '../net/index.js';
import { tlsIdentityFor, type ClusterConfig } from '../config/index.js';
import { LogSource, PushScheduler, PushStream, QueueSource, PUSH_FRAME_BYTES } from './push.js';
import { subscriberSalt, type Fault } from './faults.js';
import { ClientQuotas, shareNotice } from './quotas.js';
import { ClientHolds, hold, release, NOTICE_INTERVAL_MS, type HeldPeer } from './client-holds.js';
import { ReplicaMetrics, type MetricsSource } from './metrics.js';
import { OpsServer, readiness, type Readiness } from './ops.js';
import { OverflowHolds } from './overflow.js';


/** The address part of "host:port" (IPv6 hosts hold colons too); the whole of anything else. */
function sourceAddress(remote: string): string {
  const colon = remote.lastIndexOf(':');
  return colon > 0 ? remote.slice(0, colon) : remote;
}

/** How often close() looks whether every pending request was answered. */
const DRAIN_POLL_MS = 10;

const slowOrderMs = (faults: readonly Fault[]): number => {
  const f = faults.find((x) => x.kind === 'slow-order');
  return f && f.kind === 'slow-order' ? f.ms : 0;
};

export interface ReplicaOptions {
  config: ClusterConfig;
  id: number;
  privateKey: KeyObject;
  faults?: Fault[];
  logger: Logger;
  nowMs?: () => number;
  /**
   * This replica ran before since the cluster was created and kept no consensus state: it may
   * have voted on things it no longer remembers, so the ordering protocol keeps it passive
   * where that matters (docs/consensus.md, "Restart without state").
   */
  restarted?: boolean;
  /** This replica's TLS material; default: from the config's tls: section, if it has one. */
  tls?: TlsIdentity;
  /** Where `persist: disk` channels are kept (its data directory); without one they live in memory only. */
  store?: EventStore;
  /**
   * The consensus journal (DIR/data/replica-N/consensus): with it the ordering protocol writes
   * ahead and a restarted replica recovers its state; without it a restart is amnesia.
   */
  journal?: JournalStore & { close(): Promise<void> };
}

export interface Peer extends HeldPeer {
  conn: Connection;
  handshakeTimer?: NodeJS.Timeout;
  challenge: Buffer;
  /** Set instead of client when another replica connected (for the ordering protocol). */
  replica: number | undefined;
  streams: Map<number, PushStream>;
  /** With TLS: the names the peer's certificate binds, checked against the id it claims. */
  tlsNames: string[] | undefined;
  /**
   * Events of this connection's publish frames not acknowledged until they are decided. Not
   * bounded by the publisher's window: that counts acknowledgements from a quorum, and a
   * replica behind the others may hold more than a window's worth.
   */
  awaitingOrderEvents: number;
  /** Stops waiting for each of its publish frames' ordered events (Ordering.order), when it closes. */
  orderWaits: Set<() => void>;
  /** The source address while the connection has not authenticated (handshakesPerAddressMax). */
  handshakingFrom: string | undefined;
  /** Set once quotas counted this connection against its client. */
  admitted: boolean;
  /** Control requests waiting for their decision, by request seq. */
  controlWaiting: Map<number, () => void>;
}

export class ReplicaServer {
  readonly service: BrokerService;
  private readonly server: Server;
  private readonly peers = new Set<Peer>();
  /** Whether malloc gets huge pages: read once, glibc took its tunables when the process started. */
  readonly hugePages = readHugePagesState();
  /** Push streams by the queue they drain: the queue names its channel and client at no cost. */
  private readonly streams = new Map<object, Set<PushStream>>();
  /** Mismatching copies subscribers reported, by the replica that sent them. */
  private readonly evidence = new Map<number, number>();
  private readonly startedAtMs = Date.now();
  private readonly nowMs: () => number;
  /** Refusals over handshakesPerAddressMax: when one was last logged, and how many since. */
  private floodLoggedAtMs = -Infinity;
  private floodSuppressed = 0;
  private readonly faults: Fault[];
  private readonly scheduler: PushScheduler;
  /** Connections not read from while their events waiting for the order are over orderBacklogEventsMax. */
  private readonly pausedForOrder = new Set<Peer>();
  private pausesForOrder = 0;
  private readonly quotas: ClientQuotas;
  /** Connections held for their client's rate or pending requests. */
  private readonly clientHolds: ClientHolds<Peer>;
  /** The ordering protocol and what it orders; absent when n < 3f+1 (it cannot run). */
  readonly ordering: Ordering | undefined;
  /** Absent: plain TCP. */
  private readonly tls: TlsIdentity | undefined;
  /** Writes disk channels' positions and trims them, every storeFlushMs. */
  private storeTimer: NodeJS.Timeout | undefined;
  /** Absent until serveOps(): no metrics are kept, and nothing on the hot path measures. */
  private metrics: ReplicaMetrics | undefined;
  private ops: OpsServer | undefined;
  /** Set once close() began: no new work, /readyz answers 503. */
  private draining = false;
  private closing: Promise<void> | undefined;
  /** Publisher connections held while a queue of an overflow: block channel they publish on is full. */
  private readonly overflow: OverflowHolds<Peer>;

  constructor(private readonly o: ReplicaOptions) {
    this.tls = o.tls ?? tlsIdentityFor(o.config, replicaTlsName(o.id));
    this.nowMs = o.nowMs ?? Date.now;
    this.faults = o.faults ?? [];
    this.quotas = new ClientQuotas(o.config.limits, this.nowMs);
    this.clientHolds = new ClientHolds<Peer>({ replica: o.id, limits: o.config.limits, quotas: this.quotas, logger: o.logger, nowMs: this.nowMs });
    this.scheduler = new PushScheduler(this.faults, o.config.limits.pushLingerMs);
    this.service = new BrokerService(o.config.table, o.config.limits, this.nowMs, o.store);
    if (o.store) {
      this.storeTimer = setInterval(() => this.service.flushStore(), o.config.limits.storeFlushMs);
      this.storeTimer.unref();
    }
    this.service.onQueued = (_channel, _client, queue) => {
      const set = this.streams.get(queue);
      if (set) for (const s of set) s.schedule();
    };
    this.service.onSubscriptionEnded = (key, client) => this.endStreams(key, client);
    this.service.onClientRekeyed = (client) => this.endClient(client);
    this.overflow = new OverflowHolds<Peer>({ hold: (p) => hold(p, 'overflow'), release: (p) => release(p, 'overflow'), expire: () => this.service.expireBlocked() });
    this.service.onBlocked = (channel, blocked) => this.overflow.channelBlocked(channel, blocked);
    this.service.onAppended = (_channel, log) => {
      const set = this.streams.get(log);
      if (set) for (const s of set) s.schedule();
    };
    const { replicas, f } = o.config;
    if (replicas.length >= 3 * f + 1) this.ordering = new Ordering({ config: o.config, id: o.id, privateKey: o.privateKey, restarted: o.restarted === true, journal: o.journal, slowOrderMs: slowOrderMs(this.faults), tls: this.tls, service: this.service, logger: o.logger, reply: (p, seq, body) => this.reply(p, seq, body), refuse: (p, seq, e) => this.refuse(p, seq, e, false), ordered: (ms) => this.metrics?.orderBatch.observe(ms / 1000) });
    const accept = this.tls
      ? tlsAcceptor(this.tls, o.config.limits, {
          onSecure: (socket, names, remote) => this.handle(socket, remote, names),
          onRefused: (socket, err, remote) => this.refuseSocket(socket, err, remote),
          onPlain: (socket, remote) =>
            this.refuseSocket(socket, new FitError('FIT_ERR_TLS_REQUIRED', `replica ${o.id} accepts TLS connections only and this one is plain TCP; use the cluster.yaml the replicas use, with its tls: section, and this client's certificate (fitbroker init --tls)`, { replica: o.id }), remote),
          onFailed: (err, remote) => o.logger.warn({ remote, code: err.code, ...err.fields }, err.message),
        })
      : (socket: Socket) => this.handle(socket, `${socket.remoteAddress}:${socket.remotePort}`);
    this.server = createServer({ noDelay: true }, accept);
  }

  get info(): { id: number; host: string; port: number } {
    const r = this.o.config.replicas[this.o.id]!;
    return { id: r.id, host: r.host, port: r.port };
  }

  /** Rebuilds the consensus state from the journal (see Ordering.recover); listen() does it too, if not done. */
  recover(): void {
    this.ordering?.recover();
  }

  listen(host = this.info.host, port = this.info.port): Promise<number> {
    this.recover();
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        this.ordering?.start();
        const addr = this.server.address();
        resolve(typeof addr === 'object' && addr ? addr.port : port);
      });
    });
  }

  /**
   * Serves /metrics, /healthz and /readyz over HTTP on `port` (0: any free one); resolves with
   * the port. Rejects with the listen error (EADDRINUSE...) and serves nothing then.
   */
  async serveOps(port: number, host = this.info.host): Promise<number> {
    const metrics = new ReplicaMetrics(this.metricsSource());
    const ops = new OpsServer({
      metrics: () => metrics.scrape(),
      metricsContentType: metrics.contentType,
      health: () => ({ replica: this.o.id, uptimeMs: Date.now() - this.startedAtMs, draining: this.draining }),
      readiness: () => this.readiness(),
    });
    const bound = await ops.listen(port, host);
    this.metrics = metrics;
    this.ops = ops;
    return bound;
  }

  /** What /readyz answers (docs/operations.md): listening, not shutting down, linked to 2f others when it orders. */
  readiness(): Readiness {
    return readiness({ listening: this.server.listening, draining: this.draining, f: this.o.config.f, peersConnected: this.ordering?.status().peersConnected });
  }

  /**
   * Stops the replica gracefully (SIGTERM): takes no new connections or requests, answers what
   * it already read (publishes waiting for the order, control changes) for up to
   * shutdownDrainMs, sends what its push streams have due, closes client connections once what
   * was written to them is flushed, then the links to the other replicas and the HTTP endpoint.
   * Whatever it could not answer, the clients resend to the other replicas. Each step is its own
   * line below, so that later steps (a store to flush) have a place; called twice, it returns
   * the same promise.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const startedMs = Date.now();
    const limits = this.o.config.limits;
    this.draining = true;
    // 1. No new connections; resolves once every open one is gone.
    const listenerClosed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    // 2. No new requests: client connections are no longer read (what they still send waits in
    //    TCP and is resent elsewhere); those that never authenticated go now. Other replicas'
    //    links stay: the order needs them to decide what this replica's clients wait for.
    for (const p of this.peers) {
      if (p.replica !== undefined) continue;
      if (p.client) hold(p, 'shutdown');
      else p.conn.close();
    }
    // 3. Answers to what was read: acknowledgements waiting for the order, decided control changes.
    const pending = this.unanswered();
    const drainUntil = startedMs + limits.shutdownDrainMs;
    while (this.unanswered() > 0 && Date.now() < drainUntil) await sleep(DRAIN_POLL_MS);
    const unanswered = this.unanswered();
    // 4. What push streams have due leaves now, not after the linger.
    this.scheduler.flushNow();
    // 5. Client connections close once what was written to them is flushed (Connection.end).
    let clients = 0;
    for (const p of this.peers) {
      if (p.replica !== undefined) continue;
      clients++;
      p.conn.end();
    }
    // 6. Links to and from the other replicas; the consensus journal's last writes on disk (and
    //    what waited for them answered).
    await this.ordering?.close();
    this.overflow.stop();
    for (const p of this.peers) if (p.replica !== undefined) p.conn.close();
    // Connection.end closes a socket that does not flush within a second; a TLS handshake that
    // never finished has no peer yet and is bounded by the forced exit of the caller.
    await Promise.race([listenerClosed, sleep(Math.max(0, limits.shutdownTimeoutMs - (Date.now() - startedMs)))]);
    // 7. Disk channels: positions as they stand now, so a restart sends subscribers nothing
    //    they acknowledged; then the store, synced.
    clearInterval(this.storeTimer);
    if (this.o.store) {
      this.service.flushStore();
      await this.o.store.close();
    }
    await this.o.journal?.close();
    // 8. The HTTP endpoint last: /readyz said 503 all along, and /metrics shows the drain.
    await this.ops?.close();
    this.o.logger.info({ ms: Date.now() - startedMs, pending, unanswered, clientConnections: clients }, unanswered > 0 ? `stopped; ${unanswered} request(s) left unanswered after shutdownDrainMs (the clients resend them to the other replicas)` : 'stopped; every request read was answered');
  }

  /** Request frames read from clients and not answered yet. */
  private unanswered(): number {
    let n = 0;
    for (const p of this.peers) n += p.unanswered.size;
    return n;
  }

  private metricsSource(): MetricsSource {
    const { config, id } = this.o;
    return {
      replica: id,
      n: config.replicas.length,
      f: config.f,
      tls: this.tls !== undefined,
      hugePages: this.hugePages.effective,
      queuedBytesMax: config.limits.queuedBytesMax,
      channels: () => this.service.stats(),
      queuedBytes: () => this.service.queuedBytes,
      clientConnections: () => this.clientConnections(),
      replicaLinksIn: () => [...this.peers].flatMap((p) => (p.replica === undefined ? [] : [p.replica])),
      replicaLinksOut: () => this.ordering?.status().peersConnected ?? [],
      evidence: () => this.evidence,
      limits: () => this.quotas.status(),
      ordering: () => (this.ordering ? { ...this.ordering.status(), pausedConnections: this.pausedForOrder.size, pausesForOrder: this.pausesForOrder } : undefined),
      readiness: () => this.readiness(),
    };
  }

  /** Serves one connection over any duplex stream: a socket, or an in-memory pair in tests. */
  handle(stream: Duplex, remote: string, tlsNames?: string[]): void {
    const limits = this.o.config.limits;
    const address = sourceAddress(remote);
    if (!this.quotas.handshakeStarted(address)) {
      const err = new FitError('FIT_ERR_TOO_MANY_CONNECTIONS', `${address} already has ${limits.handshakesPerAddressMax} connections to replica ${this.o.id} that have not authenticated, the most limits.handshakesPerAddressMax allows; wait for them to finish or time out (handshakeTimeoutMs), or raise the limit for many clients behind one address`, { address, limit: limits.handshakesPerAddressMax });
      return this.refuseFlood(stream, err, remote);
    }
    const peer: Peer = { conn: undefined as unknown as Connection, challenge: newNonce(), client: undefined, replica: undefined, streams: new Map(), remote, tlsNames, awaitingOrderEvents: 0, orderWaits: new Set(), holds: new Set(), handshakingFrom: undefined, noticedAtMs: {}, admitted: false, unanswered: new Set(), controlWaiting: new Map() };
    // Before the Connection's reader: a TLS ClientHello read as a frame would be logged as a
    // frame too large, which sends the operator looking in the wrong place.
    if (!this.tls) {
      stream.once('data', (first: Buffer) => {
        if (startsTls(first)) peer.conn.close(new FitError('FIT_ERR_TLS_HANDSHAKE', `a client started a TLS handshake, but replica ${this.o.id} runs without TLS (its cluster.yaml has no tls: section); every replica and client must use the same cluster.yaml`, { replica: this.o.id }));
      });
    }
    peer.conn = new Connection(stream, limits.frameBytesMax, limits.socketWriteBufferBytesMax, {
      onFrame: (body) => this.onFrame(peer, body),
      onClose: (reason) => this.onClose(peer, reason),
    });
    peer.handshakingFrom = address;
    this.peers.add(peer);
    peer.handshakeTimer = setTimeout(() => {
      if (!peer.client && peer.replica === undefined && !peer.conn.isClosed) this.refuse(peer, 0, new FitError('FIT_ERR_AUTH_FAILED', `no authentication within ${limits.handshakeTimeoutMs} ms; the peer is not a fitbroker client`), true);
    }, limits.handshakeTimeoutMs);
    peer.handshakeTimer.unref();
    peer.conn.send(encodeJson(MessageType.Challenge, { replica: this.o.id, nonce: peer.challenge.toString('base64'), version: AUTH_VERSION }));
  }

  status(): Record<string, unknown> {
    return {
      replica: this.o.id,
      n: this.o.config.replicas.length,
      f: this.o.config.f,
      uptimeMs: Date.now() - this.startedAtMs,
      // Replica links come and go on their own (a peer dials when it first has something to
      // say, and redials after a drop), so clients and replicas are counted apart.
      connections: this.clientConnections(),
      replicaLinks: this.peers.size - this.clientConnections(),
      channels: this.service.stats().map((c) => ({ ...c, heldConnections: this.overflow.heldFor(c.tag) })),
      evidence: Object.fromEntries(this.evidence),
      faults: this.faults.map((f) => f.kind),
      tls: this.tls !== undefined,
      // Whether malloc gets huge pages: without, page faults cost ~20 % more CPU at saturation.
      hugePages: this.hugePages,
      consensus: this.ordering ? { ...this.ordering.status(), pausedConnections: this.pausedForOrder.size, pausesForOrder: this.pausesForOrder } : null,
      // What the per-client limits cost each client: refused connections, throttles, pauses.
      limits: this.quotas.status(),
    };
  }

  private clientConnections(): number {
    let n = 0;
    for (const p of this.peers) if (p.replica === undefined) n++;
    return n;
  }

  private onClose(peer: Peer, reason: FitError | undefined): void {
    this.pausedForOrder.delete(peer);
    for (const cancel of peer.orderWaits) cancel();
    peer.orderWaits.clear();
    this.handshakeEnded(peer);
    // What it was waiting for will be answered to no one: it no longer counts against its client.
    this.clientHolds.forget(peer);
    this.overflow.forget(peer);
    if (peer.admitted) this.quotas.release(peer.client!.id);
    this.peers.delete(peer);
    for (const s of peer.streams.values()) this.dropStream(s);
    // A frame over frameBytesMax (or one that is empty) is refused by closing, not by refuse().
    if (reason?.code === 'FIT_ERR_FRAME_TOO_LARGE' && peer.replica === undefined) this.quotas.refused(peer.client?.id, reason.code);
    if (reason && reason.code !== 'FIT_ERR_CONNECTION') {
      this.o.logger.warn({ remote: peer.remote, client: peer.client?.id, code: reason.code, reason: reason.message }, 'closed connection');
    }
  }

  private onFrame(peer: Peer, body: Buffer): void {
    try {
      if (peer.replica !== undefined) return this.onReplicaFrame(peer, body);
      if (!peer.client) return this.onHello(peer, body);
      switch (body[0]) {
        case MessageType.Publish:
          return this.onPublish(peer, body);
        case MessageType.Credit: {
          const c = decodeCredit(body);
          peer.streams.get(c.streamId)?.grant(c.credits, c.ackedBelow - 1);
          return;
        }
        case MessageType.Request:
          // A request costs a replica more than an event does: it counts as one against the rate.
          this.clientHolds.throttle(peer, 1);
          return this.onRequest(peer, decodeJson(body));
        default:
          throw new FitError('FIT_ERR_MALFORMED', `message type ${body[0]} is not one a client sends`, { type: body[0] });
      }
    } catch (e) {
      const err = isFitError(e) ? e : new FitError('FIT_ERR_INTERNAL', String((e as Error)?.stack ?? e));
      // A frame we cannot parse means we no longer know where the peer's stream stands.
      this.refuse(peer, 0, err, err.code === 'FIT_ERR_MALFORMED' || err.code === 'FIT_ERR_INTERNAL');
    }
  }

  private onHello(peer: Peer, body: Buffer): void {
    if (body[0] !== MessageType.Hello) throw new FitError('FIT_ERR_AUTH_FAILED', 'the first message must be HELLO; authenticate before anything else');
    const hello = decodeJson(body);
    if (typeof hello.peer === 'number') return this.onReplicaHello(peer, hello);
    const id = typeof hello.client === 'string' ? hello.client : '';
    const client = this.service.client(id);
    if (!client) {
      return this.refuse(peer, 0, new FitError('FIT_ERR_UNKNOWN_CLIENT', `client "${id}" is not in the control table; add it under clients: in cluster.yaml (fitbroker init --clients)`, { client: id }), true);
    }
    if (!this.tlsNameMatches(peer, id)) {
      return this.refuse(peer, 0, new FitError('FIT_ERR_AUTH_FAILED', `a client claiming to be "${id}" presented the TLS certificate of ${peer.tlsNames!.map((n) => `"${n}"`).join(', ')}; each client connects with its own certificate (tls.cert in cluster.yaml, or --tls-cert)`, { client: id, certificate: peer.tlsNames!.join(',') }), true);
    }
    const nonce = Buffer.from(String(hello.nonce ?? ''), 'base64');
    const sig = Buffer.from(String(hello.signature ?? ''), 'base64');
    if (!verifyBytes(client.publicKey, authTranscript('client', this.o.id, id, peer.challenge, nonce), sig)) {
      return this.refuse(peer, 0, new FitError('FIT_ERR_AUTH_FAILED', `client "${id}" did not prove it holds the key in cluster.yaml; check that keys/${id}.pem belongs to this cluster`, { client: id }), true);
    }
    if (!this.quotas.admit(id)) {
      const max = this.o.config.limits.connectionsPerClientMax;
      return this.refuse(
        peer,
        0,
        new FitError('FIT_ERR_TOO_MANY_CONNECTIONS', `client "${id}" already holds ${max} connections to replica ${this.o.id}, the most limits.connectionsPerClientMax allows; close publishers and subscribers it no longer uses, or raise the limit in cluster.yaml`, { client: id, limit: max }),
        true,
      );
    }
    peer.admitted = true;
    peer.client = client;
    this.handshakeEnded(peer);
    const proof = signBytes(this.o.privateKey, authTranscript('replica', this.o.id, id, peer.challenge, nonce));
    peer.conn.send(encodeJson(MessageType.Welcome, { replica: this.o.id, signature: proof.toString('base64') }));
    this.o.logger.debug({ client: id, remote: peer.remote }, 'client authenticated');
  }

  /** Another replica connects to send us its ordering-protocol messages. */
  private onReplicaHello(peer: Peer, hello: Record<string, unknown>): void {
    const id = Number(hello.peer);
    const info = this.o.config.replicas[id];
    const nonce = Buffer.from(String(hello.nonce ?? ''), 'base64');
    const sig = Buffer.from(String(hello.signature ?? ''), 'base64');
    if (info && !this.tlsNameMatches(peer, replicaTlsName(id))) {
      return this.refuse(peer, 0, new FitError('FIT_ERR_AUTH_FAILED', `a peer claiming to be replica ${id} presented the TLS certificate of ${peer.tlsNames!.map((n) => `"${n}"`).join(', ')}, not ${replicaTlsName(id)}`, { replica: id, certificate: peer.tlsNames!.join(',') }), true);
    }
    if (!info || id === this.o.id || !verifyBytes(info.publicKey, authTranscript('peer', this.o.id, `replica-${id}`, peer.challenge, nonce), sig)) {
      return this.refuse(peer, 0, new FitError('FIT_ERR_AUTH_FAILED', `a peer claiming to be replica ${id} did not prove it holds that replica's key in cluster.yaml`, { replica: id }), true);
    }
    peer.replica = id;
    this.handshakeEnded(peer);
    peer.conn.raiseFrameLimit(this.o.config.limits.peerFrameBytesMax);
    const proof = signBytes(this.o.privateKey, authTranscript('replica', this.o.id, `replica-${id}`, peer.challenge, nonce));
    peer.conn.send(encodeJson(MessageType.Welcome, { replica: this.o.id, signature: proof.toString('base64') }));
    this.o.logger.info({ peer: id, remote: peer.remote }, 'replica connected');
  }

  /**
   * With TLS, the certificate must name the identity the peer claims: a certificate stolen
   * from one client is no use with another's key, and TLS names who is behind the connection
   * in logs. True without TLS (nothing to bind).
   */
  private tlsNameMatches(peer: Peer, name: string): boolean {
    return peer.tlsNames === undefined || peer.tlsNames.includes(name);
  }

  private handshakeEnded(peer: Peer): void {
    clearTimeout(peer.handshakeTimer);
    if (peer.handshakingFrom === undefined) return;
    this.quotas.handshakeEnded(peer.handshakingFrom);
    peer.handshakingFrom = undefined;
  }

  /**
   * Refuses a connection over handshakesPerAddressMax: like refuseSocket, but a flood is logged
   * once per NOTICE_INTERVAL_MS with what it suppressed (each refusal is counted in status).
   */
  private refuseFlood(stream: Duplex, err: FitError, remote: string): void {
    this.refuseSocket(stream, err, remote, false);
    const now = this.nowMs();
    if (now - this.floodLoggedAtMs < NOTICE_INTERVAL_MS) return void this.floodSuppressed++;
    this.o.logger.warn({ remote, code: err.code, ...err.fields, suppressed: this.floodSuppressed }, err.message);
    this.floodLoggedAtMs = now;
    this.floodSuppressed = 0;
  }

  /** Refuses a connection before the fitbroker handshake (TLS refused, or TLS missing). */
  private refuseSocket(socket: Duplex, err: FitError, remote: string, log = true): void {
    if (log) this.o.logger.warn({ remote, code: err.code, ...err.fields }, err.message);
    socket.on('error', () => socket.destroy());
    socket.end(encodeJson(MessageType.Reply, { seq: 0, kind: 'request', ok: false, error: err.toJSON() }));
    setTimeout(() => socket.destroy(), 1000).unref();
  }

  private onReplicaFrame(peer: Peer, body: Buffer): void {
    if (body[0] !== MessageType.Consensus || !this.ordering) {
      throw new FitError('FIT_ERR_MALFORMED', `replica ${peer.replica} sent message type ${body[0]}; replicas send each other CONSENSUS messages only`, { replica: peer.replica });
    }
    this.ordering.receive(peer.replica!, decodeJson(body));
  }

  private onPublish(peer: Peer, body: Buffer): void {
    // Per frame, not per event, and only while metrics are served.
    const readMs = this.metrics ? performance.now() : 0;
    const p = decodePublish(body);
    try {
      const r = this.service.publish(peer.client!, body, p.sections);
      // A full queue of an overflow: block channel: this frame was queued, the next ones wait in TCP.
      if (r.blocked) this.overflow.hold(peer, r.blocked);
      const sendAck = (): void => {
        peer.conn.send(encodeAck(p.reqSeq, r.accepted, r.duplicates));
        this.metrics?.publishAck.observe({ ordered: r.unordered && this.ordering ? 'true' : 'false' }, (performance.now() - readMs) / 1000);
      };
      const ack = r.stored ? (): void => this.whenStored(peer, p.reqSeq, sendAck) : sendAck;
      // Events of ordered channels are acknowledged once ordered: the publisher's window then
      // holds it to the rate the order sustains, and an acknowledged event is an ordered one.
      if (r.unordered && this.ordering) {
        const events = r.unordered.reduce((n, s) => n + s.events.length, 0);
        const max = this.o.config.limits.orderBacklogEventsMax;
        peer.awaitingOrderEvents += events;
        const done = this.clientHolds.pending(peer);
        // Answered at once when every event was decided before (a resend): `cancel` unset then.
        let cancel: (() => void) | undefined;
        let answered = false;
        cancel = this.ordering.order(peer.client!.id, r.unordered, (err) => {
          answered = true;
          if (cancel) peer.orderWaits.delete(cancel);
          peer.awaitingOrderEvents -= events;
          if (err) this.refuse(peer, p.reqSeq, err, false, 'publish');
          else ack();
          done();
          if (peer.awaitingOrderEvents <= max / 2 && this.pausedForOrder.delete(peer)) release(peer, 'order');
        });
        if (!answered) peer.orderWaits.add(cancel);
        const queued = this.ordering.queuedFor(peer.client!.id);
        if (queued > 0) this.clientHolds.notice(peer, 'share', shareNotice(this.o.id, peer.client!.id, queued, this.o.config.limits));
        // More of this publisher's events waiting for the order than are worth holding: its
        // writes back up into TCP until the order catches up. Per connection, so a publisher
        // whose events never become orderable holds back no one but itself.
        if (peer.awaitingOrderEvents > max && !this.pausedForOrder.has(peer)) {
          this.pausedForOrder.add(peer);
          this.pausesForOrder++;
          hold(peer, 'order');
        }
      } else ack();
    } catch (e) {
      if (!isFitError(e)) throw e;
      this.refuse(peer, p.reqSeq, e, false, 'publish');
    } finally {
      // Refused frames were read and checked too: they count against the rate like any other.
      this.clientHolds.throttle(peer, p.sections.reduce((n, s) => n + s.count, 0));
    }
  }

  /**
   * Disk channels: a publish frame is acknowledged once its records are on disk. Group commit:
   * every frame of one event-loop turn waits for the same flush.
   */
  private whenStored(peer: Peer, reqSeq: number, sendAck: () => void): void {
    const done = this.clientHolds.pending(peer);
    this.service.durable().then(
      () => {
        done();
        if (!peer.conn.isClosed) sendAck();
      },
      (e: unknown) => {
        done();
        const err = e as FitError;
        this.o.logger.error({ code: err.code, ...err.fields }, err.message);
        if (!peer.conn.isClosed) this.refuse(peer, reqSeq, err, false, 'publish');
      },
    );
  }

  private onRequest(peer: Peer, req: Record<string, unknown>): void {
    const seq = Number(req.seq);
    // seq becomes a u32 stream id in EVENTS frames: a larger one would throw when pushed.
    if (!Number.isInteger(seq) || seq < 1 || seq > 0xffff_ffff) throw new FitError('FIT_ERR_MALFORMED', 'request without a positive integer seq below 2^32');
    const client = peer.client!;
    try {
      switch (req.method) {
        case 'subscribe':
          return this.subscribe(peer, seq, String(req.channel), Number(req.credits), req.from);
        case 'unsubscribe': {
          const s = peer.streams.get(Number(req.stream));
          if (s) this.dropStream(s, peer);
          return this.reply(peer, seq, {});
        }
        case 'receive':
          return this.receive(peer, seq, String(req.channel), Number(req.max));
        case 'status':
          return this.reply(peer, seq, { status: this.status() });
        case 'report':
          this.report(client, req.mismatches);
          return this.reply(peer, seq, {});
        case 'control':
          if (!this.ordering) {
            throw new FitError('FIT_ERR_NOT_SUPPORTED', `changing the control table at runtime needs the ordering protocol, which needs n >= 3f+1 replicas; this cluster has n=${this.o.config.replicas.length}, f=${this.o.config.f}. Edit cluster.yaml and restart instead`);
          }
          if (!peer.controlWaiting.has(seq)) peer.controlWaiting.set(seq, this.clientHolds.pending(peer));
          return this.ordering.control(peer, seq, req.change);
        default:
          throw new FitError('FIT_ERR_UNKNOWN_METHOD', `unknown method "${String(req.method)}"; this replica knows subscribe, unsubscribe, receive, status, report and control`, {
            method: String(req.method),
          });
      }
    } catch (e) {
      if (!isFitError(e)) throw e;
      this.refuse(peer, seq, e, false);
    }
  }

  /** `from`: for an ordered channel, the seq to start at (default: where the client left off). */
  private subscribe(peer: Peer, seq: number, channel: string, credits: number, from: unknown): void {
    const client = peer.client!;
    const log = this.service.logFor(client, channel);
    if (!Number.isInteger(credits) || credits < 0) throw new FitError('FIT_ERR_MALFORMED', 'subscribe needs credits: a non-negative integer');
    if (from !== undefined && (!log || !Number.isSafeInteger(from) || (from as number) < 1)) {
      throw new FitError('FIT_ERR_USAGE', log ? 'subscribe --from needs a positive whole seq' : `channel "${channel}" is not ordered: its events have no seq to resume from`, { channel });
    }
    // Replacing an open stream would orphan it: attached to the queue and never closed.
    if (peer.streams.has(seq)) throw new FitError('FIT_ERR_MALFORMED', `stream ${seq} is already open on this connection; subscribe with a new request seq`, { stream: seq });
    const start = log ? (from === undefined ? log.position(client.id) : Math.max(from as number, log.low)) : 0;
    const source = log ? new LogSource(log, client.id, start) : new QueueSource(this.service.queueFor(client, channel));
    const limits = this.o.config.limits;
    const ps = new PushStream(seq, channel, client.id, source, peer.conn, credits, subscriberSalt(client.id), {
      pushBatchEventsMax: limits.pushBatchEventsMax,
      inflightEventsMax: 4 * limits.subscribeCreditsEvents,
      nowMs: this.nowMs,
      faults: this.faults,
      scheduler: this.scheduler,
    });
    peer.streams.set(seq, ps);
    let set = this.streams.get(source.key);
    if (!set) this.streams.set(source.key, (set = new Set()));
    set.add(ps);
    // For an ordered channel, where this session starts and what the replica still holds.
    this.reply(peer, seq, log ? { stream: seq, from: start, low: log.low, high: log.high } : { stream: seq });
    ps.schedule();
  }

  private receive(peer: Peer, seq: number, channel: string, max: number): void {
    const queue = this.service.queueFor(peer.client!, channel);
    if (!Number.isInteger(max) || max < 1) throw new FitError('FIT_ERR_MALFORMED', 'receive needs max: a positive integer');
    if (this.faults.some((f) => f.kind === 'mute')) return this.reply(peer, seq, { count: 0 });
    // One EVENTS frame answers a pull: no more than a push frame holds, so that it stays under the client's frameBytesMax.
    const entries = queue.pull(Math.min(max, this.o.config.limits.pushBatchEventsMax), this.nowMs(), PUSH_FRAME_BYTES);
    peer.conn.send(encodeEvents(seq, 0, entries.map((e) => e.rec)));
    this.reply(peer, seq, { count: entries.length });
  }

  private report(client: ClientInfo, mismatches: unknown): void {
    if (typeof mismatches !== 'object' || mismatches === null) return;
    for (const [replica, count] of Object.entries(mismatches)) {
      const id = Number(replica);
      const n = Number(count);
      if (!Number.isInteger(id) || id < 0 || id >= this.o.config.replicas.length || !Number.isInteger(n) || n <= 0) continue;
      this.evidence.set(id, (this.evidence.get(id) ?? 0) + n);
      this.o.logger.warn({ suspect: id, mismatches: n, reporter: client.id }, 'a subscriber reported copies from this replica that did not match the voted event');
    }
  }

  /** The client was unsubscribed from the queue's channel: its sessions there end, with a reason. */
  /** Ends every connection `client` authenticated with a key the control table no longer holds. */
  private endClient(client: string): void {
    // After this turn: the change's own answer (to an admin rotating its own key) goes out first.
    setImmediate(() => this.endClientNow(client));
  }

  private endClientNow(client: string): void {
    for (const p of this.peers) {
      if (p.client?.id !== client) continue;
      this.refuse(p, 0, new FitError('FIT_ERR_AUTH_FAILED', `client "${client}"'s key was replaced (fitbroker keys rotate --client); reconnect with the new key`, { client }), true);
    }
  }

  private endStreams(key: object, client: string): void {
    const set = this.streams.get(key);
    if (!set) return;
    for (const p of this.peers) {
      for (const s of p.streams.values()) {
        if (!set.has(s) || s.client !== client) continue;
        this.dropStream(s, p);
        this.refuse(p, s.id, new FitError('FIT_ERR_NOT_AUTHORIZED', `client "${s.client}" was unsubscribed from channel "${s.channel}" by an admin (fitbroker acl)`, { channel: s.channel, client: s.client }), false);
      }
    }
  }

  private dropStream(s: PushStream, peer?: Peer): void {
    s.close();
    peer?.streams.delete(s.id);
    this.streams.get(s.source.key)?.delete(s);
  }

  private reply(peer: Peer, seq: number, body: Record<string, unknown>): void {
    this.answered(peer, seq);
    peer.conn.send(encodeJson(MessageType.Reply, { seq, ok: true, ...body }));
  }

  /** A control request was answered: it no longer counts as pending. */
  private answered(peer: Peer, seq: number): void {
    const done = peer.controlWaiting.get(seq);
    if (!done) return;
    peer.controlWaiting.delete(seq);
    done();
  }

  private refuse(peer: Peer, seq: number, err: FitError, close: boolean, kind = 'request'): void {
    if (kind !== 'publish') this.answered(peer, seq);
    // A connection over connectionsPerClientMax is refused after its client proved its key.
    const client = peer.client?.id ?? (err.code === 'FIT_ERR_TOO_MANY_CONNECTIONS' ? String(err.fields.client) : undefined);
    if (peer.replica === undefined) this.quotas.refused(client, err.code);
    peer.conn.send(encodeJson(MessageType.Reply, { seq, kind, ok: false, error: err.toJSON() }));
    this.o.logger.warn({ remote: peer.remote, client: peer.client?.id, code: err.code, ...err.fields }, err.message);
    if (close) peer.conn.end(err);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
