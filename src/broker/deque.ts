// An array-backed FIFO with O(1) amortized shift and binary search by a rising key. Arrays
// with shift() are O(n) per call, which a queue of 100,000 events cannot afford.

export class Deque<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  peek(): T | undefined {
    return this.items[this.head];
  }

  at(i: number): T | undefined {
    return this.items[this.head + i];
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  /** Removes and returns the newest item (overflow: drop-newest). */
  pop(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items.pop();
    if (this.head >= this.items.length) this.clear();
    return item;
  }

  /** Index (0-based from the front) of the first item whose key is greater than `key`. */
  firstAfter(key: number, keyOf: (item: T) => number): number {
    // The common case: everything queued is after the key (a session that was sent all before).
    if (this.head < this.items.length && keyOf(this.items[this.head]!) > key) return 0;
    let lo = this.head;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (keyOf(this.items[mid]!) <= key) lo = mid + 1;
      else hi = mid;
    }
    return lo - this.head;
  }

  /** Inserts keeping the order by key; for the rare path of returning unacknowledged events. */
  insertSorted(item: T, keyOf: (item: T) => number): void {
    const at = this.head + this.firstAfter(keyOf(item), keyOf);
    this.items.splice(at, 0, item);
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }
}
