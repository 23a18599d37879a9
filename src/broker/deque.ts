// A FIFO on a ring of power-of-two capacity, with binary search by a rising key. Written by
// hand because nothing on npm does both the ring and the search by key, and the queue needs
// the two together. Arrays with shift() are O(n) per call, which a queue of 100,000 events
// cannot afford; an array with a moving head and periodic compaction (this file before) grew
// its backing store by copying on push and copied it again at each compaction: a quarter of
// the bytes the replica's hot path allocated (bench/replica-path.js under the sampling heap
// profiler). The ring allocates only when it doubles, or halves once it is three quarters empty,
// so a drained queue gives its memory back.

/** Below this capacity the ring never shrinks: small queues come and go at every event. */
const SHRINK_ABOVE = 1024;

export class Deque<T> {
  private ring: (T | undefined)[] = [];
  private mask = -1;
  private head = 0;
  private size = 0;

  get length(): number {
    return this.size;
  }

  /** Slots allocated (for tests: a drained deque gives its memory back). */
  get capacity(): number {
    return this.ring.length;
  }

  push(item: T): void {
    if (this.size === this.ring.length) this.resize(Math.max(8, this.ring.length * 2));
    this.ring[(this.head + this.size) & this.mask] = item;
    this.size++;
  }

  peek(): T | undefined {
    return this.size === 0 ? undefined : this.ring[this.head];
  }

  at(i: number): T | undefined {
    return i >= 0 && i < this.size ? this.ring[(this.head + i) & this.mask] : undefined;
  }

  shift(): T | undefined {
    if (this.size === 0) return undefined;
    const item = this.ring[this.head];
    this.ring[this.head] = undefined;
    this.head = (this.head + 1) & this.mask;
    this.size--;
    this.shrinkIfSparse();
    return item;
  }

  /** Removes and returns the newest item (overflow: drop-newest). */
  pop(): T | undefined {
    if (this.size === 0) return undefined;
    const at = (this.head + this.size - 1) & this.mask;
    const item = this.ring[at];
    this.ring[at] = undefined;
    this.size--;
    this.shrinkIfSparse();
    return item;
  }

  /** Index (0-based from the front) of the first item whose key is greater than `key`. */
  firstAfter(key: number, keyOf: (item: T) => number): number {
    // The common case: everything queued is after the key (a session that was sent all before).
    if (this.size > 0 && keyOf(this.ring[this.head]!) > key) return 0;
    let lo = 0;
    let hi = this.size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (keyOf(this.ring[(this.head + mid) & this.mask]!) <= key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Inserts keeping the order by key; for the rare path of returning unacknowledged events. */
  insertSorted(item: T, keyOf: (item: T) => number): void {
    const at = this.firstAfter(keyOf(item), keyOf);
    this.push(item);
    // Move the items after `at` one slot back, from the newest down.
    for (let i = this.size - 1; i > at; i--) this.ring[(this.head + i) & this.mask] = this.ring[(this.head + i - 1) & this.mask];
    this.ring[(this.head + at) & this.mask] = item;
  }

  clear(): void {
    this.ring = [];
    this.mask = -1;
    this.head = 0;
    this.size = 0;
  }

  private shrinkIfSparse(): void {
    if (this.ring.length > SHRINK_ABOVE && this.size * 4 <= this.ring.length) this.resize(this.ring.length / 2);
  }

  /** A new ring of `capacity` slots (a power of two) holding the items from index 0. */
  private resize(capacity: number): void {
    // Filled by push, not new Array(capacity): a holey array makes every read check for holes.
    const ring: (T | undefined)[] = [];
    for (let i = 0; i < this.size; i++) ring.push(this.ring[(this.head + i) & this.mask]);
    for (let i = this.size; i < capacity; i++) ring.push(undefined);
    this.ring = ring;
    this.mask = capacity - 1;
    this.head = 0;
  }
}

/**
 * The same ring for the slots of a queue's entries (entries.ts): small integers in an
 * Int32Array, which the garbage collector never has to look into, ordered by a key kept in
 * the entries' own column (their index in the queue). -1 stands for "none".
 *
 * Its head, mask and size bookkeeping repeats Deque's on purpose: one class over both kinds
 * of storage would make every ring access in the voter (Deque) and the queues (this)
 * polymorphic, on the two hottest paths we have; the behaviour of both is held to the same
 * array model by test/unit/broker-deque.test.ts.
 */
export class SlotDeque {
  private ring = new Int32Array(0);
  private mask = -1;
  private head = 0;
  private size = 0;

  get length(): number {
    return this.size;
  }

  get capacity(): number {
    return this.ring.length;
  }

  push(slot: number): void {
    if (this.size === this.ring.length) this.resize(Math.max(8, this.ring.length * 2));
    this.ring[(this.head + this.size) & this.mask] = slot;
    this.size++;
  }

  peek(): number {
    return this.size === 0 ? -1 : this.ring[this.head]!;
  }

  at(i: number): number {
    return i >= 0 && i < this.size ? this.ring[(this.head + i) & this.mask]! : -1;
  }

  shift(): number {
    if (this.size === 0) return -1;
    const slot = this.ring[this.head]!;
    this.head = (this.head + 1) & this.mask;
    this.size--;
    this.shrinkIfSparse();
    return slot;
  }

  pop(): number {
    if (this.size === 0) return -1;
    const slot = this.ring[(this.head + this.size - 1) & this.mask]!;
    this.size--;
    this.shrinkIfSparse();
    return slot;
  }

  /** Index (0-based from the front) of the first slot whose key (keys[slot * stride]) is greater than `key`. */
  firstAfter(key: number, keys: Float64Array, stride = 1): number {
    if (this.size > 0 && keys[this.ring[this.head]! * stride]! > key) return 0;
    let lo = 0;
    let hi = this.size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (keys[this.ring[(this.head + mid) & this.mask]! * stride]! <= key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Inserts keeping the order by key; for the rare path of returning unacknowledged events. */
  insertSorted(slot: number, keys: Float64Array, stride = 1): void {
    const at = this.firstAfter(keys[slot * stride]!, keys, stride);
    this.push(slot);
    for (let i = this.size - 1; i > at; i--) this.ring[(this.head + i) & this.mask] = this.ring[(this.head + i - 1) & this.mask]!;
    this.ring[(this.head + at) & this.mask] = slot;
  }

  private shrinkIfSparse(): void {
    if (this.ring.length > SHRINK_ABOVE && this.size * 4 <= this.ring.length) this.resize(this.ring.length / 2);
  }

  private resize(capacity: number): void {
    const ring = new Int32Array(capacity);
    for (let i = 0; i < this.size; i++) ring[i] = this.ring[(this.head + i) & this.mask]!;
    this.ring = ring;
    this.mask = capacity - 1;
    this.head = 0;
  }
}
