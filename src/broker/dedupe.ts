// Drops events a replica has already accepted: a client resending after a reconnect, or a
// replayed batch. Sequence numbers rise within one publishing process (publisher + epoch),
// and the client numbers events as it sends them, so "seq at or below the last accepted one"
// means seen. The number of remembered streams is bounded; the least recently active is
// forgotten first (a stream idle that long has long since been acknowledged).

export class Dedupe {
  private readonly last = new Map<string, number>();

  constructor(private readonly streamsMax: number) {}

  /** Returns true and records the event if it is new; false if it is a duplicate. */
  accept(streamKey: string, seq: number): boolean {
    const prev = this.last.get(streamKey);
    if (prev !== undefined && seq <= prev) return false;
    if (prev !== undefined) this.last.delete(streamKey);
    else if (this.last.size >= this.streamsMax) this.last.delete(this.last.keys().next().value!);
    this.last.set(streamKey, seq);
    return true;
  }

  /** The last accepted seq of a stream, or -1; with `record`, for checking a run of events. */
  lastOf(streamKey: string): number {
    return this.last.get(streamKey) ?? -1;
  }

  /** Records the last accepted seq of a stream after a run; refreshes its recency. */
  record(streamKey: string, seq: number): void {
    if (this.last.has(streamKey)) this.last.delete(streamKey);
    else if (this.last.size >= this.streamsMax) this.last.delete(this.last.keys().next().value!);
    this.last.set(streamKey, seq);
  }

  get streams(): number {
    return this.last.size;
  }
}
