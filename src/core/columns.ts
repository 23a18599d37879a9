// Columns of typed arrays (the queue's entries, the voter's events) grow by copying into a
// bigger array: one helper so that both grow, and keep what they held, the same way.

export type Column = Int32Array | Float64Array | Uint8Array;

/** A column of `capacity` zeros of a's kind, holding a's values first when `keep`. */
export function grown<T extends Column>(a: T, capacity: number, keep = true): T {
  const b = new (a.constructor as new (n: number) => T)(capacity);
  if (keep) b.set(a.length <= capacity ? a : a.subarray(0, capacity));
  return b;
}
