// The highest position below which every position is resolved, with positions resolved out
// of order waiting above it in a ring of flags (a Set add and delete per position showed in
// profiles). Two users: a subscriber's acknowledgements of one replica stream (client/acks.ts:
// the prefix it acknowledges, and the copies resolved since it last granted credit), and a
// replica's record of which events of a disk channel a subscriber is done with (durable.ts).
//
// Positions more than `aheadMax` past the prefix are counted but never kept: the subscriber
// bounds its memory so against a faulty replica. The replica needs no bound: what a
// subscriber is not done with is in its queue or in flight, which capacity and credit bound.

const RING_INITIAL = 1024;
export const RESOLVED_AHEAD_MAX = 1 << 20;

export class ResolvedPrefix {
  constructor(private readonly aheadMax = RESOLVED_AHEAD_MAX) {}

  /** Highest position p such that every position <= p is resolved. */
  ackedPos = -1;
  /** Copies resolved since credit was last granted: the credit to grant next. */
  resolved = 0;
  /** ring[p & mask] is 1 for a resolved position p in (ackedPos + 1, ackedPos + ring.length]. */
  private ring = new Uint8Array(RING_INITIAL);

  resolve(pos: number): void {
    this.resolved++;
    if (pos <= this.ackedPos) return;
    if (pos === this.ackedPos + 1) {
      let p = pos;
      let mask = this.ring.length - 1;
      while (this.ring[(p + 1) & mask] === 1) {
        this.ring[(p + 1) & mask] = 0;
        p++;
        mask = this.ring.length - 1;
      }
      this.ackedPos = p;
      return;
    }
    const ahead = pos - this.ackedPos;
    if (ahead > this.ring.length && !this.grow(ahead)) return;
    this.ring[pos & (this.ring.length - 1)] = 1;
  }

  /** Makes room for a position `ahead` past ackedPos; false past aheadMax. */
  private grow(ahead: number): boolean {
    if (ahead > this.aheadMax) return false;
    let size = this.ring.length;
    while (size < ahead) size *= 2;
    const old = this.ring;
    const ring = new Uint8Array(size);
    for (let p = this.ackedPos + 1; p <= this.ackedPos + old.length; p++) ring[p & (size - 1)] = old[p & (old.length - 1)]!;
    this.ring = ring;
    return true;
  }
}
