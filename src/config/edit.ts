// Writes a control-table change the replicas agreed on (`fitbroker acl`) into cluster.yaml,
// keeping the operator's comments and layout: commands run from this directory see the new
// rights, and replicas restarted from this file start with them. The replicas' ordered table
// is the authority; this file is the operator's record of it, to copy to the other hosts.

import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { parseDocument, type Document } from 'yaml';
import { FitError } from '../core/index.js';
import type { ControlOp } from '../codec/index.js';
import { configPath, parseConfig } from './load.js';

export function recordControl(dir: string, op: ControlOp): void {
  const file = configPath(dir);
  const doc = parseDocument(readFileSync(file, 'utf8'));
  if (op.op === 'register') {
    if (!doc.hasIn(['clients', op.client])) doc.setIn(['clients', op.client], doc.createNode({ publicKey: op.publicKey, publish: op.publish, subscribe: op.subscribe }));
  } else if (op.op === 'rekey') {
    rights(doc, op.client, 'publish');
    doc.setIn(['clients', op.client, 'publicKey'], op.publicKey);
  } else {
    const key = op.op === 'grant' || op.op === 'revoke' ? 'publish' : 'subscribe';
    const add = op.op === 'grant' || op.op === 'subscribe';
    const list = rights(doc, op.client, key);
    const next = add ? (list.includes('*') || list.includes(op.channel) ? list : [...list, op.channel]) : spelled(doc, list).filter((c) => c !== op.channel);
    doc.setIn(['clients', op.client, key], doc.createNode(next));
  }
  const text = doc.toString({ lineWidth: 0 });
  // Checked before it replaces the file: a change must never leave a config that does not load.
  parseConfig(text, file, dir);
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

function rights(doc: Document, client: string, key: 'publish' | 'subscribe'): string[] {
  if (!doc.hasIn(['clients', client])) {
    throw new FitError('FIT_ERR_CONFIG', `the replicas applied the change, but client "${client}" is not in this directory's cluster.yaml; copy cluster.yaml from the host that registered it`, { client });
  }
  const v = doc.getIn(['clients', client, key]) as { toJSON(): unknown } | undefined;
  const list = v?.toJSON();
  return Array.isArray(list) ? list.map(String) : [];
}

/** "*" spelled out as every channel, so that one can be taken away. */
function spelled(doc: Document, list: string[]): string[] {
  if (!list.includes('*')) return list;
  const channels = doc.getIn(['channels']) as { toJSON(): unknown } | undefined;
  return Object.keys((channels?.toJSON() as Record<string, unknown>) ?? {});
}
