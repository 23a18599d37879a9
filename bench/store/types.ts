// What the store-choice bench asks of a candidate store: the four things a replica will do with
// `persist: disk` channels, each with the durability the replica needs. An adapter must never
// resolve append() or trim() before the change is on disk (fsync'd): the replica acknowledges a
// publisher's batch when append() resolves, so an early resolve is a lost event after a crash.

export interface EventStore {
  /**
   * Appends records [first, first + records.length) of channel. Resolves once they are
   * durable. Many calls may be outstanding at once, from concurrent publishers' batches: how
   * well the store lets them share one commit and one fsync is what the bench measures.
   */
  append(channel: string, first: number, records: Buffer[]): Promise<void>;
  /**
   * Records a subscriber's position. Lazy: never awaited; durable with some later commit.
   * Errors surface on the next append or on close.
   */
  setPosition(channel: string, client: string, index: number): void;
  /** Deletes records [from, below) of channel, the low end. Resolves once durable. */
  trim(channel: string, from: number, below: number): Promise<void>;
  /** Reads every record of channel in index order; returns how many were read. */
  scan(channel: string, onRecord: (index: number, value: Uint8Array) => void): Promise<number>;
  /** The position last recorded for (channel, client), if any. */
  position(channel: string, client: string): Promise<number | undefined>;
  /** The store's own consistency check where it has one (SQLite's integrity_check): a problem, or undefined. */
  check(): Promise<string | undefined>;
  close(): Promise<void>;
}

export interface StoreKind {
  /** Short name, used on the command line and in the results. */
  name: string;
  /** The package and the settings, for the table. */
  settings: string;
  /**
   * Whether append() waits for an fsync of what it wrote. A kind that does not (SQLite WAL with
   * synchronous=NORMAL) is measured as a reference only: it survives a process crash, not a
   * power cut, and cannot back an acknowledgement.
   */
  durable: boolean;
  /** The npm package that provides it. */
  package: string;
  open(dir: string): Promise<EventStore>;
}
