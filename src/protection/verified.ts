// The tree nodes a subscriber has seen verified, so that most records of a signed tree cost a
// leaf hash and a node hash or two instead of a climb to the root. Once a root's signature
// verified, every node on that record's path is authentic — its ancestors and the siblings it
// carried — and any other record of the tree reaches one of them within a level or two. A node
// vouches for a record only with the rest of the path and the signature the record carries
// equal, byte for byte, to the ones that verified it (one memcmp), and at the same level and
// position: a delivered copy still verifies on its own wherever it is forwarded next.

import { u16, u32 } from '../codec/index.js';
import { HASH_BYTES } from './merkle.js';

interface Known {
  /** The node itself: the map key is only its first 48 bits. */
  node: Buffer;
  level: number;
  /** The node's position in its level (the leaf index shifted right by `level`). */
  pos: number;
  depth: number;
  /** The whole path and signature of the record that vouched for it, shared by its nodes. */
  path: Buffer;
  /** For a sibling it carried: the node beside it at this level (that record's ancestor). */
  beside: Buffer | undefined;
}

/** Bounded: a tree of 2^d records leaves about 2·d nodes per record verified in full. */
const NODES_MAX = 32_768;

/** The first 48 bits of the hash at buf[at]: a small-integer map key (the whole node is compared on a hit). */
function keyAt(buf: Buffer, at: number): number {
  return u32(buf, at) * 0x1_0000 + u16(buf, at + 4);
}

export class VerifiedNodes {
  /** By signer (publisher key and name), then by the node's first 48 bits (a number: no string per lookup). */
  private readonly bySigner = new Map<string, Map<number, Known>>();
  /** Insertion order across signers, for eviction. */
  private readonly order: [Map<number, Known>, number][] = [];
  private head = 0;

  constructor(private readonly max = NODES_MAX) {}

  /** True if `node` at (level, pos) was verified with the path above it and signature buf[tailAt, tailEnd), under `signer`. */
  vouches(signer: string, node: Buffer, level: number, pos: number, depth: number, buf: Buffer, tailAt: number, tailEnd: number): boolean {
    const k = this.bySigner.get(signer)?.get(keyAt(node, 0));
    if (k === undefined || k.node.compare(node, 0, HASH_BYTES) !== 0 || k.level !== level || k.pos !== pos || k.depth !== depth || k.path.length - level * HASH_BYTES !== tailEnd - tailAt) return false;
    if (k.beside === undefined) return k.path.compare(buf, tailAt, tailEnd, level * HASH_BYTES) === 0;
    return k.beside.compare(buf, tailAt, tailAt + HASH_BYTES) === 0 && k.path.compare(buf, tailAt + HASH_BYTES, tailEnd, (level + 1) * HASH_BYTES) === 0;
  }

  /**
   * Remembers the nodes of a record's path below level `upTo` (exclusive), now that its climb
   * reached a verified node at that level (or, with upTo = depth + 1, a root whose signature
   * just verified): ancestors[k] is its node at level k (the leaf at 0), buf[pathAt, sigEnd)
   * its path and signature. The next records of the tree then stop a level or two up, or at
   * their own leaf.
   */
  remember(signer: string, ancestors: Buffer[], index: number, depth: number, buf: Buffer, pathAt: number, sigEnd: number, upTo = depth + 1): void {
    let nodes = this.bySigner.get(signer);
    if (nodes === undefined) this.bySigner.set(signer, (nodes = new Map()));
    const path = Buffer.from(buf.subarray(pathAt, sigEnd));
    for (let k = 0; k < upTo; k++) {
      this.set(nodes, { node: ancestors[k]!, level: k, pos: index >>> k, depth, path, beside: undefined });
      if (k === depth) break;
      // The sibling at level k: below it, its own sibling at this level is our ancestor.
      this.set(nodes, { node: path.subarray(k * HASH_BYTES, (k + 1) * HASH_BYTES), level: k, pos: (index >>> k) ^ 1, depth, path, beside: ancestors[k]! });
    }
  }

  private set(nodes: Map<number, Known>, known: Known): void {
    const key = keyAt(known.node, 0);
    if (this.order.length - this.head >= this.max) {
      const [m, oldest] = this.order[this.head++]!;
      m.delete(oldest);
      if (this.head > this.max) {
        this.order.splice(0, this.head);
        this.head = 0;
      }
    }
    nodes.set(key, known);
    this.order.push([nodes, key]);
  }
}
