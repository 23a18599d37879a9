// The subscribers' positions of one disk channel as the store holds them (durable.ts for
// unordered channels, durable-log.ts for ordered ones): remembered as last written, so that a
// flush every storeFlushMs writes only the positions that moved.

import type { EventStore } from './store.js';

export class StoredPositions {
  private readonly written = new Map<string, number>();

  constructor(
    private readonly tag: string,
    private readonly store: EventStore,
  ) {}

  /** The positions read back at start. */
  loaded(positions: ReadonlyMap<string, number>): void {
    for (const [client, pos] of positions) this.written.set(client, pos);
  }

  get(client: string): number | undefined {
    return this.written.get(client);
  }

  /** Writes `client`'s position unless the store has it already. */
  write(client: string, pos: number): void {
    if (this.written.get(client) === pos) return;
    this.store.putPosition(this.tag, client, pos);
    this.written.set(client, pos);
  }

  /** The client no longer subscribes: its position goes from the store. */
  forget(client: string): void {
    this.written.delete(client);
    this.store.deletePosition(this.tag, client);
  }

  entries(): IterableIterator<[string, number]> {
    return this.written.entries();
  }

  toRecord(): Record<string, number> {
    return Object.fromEntries(this.written);
  }
}
