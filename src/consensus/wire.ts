// The ordering protocol's messages as they arrive from another replica: JSON in a CONSENSUS
// frame, checked against a schema before the protocol sees them. The protocol trusts shapes
// (a batch is an array, a seq an integer); a faulty replica's malformed message must be
// dropped and counted here, never crash a correct replica deep inside a view change.

import { z } from 'zod';
import type { ConsensusMessage } from './messages.js';

const seqNo = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const replicaId = z.number().int().min(0).max(29);
const digest = z.string().max(128);
const sig = z.string().max(256);

/** A client's name: no NUL, which separates the parts of the keys the protocol builds from it. */
const clientName = z.string().min(1).max(1024).regex(/^[^\u0000]*$/);

const req = z.strictObject({
  client: clientName,
  seq: seqNo,
  payload: z.string(),
  urgent: z.boolean().optional(),
});

const ref = z.strictObject({
  client: clientName,
  seq: seqNo,
  // A body's digest (reqDigest): SHA-256 in hex, nothing else.
  digest: z.string().regex(/^[0-9a-f]{64}$/),
  urgent: z.boolean().optional(),
});

const prePrepare = z.strictObject({ type: z.literal('pre-prepare'), view: seqNo, seq: seqNo, digest, batch: z.array(ref), from: replicaId, sig });
const prepare = z.strictObject({ type: z.literal('prepare'), view: seqNo, seq: seqNo, digest, from: replicaId, sig });
const checkpoint = z.strictObject({ type: z.literal('checkpoint'), seq: seqNo, state: digest, snapshot: digest, from: replicaId, sig });
const stable = z.strictObject({ seq: seqNo, state: digest, snapshot: digest, proof: z.array(checkpoint).max(30) });
const preparedCert = z.strictObject({ prePrepare, prepares: z.array(prepare).max(30) });
const viewChange = z.strictObject({ type: z.literal('view-change'), view: seqNo, stable, prepared: z.array(preparedCert), from: replicaId, sig });

const message = z.discriminatedUnion('type', [
  prePrepare,
  prepare,
  z.strictObject({ type: z.literal('commit'), view: seqNo, seq: seqNo, digest, from: replicaId }),
  checkpoint,
  z.strictObject({ type: z.literal('stop'), view: seqNo, from: replicaId }),
  viewChange,
  z.strictObject({ type: z.literal('new-view'), view: seqNo, viewChanges: z.array(viewChange).max(30), prePrepares: z.array(prePrepare), from: replicaId, sig }),
  z.strictObject({ type: z.literal('fetch'), after: seqNo, from: replicaId }),
  z.strictObject({
    type: z.literal('batches'),
    stable,
    batches: z.array(z.strictObject({ seq: seqNo, batch: z.array(req) })),
    executed: seqNo,
    view: seqNo,
    top: seqNo,
    recovering: z.boolean(),
    snapshot: z.strictObject({ stable, body: z.string() }).optional(),
    from: replicaId,
  }),
  z.strictObject({ type: z.literal('hold'), refs: z.array(ref), since: z.array(seqNo).optional(), from: replicaId }),
  z.strictObject({ type: z.literal('body-fetch'), refs: z.array(ref), from: replicaId }),
  z.strictObject({ type: z.literal('bodies'), reqs: z.array(req), from: replicaId }),
]);

/** The message, or undefined when it is not one (the caller counts it). */
export function parseConsensusMessage(value: unknown): ConsensusMessage | undefined {
  const r = message.safeParse(value);
  return r.success ? (r.data as ConsensusMessage) : undefined;
}
