// The subscriber's side of HA, PKS and PKE: is this copy of a record what its publisher sealed
// for this channel? The level checked is the channel's, from the config, never the record's
// own protection byte: a replica that rewrites a pks record as si is caught, not believed.
//
// PKS and PKE verify one Ed25519 signature per tree and remember the roots they verified (per
// publisher), so most records cost a leaf hash and `depth` node hashes. PKE content is opened
// (decrypted) only for the copy that is delivered.

import { createDecipheriv, createHmac, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import { type Protection } from '../core/index.js';
import { newRecordLayout, recordLayout, u16, u32 } from '../codec/index.js';
import type { ChannelKeyring } from './channel-keys.js';
import { parsePublicKey } from './keys.js';
import { leafHash, rootFrom, HASH_BYTES, MERKLE_DEPTH_MAX } from './merkle.js';
import { contentKey, nonceAt, rawX25519, x25519FromRaw, NONCE_BYTES } from './pke.js';
import { label, pksPartOffset, trailerBytes, EPHEMERAL_BYTES, KEY_ID_BYTES, MAC_BYTES, PATH_OFFSET, PROTECTION_CODE, PROTECTION_NAMES, SIGNATURE_BYTES, TAG_BYTES } from './trailer.js';

/** valid; invalid (never delivered); unknown: cannot be told here yet (publisher or key not known). */
export type CheckResult = 'valid' | 'invalid' | 'unknown';

export interface CheckerOptions {
  channel: string;
  protection: Protection;
  /** The Ed25519 public key (base64 SPKI) of a client, or undefined if the client is unknown. */
  publicKeyOf(client: string): string | undefined;
  keyring?: ChannelKeyring;
  /** Roots already verified; shared by default, since one tree may span channels. */
  roots?: VerifiedRoots;
}

/** Verified roots, per publisher key and name, with the signature that verified them; bounded, oldest first out. */
export class VerifiedRoots {
  private readonly map = new Map<string, Buffer>();

  constructor(private readonly max = ROOTS_MAX) {}

  get(key: string): Buffer | undefined {
    return this.map.get(key);
  }

  set(key: string, signature: Buffer): void {
    if (this.map.size >= this.max) this.map.delete(this.map.keys().next().value!);
    this.map.set(key, signature);
  }
}

/** Verified roots remembered per checker; a root is worth one signature verification. */
const ROOTS_MAX = 16_384;
/** Content keys (one per publishing process and channel key) remembered per checker. */
const CONTENT_KEYS_MAX = 1024;

/** One per process: every subscriber's checkers verify a publisher's tree once between them. */
const sharedRoots = new VerifiedRoots();

export class EventChecker {
  /** Why the last check() or open() failed. */
  reason = '';
  private readonly code: number;
  private readonly label: Buffer;
  private readonly pkeLabel: Buffer;
  private readonly channelBytes: Buffer;
  private readonly layout = newRecordLayout();
  private readonly roots: VerifiedRoots;
  private readonly contentKeys = new Map<string, Buffer>();
  private readonly nonce = Buffer.alloc(NONCE_BYTES);

  constructor(private readonly o: CheckerOptions) {
    this.code = PROTECTION_CODE[o.protection];
    this.label = o.protection === 'ha' ? label('ha', o.channel) : label('pks');
    this.channelBytes = Buffer.from(o.channel, 'utf8');
    this.pkeLabel = label('pke', o.channel);
    this.roots = o.roots ?? sharedRoots;
  }

  get protection(): Protection {
    return this.o.protection;
  }

  /** Whether the record at buf[start, end) (already parsed by RecordCursor) is authentic. */
  check(buf: Buffer, start: number, end: number): CheckResult {
    const L = recordLayout(buf, start, this.layout);
    if (L.end !== end) return this.fail('record bounds do not match');
    if (buf[start + 7] !== this.code) return this.fail(`sealed as ${PROTECTION_NAMES[buf[start + 7]!] ?? buf[start + 7]}, the channel is ${this.o.protection}`);
    switch (this.o.protection) {
      case 'si':
        return 'valid';
      case 'ha':
        return this.checkMac(buf, start);
      default:
        return this.checkSignature(buf, start);
    }
  }

  private fail(reason: string): 'invalid' {
    this.reason = reason;
    return 'invalid';
  }

  private unknown(reason: string): 'unknown' {
    this.reason = reason;
    return 'unknown';
  }

  private checkMac(buf: Buffer, start: number): CheckResult {
    const L = this.layout;
    if (L.end - L.trailerAt !== trailerBytes('ha', 0)) return this.fail('trailer is not an HA trailer');
    const key = this.o.keyring!.byId(u32(buf, L.trailerAt));
    // byId() just re-read the ring if it changed: a key still missing is one this subscriber
    // was never given (or one already retired), and the event cannot be delivered here.
    if (!key) return this.fail(`channel key ${u32(buf, L.trailerAt).toString(16).padStart(8, '0')} is not in ${this.o.keyring!.file}`);
    const mac = createHmac('sha256', key.secret!).update(this.label).update(buf.subarray(start, L.trailerAt + KEY_ID_BYTES)).digest();
    if (!timingSafeEqual(mac, buf.subarray(L.trailerAt + KEY_ID_BYTES, L.trailerAt + KEY_ID_BYTES + MAC_BYTES))) return this.fail('MAC does not verify');
    return 'valid';
  }

  private checkSignature(buf: Buffer, start: number): CheckResult {
    const L = this.layout;
    const p = L.trailerAt + pksPartOffset(this.o.protection);
    if (p + PATH_OFFSET > L.end) return this.fail('trailer too short');
    const depth = buf[p]!;
    if (depth > MERKLE_DEPTH_MAX || L.end - L.trailerAt !== trailerBytes(this.o.protection, depth)) return this.fail('trailer length does not match its tree depth');
    const index = u16(buf, p + 2);
    if (buf[p + 1] !== 0 || index >= 1 << depth) return this.fail('leaf index outside its tree');
    const root = rootFrom(leafHash(this.channelBytes, buf, start, p), index, buf, p + PATH_OFFSET, depth);
    const publisherAt = L.idAt + 1;
    const publisher = buf.toString('utf8', publisherAt, publisherAt + buf[L.idAt]!);
    const pk = this.o.publicKeyOf(publisher);
    if (pk === undefined) return this.unknown(`publisher "${publisher}" is not a known client (copy the current cluster.yaml here)`);
    // Keyed by the publisher's current key too: after a rotation, trees the old key signed stop verifying.
    const rootKey = `${pk}\0${publisher}\0${root.toString('latin1')}`;
    const sigAt = p + PATH_OFFSET + depth * HASH_BYTES;
    const known = this.roots.get(rootKey);
    // A known root still needs the very signature that verified it: a delivered copy must
    // verify on its own wherever it is forwarded next.
    if (known !== undefined) return known.compare(buf, sigAt, sigAt + SIGNATURE_BYTES) === 0 ? 'valid' : this.fail('signature differs from the one its root verified with');
    let key: KeyObject;
    try {
      key = parsePublicKey(pk);
    } catch {
      return this.fail(`publisher "${publisher}" has no valid public key`);
    }
    const signature = buf.subarray(sigAt, sigAt + SIGNATURE_BYTES);
    if (!verify(null, Buffer.concat([this.label, root]), key, signature)) return this.fail(`signature does not verify under ${publisher}'s key`);
    this.roots.set(rootKey, Buffer.from(signature));
    return 'valid';
  }

  /**
   * The plaintext of a pke record that check() accepted; undefined (with reason) if this
   * subscriber cannot decrypt it. Other levels: the content as it is.
   */
  open(buf: Buffer, start: number): Buffer | undefined {
    const L = recordLayout(buf, start, this.layout);
    const content = buf.subarray(L.contentAt, L.trailerLenAt);
    if (this.o.protection !== 'pke') return content;
    const keyId = u32(buf, L.trailerAt);
    const ephAt = L.trailerAt + KEY_ID_BYTES;
    const cacheKey = buf.toString('latin1', L.trailerAt, ephAt + EPHEMERAL_BYTES);
    let key = this.contentKeys.get(cacheKey);
    if (key === undefined) {
      const channelKey = this.o.keyring!.byId(keyId);
      if (!channelKey?.privateKey) {
        this.reason = `channel key ${keyId.toString(16).padStart(8, '0')} (with its private part) is not in ${this.o.keyring!.file}`;
        return undefined;
      }
      try {
        const eph = Buffer.from(buf.subarray(ephAt, ephAt + EPHEMERAL_BYTES));
        key = contentKey(channelKey.privateKey, x25519FromRaw(eph), eph, rawX25519(channelKey.publicKey!), this.o.channel);
      } catch {
        this.reason = 'the ephemeral key is not a valid X25519 key';
        return undefined;
      }
      if (this.contentKeys.size >= CONTENT_KEYS_MAX) this.contentKeys.delete(this.contentKeys.keys().next().value!);
      this.contentKeys.set(cacheKey, key);
    }
    try {
      const d = createDecipheriv('aes-256-gcm', key, nonceAt(buf, L.seqAt, this.nonce));
      d.setAAD(this.pkeLabel).setAAD(buf.subarray(start, L.contentAt));
      d.setAuthTag(buf.subarray(ephAt + EPHEMERAL_BYTES, ephAt + EPHEMERAL_BYTES + TAG_BYTES));
      const plain = d.update(content);
      d.final();
      return plain;
    } catch {
      this.reason = 'content does not decrypt: its publisher sealed it with a key this subscriber does not hold, or sealed it wrongly';
      return undefined;
    }
  }
}
