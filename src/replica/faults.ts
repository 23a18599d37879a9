// Test-only Byzantine behaviours, to prove that up to f faulty replicas cannot change what a
// correct subscriber delivers. They refuse to run unless FITBROKER_ALLOW_FAULTS=1, so a
// production replica cannot be talked into lying by a stray flag.

import { createHash } from 'node:crypto';
import { FitError } from '../core/index.js';
import { contentOffset } from '../codec/index.js';

export type Fault =
  | { kind: 'crash'; afterMs: number }
  | { kind: 'mute' }
  | { kind: 'tamper' }
  | { kind: 'duplicate' }
  | { kind: 'delay'; ms: number }
  | { kind: 'equivocate' }
  /** Holds every ordering-protocol message it sends to other replicas MS: a slow (not silent) leader or follower. */
  | { kind: 'slow-order'; ms: number };

export const FAULT_KINDS = ['crash', 'mute', 'tamper', 'duplicate', 'delay:MS', 'equivocate', 'slow-order:MS'] as const;
export const ALLOW_FAULTS_ENV = 'FITBROKER_ALLOW_FAULTS';

export function parseFault(text: string): Fault {
  const [kind, arg] = text.split(':', 2);
  const bad = (): FitError =>
    new FitError('FIT_ERR_USAGE', `unknown fault "${text}"; use one of ${FAULT_KINDS.join(', ')} (crash:MS sets when it exits)`, { fault: text });
  switch (kind) {
    case 'crash': {
      const afterMs = arg === undefined ? 1500 : Number(arg);
      if (!Number.isInteger(afterMs) || afterMs < 0) throw bad();
      return { kind: 'crash', afterMs };
    }
    case 'delay':
    case 'slow-order': {
      const ms = Number(arg);
      if (arg === undefined || !Number.isInteger(ms) || ms < 0) throw bad();
      return { kind, ms };
    }
    case 'mute':
    case 'tamper':
    case 'duplicate':
    case 'equivocate':
      if (arg !== undefined) throw bad();
      return { kind };
    default:
      throw bad();
  }
}

export function assertFaultsAllowed(faults: readonly unknown[], env: NodeJS.ProcessEnv = process.env): void {
  if (faults.length > 0 && env[ALLOW_FAULTS_ENV] !== '1') {
    throw new FitError('FIT_ERR_FAULTS_NOT_ALLOWED', `fault injection is for tests only; set ${ALLOW_FAULTS_ENV}=1 to run a replica that misbehaves on purpose`);
  }
}

/** A copy of the record with its content altered but its framing valid, so only voting catches it. */
export function tamperRecord(rec: Buffer, salt: number): Buffer {
  const copy = Buffer.from(rec);
  const { start, bytes } = contentOffset(copy);
  if (bytes === 0) return copy;
  copy[start] = copy[start]! ^ (salt | 1);
  return copy;
}

/** A per-subscriber salt, so an equivocating replica tells each subscriber something different. */
export function subscriberSalt(client: string): number {
  return createHash('sha256').update(client).digest()[0]! | 1;
}
