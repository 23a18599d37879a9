// A hand-driven client connection for tests that must say things no real client says: frames
// built byte by byte, forged records, junk before or after authentication. It speaks just
// enough of the protocol (framing, the CHALLENGE / HELLO / WELCOME handshake, JSON requests)
// to reach the code under test, and never hides what the replica answered.
// It must never be used to make a test pass that a real Publisher or Subscriber would fail.

import { connect, type Socket } from 'node:net';
import type { KeyObject } from 'node:crypto';
import { randomBytes } from 'node:crypto';
import assert from 'node:assert/strict';
import { FrameDecoder, MessageType, PUBLISH_SEQ_AT, decodeJson, encodeJson, publishHeaderBytes, recordBytes, writePublishHeader, writeRecord } from '../../src/codec/index.js';
import { authTranscript, newNonce, signBytes, verifyBytes } from '../../src/protection/index.js';
import type { Priority, ReplicaInfo } from '../../src/core/index.js';

/** Frames a raw client accepts from a replica: generous, so a test sees what was sent. */
const RAW_FRAME_BYTES_MAX = 64 * 1024 * 1024;
/** Frames kept for next(); pushed EVENTS beyond this are dropped (tests that fuzz ignore them). */
const INBOX_FRAMES_MAX = 1024;

type Waiter = { match(body: Buffer): boolean; resolve(body: Buffer | undefined): void };

export class RawClient {
  private readonly decoder = new FrameDecoder(RAW_FRAME_BYTES_MAX);
  private readonly inbox: Buffer[] = [];
  private readonly waiters = new Set<Waiter>();
  private closedFlag = false;
  /** Resolves when the socket is closed, by either side. */
  readonly closed: Promise<void>;
  /** Frames received in total, kept or not. */
  framesIn = 0;

  private constructor(readonly socket: Socket) {
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    // A replica that closes on us makes writes fail with EPIPE / ECONNRESET: expected here.
    socket.on('error', () => undefined);
    socket.once('close', () => {
      this.closedFlag = true;
      for (const w of this.waiters) w.resolve(undefined);
      this.waiters.clear();
    });
  }

  static open(replica: Pick<ReplicaInfo, 'host' | 'port'>, timeoutMs = 5_000): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: replica.host, port: replica.port, noDelay: true });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`raw client: no connection to ${replica.host}:${replica.port} within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(new RawClient(socket));
      });
      socket.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  }

  get isClosed(): boolean {
    return this.closedFlag || this.socket.destroyed;
  }

  write(buf: Buffer): void {
    if (!this.isClosed) this.socket.write(buf);
  }

  /** Sends a JSON control message (REQUEST by default) and returns nothing: see reply(). */
  sendJson(value: unknown, type: MessageType = MessageType.Request): void {
    this.write(encodeJson(type, value));
  }

  /** The first frame (received or arriving) that `match` accepts; undefined on close or timeout. */
  next(match: (body: Buffer) => boolean, timeoutMs = 5_000): Promise<Buffer | undefined> {
    const i = this.inbox.findIndex(match);
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0]);
    if (this.isClosed) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const w: Waiter = {
        match,
        resolve: (body) => {
          clearTimeout(timer);
          this.waiters.delete(w);
          resolve(body);
        },
      };
      const timer = setTimeout(() => w.resolve(undefined), timeoutMs);
      this.waiters.add(w);
    });
  }

  /** The REPLY whose seq is `seq`, decoded; undefined if the connection closed first. */
  async reply(seq: number, timeoutMs = 5_000): Promise<Record<string, unknown> | undefined> {
    const body = await this.next((b) => b[0] === MessageType.Reply && jsonOrUndefined(b)?.seq === seq, timeoutMs);
    return body ? decodeJson(body) : undefined;
  }

  /** Sends a REQUEST and waits for its REPLY. */
  request(seq: number, method: string, fields: Record<string, unknown> = {}, timeoutMs = 5_000): Promise<Record<string, unknown> | undefined> {
    this.sendJson({ seq, method, ...fields });
    return this.reply(seq, timeoutMs);
  }

  /**
   * Runs the client side of the handshake as `clientId` with `key` and checks the replica's
   * proof. Resolves with WELCOME, or with the replica's refusal (a REPLY with ok:false), or
   * undefined if the connection closed without either.
   */
  async authenticate(replica: ReplicaInfo, clientId: string, key: KeyObject, timeoutMs = 5_000): Promise<{ welcome?: Record<string, unknown>; refusal?: Record<string, unknown> } | undefined> {
    const challengeBody = await this.next((b) => b[0] === MessageType.Challenge, timeoutMs);
    if (!challengeBody) return undefined;
    const challenge = Buffer.from(String(decodeJson(challengeBody).nonce), 'base64');
    const nonce = newNonce();
    const signature = signBytes(key, authTranscript('client', replica.id, clientId, challenge, nonce));
    this.sendJson({ client: clientId, nonce: nonce.toString('base64'), signature: signature.toString('base64') }, MessageType.Hello);
    const answer = await this.next((b) => b[0] === MessageType.Welcome || b[0] === MessageType.Reply, timeoutMs);
    if (!answer) return undefined;
    const msg = decodeJson(answer);
    if (answer[0] === MessageType.Reply) return { refusal: msg };
    const proof = Buffer.from(String(msg.signature ?? ''), 'base64');
    if (!verifyBytes(replica.publicKey, authTranscript('replica', replica.id, clientId, challenge, nonce), proof)) {
      throw new Error(`replica ${replica.id} sent a WELCOME without a valid proof of its key`);
    }
    return { welcome: msg };
  }

  /** Half-closes (our side is done) and waits up to timeoutMs for the socket to close. */
  async end(timeoutMs = 1_000): Promise<void> {
    if (!this.isClosed) this.socket.end();
    await Promise.race([this.closed, new Promise((r) => setTimeout(r, timeoutMs))]);
    this.socket.destroy();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    let frames: Buffer[];
    try {
      frames = this.decoder.push(chunk);
    } catch {
      this.socket.destroy();
      return;
    }
    for (const body of frames) {
      this.framesIn++;
      const w = [...this.waiters].find((x) => x.match(body));
      if (w) {
        w.resolve(body);
        continue;
      }
      if (body[0] === MessageType.Events && this.inbox.length >= INBOX_FRAMES_MAX) continue;
      if (this.inbox.length >= INBOX_FRAMES_MAX) this.inbox.shift();
      this.inbox.push(body);
    }
  }
}

function jsonOrUndefined(body: Buffer): Record<string, unknown> | undefined {
  try {
    return decodeJson(body);
  } catch {
    return undefined;
  }
}

/** One PUBLISH frame on `channel` holding one record per entry of `publishers`. */
export function publishFrame(channel: string, publishers: string[], reqSeq: number, priority: Priority = 0): Buffer {
  const channelBytes = Buffer.from(channel, 'utf8');
  const epoch = randomBytes(8);
  const records = publishers.map((p, i) => ({
    publisher: Buffer.from(p, 'utf8'),
    epoch,
    seq: i + 1,
    timestampMs: Date.now(),
    priority,
    contentType: 0 as const,
    content: Buffer.from(`raw ${i}`, 'utf8'),
  }));
  const size = publishHeaderBytes(channelBytes) + records.reduce((n, r) => n + recordBytes(r.publisher.length, r.content.length), 0);
  const out = Buffer.alloc(size);
  let o = writePublishHeader(out, channelBytes, records.length, size);
  for (const r of records) o = writeRecord(out, o, r);
  assert.equal(o, size);
  out.writeUInt32BE(reqSeq, PUBLISH_SEQ_AT);
  return out;
}
