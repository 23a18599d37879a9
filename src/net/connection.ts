// One framed connection over any duplex stream (TCP socket, TLS socket, or an in-memory pair in
// tests). It owns framing and write backpressure; what the frames mean is the caller's business.
// A decode error closes only this connection: one bad peer must never cost anyone else.

import { connect } from 'node:net';
import type { Duplex } from 'node:stream';
import { FitError, isFitError } from '../core/index.js';
import { FrameDecoder, SlabFrameReader } from '../codec/index.js';

export interface ConnectionHandlers {
  onFrame(body: Buffer): void;
  onClose(reason: FitError | undefined): void;
}

export class Connection {
  /**
   * Dials plain TCP, reading into memory the connection owns so that frames are handed on
   * without being copied (SlabFrameReader). For the streams a client reads most from.
   */
  static dial(host: string, port: number, frameBytesMax: number, writeBufferBytesMax: number, handlers: ConnectionHandlers): Connection {
    const reader = new SlabFrameReader(frameBytesMax);
    // The socket calls back only once connected, after the constructor below has run.
    let conn: Connection | undefined;
    // Thrown out of either callback, an error would leave the socket's next read in the buffer
    // the last one filled, over frames already handed on, in a process that survives it: the
    // connection closes first.
    const closeAndThrow = (e: unknown, where: string): never => {
      conn?.close(new FitError('FIT_ERR_INTERNAL', `connection closed by an error ${where}: ${String(e)}`));
      throw e;
    };
    const nextBuffer = (): Buffer => {
      try {
        return reader.readBuffer();
      } catch (e) {
        return closeAndThrow(e, 'allocating its read buffer');
      }
    };
    const onRead = (n: number): boolean => {
      try {
        conn!.onData(n);
      } catch (e) {
        closeAndThrow(e, 'in a frame handler');
      }
      return true;
    };
    const socket = connect({ host, port, noDelay: true, onread: { buffer: nextBuffer, callback: onRead } });
    conn = new Connection(socket, frameBytesMax, writeBufferBytesMax, handlers, reader);
    return conn;
  }

  /** Frames the chunks of data events; or, on a dialed socket, `reader` frames in place. */
  private readonly decoder: FrameDecoder | undefined;
  private closed = false;
  /** Set by end(): the peer is no longer trusted, so nothing more it sends is acted on. */
  private ending = false;
  private drainWaiters: (() => void)[] = [];

  constructor(
    readonly stream: Duplex,
    frameBytesMax: number,
    private readonly writeBufferBytesMax: number,
    private readonly handlers: ConnectionHandlers,
    private readonly reader?: SlabFrameReader,
  ) {
    // A socket given a reader (dial()) reads into it and emits no data events.
    if (reader === undefined) {
      this.decoder = new FrameDecoder(frameBytesMax);
      stream.on('data', (chunk: Buffer) => this.onData(chunk));
    }
    stream.on('error', (e: Error) => this.close(new FitError('FIT_ERR_CONNECTION', `connection error: ${e.message}`)));
    stream.on('close', () => this.close(undefined));
    stream.on('end', () => this.close(undefined));
    stream.on('drain', () => {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of waiters) w();
    });
  }

  /** Stops reading from the peer (its writes back up into TCP: backpressure), until resume(). */
  pause(): void {
    this.stream.pause();
  }

  resume(): void {
    if (!this.closed) this.stream.resume();
  }

  /** Raises the largest frame this connection accepts (once the peer proved it is a replica). */
  raiseFrameLimit(frameBytesMax: number): void {
    (this.reader ?? this.decoder!).raiseLimit(frameBytesMax);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** True while the peer keeps up; false means stop producing until whenDrained(). */
  get writable(): boolean {
    return !this.closed && !this.ending && this.stream.writableLength < this.writeBufferBytesMax;
  }

  /** Bytes written and not yet taken by the kernel: what this process holds for the peer. */
  get backlogBytes(): number {
    return this.stream.writableLength;
  }

  whenDrained(cb: () => void): void {
    if (this.closed) return;
    this.drainWaiters.push(cb);
  }

  /**
   * Queues a frame; `written` runs once the socket no longer reads it (on a net or TLS socket:
   * the kernel or TLS took the bytes, or the write was cancelled as the socket closed). Not
   * for other streams, which may hand the buffer itself to their reader.
   */
  send(buf: Buffer, written?: () => void): void {
    if (this.closed || this.ending) return;
    // Frames sent in one turn of the event loop leave in one writev: a replica pushing fifty
    // channels' small frames would otherwise make a write syscall for each.
    if (!this.corked) {
      this.corked = true;
      this.stream.cork();
      process.nextTick(this.uncork);
    }
    if (written === undefined) this.stream.write(buf);
    else this.stream.write(buf, (err) => err == null && written());
  }

  private corked = false;
  private readonly uncork = (): void => {
    this.corked = false;
    this.stream.uncork();
  };

  close(reason?: FitError): void {
    if (this.closed) return;
    this.closed = true;
    this.drainWaiters = [];
    this.stream.destroy();
    this.handlers.onClose(reason);
  }

  /** Closes after what was written so far is flushed, so a final error reply reaches the peer. */
  end(reason?: FitError): void {
    if (this.closed || this.ending) return;
    this.ending = true;
    this.stream.end(() => this.close(reason));
    setTimeout(() => this.close(reason), 1000).unref();
  }

  /** A data event's chunk, or how many bytes a read put into the reader's buffer. */
  private onData(read: Buffer | number): void {
    if (this.closed || this.ending) return;
    let frames: Buffer[];
    try {
      frames = typeof read === 'number' ? this.reader!.filled(read) : this.decoder!.push(read);
    } catch (e) {
      this.close(isFitError(e) ? e : new FitError('FIT_ERR_MALFORMED', String(e)));
      return;
    }
    for (const f of frames) {
      // A handler may have closed or ended the connection: later frames in this chunk were
      // sent by a peer we stopped trusting, and acting on them would undo that decision.
      if (this.closed || this.ending) return;
      try {
        this.handlers.onFrame(f);
      } catch (e) {
        // A frame its handler could not read (a faulty replica's short ACK, say) costs this
        // connection, never the process: thrown out of a socket's data event it would kill
        // every client and session in it. A broken invariant is a bug and still crashes.
        if (!isFitError(e) || e.code === 'FIT_ERR_INTERNAL') throw e;
        this.close(e);
        return;
      }
    }
  }
}
