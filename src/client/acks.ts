// Per-replica acknowledgement bookkeeping for one subscribe stream: which positions of the
// replica's stream the voter has resolved, as a cumulative prefix the replica can trim its
// in-flight list by, and how many events arrived since credit was last granted.

export class StreamAcks {
  /** Highest position p such that every position <= p is resolved. */
  ackedPos = -1;
  private readonly resolvedAbove = new Set<number>();
  received = 0;

  resolve(pos: number): void {
    if (pos <= this.ackedPos) return;
    if (pos !== this.ackedPos + 1) {
      this.resolvedAbove.add(pos);
      return;
    }
    this.ackedPos = pos;
    while (this.resolvedAbove.delete(this.ackedPos + 1)) this.ackedPos++;
  }
}
