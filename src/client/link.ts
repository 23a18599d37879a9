// L2 on the client side, the service proxy's connection to one replica: connects, proves the
// client's identity, checks the replica's proof against its key in the config (so a stranger
// on the replica's port is never believed), and reconnects with backoff when the link drops.

import type { KeyObject } from 'node:crypto';
import { FitError, isFitError, type Limits, type ReplicaInfo } from '../core/index.js';
import { MessageType, decodeJson, encodeJson } from '../codec/index.js';
import { authTranscript, newNonce, signBytes, verifyBytes, type TlsIdentity } from '../protection/index.js';
import { Connection, dialTls, tlsDialError } from '../net/index.js';

export interface LinkHandlers {
  onReady(link: ReplicaLink): void;
  onFrame(link: ReplicaLink, body: Buffer): void;
  onDown(link: ReplicaLink, reason: FitError | undefined): void;
  /**
   * The replica says it is holding this connection back (FIT_ERR_RATE_LIMITED,
   * FIT_ERR_TOO_MANY_PENDING): nothing failed and nothing needs resending.
   */
  onNotice?(link: ReplicaLink, notice: FitError): void;
}

const BACKOFF_MS_MIN = 50;
const BACKOFF_MS_MAX = 2000;

export class ReplicaLink {
  private conn: Connection | undefined;
  private authed = false;
  private stopped = false;
  private backoffMs = BACKOFF_MS_MIN;
  private nextSeq = 1;
  private challenge = Buffer.alloc(0);
  private retry: NodeJS.Timeout | undefined;
  private wentDown = false;
  private readonly waiting = new Map<number, { resolve(v: Record<string, unknown>): void; reject(e: FitError): void }>();
  /** The last refusal this replica sent (unknown client, bad key, …), for error reports. */
  lastError: FitError | undefined;

  constructor(
    readonly replica: ReplicaInfo,
    private readonly clientId: string,
    private readonly privateKey: KeyObject,
    private readonly limits: Limits,
    private readonly handlers: LinkHandlers,
    /** Set when a replica connects to another one: it proves it is replica `asReplica`, with that replica's key. */
    private readonly asReplica?: number,
    /** This node's TLS material: dial with TLS. Absent: plain TCP. */
    private readonly tls?: TlsIdentity,
  ) {}

  /** Who this link says it is in the handshake transcripts. */
  private get party(): string {
    return this.asReplica === undefined ? this.clientId : `replica-${this.asReplica}`;
  }

  get id(): number {
    return this.replica.id;
  }

  get ready(): boolean {
    return this.authed && this.conn !== undefined && !this.conn.isClosed;
  }

  /**
   * True once a connection attempt failed or dropped, until the link is ready again. A link
   * still making its first connection is not down: a cft publish must wait for it, or a batch
   * could be acknowledged by one replica while the other was merely slower to connect.
   */
  get down(): boolean {
    return this.wentDown && !this.ready;
  }

  get writable(): boolean {
    return this.ready && this.conn!.writable;
  }

  /** Bytes sent to this replica still waiting in this process (0 when not connected). */
  get backlogBytes(): number {
    return this.conn?.backlogBytes ?? 0;
  }

  start(): void {
    if (this.stopped || this.conn) return;
    const nonce = newNonce();
    const handlers = {
      onFrame: (body: Buffer) => (this.authed ? this.onFrame(body) : this.onHandshake(body, nonce)),
      onClose: (reason: FitError | undefined) => this.onClose(reason),
    };
    const { frameBytesMax, socketWriteBufferBytesMax } = this.limits;
    if (!this.tls) {
      this.conn = Connection.dial(this.replica.host, this.replica.port, frameBytesMax, socketWriteBufferBytesMax, handlers);
      return;
    }
    const tls = this.tls;
    const socket = dialTls(this.replica, tls);
    // Before the Connection's own listener, which sees any error as FIT_ERR_CONNECTION: a
    // certificate problem is not one that retrying fixes, and the user must hear which.
    socket.on('error', (e: NodeJS.ErrnoException) => {
      const err = tlsDialError(e, this.replica, tls);
      if (err) this.lastError = err;
    });
    this.conn = new Connection(socket, frameBytesMax, socketWriteBufferBytesMax, handlers);
  }

  send(buf: Buffer): void {
    if (this.ready) this.conn!.send(buf);
  }

  whenDrained(cb: () => void): void {
    this.conn?.whenDrained(cb);
  }

  /** Sends a JSON request; resolves with the reply, rejects with the replica's error. */
  request(method: string, body: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    if (!this.ready) return Promise.reject(new FitError('FIT_ERR_CONNECTION', `replica ${this.id} is not connected`, { replica: this.id }));
    const seq = this.nextSeq++;
    return new Promise((resolve, reject) => {
      this.waiting.set(seq, { resolve, reject });
      this.conn!.send(encodeJson(MessageType.Request, { seq, method, ...body }));
    });
  }

