// cluster.yaml as a zod schema. Objects are strict so a typo ("capacty") is an error that
// names the key, not a silently ignored setting; a person edits this file by hand.

import { z } from 'zod';
import { DEFAULT_LIMITS, NAME_PATTERN, OVERFLOW_POLICIES } from '../core/index.js';
import { NODE_NAME_TOKEN } from '../protection/tls.js';

export { NAME_PATTERN };
const name = z.string().regex(NAME_PATTERN, 'a name of letters, digits, ".", "_" or "-", starting with a letter or digit, at most 128 characters');
const positiveInt = z.number().int().positive();

export const channelSchema = z.strictObject({
  fault: z.enum(['cft', 'bft']).default('bft'),
  order: z.enum(['none', 'channel', 'global']).default('none'),
  priority: z.number().int().min(0).max(3).default(0),
  capacityEvents: positiveInt.default(DEFAULT_LIMITS.queueCapacityEvents),
  ttlMs: positiveInt.default(DEFAULT_LIMITS.ttlMs),
  // The paper's behaviour is the default: a full queue drops its oldest event (§3.3).
  overflow: z.enum(OVERFLOW_POLICIES).default('drop-oldest'),
  persist: z.enum(['memory', 'disk']).default('memory'),
  protection: z.enum(['si', 'ha', 'pks', 'pke']).default('pks'),
});

export const replicaSchema = z.strictObject({
  id: z.number().int().min(0),
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535),
  publicKey: z.string().min(1),
  /** HTTP for /metrics, /healthz and /readyz on the same host (docs/operations.md); absent: off. */
  metricsPort: z.number().int().min(1).max(65535).optional(),
});

export const clientSchema = z.strictObject({
  publicKey: z.string().min(1),
  publish: z.array(z.union([name, z.literal('*')])).default([]),
  subscribe: z.array(z.union([name, z.literal('*')])).default([]),
  admin: z.boolean().default(false),
});

/**
 * TLS on every client and replica connection (docs/security.md). Paths are relative to the
 * directory of cluster.yaml; `{name}` is the node's name, `replica-N` or the client id, so one
 * file serves every host while each node finds its own certificate.
 */
const perNode = (what: string) =>
  z
    .string()
    .min(1)
    .refine((p) => p.includes(NODE_NAME_TOKEN), `a path holding ${NODE_NAME_TOKEN} (e.g. keys/tls/${NODE_NAME_TOKEN}.${what}): every replica and client needs its own; to point one node at other files, use --tls-cert and --tls-key`);
export const tlsSchema = z.strictObject({
  ca: z.string().min(1),
  cert: perNode('crt').default(`keys/tls/${NODE_NAME_TOKEN}.crt`),
  key: perNode('key').default(`keys/tls/${NODE_NAME_TOKEN}.key`),
});

/** Lingers may be 0 (send at the end of the event-loop turn); every other limit is positive. */
const limitValue = (key: string) => (key.endsWith('LingerMs') ? z.number().int().min(0) : positiveInt);
const limitsShape = Object.fromEntries(Object.keys(DEFAULT_LIMITS).map((k) => [k, limitValue(k).optional()])) as Record<
  keyof typeof DEFAULT_LIMITS,
  z.ZodOptional<typeof positiveInt>
>;

export const clusterSchema = z.strictObject({
  version: z.literal(1),
  f: z.number().int().min(0),
  // At most 30: a voter keeps replica sets as bitmasks; past that, spread channels over groups.
  replicas: z.array(replicaSchema).min(1).max(30),
  channels: z.record(name, channelSchema),
  clients: z.record(name, clientSchema),
  limits: z.strictObject(limitsShape).default({}),
  tls: tlsSchema.optional(),
});

export type ClusterFile = z.infer<typeof clusterSchema>;
export type TlsFile = z.infer<typeof tlsSchema>;
export type ChannelFile = z.infer<typeof channelSchema>;
