// Per-replica acknowledgement bookkeeping for one subscribe stream: which positions of the
// replica's stream the voter has resolved, as a cumulative prefix the replica can trim its
// in-flight list by, and how many copies were resolved since credit was last granted.
//
// Credit follows resolution, not arrival: a copy the voter still holds (its event waits for
// other replicas' copies) keeps its credit, so a replica that runs ahead of the others stops
// once its credits are held, instead of filling the voter until it evicts undecided events.
//
// Positions resolved out of order wait in a ring of flags above the prefix (a Set add and
// delete per copy showed in subscriber profiles). A correct replica sends no further ahead
// than its credits; the ring grows to RESOLVED_AHEAD_MAX for that, and a position beyond it
// (only a faulty replica sends one) is counted for credit but never acknowledged, so it cannot
// grow the subscriber's memory.

const RING_INITIAL = 1024;
export const RESOLVED_AHEAD_MAX = 1 << 20;

export class StreamAcks {
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

  /** Makes room for a position `ahead` past ackedPos; false past RESOLVED_AHEAD_MAX. */
  private grow(ahead: number): boolean {
    if (ahead > RESOLVED_AHEAD_MAX) return false;
    let size = this.ring.length;
    while (size < ahead) size *= 2;
    const old = this.ring;
    const ring = new Uint8Array(size);
    for (let p = this.ackedPos + 1; p <= this.ackedPos + old.length; p++) ring[p & (size - 1)] = old[p & (old.length - 1)]!;
    this.ring = ring;
    return true;
  }
}
