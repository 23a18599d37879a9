// Buffers for outgoing frames, used again once the socket has written them. A replica builds
// every EVENTS frame in a new buffer of up to ~256 KiB, and a buffer that large is mapped
// fresh from the kernel each time: on the paravirtualized VMs we measure on, faulting its
// pages in made copying the records into it 12 % of a replica's CPU at saturation
// (performance.md, "Session 19"). A frame is written once and read by no one after the
// socket took it, so its buffer can serve the next frame. Written here: no library pools
// Buffers for a write callback, and the rules that make it safe are ours (one release per
// frame, only after the write, never a frame that something else may still hold).

/** Frames of up to `capacity` bytes come from the pool; larger ones are allocated as ever. */
export class FramePool {
  /** Buffers free for the next frame, by their memory (a Set: a second release is ignored). */
  private readonly free = new Set<ArrayBuffer>();
  /** Memory that belongs to the pool, whether free or in a frame being written. */
  private readonly owned = new WeakSet<ArrayBuffer>();
  /** Frames built in new memory because none was free (for tests and status). */
  allocated = 0;

  constructor(
    readonly capacity: number,
    /** Free buffers kept at most; more come back only while fewer are free. */
    private readonly keepMax: number,
  ) {}

  /** A buffer of exactly `bytes` bytes to build a frame in. */
  take(bytes: number): Buffer {
    if (bytes > this.capacity) return Buffer.allocUnsafe(bytes);
    let mem: ArrayBuffer | undefined;
    for (const m of this.free) {
      mem = m;
      break;
    }
    if (mem !== undefined) this.free.delete(mem);
    else {
      mem = Buffer.allocUnsafeSlow(this.capacity).buffer as ArrayBuffer;
      this.owned.add(mem);
      this.allocated++;
    }
    return Buffer.from(mem, 0, bytes);
  }

  /**
   * A frame take() gave, once nothing reads it any more (its write completed). Only a frame
   * sent once may come back: a second send of it would still be reading it.
   */
  release(frame: Buffer): void {
    const mem = frame.buffer as ArrayBuffer;
    if (!this.owned.has(mem) || this.free.size >= this.keepMax) return;
    this.free.add(mem);
  }

  get freeCount(): number {
    return this.free.size;
  }
}
