// The bytes the store-choice bench writes: keys that sort as (channel, u64 index), and record
// values of 200-300 bytes that are a pure function of (channel, index), so that a reader (the
// restart scan, the crash check in another process) can tell an intact record from a torn or
// misplaced one without keeping a copy. Nothing here touches a store.

/** Bytes a record value has at least and at most: the replica's event records. */
export const RECORD_BYTES_MIN = 200;
export const RECORD_BYTES_MAX = 300;

// A fixed pool of pseudo-random bytes; a record is a slice of it behind its own header. Not a
// constant fill: a store that compresses or deduplicates would otherwise look faster than it is.
const POOL_BYTES = 1 << 16;
const pool = Buffer.alloc(POOL_BYTES);
{
  let x = 0x9e3779b9;
  for (let i = 0; i < POOL_BYTES; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    pool[i] = x & 0xff;
  }
}

/** A hash of the channel name (FNV-1a), mixed into every value of that channel. */
function channelSalt(channel: string): number {
  let h = 2166136261;
  for (let i = 0; i < channel.length; i++) h = Math.imul(h ^ channel.charCodeAt(i), 16777619);
  return h >>> 0;
}

function recordLength(salt: number, index: number): number {
  return RECORD_BYTES_MIN + ((index * 7 + salt) % (RECORD_BYTES_MAX - RECORD_BYTES_MIN + 1));
}

/** The value stored at (channel, index): 8 bytes index, 4 bytes channel salt, then pool bytes. */
export function recordValue(channel: string, index: number): Buffer {
  const salt = channelSalt(channel);
  const len = recordLength(salt, index);
  const b = Buffer.allocUnsafe(len);
  writeU64BE(b, 0, index);
  b.writeUInt32BE(salt, 8);
  const from = (index * 31 + salt) % (POOL_BYTES - RECORD_BYTES_MAX);
  pool.copy(b, 12, from, from + len - 12);
  return b;
}

/** Whether value is exactly what recordValue(channel, index) wrote. */
export function isIntact(channel: string, index: number, value: Uint8Array): boolean {
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength).equals(recordValue(channel, index));
}

/** Records [first, first + count) of a channel. */
export function recordBatch(channel: string, first: number, count: number): Buffer[] {
  const out = new Array<Buffer>(count);
  for (let i = 0; i < count; i++) out[i] = recordValue(channel, first + i);
  return out;
}

// Indices are JS numbers here (the bench never passes 2^53); written as two u32 halves, which
// is the same big-endian u64 the replica will write, without a BigInt per record.
export function writeU64BE(b: Buffer, offset: number, n: number): void {
  b.writeUInt32BE(Math.floor(n / 0x1_0000_0000), offset);
  b.writeUInt32BE(n >>> 0, offset + 4);
}

export function readU64BE(b: Uint8Array, offset: number): number {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return v.getUint32(offset) * 0x1_0000_0000 + v.getUint32(offset + 4);
}

/**
 * A record key for the key-value stores: the channel's UTF-8 bytes, a 0 byte, the index as a
 * big-endian u64. Byte order is then (channel, index) order, so a range scan reads a channel in
 * index order. A channel name never holds a 0 byte (the config refuses control characters).
 */
export function recordKey(prefix: number, channel: string, index: number): Buffer {
  const name = Buffer.from(channel, 'utf8');
  const k = Buffer.allocUnsafe(1 + name.length + 1 + 8);
  k[0] = prefix;
  name.copy(k, 1);
  k[1 + name.length] = 0;
  writeU64BE(k, 2 + name.length, index);
  return k;
}

/** The first key past every record of the channel under prefix. */
export function channelEnd(prefix: number, channel: string): Buffer {
  const name = Buffer.from(channel, 'utf8');
  const k = Buffer.allocUnsafe(1 + name.length + 1);
  k[0] = prefix;
  name.copy(k, 1);
  k[1 + name.length] = 1;
  return k;
}

/** The index a recordKey holds. */
export function keyIndex(key: Uint8Array): number {
  return readU64BE(key, key.byteLength - 8);
}

/** A subscriber position key: prefix, channel, 0, client. */
export function positionKey(prefix: number, channel: string, client: string): Buffer {
  return Buffer.concat([Buffer.from([prefix]), Buffer.from(channel, 'utf8'), Buffer.from([0]), Buffer.from(client, 'utf8')]);
}

export function u64Value(n: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  writeU64BE(b, 0, n);
  return b;
}
