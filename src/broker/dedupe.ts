// Drops events a replica has already accepted: a client resending after a reconnect, or a
// replayed batch. Sequence numbers rise within one publishing process (publisher + epoch),
// and the client numbers events as it sends them, so "seq at or below the last accepted one"
// means seen. The number of remembered streams is bounded; the least recently active is
// forgotten first (a stream idle that long has long since been acknowledged).
//
// It runs once per section of every PUBLISH frame, which at a paced load is once per event:
// a stream is found from the record's identity bytes by 30 bits of its epoch (no string), and
// recency is refreshed only once a stream has fallen a little behind, not on every touch (a
// Map delete and set per section showed in replica profiles).

import { sameBytesAt } from '../codec/index.js';

export interface DedupeStream {
  readonly key: string;
  /** The identity bytes (publisherBytes, publisher, epoch), one per char in `key` too. */
  readonly id: Uint8Array;
  /** The last accepted seq, or -1. */
  last: number;
  /** `clock` when it was last moved to the recent end. */
  touchedAt: number;
}

/** 30 bits of the epoch that ends at `to`: a small integer, a Map key without allocating. */
function tagAt(buf: Uint8Array, to: number): number {
  return ((buf[to - 4]! << 24) | (buf[to - 3]! << 16) | (buf[to - 2]! << 8) | buf[to - 1]!) & 0x3fff_ffff;
}

export class Dedupe {
  /** By key, least recently active first (Map order). */
  private readonly byKey = new Map<string, DedupeStream>();
  private readonly byTag = new Map<number, DedupeStream>();
  /** Touches so far: recency is refreshed once a stream is more than `slack` touches behind. */
  private clock = 0;
  private readonly slack: number;

  constructor(private readonly streamsMax: number) {
    this.slack = Math.floor(streamsMax / 4);
  }

  /** Returns true and records the event if it is new; false if it is a duplicate. */
  accept(streamKey: string, seq: number): boolean {
    const s = this.byKey.get(streamKey) ?? this.open(streamKey, Buffer.from(streamKey, 'latin1'));
    if (seq <= s.last) return false;
    this.accepted(s, seq);
    return true;
  }

  /** The stream whose identity bytes are buf[from, to), remembered from now on if it was not. */
  streamAt(buf: Buffer, from: number, to: number): DedupeStream {
    const tag = tagAt(buf, to);
    const s = this.byTag.get(tag);
    if (s !== undefined && s.id.length === to - from && sameBytesAt(s.id, 0, buf, from, to - from)) return s;
    const key = buf.toString('latin1', from, to);
    const known = this.byKey.get(key);
    if (known !== undefined) {
      this.byTag.set(tag, known);
      return known;
    }
    return this.open(key, buf.subarray(from, to));
  }

  /** Records `seq` as the stream's last accepted one; the stream counts as active. */
  accepted(s: DedupeStream, seq: number): void {
    s.last = seq;
    this.clock++;
    if (this.clock - s.touchedAt <= this.slack) return;
    this.byKey.delete(s.key);
    this.byKey.set(s.key, s);
    s.touchedAt = this.clock;
  }

  get streams(): number {
    return this.byKey.size;
  }

  private open(key: string, id: Uint8Array): DedupeStream {
    if (this.byKey.size >= this.streamsMax) this.forget(this.byKey.values().next().value!);
    const s: DedupeStream = { key, id: new Uint8Array(id), last: -1, touchedAt: this.clock };
    this.byKey.set(key, s);
    this.byTag.set(tagAt(s.id, s.id.length), s);
    return s;
  }

  private forget(s: DedupeStream): void {
    this.byKey.delete(s.key);
    const tag = tagAt(s.id, s.id.length);
    if (this.byTag.get(tag) === s) this.byTag.delete(tag);
  }
}
