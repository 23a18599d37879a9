// A change to the control table (`fitbroker acl`), as an admin signs it and as the ordering
// protocol carries it. Every correct replica checks the admin's signature when it executes
// the change, at its place in the order: a faulty leader can delay a change but cannot make
// one up, alter one, or replay one under another seq.

import { z } from 'zod';
import { NAME_PATTERN } from '../core/index.js';

const name = z.string().regex(NAME_PATTERN);

export const controlOpSchema = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('register'), client: name, publicKey: z.string().min(1).max(1024), publish: z.array(name).max(1024), subscribe: z.array(name).max(1024) }),
  z.strictObject({ op: z.literal('subscribe'), client: name, channel: name }),
  z.strictObject({ op: z.literal('unsubscribe'), client: name, channel: name }),
  z.strictObject({ op: z.literal('grant'), client: name, channel: name }),
  z.strictObject({ op: z.literal('revoke'), client: name, channel: name }),
  z.strictObject({ op: z.literal('rekey'), client: name, publicKey: z.string().min(1).max(1024) }),
]);

export type ControlOp = z.infer<typeof controlOpSchema>;
export const CONTROL_OPS = ['register', 'subscribe', 'unsubscribe', 'grant', 'revoke', 'rekey'] as const;

export const signedControlSchema = z.strictObject({
  admin: name,
  /** Rises with each change an admin makes (a timestamp in µs): a replayed change is a decided seq. */
  seq: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  op: controlOpSchema,
  sig: z.string().max(256),
});

export type SignedControl = z.infer<typeof signedControlSchema>;

/** The ordering protocol's client name for an admin's changes: no client id can take it ("/"). */
export const controlClient = (admin: string): string => `control/${admin}`;

/** The bytes an admin signs: every field by name, in a fixed order. */
export function controlSignable(admin: string, seq: number, op: ControlOp): Buffer {
  const fields =
    op.op === 'register' ? [op.client, op.publicKey, op.publish, op.subscribe] : op.op === 'rekey' ? [op.client, op.publicKey] : [op.client, op.channel];
  return Buffer.from(JSON.stringify(['fitbroker-control-v1', admin, seq, op.op, ...fields]), 'utf8');
}
