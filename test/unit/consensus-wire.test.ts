// The ordering protocol's messages as they arrive from another replica (src/consensus/wire.ts):
// what the schema takes and what it refuses before the protocol sees it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConsensusMessage, refOf } from '../../src/consensus/index.js';

const ref = refOf({ client: 'evr/p1', seq: 3, payload: 'orders/AAAA' });

test('a HOLD with the seq each attestation carries, or without (a replica of an older version), parses', () => {
  assert.deepEqual(parseConsensusMessage({ type: 'hold', refs: [ref], since: [12], from: 2 }), { type: 'hold', refs: [ref], since: [12], from: 2 });
  assert.ok(parseConsensusMessage({ type: 'hold', refs: [ref], from: 2 }));
  assert.equal(parseConsensusMessage({ type: 'hold', refs: [ref], since: [-1], from: 2 }), undefined, 'a seq below 0');
});

test('a reference whose digest is not SHA-256 in hex, or whose client name holds a NUL, is refused: the protocol builds keys from them', () => {
  const hold = (r: object): unknown => parseConsensusMessage({ type: 'hold', refs: [r], since: [0], from: 2 });
  assert.equal(hold({ ...ref, digest: `${ref.digest}\u0000u` }), undefined);
  assert.equal(hold({ ...ref, digest: ref.digest.toUpperCase() }), undefined);
  assert.equal(hold({ ...ref, client: 'evr\u00001' }), undefined);
  assert.equal(parseConsensusMessage({ type: 'bodies', reqs: [{ client: 'a\u0000b', seq: 1, payload: 'x' }], from: 2 }), undefined);
  assert.ok(hold(ref));
});
