// Key files and public keys (src/protection/keys.ts): a missing, unreadable or wrong key file
// is FIT_ERR_KEY naming the path; public keys in the config are base64 SPKI Ed25519 only.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FitError } from '../../src/core/index.js';
import { generateIdentity, isValidPublicKey, loadPrivateKey, publicKeyOf } from '../../src/protection/index.js';

const dir = mkdtempSync(join(tmpdir(), 'fitbroker-keys-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function keyError(path: string, message: RegExp): void {
  assert.throws(
    () => loadPrivateKey(path),
    (e: unknown) => e instanceof FitError && e.code === 'FIT_ERR_KEY' && e.fields.path === path && message.test(e.message),
  );
}

test('loads an Ed25519 PEM written by generateIdentity, whose public key matches', () => {
  const id = generateIdentity();
  const path = join(dir, 'good.pem');
  writeFileSync(path, id.privatePem);
  const key = loadPrivateKey(path);
  assert.equal(key.asymmetricKeyType, 'ed25519');
  assert.equal(publicKeyOf(key), id.publicKey);
});

test('a missing key file is FIT_ERR_KEY naming the path', () => {
  keyError(join(dir, 'absent.pem'), /cannot read the private key .*absent\.pem; run `fitbroker init`/);
});

test('a directory where the key file should be is FIT_ERR_KEY', () => {
  keyError(dir, /cannot read the private key/);
});

test('a garbage file is FIT_ERR_KEY saying it is not an Ed25519 PEM', () => {
  const path = join(dir, 'garbage.pem');
  writeFileSync(path, 'this is not a key\n');
  keyError(path, /is not an Ed25519 private key in PEM/);
});

test('a valid PEM of another key type is FIT_ERR_KEY too', () => {
  const path = join(dir, 'x25519.pem');
  writeFileSync(path, generateKeyPairSync('x25519').privateKey.export({ type: 'pkcs8', format: 'pem' }));
  keyError(path, /is not an Ed25519 private key in PEM/);
});

test('isValidPublicKey accepts base64 SPKI Ed25519 keys only', () => {
  assert.equal(isValidPublicKey(generateIdentity().publicKey), true);
  const x25519 = generateKeyPairSync('x25519').publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  assert.equal(isValidPublicKey(x25519), false);
  assert.equal(isValidPublicKey(''), false);
  assert.equal(isValidPublicKey('bm90IGEga2V5'), false);
});
