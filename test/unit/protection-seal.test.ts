// HA, PKS and PKE end to end at the record level (src/protection/seal.ts, check.ts): what a
// publisher seals, a subscriber with the channel's keys accepts, and any change a replica
// could make — any byte flipped, a renumbered seq, another channel, a downgraded level, a
// record claimed for another publisher — is refused with a reason. PKE content is unreadable
// in the sealed bytes and opens only with the channel's private key; rotation keeps old
// records readable.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Protection } from '../../src/core/index.js';
import { numberRecords, recordBytes, writeRecord, RecordCursor, decodeRecord } from '../../src/codec/index.js';
import {
  BatchSigner,
  ChannelKeyring,
  EventChecker,
  EventSealer,
  createChannelKeys,
  generateIdentity,
  rotateChannelKey,
  retireChannelKey,
  readChannelKeyring,
  channelKeyPath,
  trailerBytes,
  PROTECTION_CODE,
} from '../../src/protection/index.js';

const dir = mkdtempSync(join(tmpdir(), 'fitbroker-seal-'));
after(() => rmSync(dir, { recursive: true, force: true }));
createChannelKeys(dir, 'alerts-ha', 'ha');
createChannelKeys(dir, 'alerts-pke', 'pke');

const probe = generateIdentity();
const other = generateIdentity();
const probeKey = createPrivateKey(probe.privatePem);
const otherKey = createPrivateKey(other.privatePem);
const publicKeys: Record<string, string> = { probe: probe.publicKey, other: other.publicKey };
const EPOCH = randomBytes(8);

function channelOf(p: Protection): string {
  return p === 'ha' ? 'alerts-ha' : p === 'pke' ? 'alerts-pke' : 'alerts';
}

function keyringFor(p: Protection, channel = channelOf(p)): ChannelKeyring | undefined {
  return p === 'ha' || p === 'pke' ? new ChannelKeyring(dir, channel, p) : undefined;
}

/** A sealed section of `contents.length` records by `publisher`, numbered after `lastSeq`. */
function sealedSection(p: Protection, contents: string[], o: { depth?: number; publisher?: string; signingKey?: typeof probeKey; lastSeq?: number; channel?: string } = {}): Buffer {
  const depth = o.depth ?? 3;
  const channel = o.channel ?? channelOf(p);
  const publisher = Buffer.from(o.publisher ?? 'probe');
  const trailer = trailerBytes(p, depth);
  const bytes = contents.reduce((n, c) => n + recordBytes(publisher.length, Buffer.byteLength(c), trailer), 0);
  const buf = Buffer.alloc(bytes);
  let at = 0;
  for (const c of contents) {
    at = writeRecord(buf, at, { publisher, epoch: EPOCH, seq: 0, timestampMs: 1000, priority: 0, contentType: 0, content: Buffer.from(c), protection: PROTECTION_CODE[p], trailerBytes: trailer });
  }
  numberRecords(buf, 0, o.lastSeq ?? 0);
  const keyring = keyringFor(p, channel);
  const signer = new BatchSigner(o.signingKey ?? probeKey, depth);
  new EventSealer({ channel, protection: p, ...(keyring ? { keyring } : {}) }).seal(buf, 0, buf.length, signer);
  signer.finish();
  return buf;
}

function checkerFor(p: Protection, channel = channelOf(p)): EventChecker {
  const keyring = keyringFor(p, channel);
  return new EventChecker({ channel, protection: p, publicKeyOf: (c) => publicKeys[c], ...(keyring ? { keyring } : {}) });
}

function records(buf: Buffer): [number, number][] {
  const out: [number, number][] = [];
  const c = new RecordCursor(buf, 0, 1 << 20);
  while (c.next()) out.push([c.start, c.end]);
  return out;
}

