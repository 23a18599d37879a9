// Batch signatures for PKS and PKE. An Ed25519 verification costs ~140 µs here (7,000 a
// second on one core, measured with node:crypto on this machine), so a signature per event
// would cap a subscriber far below the broker's throughput. The publisher instead signs the
// root of a small Merkle tree over a run of its records, and each record carries its index and
// the sibling hashes up to that root. Every record still verifies on its own — replicas drop,
// reorder and regroup records into their own frames, so a signature over a whole frame could
// not be checked — and a subscriber verifies the signature once per tree, then only hashes.
//
// The tree has a fixed depth per publisher (2^depth leaves), so a record's trailer size is
// known when it is written; unused leaves are the empty-subtree constants. Leaves, inner nodes
// and empty nodes hash under distinct one-byte prefixes (RFC 6962 style), so no node can pass
// for a leaf or the reverse.

import { hash } from 'node:crypto';

export const HASH_BYTES = 32;
/** Deepest tree a record may claim: 65,536 leaves, a 2 KiB path. */
export const MERKLE_DEPTH_MAX = 16;

const NODE = 1;

/** Reused for leaves: one contiguous input makes one one-shot hash, not a hasher object and four updates. */
let leafScratch = Buffer.allocUnsafe(1024);

/** The leaf of the record bytes buf[from, to) on `channel` (utf8, at most 255 bytes), salted with buf[saltAt, saltAt + saltBytes). */
export function leafHash(channel: Buffer, buf: Buffer, from: number, to: number, saltAt: number, saltBytes: number): Buffer {
  const n = 2 + channel.length + saltBytes + (to - from);
  if (n > leafScratch.length) leafScratch = Buffer.allocUnsafe(Math.max(n, 2 * leafScratch.length));
  leafScratch[0] = 0;
  leafScratch[1] = channel.length;
  let o = 2 + channel.copy(leafScratch, 2);
  o += buf.copy(leafScratch, o, saltAt, saltAt + saltBytes);
  o += buf.copy(leafScratch, o, from, to);
  return hash('sha256', leafScratch.subarray(0, o), 'buffer');
}

const scratch = Buffer.allocUnsafe(1 + 2 * HASH_BYTES);

/** The parent of l[la, la+32) and r[ra, ra+32). */
export function nodeHash(l: Buffer, la: number, r: Buffer, ra: number): Buffer {
  scratch[0] = NODE;
  l.copy(scratch, 1, la, la + HASH_BYTES);
  r.copy(scratch, 1 + HASH_BYTES, ra, ra + HASH_BYTES);
  return hash('sha256', scratch, 'buffer');
}

/** EMPTY[k]: the root of a subtree of 2^k unused leaves. */
const EMPTY: Buffer[] = [hash('sha256', Buffer.from([2]), 'buffer')];
for (let k = 1; k <= MERKLE_DEPTH_MAX; k++) EMPTY.push(nodeHash(EMPTY[k - 1]!, 0, EMPTY[k - 1]!, 0));

/**
 * The tree over `leaves` (at most 2^depth): levels[0] are the leaves, levels[depth] the root.
 * A missing right sibling is the empty subtree of its height.
 */
export function buildTree(leaves: Buffer[], depth: number): Buffer[][] {
  const levels: Buffer[][] = [leaves];
  for (let k = 0; k < depth; k++) {
    const below = levels[k]!;
    const up: Buffer[] = [];
    for (let i = 0; i < below.length; i += 2) up.push(nodeHash(below[i]!, 0, below[i + 1] ?? EMPTY[k]!, 0));
    levels.push(up);
  }
  return levels;
}

/** Writes the sibling hashes of leaf `index` (bottom up, depth × 32 bytes) at out[at]. */
export function writePath(levels: Buffer[][], index: number, out: Buffer, at: number): void {
  const depth = levels.length - 1;
  for (let k = 0, i = index; k < depth; k++, i >>= 1) {
    const sibling = levels[k]![i ^ 1] ?? EMPTY[k]!;
    sibling.copy(out, at + k * HASH_BYTES);
  }
}
