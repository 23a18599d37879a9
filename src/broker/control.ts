// Executes a control-table change the ordering protocol decided (`fitbroker acl`). It must be
// deterministic: every correct replica runs it at the same place in the order, on the same
// table, and must reach the same outcome, refusals included, so the admin's signature is
// checked here, against the table as it stands at that point, not when the request arrived.

import { FitError, maySubscribe, type ClientInfo, type ControlTable } from '../core/index.js';
import { controlSignable, signedControlSchema, type ControlOp } from '../codec/index.js';
import { isValidPublicKey, verifyBytes } from '../protection/index.js';
import type { BrokerService } from './service.js';

export interface ControlOutcome {
  admin: string;
  seq: number;
  /** The change, when it could be read. */
  op?: ControlOp;
  /** Why it was refused; absent when it was applied. */
  error?: FitError;
}

export function executeControl(svc: BrokerService, payload: string): ControlOutcome {
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload);
  } catch {
    parsed = undefined;
  }
  const r = signedControlSchema.safeParse(parsed);
  if (!r.success) return { admin: '', seq: 0, error: new FitError('FIT_ERR_MALFORMED', 'a control change that is not one: check that fitbroker acl and the replicas are the same version') };
  const { admin, seq, op, sig } = r.data;
  const table = svc.controlTable;
  const who = table.clients.get(admin);
  if (!who?.admin) {
    return { admin, seq, op, error: new FitError('FIT_ERR_NOT_AUTHORIZED', `client "${admin}" is not an admin; only a client with admin: true in cluster.yaml may change the control table`, { client: admin }) };
  }
  if (!verifyBytes(who.publicKey, controlSignable(admin, seq, op), Buffer.from(sig, 'base64'))) {
    return { admin, seq, op, error: new FitError('FIT_ERR_NOT_AUTHORIZED', `the change is not signed by admin "${admin}"'s key in the control table`, { client: admin }) };
  }
  try {
    apply(svc, table, op);
    return { admin, seq, op };
  } catch (e) {
    if (e instanceof FitError) return { admin, seq, op, error: e };
    throw e;
  }
}

function apply(svc: BrokerService, table: ControlTable, op: ControlOp): void {
  if (op.op === 'register') {
    const existing = table.clients.get(op.client);
    // The same client with the same key: a retried register (the first one went through).
    if (existing && existing.publicKey === op.publicKey) return;
    if (existing) throw new FitError('FIT_ERR_CLIENT_EXISTS', `client "${op.client}" is already in the control table with another key`, { client: op.client });
    if (!isValidPublicKey(op.publicKey)) throw new FitError('FIT_ERR_KEY', `the public key given for "${op.client}" is not an Ed25519 key (base64 SPKI)`, { client: op.client });
    for (const ch of [...op.publish, ...op.subscribe]) svc.channel(ch);
    const client: ClientInfo = { id: op.client, publicKey: op.publicKey, publish: [...new Set(op.publish)], subscribe: [...new Set(op.subscribe)], admin: false };
    table.clients.set(op.client, client);
    for (const ch of client.subscribe) svc.openQueue(ch, client.id);
    return;
  }
  const client = table.clients.get(op.client);
  if (!client) throw new FitError('FIT_ERR_UNKNOWN_CLIENT', `client "${op.client}" is not in the control table; register it first (fitbroker acl register)`, { client: op.client });
  if (op.op === 'rekey') {
    if (!isValidPublicKey(op.publicKey)) throw new FitError('FIT_ERR_KEY', `the public key given for "${op.client}" is not an Ed25519 key (base64 SPKI)`, { client: op.client });
    // Connections proved the old key, which may be the reason for the change: they end, and the
    // client reconnects proving the new one.
    const changed = client.publicKey !== op.publicKey;
    client.publicKey = op.publicKey;
    if (changed) svc.onClientRekeyed(op.client);
    return;
  }
  svc.channel(op.channel);
  // Rights are changed in place: a connection authenticated as this client sees them at once.
  switch (op.op) {
    case 'subscribe':
      if (!maySubscribe(client, op.channel)) client.subscribe.push(op.channel);
      svc.openQueue(op.channel, client.id);
      return;
    case 'unsubscribe':
      without(client.subscribe, op.channel, table);
      svc.closeQueue(op.channel, client.id);
      return;
    case 'grant':
      if (!client.publish.includes('*') && !client.publish.includes(op.channel)) client.publish.push(op.channel);
      return;
    case 'revoke':
      without(client.publish, op.channel, table);
      return;
  }
}

/** A client of the control table as a snapshot holds it: rights sorted, so equal tables encode equally. */
export type ClientSnapshot = [id: string, publicKey: string, admin: boolean, publish: string[], subscribe: string[]];

/** The control table's clients, canonically (the channels come from cluster.yaml and never change). */
export function controlSnapshot(table: ControlTable): ClientSnapshot[] {
  const sorted = (l: string[]): string[] => [...l].sort();
  return [...table.clients.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map((c) => [c.id, c.publicKey, c.admin, sorted(c.publish), sorted(c.subscribe)]);
}

/**
 * Makes the control table the one in a snapshot other replicas signed (state transfer). Clients
 * are changed in place, as a change would, so connections authenticated as them see it at
 * once; subscriptions that ended lose their queues, new ones get theirs.
 */
export function restoreControl(svc: BrokerService, clients: readonly ClientSnapshot[]): void {
  const table = svc.controlTable;
  const wanted = new Map(clients.map((c) => [c[0], c]));
  for (const c of table.clients.values()) {
    const next = wanted.get(c.id);
    for (const ch of table.channels.keys()) if (maySubscribe(c, ch) && !(next && (next[4].includes('*') || next[4].includes(ch)))) svc.closeQueue(ch, c.id);
    if (next) continue;
    c.publish.length = 0;
    c.subscribe.length = 0;
    c.admin = false;
    table.clients.delete(c.id);
  }
  for (const [id, publicKey, admin, publish, subscribe] of clients) {
    let c = table.clients.get(id);
    if (!c) table.clients.set(id, (c = { id, publicKey, admin, publish: [], subscribe: [] }));
    const rekeyed = c.publicKey !== publicKey;
    Object.assign(c, { publicKey, admin });
    if (rekeyed) svc.onClientRekeyed(id);
    c.publish.splice(0, c.publish.length, ...publish);
    c.subscribe.splice(0, c.subscribe.length, ...subscribe);
    for (const ch of table.channels.keys()) if (maySubscribe(c, ch)) svc.openQueue(ch, id);
  }
}

/** Removes `channel` from a rights list, spelling out "*" as every other channel first. */
function without(list: string[], channel: string, table: ControlTable): void {
  if (list.includes('*')) list.splice(0, list.length, ...table.channels.keys());
  const i = list.indexOf(channel);
  if (i >= 0) list.splice(i, 1);
}
