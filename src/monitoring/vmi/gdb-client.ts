// A client of QEMU's gdbstub over TCP, on the framing of gdb-rsp.ts: one request at a time,
// each acknowledged and answered, resent when the stub says '-' and asked again when a reply
// arrives corrupt. It knows the quirks measured on QEMU 7.2 (shared/notes/vmi-on-these-
// machines.md): on connect the stub pauses the guest and may send a stop reply nobody asked
// for, which is drained before the first request; there is no no-ack mode.

import { createConnection, type Socket } from 'node:net';
import { FitError } from '../../core/index.js';
import { ACK, INTERRUPT, NACK, PacketReader, encodePacket, parseStop, type Received } from './gdb-rsp.js';

/** How long a request waits for its reply before the client gives up on the stub. */
export const GDB_REPLY_TIMEOUT_MS = 10_000;
/** Resends of one packet the stub keeps refusing ('-') before giving up. */
const RESENDS_MAX = 3;
/** How long connect() waits for an unsolicited stop reply to drain. */
const DRAIN_MS = 100;

export class GdbClient {
  private readonly reader = new PacketReader();
  private readonly inbox: Received[] = [];
  private wake: (() => void) | undefined;
  private closed: FitError | undefined;
  /** Stop replies that arrived while no request waited (after an interrupt or a continue). */
  readonly stops: Buffer[] = [];

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const r of this.reader.push(chunk)) this.inbox.push(r);
      this.wake?.();
    });
    const end = (why: string): void => {
      this.closed ??= new FitError('FIT_ERR_VMI', `the gdbstub connection ${why}`);
      this.wake?.();
    };
    socket.on('close', () => end('closed'));
    socket.on('error', (e) => end(`failed: ${e.message}`));
  }

  /** Connects and drains what the stub says unasked on connect. */
  static async connect(host: string, port: number): Promise<GdbClient> {
    const socket = createConnection({ host, port });
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', (e) => reject(new FitError('FIT_ERR_VMI', `cannot connect to the gdbstub at ${host}:${port}: ${e.message}`)));
    });
    const c = new GdbClient(socket);
    await c.drain(DRAIN_MS);
    return c;
  }

  /** Takes what arrived within `ms`, acknowledging packets; stop replies are kept in `stops`. */
  async drain(ms: number): Promise<void> {
    const until = Date.now() + ms;
    for (;;) {
      const r = await this.next(Math.max(0, until - Date.now())).catch(() => undefined);
      if (r === undefined) return;
      if (r.kind === 'packet') {
        this.socket.write(ACK);
        if (parseStop(r.payload)) this.stops.push(r.payload);
      } else if (r.kind === 'corrupt') this.socket.write(NACK);
    }
  }

  /**
   * Sends one request and resolves with its reply's payload. A continue (`c`) is answered only
   * when the guest stops again: give it timeoutMs Infinity.
   */
  async request(payload: string, timeoutMs = GDB_REPLY_TIMEOUT_MS): Promise<Buffer> {
    const packet = encodePacket(payload);
    for (let attempt = 0; ; attempt++) {
      this.socket.write(packet);
      const r = await this.next(GDB_REPLY_TIMEOUT_MS);
      if (r.kind === 'nack') {
        if (attempt >= RESENDS_MAX) throw new FitError('FIT_ERR_VMI', `the gdbstub refused ${JSON.stringify(payload.slice(0, 40))} ${attempt + 1} times`);
        continue;
      }
      // The ack may be lost in the noise of a busy link; the reply itself is what counts.
      const reply = r.kind === 'ack' ? await this.reply(undefined, timeoutMs) : r.kind === 'packet' ? (this.socket.write(ACK), r.payload) : await this.reply(r, timeoutMs);
      return reply;
    }
  }

  /** Stops the running guest: resolves with the stop reply. */
  async interrupt(): Promise<Buffer> {
    this.socket.write(INTERRUPT);
    return this.reply();
  }

  /**
   * Asks the running guest to stop, without waiting: the stop reply answers the pending
   * continue. QEMU ignores it when the guest has stopped already (at a breakpoint).
   */
  sendBreak(): void {
    if (!this.closed) this.socket.write(INTERRUPT);
  }

  /**
   * QEMU answers `p` and `P` (one register) only to a client that has read its target
   * description; reading it is all this does.
   */
  async enableRegisterPackets(): Promise<void> {
    await this.request('qXfer:features:read:target.xml:0,ffb');
  }

  /** Leaves the guest running without us (`D`), then closes. */
  async detach(): Promise<void> {
    if (!this.closed) await this.request('D').catch(() => undefined);
    this.close();
  }

  close(): void {
    this.socket.destroy();
  }

  /** The next packet, acknowledged; a corrupt one is refused and awaited again. */
  private async reply(first?: Received, timeoutMs = GDB_REPLY_TIMEOUT_MS): Promise<Buffer> {
    let r = first ?? (await this.next(timeoutMs));
    for (;;) {
      if (r.kind === 'packet') {
        this.socket.write(ACK);
        return r.payload;
      }
      if (r.kind === 'corrupt') this.socket.write(NACK);
      r = await this.next(timeoutMs);
    }
  }

  private async next(timeoutMs: number): Promise<Received> {
    const until = Date.now() + timeoutMs;
    while (this.inbox.length === 0) {
      if (this.closed) throw this.closed;
      const left = until - Date.now();
      if (left <= 0) throw new FitError('FIT_ERR_VMI', `no reply from the gdbstub within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = Number.isFinite(left) ? setTimeout(resolve, left) : undefined;
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
    }
    return this.inbox.shift()!;
  }
}