for (const p of ['ha', 'pks', 'pke'] as const) {
  test(`${p}: every record of a sealed section checks, in any order and with a fresh checker each`, () => {
    const contents = Array.from({ length: 21 }, (_, i) => `event ${i} ${'x'.repeat(i * 7)}`);
    const buf = sealedSection(p, contents);
    const recs = records(buf);
    assert.equal(recs.length, 21);
    const shared = checkerFor(p);
    for (const [s, e] of [...recs].reverse()) assert.equal(shared.check(buf, s, e), 'valid', shared.reason);
    for (const [s, e] of recs) {
      const fresh = checkerFor(p);
      assert.equal(fresh.check(buf, s, e), 'valid', fresh.reason);
      const opened = fresh.open(buf, s);
      assert.ok(opened, fresh.reason);
      assert.equal(opened.toString(), contents[recs.findIndex(([x]) => x === s)]);
    }
  });

  test(`${p}: flipping any byte of a record makes it fail`, () => {
    const buf = sealedSection(p, ['alpha', 'bravo', 'charlie']);
    const [s, e] = records(buf)[1]!;
    const warm = checkerFor(p);
    for (const [a, b] of records(buf)) assert.equal(warm.check(buf, a, b), 'valid');
    for (let i = s + 4; i < e; i++) {
      const copy = Buffer.from(buf);
      copy[i]! ^= 0x20;
      // A flip may make the record unparseable (e.g. a length): the cursor refuses that before any check.
      let parsed = false;
      try {
        const c = new RecordCursor(copy, s, 1 << 20, e);
        parsed = c.next() && c.end === e;
      } catch {
        parsed = false;
      }
      if (!parsed) continue;
      for (const checker of [warm, checkerFor(p)]) {
        const ok = checker.check(copy, s, e) === 'valid' && (p !== 'pke' || checker.open(copy, s) !== undefined);
        assert.equal(ok, false, `byte ${i - s} of the record flipped and it still checked`);
      }
    }
  });

  test(`${p}: a record does not check on another channel, renumbered, or under a level it was not sealed at`, () => {
    const buf = sealedSection(p, ['alpha']);
    const [s, e] = records(buf)[0]!;
    const twin = p === 'pks' ? 'audit' : p === 'ha' ? 'audit-ha' : 'audit-pke';
    if (p !== 'pks') createChannelKeys(dir, twin, p, true);
    // The same keys under another channel name: only the channel binding tells them apart.
    if (p !== 'pks') writeFileSync(channelKeyPath(dir, twin), readFileSync(channelKeyPath(dir, channelOf(p)), 'utf8').replace(`"channel": "${channelOf(p)}"`, `"channel": "${twin}"`));
    assert.notEqual(checkerFor(p, twin).check(buf, s, e), 'valid', 'checked on another channel');
    const renumbered = Buffer.from(buf);
    numberRecords(renumbered, 0, 41);
    assert.notEqual(checkerFor(p).check(renumbered, s, e), 'valid', 'a renumbered copy checked');
    for (const q of ['si', 'ha', 'pks', 'pke'] as const) {
      if (q === p) continue;
      const c = checkerFor(q, q === 'si' || q === 'pks' ? 'alerts' : channelOf(q));
      assert.notEqual(c.check(buf, s, e), 'valid', `a ${p} record checked as ${q}`);
      assert.match(c.reason, new RegExp(`sealed as ${p}, the channel is ${q}`));
    }
  });
}

