// Delivered seqs of one publishing process and priority level that the voter has forgotten
// but that its floor does not cover yet, one bit each: the floor may pass a seq only once no
// replica that could still send a copy of a skipped event is behind it (voter.ts), and a
// replica can lag by as much as its queues hold, hundreds of thousands of events. A table
// slot per such event would cost tens of bytes; a bit costs one, and a publisher's seqs on one
// channel are dense, so the bits are too. Written by hand: a bitset whose window slides up
// with a floor, and whose words are counted against a budget the whole voter shares, is a few
// lines no library has in this shape.

/** Words of bits the voter's sets may hold together. */
export interface SeqBudget {
  words: number;
  readonly max: number;
}

const EMPTY = new Uint32Array(0);

export class SeqBits {
  /** The seq of bit 0 of words[0]: a multiple of 32. */
  private base = 0;
  private words = EMPTY;
  /** Words in use, from words[0]. */
  private used = 0;

  constructor(private readonly budget: SeqBudget) {}

  get empty(): boolean {
    return this.highest() < 0;
  }

  has(seq: number): boolean {
    const i = seq - this.base;
    if (i < 0 || i >= 32 * this.used) return false;
    return ((this.words[Math.floor(i / 32)]! >>> (i & 31)) & 1) === 1;
  }

  /** Marks `seq`; false, changing nothing, if the words it needs do not fit the budget. */
  add(seq: number): boolean {
    const at = seq - (seq % 32);
    if (this.used === 0) this.base = at;
    if (at < this.base) {
      const shift = (this.base - at) / 32;
      if (!this.reserve(this.used + shift)) return false;
      this.words.copyWithin(shift, 0, this.used);
      this.words.fill(0, 0, shift);
      this.used += shift;
      this.base = at;
    }
    const w = (at - this.base) / 32;
    if (w >= this.used) {
      if (!this.reserve(w + 1)) return false;
      this.used = w + 1;
    }
    this.words[w]! |= 1 << (seq & 31);
    return true;
  }

  /** Forgets every seq at or below `floor` (the floor covers them now). */
  dropThrough(floor: number): void {
    if (this.used === 0 || floor < this.base) return;
    const drop = Math.floor((floor + 1 - this.base) / 32);
    if (drop >= this.used) return this.clear();
    if (drop > 0) {
      this.words.copyWithin(0, drop, this.used);
      this.words.fill(0, this.used - drop, this.used);
      this.used -= drop;
      this.base += 32 * drop;
    }
    // The floor inside the first word: its bits up to the floor go too.
    const k = floor - this.base;
    if (k >= 0) this.words[0]! &= -1 << (k + 1);
  }

  /** The highest seq marked, or -1. */
  highest(): number {
    for (let w = this.used - 1; w >= 0; w--) {
      const word = this.words[w]!;
      if (word !== 0) return this.base + 32 * w + 31 - Math.clz32(word);
    }
    return -1;
  }

  clear(): void {
    this.budget.words -= this.words.length;
    this.words = EMPTY;
    this.used = 0;
  }

  /** Room for `need` words, doubling; false if the budget has none. */
  private reserve(need: number): boolean {
    if (need <= this.words.length) return true;
    const room = this.budget.max - (this.budget.words - this.words.length);
    if (need > room) return false;
    const size = Math.min(Math.max(need, 2 * this.words.length, 4), room);
    const grown = new Uint32Array(size);
    grown.set(this.words.subarray(0, this.used));
    this.budget.words += size - this.words.length;
    this.words = grown;
    return true;
  }
}
