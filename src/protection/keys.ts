// Ed25519 identities for replicas and clients, through node:crypto (OpenSSL). Public keys
// travel in cluster.yaml as base64 SPKI DER; private keys stay in PEM files readable by their
// owner only and are never sent anywhere.

import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { FitError } from '../core/index.js';

export interface GeneratedKeyPair {
  privatePem: string;
  publicKey: string;
}

export function generateIdentity(): GeneratedKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKey: publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
  };
}

/**
 * Writes a private key readable by its owner only, whole or not at all: it goes to a temporary
 * file first (0600 whatever the umask) and is renamed into place, so a crash leaves the old key
 * or the new one, never half of one.
 */
export function writePrivateKey(file: string, pem: string): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, pem, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}

export function publicKeyOf(privateKey: KeyObject): string {
  return createPublicKey(privateKey).export({ type: 'spki', format: 'der' }).toString('base64');
}

export function loadPrivateKey(path: string): KeyObject {
  let pem: string;
  try {
    statSync(path);
    pem = readFileSync(path, 'utf8');
  } catch {
    throw new FitError('FIT_ERR_KEY', `cannot read the private key ${path}; run \`fitbroker init\` or copy the key file there`, { path });
  }
  try {
    const key = createPrivateKey(pem);
    if (key.asymmetricKeyType !== 'ed25519') throw new Error('not ed25519');
    return key;
  } catch {
    throw new FitError('FIT_ERR_KEY', `${path} is not an Ed25519 private key in PEM; regenerate it with \`fitbroker init\``, { path });
  }
}

const publicKeys = new Map<string, KeyObject>();

/** Parses (and caches) a base64 SPKI public key from the config. */
export function parsePublicKey(b64: string): KeyObject {
  let key = publicKeys.get(b64);
  if (key === undefined) {
    key = createPublicKey({ key: Buffer.from(b64, 'base64'), format: 'der', type: 'spki' });
    if (key.asymmetricKeyType !== 'ed25519') throw new Error('not an Ed25519 key');
    publicKeys.set(b64, key);
  }
  return key;
}

export function isValidPublicKey(b64: string): boolean {
  try {
    parsePublicKey(b64);
    return true;
  } catch {
    return false;
  }
}

export function signBytes(privateKey: KeyObject, data: Buffer): Buffer {
  return sign(null, data, privateKey);
}

export function verifyBytes(publicKeyB64: string, data: Buffer, signature: Buffer): boolean {
  try {
    return verify(null, data, parsePublicKey(publicKeyB64), signature);
  } catch {
    return false;
  }
}
