// The publisher's side of HA, PKS and PKE: fills in the trailers of records that already carry
// their final seq (so the seq is covered: a replica cannot renumber an old copy into a new
// event), and for PKE encrypts their content in place. One sealer per channel and one signer
// per publishing process; they run when a batch leaves the client, once per batch, whatever
// the number of replicas it goes to.

import { createCipheriv, createHmac, randomFillSync, sign, type KeyObject } from 'node:crypto';
import { FitError, type Protection } from '../core/index.js';
import { newRecordLayout, recordLayout } from '../codec/index.js';
import type { ChannelKeyring } from './channel-keys.js';
import { buildTree, leafHash, writePath, HASH_BYTES, MERKLE_DEPTH_MAX } from './merkle.js';
import { newEphemeral, nonceAt, NONCE_BYTES, type Ephemeral } from './pke.js';
import { label, pksPartOffset, trailerBytes, EPHEMERAL_BYTES, KEY_ID_BYTES, PATH_OFFSET, PROTECTION_CODE, SALT_BYTES, SALT_OFFSET, TAG_BYTES } from './trailer.js';

export interface SealerOptions {
  channel: string;
  protection: Protection;
  /** The channel's keys (ha, pke). */
  keyring?: ChannelKeyring;
}

/**
 * The publisher's signatures (pks, pke) over the records of one frame, whatever their channel:
 * each leaf names its record's channel and a random salt, so one tree may span a frame's
 * sections — with fifty channels in a frame a signature still covers 2^depth events, not the
 * few each channel has — and a path, which holds other leaves' hashes, says nothing about
 * them to a subscriber of another channel. Records are added as their channel's sealer
 * prepares them; finish() signs what is left once the frame is complete.
 */
export class BatchSigner {
  /** Where each added record's pks part starts, and its leaf. */
  private parts: number[] = [];
  private leaves: Buffer[] = [];
  private buf: Buffer | undefined;
  private readonly label = label('pks');

  constructor(
    private readonly signingKey: KeyObject,
    private readonly depth: number,
  ) {
    if (!Number.isInteger(depth) || depth < 0 || depth > MERKLE_DEPTH_MAX) throw new FitError('FIT_ERR_INTERNAL', `invariant broken: tree depth ${depth} outside 0..${MERKLE_DEPTH_MAX}`);
  }

  get treeDepth(): number {
    return this.depth;
  }

  add(buf: Buffer, pksPartAt: number, leaf: Buffer): void {
    if (this.buf !== undefined && this.buf !== buf) throw new FitError('FIT_ERR_INTERNAL', 'invariant broken: a signer tree spans two frames');
    this.buf = buf;
    this.parts.push(pksPartAt);
    this.leaves.push(leaf);
    if (this.leaves.length === 1 << this.depth) this.signTree();
  }

  /** Signs what was added since the last full tree. */
  finish(): void {
    if (this.leaves.length > 0) this.signTree();
    this.buf = undefined;
  }

  private signTree(): void {
    const depth = this.depth;
    const buf = this.buf!;
    const levels = buildTree(this.leaves, depth);
    const signature = sign(null, Buffer.concat([this.label, levels[depth]![0]!]), this.signingKey);
    for (let i = 0; i < this.parts.length; i++) {
      const p = this.parts[i]!;
      buf[p] = depth;
      buf[p + 1] = 0;
      buf.writeUInt16BE(i, p + 2);
      writePath(levels, i, buf, p + PATH_OFFSET);
      signature.copy(buf, p + PATH_OFFSET + depth * HASH_BYTES);
    }
    this.parts = [];
    this.leaves = [];
  }
}

/** Per channel: the MAC (ha), or the encryption (pke) and the leaf each record gives the signer (pks, pke). */
export class EventSealer {
  readonly code: number;
  private readonly channelBytes: Buffer;
  private readonly layout = newRecordLayout();
  private readonly nonce = Buffer.alloc(NONCE_BYTES);
  private readonly haLabel: Buffer;
  private readonly pkeLabel: Buffer;
  private ephemeral: Ephemeral | undefined;
  private readonly salts = Buffer.alloc(4096);
  private saltAt = 4096;

  constructor(private readonly o: SealerOptions) {
    if ((o.protection === 'ha' || o.protection === 'pke') && o.keyring === undefined) {
      throw new FitError('FIT_ERR_INTERNAL', `invariant broken: a ${o.protection} sealer for "${o.channel}" without the channel's keys`);
    }
    this.code = PROTECTION_CODE[o.protection];
    this.channelBytes = Buffer.from(o.channel, 'utf8');
    this.haLabel = label('ha', o.channel);
    this.pkeLabel = label('pke', o.channel);
  }

  /** Trailer bytes of this channel's records when signatures cover trees of 2^depth records. */
  trailerBytes(depth: number): number {
    return trailerBytes(this.o.protection, depth);
  }

  /**
   * Seals every record of buf[from, to), written with this sealer's code and trailer size and
   * already numbered. pks and pke records go to `signer`, whose finish() completes them.
   */
  seal(buf: Buffer, from: number, to: number, signer: BatchSigner): void {
    const p = this.o.protection;
    if (p === 'si') return;
    const L = this.layout;
    const pksAt = pksPartOffset(p);
    for (let at = from; at < to; at = L.end) {
      recordLayout(buf, at, L);
      if (p === 'ha') {
        this.mac(buf, at);
        continue;
      }
      if (p === 'pke') this.encrypt(buf, at);
      const part = L.trailerAt + pksAt;
      this.salt(buf, part + SALT_OFFSET);
      signer.add(buf, part, leafHash(this.channelBytes, buf, at, part, part + SALT_OFFSET, SALT_BYTES));
    }
  }

  /** 16 random bytes at buf[at]: drawn from the system 4 KiB at a time, not per record (a syscall each showed in profiles). */
  private salt(buf: Buffer, at: number): void {
    if (this.saltAt + SALT_BYTES > this.salts.length) {
      randomFillSync(this.salts);
      this.saltAt = 0;
    }
    this.salts.copy(buf, at, this.saltAt, this.saltAt + SALT_BYTES);
    this.saltAt += SALT_BYTES;
  }

  private mac(buf: Buffer, at: number): void {
    const L = this.layout;
    const key = this.o.keyring!.current();
    buf.writeUInt32BE(key.id, L.trailerAt);
    createHmac('sha256', key.secret!)
      .update(this.haLabel)
      .update(buf.subarray(at, L.trailerAt + KEY_ID_BYTES))
      .digest()
      .copy(buf, L.trailerAt + KEY_ID_BYTES);
  }

  private encrypt(buf: Buffer, at: number): void {
    const L = this.layout;
    const key = this.o.keyring!.current();
    if (this.ephemeral?.keyId !== key.id) this.ephemeral = newEphemeral(key.id, key.publicKey!, this.o.channel);
    const e = this.ephemeral;
    const cipher = createCipheriv('aes-256-gcm', e.key, nonceAt(buf, L.seqAt, this.nonce));
    cipher.setAAD(this.pkeLabel).setAAD(buf.subarray(at, L.contentAt));
    const content = buf.subarray(L.contentAt, L.trailerLenAt);
    const n = cipher.update(content).copy(buf, L.contentAt);
    cipher.final().copy(buf, L.contentAt + n);
    buf.writeUInt32BE(e.keyId, L.trailerAt);
    e.raw.copy(buf, L.trailerAt + KEY_ID_BYTES);
    cipher.getAuthTag().copy(buf, L.trailerAt + KEY_ID_BYTES + EPHEMERAL_BYTES, 0, TAG_BYTES);
  }
}
