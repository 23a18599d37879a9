// Frames read straight into slabs of memory, for sockets this process dials (net's `onread`).
// Hand-written because no library frames a socket in place: the stream path hands every read
// over in a buffer of its own, and a frame larger than one read (a replica's push frames are
// 256 KB, reads at most 64 KB) is then copied once more into fresh memory of its own. Here the
// kernel writes each read just after the previous one, so a frame is contiguous where it was
// read and goes to its handler as a view of the slab: no buffer per read, no copy per frame.
//
// A slab is never written where a frame handed out lies: reads go after every byte read so far,
// and a new slab is taken (the unfinished frame's bytes copied to its start) once what is left
// of the current one is smaller than a read. A slab lives as long as any frame in it is held,
// like the pool Node's own Buffer.allocUnsafe slices: a record a voter keeps pins its slab
// (1 MiB, or its frame's size if larger) where it pinned its frame before (up to
// frameBytesMax, 4 MiB), so a faulty peer gets no more memory held per record than it did.

import { FRAME_HEADER_BYTES, checkBodyBytes } from './frame.js';

/** The least room a read is given: what a socket read takes at once. */
const READ_BYTES = 64 * 1024;
/** A slab holds this much, or one frame and a read when a frame is larger. */
export const SLAB_BYTES = 1 << 20;

export class FrameSlab {
  private slab: Buffer;
  /** First byte not yet handed out in a frame. */
  private start = 0;
  /** End of the bytes read into the slab. */
  private end = 0;
  /** Slabs taken, the first included (for tests, and to tell how often reads outgrow one). */
  slabs = 1;

  constructor(
    private frameBytesMax: number,
    private readonly slabBytes = SLAB_BYTES,
  ) {
    this.slab = Buffer.allocUnsafeSlow(Math.max(slabBytes, READ_BYTES));
  }

  /** A peer proved it is another replica: its messages may be bigger. */
  raiseLimit(frameBytesMax: number): void {
    this.frameBytesMax = Math.max(this.frameBytesMax, frameBytesMax);
  }

  /** Where the next read goes: after everything read so far, never over a frame handed out. */
  space(): Buffer {
    if (this.slab.length - this.end < READ_BYTES) this.renew();
    return this.slab.subarray(this.end);
  }

  /**
   * `n` bytes were read into the last space(): returns the whole frame bodies they complete,
   * views of the slab. Throws FIT_ERR_FRAME_TOO_LARGE on a bad prefix, before buffering for it.
   */
  filled(n: number): Buffer[] {
    this.end += n;
    const frames: Buffer[] = [];
    while (this.end - this.start >= FRAME_HEADER_BYTES) {
      const bodyBytes = this.slab.readUInt32BE(this.start);
      checkBodyBytes(bodyBytes, this.frameBytesMax);
      const frameEnd = this.start + FRAME_HEADER_BYTES + bodyBytes;
      if (frameEnd > this.end) break;
      frames.push(this.slab.subarray(this.start + FRAME_HEADER_BYTES, frameEnd));
      this.start = frameEnd;
    }
    return frames;
  }

  get bufferedBytes(): number {
    return this.end - this.start;
  }

  /** A fresh slab, big enough for the unfinished frame and a read after it; its bytes move there. */
  private renew(): void {
    const held = this.end - this.start;
    // The prefix was checked when it arrived: a frame this large is allowed.
    const frameBytes = held >= FRAME_HEADER_BYTES ? FRAME_HEADER_BYTES + this.slab.readUInt32BE(this.start) : 0;
    const next = Buffer.allocUnsafeSlow(Math.max(this.slabBytes, frameBytes + READ_BYTES, held + READ_BYTES));
    this.slab.copy(next, 0, this.start, this.end);
    this.slab = next;
    this.start = 0;
    this.end = held;
    this.slabs++;
  }
}
