// The handshake transcript (src/protection/auth.ts): a signature over it must verify only for
// the exact role, replica id, client id, replica challenge and client nonce it was made for,
// so no proof can be replayed to another replica, session or role.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { authTranscript, generateIdentity, newNonce, signBytes, verifyBytes, NONCE_BYTES, AUTH_VERSION } from '../../src/protection/index.js';

const client = generateIdentity();
const key = createPrivateKey(client.privatePem);
const challenge = newNonce();
const nonce = newNonce();
const signed = signBytes(key, authTranscript('client', 2, 'siem1', challenge, nonce));
const verifies = (transcript: Buffer): boolean => verifyBytes(client.publicKey, transcript, signed);

test('a client proof verifies for the exact transcript it signed', () => {
  assert.equal(verifies(authTranscript('client', 2, 'siem1', challenge, nonce)), true);
});

test('the proof is bound to the role: a client proof is not a replica proof', () => {
  assert.equal(verifies(authTranscript('replica', 2, 'siem1', challenge, nonce)), false);
});

test('the proof is bound to the replica id: it cannot be replayed to another replica', () => {
  assert.equal(verifies(authTranscript('client', 3, 'siem1', challenge, nonce)), false);
  assert.equal(verifies(authTranscript('client', 22, 'siem1', challenge, nonce)), false);
});

test('the proof is bound to the client id', () => {
  assert.equal(verifies(authTranscript('client', 2, 'siem2', challenge, nonce)), false);
  assert.equal(verifies(authTranscript('client', 2, 'siem', challenge, nonce)), false);
});

test('the proof is bound to the replica challenge and the client nonce', () => {
  assert.equal(verifies(authTranscript('client', 2, 'siem1', newNonce(), nonce)), false, 'new session, new challenge');
  assert.equal(verifies(authTranscript('client', 2, 'siem1', challenge, newNonce())), false);
  const flipped = Buffer.from(nonce);
  flipped[NONCE_BYTES - 1]! ^= 1;
  assert.equal(verifies(authTranscript('client', 2, 'siem1', challenge, flipped)), false);
});

test('a proof by another key does not verify, nor does a garbage signature', () => {
  const other = createPrivateKey(generateIdentity().privatePem);
  const t = authTranscript('client', 2, 'siem1', challenge, nonce);
  assert.equal(verifyBytes(client.publicKey, t, signBytes(other, t)), false);
  assert.equal(verifyBytes(client.publicKey, t, Buffer.alloc(64)), false);
  assert.equal(verifyBytes(client.publicKey, t, Buffer.alloc(0)), false);
  assert.equal(verifyBytes('not a key', t, signed), false);
});

test('the transcript starts with the protocol version and nonces are fresh', () => {
  const t = authTranscript('client', 2, 'siem1', challenge, nonce);
  assert.ok(t.subarray(0, AUTH_VERSION.length).equals(Buffer.from(AUTH_VERSION)));
  assert.equal(newNonce().length, NONCE_BYTES);
  assert.notDeepEqual(newNonce(), newNonce());
});