  /** Allocates a request sequence number without sending (for subscribe's stream id). */
  peekSeq(): number {
    return this.nextSeq;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retry);
    this.conn?.end();
  }

  private onHandshake(body: Buffer, nonce: Buffer): void {
    const type = body[0];
    const msg = decodeJsonSafe(body);
    if (type === MessageType.Challenge && msg) {
      if (msg.replica !== this.id) return this.fail(new FitError('FIT_ERR_AUTH_FAILED', `expected replica ${this.id} at ${this.replica.host}:${this.replica.port}, it says it is ${String(msg.replica)}; check cluster.yaml`));
      this.challenge = Buffer.from(String(msg.nonce ?? ''), 'base64');
      const sig = signBytes(this.privateKey, authTranscript(this.asReplica === undefined ? 'client' : 'peer', this.id, this.party, this.challenge, nonce));
      const who = this.asReplica === undefined ? { client: this.clientId } : { peer: this.asReplica };
      this.conn!.send(encodeJson(MessageType.Hello, { ...who, nonce: nonce.toString('base64'), signature: sig.toString('base64') }));
      return;
    }
    if (type === MessageType.Welcome && msg) {
      const sig = Buffer.from(String(msg.signature ?? ''), 'base64');
      if (!verifyBytes(this.replica.publicKey, authTranscript('replica', this.id, this.party, this.challenge, nonce), sig)) {
        return this.fail(new FitError('FIT_ERR_AUTH_FAILED', `replica ${this.id} at ${this.replica.host}:${this.replica.port} could not prove it holds its key from cluster.yaml; refusing to trust it`, { replica: this.id }));
      }
      this.authed = true;
      this.backoffMs = BACKOFF_MS_MIN;
      this.lastError = undefined;
      this.handlers.onReady(this);
      return;
    }
    if (type === MessageType.Reply && msg && msg.ok === false) return this.fail(FitError.fromJSON(msg.error));
    this.fail(new FitError('FIT_ERR_MALFORMED', `replica ${this.id} sent an unexpected message during authentication`, { replica: this.id }));
  }

  private onFrame(body: Buffer): void {
    if (body[0] === MessageType.Reply) {
      let msg: Record<string, unknown>;
      try {
        msg = decodeJson(body);
      } catch (e) {
        return this.fail(isFitError(e) ? e : new FitError('FIT_ERR_MALFORMED', String(e)));
      }
      if (msg.kind === 'notice') return this.handlers.onNotice?.(this, FitError.fromJSON(msg.error));
      const w = msg.kind !== 'publish' ? this.waiting.get(Number(msg.seq)) : undefined;
      if (w) {
        this.waiting.delete(Number(msg.seq));
        if (msg.ok === true) w.resolve(msg);
        else w.reject(FitError.fromJSON(msg.error));
        return;
      }
    }
    this.handlers.onFrame(this, body);
  }

  private fail(err: FitError): void {
    this.lastError = err;
    this.conn?.close(err);
  }

  private onClose(reason: FitError | undefined): void {
    const wasReady = this.authed;
    this.wentDown = true;
    this.conn = undefined;
    this.authed = false;
    const err = reason ?? new FitError('FIT_ERR_CONNECTION', `connection to replica ${this.id} closed`, { replica: this.id });
    if (reason && reason.code !== 'FIT_ERR_CONNECTION') this.lastError = reason;
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
    this.handlers.onDown(this, wasReady ? err : (this.lastError ?? err));
    if (this.stopped) return;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(BACKOFF_MS_MAX, this.backoffMs * 2);
    // Not unref'd: a publisher waiting for acknowledgements must stay alive to reconnect.
    this.retry = setTimeout(() => this.start(), delay);
  }
}

function decodeJsonSafe(body: Buffer): Record<string, unknown> | undefined {
  try {
    return decodeJson(body);
  } catch {
    return undefined;
  }
}

/**
 * A refusal (unknown client, bad key, not authorized) believed because `threshold` replicas
 * agree on it: with at most threshold-1 faulty, at least one of them is correct.
 */
export function believedRefusal(errors: Iterable<FitError | undefined>, threshold: number): FitError | undefined {
  const byCode = new Map<string, FitError[]>();
  for (const e of errors) {
    if (!e || e.code === 'FIT_ERR_CONNECTION' || e.code === 'FIT_ERR_MALFORMED') continue;
    const list = byCode.get(e.code) ?? [];
    list.push(e);
    byCode.set(e.code, list);
    if (list.length >= threshold) return list[0];
  }
  return undefined;
}
