// What a record's trailer holds at each level of protection, shared by the publisher that
// seals records (seal.ts) and the subscriber that checks them (check.ts). All of it is bound to
// the channel: a MAC or signature made for one channel never verifies on another.
//
//   ha:  u32 keyId | HMAC-SHA-256 (32)
//   pks: u8 depth | u8 0 | u16 index | salt (16) | path (depth × 32) | Ed25519 signature of the root (64)
//   pke: u32 keyId | X25519 ephemeral public key (32) | AES-GCM tag (16) | the pks part
//
// The HMAC covers the record up to and including its keyId. A pks/pke leaf covers the channel
// name, the salt and the record up to the pks part: header, identity (so seq too: an old signed copy
// cannot be renumbered), content or ciphertext, and for pke the key id, ephemeral key and tag.

import type { Protection } from '../core/index.js';
import { HASH_BYTES } from './merkle.js';

export const PROTECTION_CODE: Record<Protection, number> = { si: 0, ha: 1, pks: 2, pke: 3 };
export const PROTECTION_NAMES: readonly Protection[] = ['si', 'ha', 'pks', 'pke'];

export const KEY_ID_BYTES = 4;
export const MAC_BYTES = 32;
export const HA_TRAILER_BYTES = KEY_ID_BYTES + MAC_BYTES;
export const EPHEMERAL_BYTES = 32;
export const TAG_BYTES = 16;
/** The pke part before the pks part. */
export const PKE_PART_BYTES = KEY_ID_BYTES + EPHEMERAL_BYTES + TAG_BYTES;
export const SIGNATURE_BYTES = 64;
/** Random per record, in its leaf: a path shows other leaves, and an unsalted leaf would let its reader confirm a guess of their content. */
export const SALT_BYTES = 16;
/** Offset of the salt inside the pks part. */
export const SALT_OFFSET = 4;
const PKS_HEADER_BYTES = SALT_OFFSET + SALT_BYTES;

/** Trailer bytes of a record sealed at `protection` with trees of 2^depth leaves. */
export function trailerBytes(protection: Protection, depth: number): number {
  switch (protection) {
    case 'si':
      return 0;
    case 'ha':
      return HA_TRAILER_BYTES;
    case 'pks':
      return PKS_HEADER_BYTES + depth * HASH_BYTES + SIGNATURE_BYTES;
    case 'pke':
      return PKE_PART_BYTES + PKS_HEADER_BYTES + depth * HASH_BYTES + SIGNATURE_BYTES;
  }
}

/** Offset of the pks part inside the trailer. */
export function pksPartOffset(protection: Protection): number {
  return protection === 'pke' ? PKE_PART_BYTES : 0;
}

/** Where the path starts relative to the pks part, and the signature relative to the path's end. */
export const PATH_OFFSET = PKS_HEADER_BYTES;

/**
 * Domain labels: a MAC, signature or ciphertext made for one use is never valid for another.
 * MACs and ciphertexts name their channel here; signatures cover trees whose leaves name theirs.
 */
export function label(kind: 'ha' | 'pks' | 'pke', channel = ''): Buffer {
  return Buffer.from(`fitbroker-${kind}-v1\0${channel}\0`, 'utf8');
}
