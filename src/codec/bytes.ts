// Big-endian reads for the hot paths, by hand: Node's buf.readUInt32BE() and friends check
// their offset through a call V8 does not inline (node:internal/validators), about 50
// instructions per read, measured with callgrind on a replica's path, where a record's
// header takes eight of them. Callers check bounds first, as they must anyway to parse:
// reading past the end gives undefined, which these turn into NaN, never a wrong number
// that looks right.

/** The u32 at buf[at, at + 4). */
export function u32(buf: Uint8Array, at: number): number {
  return buf[at]! * 0x100_0000 + ((buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!);
}

/** The u16 at buf[at, at + 2). */
export function u16(buf: Uint8Array, at: number): number {
  return (buf[at]! << 8) | buf[at + 1]!;
}

const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);
const littleEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The big-endian f64 at buf[at, at + 8). */
export function f64be(buf: Uint8Array, at: number): number {
  if (littleEndianHost) for (let i = 0; i < 8; i++) f64Bytes[i] = buf[at + 7 - i]!;
  else for (let i = 0; i < 8; i++) f64Bytes[i] = buf[at + i]!;
  return f64[0]!;
}
