// The publisher's side of HA, PKS and PKE: fills in the trailers of a run of records that
// already carry their final seq (so the seq is covered: a replica cannot renumber an old copy
// into a new event), and for PKE encrypts their content in place. One sealer per channel per
// publishing process; it runs when a batch leaves the client, once per batch, whatever the
// number of replicas it goes to.

import { createCipheriv, createHmac, sign, type KeyObject } from 'node:crypto';
import { FitError, type Protection } from '../core/index.js';
import { newRecordLayout, recordLayout } from '../codec/index.js';
import type { ChannelKeyring } from './channel-keys.js';
import { buildTree, leafHash, writePath, HASH_BYTES, MERKLE_DEPTH_MAX } from './merkle.js';
import { newEphemeral, nonceAt, NONCE_BYTES, type Ephemeral } from './pke.js';
import { label, pksPartOffset, trailerBytes, EPHEMERAL_BYTES, KEY_ID_BYTES, PATH_OFFSET, PROTECTION_CODE, TAG_BYTES } from './trailer.js';

export interface SealerOptions {
  channel: string;
  protection: Protection;
  /** The publisher's Ed25519 key (pks, pke). */
  signingKey: KeyObject;
  /** The channel's keys (ha, pke). */
  keyring?: ChannelKeyring;
  /** Trees of 2^depth records per signature (pks, pke). */
  depth: number;
}

export class EventSealer {
  readonly code: number;
  readonly trailerBytes: number;
  private readonly label: Buffer;
  private readonly layout = newRecordLayout();
  private readonly nonce = Buffer.alloc(NONCE_BYTES);
  private ephemeral: Ephemeral | undefined;
  /** Starts and leaves of the records of the tree being built. */
  private starts: number[] = [];
  private leaves: Buffer[] = [];

  constructor(private readonly o: SealerOptions) {
    if (o.protection !== 'si' && o.protection !== 'pks' && o.keyring === undefined) {
      throw new FitError('FIT_ERR_INTERNAL', `invariant broken: a ${o.protection} sealer for "${o.channel}" without the channel's keys`);
    }
    if (!Number.isInteger(o.depth) || o.depth < 0 || o.depth > MERKLE_DEPTH_MAX) throw new FitError('FIT_ERR_INTERNAL', `invariant broken: tree depth ${o.depth} outside 0..${MERKLE_DEPTH_MAX}`);
    this.code = PROTECTION_CODE[o.protection];
    this.trailerBytes = trailerBytes(o.protection, o.depth);
    this.label = label(o.protection === 'ha' ? 'ha' : 'pks', o.channel);
  }

  /** Seals every record of buf[from, to), written with this sealer's code and trailerBytes. */
  seal(buf: Buffer, from: number, to: number): void {
    if (this.o.protection === 'si') return;
    if (this.o.protection === 'ha') return this.mac(buf, from, to);
    const width = 1 << this.o.depth;
    const pksAt = pksPartOffset(this.o.protection);
    const L = this.layout;
    for (let at = from; at < to; at = L.end) {
      recordLayout(buf, at, L);
      if (this.o.protection === 'pke') this.encrypt(buf, at);
      this.starts.push(at);
      this.leaves.push(leafHash(buf, at, L.trailerAt + pksAt));
      if (this.leaves.length === width) this.signTree(buf);
    }
    if (this.leaves.length > 0) this.signTree(buf);
  }

  private mac(buf: Buffer, from: number, to: number): void {
    const L = this.layout;
    const key = this.o.keyring!.current();
    for (let at = from; at < to; at = L.end) {
      recordLayout(buf, at, L);
      buf.writeUInt32BE(key.id, L.trailerAt);
      createHmac('sha256', key.secret!)
        .update(this.label)
        .update(buf.subarray(at, L.trailerAt + KEY_ID_BYTES))
        .digest()
        .copy(buf, L.trailerAt + KEY_ID_BYTES);
    }
  }

  private encrypt(buf: Buffer, at: number): void {
    const L = this.layout;
    const key = this.o.keyring!.current();
    if (this.ephemeral?.keyId !== key.id) this.ephemeral = newEphemeral(key.id, key.publicKey!, this.o.channel);
    const e = this.ephemeral;
    const cipher = createCipheriv('aes-256-gcm', e.key, nonceAt(buf, L.seqAt, this.nonce));
    cipher.setAAD(Buffer.concat([label('pke', this.o.channel), buf.subarray(at, L.contentAt)]));
    const content = buf.subarray(L.contentAt, L.trailerLenAt);
    const n = cipher.update(content).copy(buf, L.contentAt);
    cipher.final().copy(buf, L.contentAt + n);
    buf.writeUInt32BE(e.keyId, L.trailerAt);
    e.raw.copy(buf, L.trailerAt + KEY_ID_BYTES);
    cipher.getAuthTag().copy(buf, L.trailerAt + KEY_ID_BYTES + EPHEMERAL_BYTES, 0, TAG_BYTES);
  }

  private signTree(buf: Buffer): void {
    const depth = this.o.depth;
    const levels = buildTree(this.leaves, depth);
    const signature = sign(null, Buffer.concat([this.label, levels[depth]![0]!]), this.o.signingKey);
    const L = this.layout;
    const pksAt = pksPartOffset(this.o.protection);
    for (let i = 0; i < this.starts.length; i++) {
      recordLayout(buf, this.starts[i]!, L);
      const p = L.trailerAt + pksAt;
      buf[p] = depth;
      buf[p + 1] = 0;
      buf.writeUInt16BE(i, p + 2);
      writePath(levels, i, buf, p + PATH_OFFSET);
      signature.copy(buf, p + PATH_OFFSET + depth * HASH_BYTES);
    }
    this.starts = [];
    this.leaves = [];
  }
}
