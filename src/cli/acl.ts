// `fitbroker acl ...`: change who may publish and subscribe where, while the cluster runs.
// The change is signed with an admin client's key, ordered through consensus, applied by every
// correct replica at the same place in the order, and then written to DIR/cluster.yaml.

import { existsSync } from 'node:fs';
import { FitError, NAME_PATTERN } from '../core/index.js';
import { clientKeyPath, loadConfig, recordControl, withTlsFiles } from '../config/index.js';
import type { ControlOp } from '../codec/index.js';
import { caKeyPathFor, generateIdentity, writePrivateKey, isValidPublicKey, issueTlsFiles, loadPrivateKey } from '../protection/index.js';
import { submitControl } from '../client/index.js';
import { defaultClient } from './common.js';

export interface AclOptions {
  dir: string;
  as?: string;
  timeout: number;
  /** --tls-cert, --tls-key: this node's certificate and key, when not where cluster.yaml's tls: says. */
  tlsCert?: string;
  tlsKey?: string;
}

export interface RegisterOptions extends AclOptions {
  publish?: string;
  subscribe?: string;
  publicKey?: string;
}

const channelList = (flag: string, v: string | undefined): string[] => {
  const list = (v ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  for (const ch of list) if (!NAME_PATTERN.test(ch)) throw new FitError('FIT_ERR_USAGE', `${flag}: "${ch}" is not a channel name (letters, digits, ".", "_", "-")`, { channel: ch });
  return list;
};

function checkName(what: string, v: string): void {
  if (!NAME_PATTERN.test(v)) throw new FitError('FIT_ERR_USAGE', `${what} "${v}" is not a valid name (letters, digits, ".", "_", "-", starting with a letter or digit)`);
}

export async function aclRegister(client: string, o: RegisterOptions): Promise<void> {
  checkName('client', client);
  const config = loadConfig(o.dir);
  const keyFile = clientKeyPath(o.dir, client);
  let publicKey = o.publicKey;
  let privatePem: string | undefined;
  if (publicKey === undefined) {
    if (existsSync(keyFile)) throw new FitError('FIT_ERR_USAGE', `${keyFile} already exists; pass --public-key with that client's key, or remove the file`, { file: keyFile });
    const k = generateIdentity();
    publicKey = k.publicKey;
    privatePem = k.privatePem;
  } else if (!isValidPublicKey(publicKey)) {
    throw new FitError('FIT_ERR_USAGE', '--public-key: not an Ed25519 public key as base64 SPKI DER (the form cluster.yaml uses)');
  }
  const op: ControlOp = { op: 'register', client, publicKey, publish: channelList('--publish', o.publish), subscribe: channelList('--subscribe', o.subscribe) };
  // The key is written before the change is sent: a change applied with its key lost would be a client nobody can use.
  if (privatePem !== undefined) writePrivateKey(keyFile, privatePem);
  // With TLS on, a client also needs a certificate: issued here when this host holds the CA.
  const tls = config.tls && existsSync(caKeyPathFor(config.tls.ca)) ? await issueTlsFiles(config.tls, client) : undefined;
  await change(o, op, config);
  if (privatePem !== undefined) process.stdout.write(`  its private key: ${keyFile} (give it to that client only)\n`);
  if (tls) process.stdout.write(`  its TLS certificate: ${tls.certFile}, key ${tls.keyFile} (from the cluster CA)\n`);
  else if (config.tls) process.stdout.write(`  TLS is on: issue it a certificate naming "${client}" from the cluster CA (${config.tls.ca})\n`);
}

export async function aclChange(kind: 'subscribe' | 'unsubscribe' | 'grant' | 'revoke', client: string, channel: string, o: AclOptions): Promise<void> {
  checkName('client', client);
  checkName('channel', channel);
  await change(o, { op: kind, client, channel }, loadConfig(o.dir));
}

/** Signs `op` as the admin, has it ordered and confirmed by f+1 replicas, and records it in cluster.yaml. */
export async function change(o: AclOptions, op: ControlOp, config = loadConfig(o.dir)): Promise<void> {
  const admin = defaultClient(config, o.as);
  const key = loadPrivateKey(clientKeyPath(o.dir, admin));
  const r = await submitControl(withTlsFiles(config, o), admin, key, op, o.timeout * 1000);
  recordControl(o.dir, op);
  const what = op.op === 'register' ? `registered client ${op.client}` : op.op === 'rekey' ? `new key for client ${op.client}` : `${op.op} ${op.client} ${op.channel}`;
  process.stdout.write(`${what}: decided at consensus seq ${r.decided}, confirmed by replicas ${r.replicas.join(',')}; written to ${config.file}\n`);
}
