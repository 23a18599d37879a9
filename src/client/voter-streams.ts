// The voter's index of publishing processes (publisher + epoch), so that a copy finds its
// event without building a string: events are found by process and seq (a number; see
// voter-table.ts), and the
// process is found from the record's identity bytes. A replica's frame carries runs of one
// process's events, so most copies name the process of that replica's previous copy and are
// matched against it byte for byte; a copy from another process tries the process holding
// 30 bits of its epoch; only if that is another process too (by chance, or a faulty replica's
// choice: a slower copy, never a wrong match) does it build the key string.
//
// Bounded against a faulty replica inventing processes: a process is kept while it has events
// (which pendingMax and deliveredMax bound) or floors, and floors come only from delivered
// events, which a correct replica vouched for. Processes with floors and no events are idle,
// and the oldest idle ones are given up past a limit; their floors go with them.

import { PRIORITY_LEVELS } from '../core/index.js';
import { sameBytesAt, u32 } from '../codec/index.js';
import type { SeqBits } from './voter-seqs.js';

/** A publishing process and what the voter remembers of it. */
export interface Stream {
  /** The identity bytes (publisherBytes, publisher, epoch) as latin1, one char per byte. */
  readonly key: string;
  /**
   * The same bytes, which later records are compared with: a copy, because the frame the
   * first record lay in is the network's buffer, not ours to keep. Its own ArrayBuffer, not a
   * slice of Buffer's pool, so that a process kept for its floors does not pin a pool slab.
   */
  readonly id: Uint8Array;
  /** Its slot in StreamIndex.byTag. */
  readonly tag: number;
  /** Names the process in the voter's event index, with seqs (RecordCursor refuses seqs beyond 2^53, so numbers name them exactly). */
  readonly uid: number;
  /** Events the voter holds of this process. */
  events: number;
  /**
   * Per priority level, the seq at or below which a copy not in the voter's table is turned
   * away; undefined until an event of the process was forgotten (voter.ts says when it rises).
   */
  floors: number[] | undefined;
  /** Per level, delivered seqs forgotten above the floor. */
  delivered: (SeqBits | undefined)[] | undefined;
  /**
   * Per level and replica (level * replicas + replica), the highest seq of a copy that replica
   * sent; -1 before any. A replica sends a process's events of one level in seq order, so what
   * it has passed it sends again only as a resend after a reconnect.
   */
  readonly passed: Float64Array;
  /** Given up: a replica's remembered last process must not bring it back. */
  closed: boolean;
  /** Only floors left: linked oldest first, the order idle processes are given up in. */
  idle: boolean;
  idlePrev: Stream | undefined;
  idleNext: Stream | undefined;
}

function isIdOf(id: Uint8Array, buf: Buffer, from: number, to: number): boolean {
  return id.length === to - from && sameBytesAt(id, 0, buf, from, id.length);
}

/** 30 bits of the epoch that ends at `to`: a small integer, a Map key without allocating. */
function tagAt(buf: Buffer, to: number): number {
  return u32(buf, to - 4) & 0x3fff_ffff;
}

export class StreamIndex {
  private readonly streams = new Map<string, Stream>();
  /** Per replica, the process of its previous copy. */
  private readonly last: (Stream | undefined)[];
  /** One process per tag, the latest to need it; never a closed one. */
  private readonly byTag = new Map<number, Stream>();
  private idleHead: Stream | undefined;
  private idleTail: Stream | undefined;
  private idleCount = 0;
  private uids = 0;

  constructor(
    private readonly replicas: number,
    private readonly idleMax: number,
    /** A process given up: what it held outside the index goes with it. */
    private readonly onClose: (s: Stream) => void = () => {},
  ) {
    this.last = new Array<Stream | undefined>(replicas).fill(undefined);
  }

  get size(): number {
    return this.streams.size;
  }

  /** The process whose identity bytes are buf[from, to), if it is known. */
  find(replica: number, buf: Buffer, from: number, to: number): Stream | undefined {
    const last = this.last[replica];
    if (last && !last.closed && isIdOf(last.id, buf, from, to)) return last;
    const tag = tagAt(buf, to);
    let s = this.byTag.get(tag);
    if (!s || !isIdOf(s.id, buf, from, to)) {
      s = this.streams.get(buf.toString('latin1', from, to));
      if (!s) return undefined;
      this.byTag.set(tag, s);
    }
    this.last[replica] = s;
    return s;
  }

  /** A process not known (find() gave none, or the one it gave was closed since). */
  open(replica: number, buf: Buffer, from: number, to: number): Stream {
    const s: Stream = {
      key: buf.toString('latin1', from, to),
      id: new Uint8Array(buf.subarray(from, to)),
      tag: tagAt(buf, to),
      uid: this.uids++ | 0,
      events: 0,
      floors: undefined,
      delivered: undefined,
      passed: new Float64Array(PRIORITY_LEVELS * this.replicas).fill(-1),
      closed: false,
      idle: false,
      idlePrev: undefined,
      idleNext: undefined,
    };
    this.streams.set(s.key, s);
    this.byTag.set(s.tag, s);
    this.last[replica] = s;
    return s;
  }

  /** `s` is about to get an event: it is no longer idle, so not given up for being so. */
  wake(s: Stream): void {
    if (!s.idle) return;
    if (s.idlePrev) s.idlePrev.idleNext = s.idleNext;
    else this.idleHead = s.idleNext;
    if (s.idleNext) s.idleNext.idlePrev = s.idlePrev;
    else this.idleTail = s.idlePrev;
    s.idle = false;
    s.idlePrev = s.idleNext = undefined;
    this.idleCount--;
  }

  /** `s` lost its last event: without floors it knows nothing and goes at once. */
  emptied(s: Stream): void {
    if (!s.floors) return this.close(s);
    s.idle = true;
    s.idlePrev = this.idleTail;
    if (this.idleTail) this.idleTail.idleNext = s;
    else this.idleHead = s;
    this.idleTail = s;
    if (++this.idleCount > this.idleMax) this.close(this.idleHead!);
  }

  private close(s: Stream): void {
    this.wake(s);
    s.closed = true;
    this.onClose(s);
    this.streams.delete(s.key);
    if (this.byTag.get(s.tag) === s) this.byTag.delete(s.tag);
  }
}
