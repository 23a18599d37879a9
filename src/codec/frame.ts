// Length-prefixed framing: u32 big-endian body length, then the body (u8 message type first).
// Hand-written because it is twenty lines and sits on the hot path: a general-purpose
// serializer would copy every event again. The decoder must never trust a length before
// checking it against frameBytesMax, or one bad prefix would make us buffer gigabytes.

import { FitError } from '../core/index.js';

export const FRAME_HEADER_BYTES = 4;

/** Returns a frame's body length once it is known to be one we accept; throws FIT_ERR_FRAME_TOO_LARGE if not. */
export function checkFrameLength(bodyBytes: number, frameBytesMax: number): number {
  if (bodyBytes > frameBytesMax || bodyBytes === 0) {
    throw new FitError(
      'FIT_ERR_FRAME_TOO_LARGE',
      bodyBytes === 0
        ? 'received an empty frame; the peer is not speaking the fitbroker protocol'
        : `received a frame of ${bodyBytes} bytes, over the limit of ${frameBytesMax}; send smaller batches or raise limits.frameBytesMax in cluster.yaml`,
      { frameBytes: bodyBytes, limitBytes: frameBytesMax },
    );
  }
  return bodyBytes;
}

export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private frameBytesMax: number) {}

  /** A peer proved it is another replica: its messages (view changes, catch-up) may be bigger. */
  raiseLimit(frameBytesMax: number): void {
    this.frameBytesMax = Math.max(this.frameBytesMax, frameBytesMax);
  }

  /** Feeds bytes; returns whole frame bodies. Throws FIT_ERR_FRAME_TOO_LARGE on a bad prefix. */
  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Buffer[] = [];
    while (this.buffered >= FRAME_HEADER_BYTES) {
      const head = this.peekHeader();
      const bodyBytes = checkFrameLength(head.readUInt32BE(0), this.frameBytesMax);
      if (this.buffered < FRAME_HEADER_BYTES + bodyBytes) break;
      frames.push(this.take(FRAME_HEADER_BYTES + bodyBytes).subarray(FRAME_HEADER_BYTES));
    }
    return frames;
  }

  get bufferedBytes(): number {
    return this.buffered;
  }

  private peekHeader(): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= FRAME_HEADER_BYTES) return first;
    return Buffer.concat(this.chunks).subarray(0, FRAME_HEADER_BYTES);
  }

  /**
   * Takes n bytes off the front: zero-copy when they sit inside the first chunk, else one copy
   * of exactly those n bytes (a frame bigger than a socket read spans several; copying what
   * follows it too would copy the next frame's bytes again and pin them in a bigger buffer).
   */
  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafeSlow(n);
      let o = 0;
      while (o < n) {
        const c = this.chunks[0]!;
        const k = Math.min(c.length, n - o);
        o += c.copy(out, o, 0, k);
        if (k === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      }
    }
    this.buffered -= n;
    return out;
  }
}

/** Prefixes a body with its length. */
export function frame(body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.length);
  out.writeUInt32BE(body.length, 0);
  body.copy(out, FRAME_HEADER_BYTES);
  return out;
}
