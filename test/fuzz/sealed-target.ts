// Fuzz target for protected records (src/protection/check.ts): sealed ha, pks and pke records,
// mutated, walked with the record cursor and checked at every level, as a subscriber would.
// Beyond the parser contract it asserts the property protection exists for: a record the
// checker calls valid is byte for byte one its publisher sealed, at that level — no mutation
// of any byte, length or trailer forges one — and opening a valid pke record gives back the
// content that was sealed.

import { createPrivateKey } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Protection } from '../../src/core/index.js';
import { numberRecords, recordBytes, writeRecord, RecordCursor } from '../../src/codec/index.js';
import { BatchSigner, ChannelKeyring, EventChecker, EventSealer, VerifiedNodes, createChannelKeys, generateIdentity, trailerBytes, PROTECTION_CODE } from '../../src/protection/index.js';
import type { FuzzTarget, Rng } from '../helpers/fuzz.js';

const LEVELS: Protection[] = ['ha', 'pks', 'pke'];
const POOL_PER_LEVEL = 24;
const EVENT_BYTES_MAX = 4 * 1024;

interface Pool {
  records: Map<Protection, Buffer[]>;
  /** Sealed bytes (latin1) per level, and the content each was sealed from. */
  sealed: Map<Protection, Map<string, string>>;
  checkers: Map<Protection, EventChecker>;
}

let pool: Pool | undefined;

/** Built once per process: keys, rings and sealed records (a tree of up to 8 per run). */
function getPool(): Pool {
  if (pool) return pool;
  const dir = mkdtempSync(join(tmpdir(), 'fitbroker-fuzz-sealed-'));
  const id = generateIdentity();
  const key = createPrivateKey(id.privatePem);
  const records = new Map<Protection, Buffer[]>();
  const sealed = new Map<Protection, Map<string, string>>();
  const checkers = new Map<Protection, EventChecker>();
  createChannelKeys(dir, 'alerts-ha', 'ha');
  createChannelKeys(dir, 'alerts-pke', 'pke');
  const ring = (level: Protection): ChannelKeyring | undefined => (level === 'pks' ? undefined : new ChannelKeyring(dir, `alerts-${level}`, level as 'ha' | 'pke'));
  for (const level of LEVELS) {
    const channel = level === 'pks' ? 'alerts-pks' : `alerts-${level}`;
    const keyring = ring(level);
    const sealer = new EventSealer({ channel, protection: level, ...(keyring ? { keyring } : {}) });
    const signer = new BatchSigner(key, 3);
    const publisher = Buffer.from('probe');
    const trailer = trailerBytes(level, 3);
    const contents = Array.from({ length: POOL_PER_LEVEL }, (_, i) => `event ${i} of ${level} ${'x'.repeat(i * 3)}`);
    // One buffer, as in a frame: the signer makes a tree of every 8 records.
    const frame = Buffer.alloc(contents.reduce((n, c) => n + recordBytes(publisher.length, c.length, trailer), 0));
    let at = 0;
    const starts: number[] = [];
    contents.forEach((content, i) => {
      starts.push(at);
      at = writeRecord(frame, at, { publisher, epoch: Buffer.alloc(8, 7), seq: 0, timestampMs: 1_700_000_000_000 + i, priority: (i % 4) as 0 | 1 | 2 | 3, contentType: 0, content: Buffer.from(content), protection: PROTECTION_CODE[level], trailerBytes: trailer });
    });
    numberRecords(frame, 0, 0);
    sealer.seal(frame, 0, frame.length, signer);
    signer.finish();
    const list = starts.map((s, i) => Buffer.from(frame.subarray(s, starts[i + 1] ?? frame.length)));
    const byBytes = new Map<string, string>();
    for (let i = 0; i < list.length; i++) byBytes.set(list[i]!.toString('latin1'), contents[i]!);
    records.set(level, list);
    sealed.set(level, byBytes);
    checkers.set(level, new EventChecker({ channel, protection: level, publicKeyOf: (c) => (c === 'probe' ? id.publicKey : undefined), verified: new VerifiedNodes(64), ...(keyring ? { keyring } : {}) }));
  }
  pool = { records, sealed, checkers };
  return pool;
}

export const sealedTarget: FuzzTarget = {
  name: 'sealed',
  what: 'ha / pks / pke records: RecordCursor, then EventChecker.check and open at every level; nothing mutated checks valid',
  allowed: ['FIT_ERR_MALFORMED', 'FIT_ERR_EVENT_TOO_LARGE'],
  sample(rng: Rng) {
    const p = getPool();
    const level = rng.pick(LEVELS);
    const list = p.records.get(level)!;
    return Buffer.concat(Array.from({ length: rng.range(1, 4) }, () => rng.pick(list)));
  },
  run(input: Buffer) {
    const p = getPool();
    const cur = new RecordCursor(input, 0, EVENT_BYTES_MAX);
    while (cur.next()) {
      const bytes = input.toString('latin1', cur.start, cur.end);
      for (const level of LEVELS) {
        const checker = p.checkers.get(level)!;
        const verdict = checker.check(input, cur.start, cur.end);
        if (verdict !== 'valid') continue;
        const content = p.sealed.get(level)!.get(bytes);
        if (content === undefined) throw new Error(`a record that was never sealed checks valid at ${level}`);
        const opened = checker.open(input, cur.start);
        if (opened?.toString() !== content) throw new Error(`a valid ${level} record opened to ${JSON.stringify(opened?.toString())}, not what was sealed`);
      }
    }
  },
};
