// Mutual authentication when a connection opens. The replica sends a fresh challenge; the
// client signs a transcript that binds the replica id, its own id, the challenge and a nonce
// of its own; the replica answers with a signature over the same values in the other role.
// Binding both ids and both nonces stops a proof made for one replica (or one session) from
// being replayed to another. Role labels stop a client proof being reused as a replica proof.

import { randomBytes } from 'node:crypto';

export const AUTH_VERSION = 'fitbroker-auth-v1';
export const NONCE_BYTES = 32;

export function newNonce(): Buffer {
  return randomBytes(NONCE_BYTES);
}

/**
 * `clientId` is the connecting party: a client's id, or `replica-N` when replica N connects
 * to another replica (role 'peer' for its proof, so a client proof is never a replica's).
 */
export function authTranscript(role: 'client' | 'peer' | 'replica', replicaId: number, clientId: string, challenge: Buffer, clientNonce: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${AUTH_VERSION}\0${role}\0${replicaId}\0${clientId}\0`, 'utf8'), challenge, clientNonce]);
}
