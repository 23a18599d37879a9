// Framing for a socket that reads into memory we own (net.connect's `onread`), so that a frame
// several socket reads long arrives in one piece and is handed on as a view, not copied.
//
// Why: a replica pushes frames of up to 256 KiB, and Node reads a socket 64 KiB at a time into
// a fresh buffer each read, so FrameDecoder had to copy nearly every pushed frame into a buffer
// of its own (an allocation as big as the frame, which V8 counts as external memory and answers
// with garbage collections). Here every read lands right after the previous one in a slab of
// SLAB_BYTES: a frame is copied only when it straddles the end of a slab, and then only its
// part already read. Hand-written: no library frames into caller-owned read buffers.

import { FRAME_HEADER_BYTES, checkFrameLength } from './frame.js';

/** A slab takes about four pushed frames, so about one frame in eight is copied, and only in part. */
const SLAB_BYTES = 1 << 20;
/** Smallest read worth asking the kernel for: Node's own read size, so no read is shorter than before. */
const READ_BYTES_MIN = 64 * 1024;

export class SlabFrameReader {
  private slab: Buffer = Buffer.alloc(0);
  /** Where the first frame not yet handed on begins. */
  private start = 0;
  /** Where the next read lands: bytes [start, end) are a frame still arriving. */
  private end = 0;

  /** Slab and read sizes are parameters so that tests can cross slab ends with small frames. */
  constructor(
    private frameBytesMax: number,
    private readonly slabBytes = SLAB_BYTES,
    private readonly readBytesMin = READ_BYTES_MIN,
  ) {}

  /** A peer proved it is another replica: its messages (view changes, catch-up) may be bigger. */
  raiseLimit(frameBytesMax: number): void {
    this.frameBytesMax = Math.max(this.frameBytesMax, frameBytesMax);
  }

  /**
   * The memory the next socket read fills: the free rest of the slab. A frame handed on is a
   * view into a slab, so a slab is never written twice; once too little of it is left, or the
   * frame arriving would not fit in it, the part of that frame already read moves to a new one.
   */
  readBuffer(): Buffer {
    const arriving = this.arrivingFrameBytes();
    if (this.slab.length - this.end < this.readBytesMin || this.start + arriving > this.slab.length) {
      const next = Buffer.allocUnsafeSlow(Math.max(this.slabBytes, arriving + this.readBytesMin));
      this.slab.copy(next, 0, this.start, this.end);
      this.end -= this.start;
      this.start = 0;
      this.slab = next;
    }
    return this.slab.subarray(this.end);
  }

  /**
   * Takes note that the last read put `n` bytes into the buffer readBuffer() gave; returns the
   * bodies of the frames now whole. Throws FIT_ERR_FRAME_TOO_LARGE on a bad length prefix.
   */
  filled(n: number): Buffer[] {
    this.end += n;
    const frames: Buffer[] = [];
    for (;;) {
      const bodyBytes = this.arrivingBodyBytes();
      if (bodyBytes < 0 || this.end - this.start < FRAME_HEADER_BYTES + bodyBytes) break;
      const body = this.start + FRAME_HEADER_BYTES;
      frames.push(this.slab.subarray(body, body + bodyBytes));
      this.start = body + bodyBytes;
    }
    return frames;
  }

  get bufferedBytes(): number {
    return this.end - this.start;
  }

  /** The checked body length of the frame arriving, or -1 while its header is not in. */
  private arrivingBodyBytes(): number {
    if (this.end - this.start < FRAME_HEADER_BYTES) return -1;
    return checkFrameLength(this.slab.readUInt32BE(this.start), this.frameBytesMax);
  }

  /**
   * Whole length (header and body) of the frame arriving, or what is in of it while its header
   * is not. Never throws: the socket asks for its next buffer even after filled() refused a
   * prefix, and a bad prefix must not size a slab past the limit either.
   */
  private arrivingFrameBytes(): number {
    if (this.end - this.start < FRAME_HEADER_BYTES) return this.end - this.start;
    return FRAME_HEADER_BYTES + Math.min(this.slab.readUInt32BE(this.start), this.frameBytesMax);
  }
}