test('pks: a publisher cannot sign a record that names another publisher', () => {
  const buf = sealedSection('pks', ['i am probe'], { publisher: 'probe', signingKey: otherKey });
  const [s, e] = records(buf)[0]!;
  const c = checkerFor('pks');
  assert.notEqual(c.check(buf, s, e), 'valid');
  assert.match(c.reason, /does not verify under probe's key/);
  const unknown = sealedSection('pks', ['who'], { publisher: 'stranger' });
  const [us, ue] = records(unknown)[0]!;
  assert.equal(c.check(unknown, us, ue), 'unknown', 'a publisher not known here is not judged: it may be registered later');
  assert.match(c.reason, /"stranger" is not a known client/);
});

test('pks: a known root with another signature is refused (a delivered copy must verify on its own)', () => {
  const buf = sealedSection('pks', ['a', 'b'], { depth: 1 });
  const [[s0, e0], [s1, e1]] = records(buf) as [[number, number], [number, number]];
  const c = checkerFor('pks');
  assert.equal(c.check(buf, s0, e0), 'valid');
  const copy = Buffer.from(buf);
  copy[e1 - 1]! ^= 1;
  assert.notEqual(c.check(copy, s1, e1), 'valid');
  assert.equal(c.check(buf, s1, e1), 'valid');
});

test('pke: the plaintext is nowhere in the sealed bytes, and a subscriber without the private key cannot open it', () => {
  const marker = 'MARKER-7f3a9c-plaintext';
  const buf = sealedSection('pke', [marker, `${marker} again`]);
  assert.equal(buf.includes(marker), false);
  assert.equal(decodeRecord(buf.subarray(...records(buf)[0]!), 'alerts-pke').content.includes(marker), false);
  const ring = readChannelKeyring(dir, 'alerts-pke');
  writeFileSync(channelKeyPath(dir, 'pub-only'), JSON.stringify({ ...ring, channel: 'pub-only', keys: ring.keys.map(({ privateKey: _, ...k }) => k) }));
  const publisherSide = new EventChecker({ channel: 'alerts-pke', protection: 'pke', publicKeyOf: (c) => publicKeys[c], keyring: new ChannelKeyring(dir, 'pub-only', 'pke') });
  const [s, e] = records(buf)[0]!;
  assert.equal(publisherSide.check(buf, s, e), 'valid', 'the signature checks without the private key');
  assert.equal(publisherSide.open(buf, s), undefined);
  assert.match(publisherSide.reason, /with its private part/);
});

for (const p of ['ha', 'pke'] as const) {
  test(`${p}: after a rotation, records sealed with the old key still check and open; retired keys do not`, () => {
    const channel = `rot-${p}`;
    createChannelKeys(dir, channel, p);
    const oldBuf = sealedSection(p, ['before rotation'], { channel });
    const oldId = readChannelKeyring(dir, channel).current;
    const checker = checkerFor(p, channel);
    rotateChannelKey(dir, channel);
    const newBuf = sealedSection(p, ['after rotation'], { channel, lastSeq: 1 });
    for (const b of [oldBuf, newBuf]) {
      const [s, e] = records(b)[0]!;
      // A checker that loaded the ring before the rotation learns the new key when it meets it.
      assert.equal(checker.check(b, s, e), 'valid', checker.reason);
      assert.ok(checker.open(b, s), checker.reason);
      assert.equal(checkerFor(p, channel).check(b, s, e), 'valid');
      assert.ok(checkerFor(p, channel).open(b, s));
    }
    retireChannelKey(dir, channel, oldId);
    const [s, e] = records(oldBuf)[0]!;
    const after = checkerFor(p, channel);
    assert.equal(after.check(oldBuf, s, e) === 'valid' && after.open(oldBuf, s) !== undefined, false);
  });
}

test('pks: one signed tree may span channels; each record verifies on its own channel only', () => {
  const signer = new BatchSigner(probeKey, 2);
  const publisher = Buffer.from('probe');
  const trailer = trailerBytes('pks', 2);
  const sections = ['alerts', 'metrics', 'alerts'].map((channel, i) => {
    const buf = Buffer.alloc(recordBytes(publisher.length, 6, trailer));
    writeRecord(buf, 0, { publisher, epoch: EPOCH, seq: 0, timestampMs: 1, priority: 0, contentType: 0, content: Buffer.from(`event${i}`), protection: PROTECTION_CODE.pks, trailerBytes: trailer });
    numberRecords(buf, 0, 100 + i);
    return { channel, buf };
  });
  // One frame in the publisher; here three buffers, so the signer is finished per buffer and
  // the one-frame rule holds: the test covers the leaves' channel binding, not the frame layout.
  for (const s of sections) {
    new EventSealer({ channel: s.channel, protection: 'pks' }).seal(s.buf, 0, s.buf.length, signer);
    signer.finish();
  }
  for (const s of sections) {
    assert.equal(checkerFor('pks', s.channel).check(s.buf, 0, s.buf.length), 'valid');
    assert.notEqual(checkerFor('pks', s.channel === 'alerts' ? 'metrics' : 'alerts').check(s.buf, 0, s.buf.length), 'valid');
  }
});
