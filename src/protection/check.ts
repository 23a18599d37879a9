// The subscriber's side of HA, PKS and PKE: is this copy of a record what its publisher sealed
// for this channel? The level checked is the channel's, from the config, never the record's
// own protection byte: a replica that rewrites a pks record as si is caught, not believed.
//
// PKS and PKE verify one Ed25519 signature per tree and remember the roots they verified (per
// publisher), so most records cost a leaf hash and `depth` node hashes. PKE content is opened
// (decrypted) only for the copy that is delivered.

import { createDecipheriv, createHmac, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import { type Protection } from '../core/index.js';
import { newRecordLayout, recordLayout, sameBytesAt, u16, u32 } from '../codec/index.js';
import type { ChannelKeyring } from './channel-keys.js';
import { parsePublicKey } from './keys.js';
import { leafHash, nodeHash, HASH_BYTES, MERKLE_DEPTH_MAX } from './merkle.js';
import { VerifiedNodes } from './verified.js';
import { contentKey, nonceAt, rawX25519, x25519FromRaw, NONCE_BYTES } from './pke.js';
import { label, pksPartOffset, trailerBytes, EPHEMERAL_BYTES, KEY_ID_BYTES, MAC_BYTES, PATH_OFFSET, PROTECTION_CODE, PROTECTION_NAMES, SALT_BYTES, SALT_OFFSET, SIGNATURE_BYTES, TAG_BYTES } from './trailer.js';

/** valid; invalid (never delivered); unknown: cannot be told here yet (publisher or key not known). */
export type CheckResult = 'valid' | 'invalid' | 'unknown';

export interface CheckerOptions {
  channel: string;
  protection: Protection;
  /**
   * The Ed25519 public key (base64 SPKI) of a client, or undefined if the client is unknown.
   * `fresh`: a signature just failed under the key given before; look again now (a rotation).
   */
  publicKeyOf(client: string, fresh?: boolean): string | undefined;
  keyring?: ChannelKeyring;
  /** Tree nodes already verified; shared by default, since one tree may span channels. */
  verified?: VerifiedNodes;
}

/** How long a checker trusts its last publisher lookup (a rotated client key is seen after this). */
const SIGNER_CACHE_MS = 1000;
/** Content keys (one per publishing process and channel key) remembered per checker. */
const CONTENT_KEYS_MAX = 1024;

/** One per process: every subscriber's checkers verify a publisher's tree once between them. */
const sharedNodes = new VerifiedNodes();

export class EventChecker {
  /** Why the last check() or open() failed. */
  reason = '';
  private readonly code: number;
  private readonly label: Buffer;
  private readonly pkeLabel: Buffer;
  private readonly channelBytes: Buffer;
  private readonly layout = newRecordLayout();
  private readonly verified: VerifiedNodes;
  private lastSigner: { id: Buffer; publisher: string; pk: string | undefined; signer: string; at: number } | undefined;
  private readonly contentKeys = new Map<string, Buffer>();
  private readonly nonce = Buffer.alloc(NONCE_BYTES);

  constructor(private readonly o: CheckerOptions) {
    this.code = PROTECTION_CODE[o.protection];
    this.label = o.protection === 'ha' ? label('ha', o.channel) : label('pks');
    this.channelBytes = Buffer.from(o.channel, 'utf8');
    this.pkeLabel = label('pke', o.channel);
    this.verified = o.verified ?? sharedNodes;
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
    const s = this.signerOf(buf, L.idAt);
    if (s.pk === undefined) return this.unknown(`publisher "${s.publisher}" is not a known client (copy the current cluster.yaml here)`);
    const { publisher, pk, signer } = s;
    const pathAt = p + PATH_OFFSET;
    const sigEnd = pathAt + depth * HASH_BYTES + SIGNATURE_BYTES;
    // Climb from the leaf until a node some earlier record's verified path vouched for, with
    // the same rest of the path and signature: most records of a tree stop after a hash or two.
    const ancestors: Buffer[] = [];
    let h = leafHash(this.channelBytes, buf, start, p, p + SALT_OFFSET, SALT_BYTES);
    for (let k = 0; ; k++) {
      ancestors.push(h);
      if (this.verified.vouches(signer, h, k, index >>> k, depth, buf, pathAt + k * HASH_BYTES, sigEnd)) {
        if (k > 0) this.verified.remember(signer, ancestors, index, depth, buf, pathAt, sigEnd, k);
        return 'valid';
      }
      if (k === depth) break;
      const at = pathAt + k * HASH_BYTES;
      h = (index >>> k) & 1 ? nodeHash(buf, at, h, 0) : nodeHash(h, 0, buf, at);
    }
    let key: KeyObject;
    try {
      key = parsePublicKey(pk);
    } catch {
      return this.fail(`publisher "${publisher}" has no valid public key`);
    }
    const signature = buf.subarray(sigEnd - SIGNATURE_BYTES, sigEnd);
    const signed = Buffer.concat([this.label, h]);
    if (verify(null, signed, key, signature)) {
      this.verified.remember(signer, ancestors, index, depth, buf, pathAt, sigEnd);
      return 'valid';
    }
    // The client's key may have been rotated since it was looked up: look once more, now.
    const now = this.o.publicKeyOf(publisher, true);
    if (now === undefined || now === pk) return this.fail(`signature does not verify under ${publisher}'s key`);
    this.lastSigner = undefined;
    return this.checkSignature(buf, start);
  }

  /**
   * The publisher a record names, its key, and the signer key of verified nodes — remembered
   * for the last publisher seen (runs of one publisher's records are the rule) for at most
   * SIGNER_CACHE_MS, so that a rotated key is looked up again.
   */
  private signerOf(buf: Buffer, idAt: number): { publisher: string; pk: string | undefined; signer: string } {
    const n = buf[idAt]!;
    const now = performance.now();
    const last = this.lastSigner;
    if (last !== undefined && now - last.at < SIGNER_CACHE_MS && last.id.length === n && sameBytesAt(last.id, 0, buf, idAt + 1, n)) return last;
    const publisher = buf.toString('utf8', idAt + 1, idAt + 1 + n);
    const pk = this.o.publicKeyOf(publisher);
    // Keyed by the publisher's current key too: after a rotation, trees the old key signed stop verifying.
    const s = { id: Buffer.from(buf.subarray(idAt + 1, idAt + 1 + n)), publisher, pk, signer: `${pk}\0${publisher}\0`, at: now };
    this.lastSigner = pk === undefined ? undefined : s;
    return s;
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
