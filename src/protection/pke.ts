// PKE content keys: the publisher makes one X25519 key pair per channel key it seals with, and
// derives an AES-256-GCM key from its agreement with the channel's public key (HKDF-SHA-256,
// bound to both public keys and the channel). The ephemeral public key travels in every
// record, so any subscriber holding the channel's private key derives the same key once per
// publishing process and channel key, without any key exchange through the replicas.
//
// A key encrypts only one publishing process's records, and the GCM nonce is the record's seq,
// which rises within that process: no (key, nonce) pair is ever used twice. A batch resent
// after a reconnect is the same bytes, not a new encryption.

import { createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, type KeyObject } from 'node:crypto';

export const NONCE_BYTES = 12;

export function rawX25519(publicKey: KeyObject): Buffer {
  return Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
}

export function x25519FromRaw(raw: Buffer): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: raw.toString('base64url') }, format: 'jwk' });
}

export function contentKey(privateKey: KeyObject, peerPublic: KeyObject, ephemeralRaw: Buffer, channelRaw: Buffer, channel: string): Buffer {
  const shared = diffieHellman({ privateKey, publicKey: peerPublic });
  return Buffer.from(hkdfSync('sha256', shared, Buffer.concat([ephemeralRaw, channelRaw]), `fitbroker-pke-v1\0${channel}`, 32));
}

export interface Ephemeral {
  keyId: number;
  raw: Buffer;
  key: Buffer;
}

/** A fresh ephemeral key for sealing with the channel key `keyId` whose public key is `channelPublic`. */
export function newEphemeral(keyId: number, channelPublic: KeyObject, channel: string): Ephemeral {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  const raw = rawX25519(publicKey);
  return { keyId, raw, key: contentKey(privateKey, channelPublic, raw, rawX25519(channelPublic), channel) };
}

/** The nonce of the record whose 8-byte seq starts at buf[seqAt]. */
export function nonceAt(buf: Buffer, seqAt: number, out: Buffer): Buffer {
  out.fill(0, 0, 4);
  buf.copy(out, 4, seqAt, seqAt + 8);
  return out;
}
