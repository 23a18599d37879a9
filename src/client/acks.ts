// Per-replica acknowledgement bookkeeping for one subscribe stream: which positions of the
// replica's stream the voter has resolved, as a cumulative prefix the replica can trim its
// in-flight list by, and how many copies were resolved since credit was last granted.
//
// Credit follows resolution, not arrival: a copy the voter still holds (its event waits for
// other replicas' copies) keeps its credit, so a replica that runs ahead of the others stops
// once its credits are held, instead of filling the voter until it evicts undecided events.

export class StreamAcks {
  /** Highest position p such that every position <= p is resolved. */
  ackedPos = -1;
  private readonly resolvedAbove = new Set<number>();
  /** Copies resolved since credit was last granted: the credit to grant next. */
  resolved = 0;

  resolve(pos: number): void {
    this.resolved++;
    if (pos <= this.ackedPos) return;
    if (pos !== this.ackedPos + 1) {
      this.resolvedAbove.add(pos);
      return;
    }
    this.ackedPos = pos;
    while (this.resolvedAbove.delete(this.ackedPos + 1)) this.ackedPos++;
  }
}
