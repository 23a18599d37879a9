// `fitbroker keys`: lists, creates and rotates the keys of a cluster — replica and client
// identities (Ed25519, public halves in cluster.yaml) and channel key rings for ha and pke.
// A client's new key reaches the running replicas as a signed, ordered control change, like
// `acl`; a replica's key is read by the others when they start, so rotating one needs a restart.

import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { FitError, NAME_PATTERN } from '../core/index.js';
import { clientKeyPath, configPath, loadConfig, parseConfig, replicaKeyPath } from '../config/index.js';
import { channelKeyPath, createChannelKeys, generateIdentity, writePrivateKey, needsChannelKey, readChannelKeyring, retireChannelKey, rotateChannelKey } from '../protection/index.js';
import { change, type AclOptions } from './acl.js';

export interface KeysListOptions {
  dir: string;
  json?: boolean;
}

interface KeyRow {
  kind: 'replica' | 'client' | 'channel';
  name: string;
  /** Short SHA-256 fingerprint of the public key (identities) or the key id (channel keys). */
  key: string;
  current: boolean;
  privateKeyHere: boolean;
  detail: string;
}

function fingerprint(publicKey: string): string {
  return createHash('sha256').update(Buffer.from(publicKey, 'base64')).digest('hex').slice(0, 16);
}

export function keysList(o: KeysListOptions): void {
  const config = loadConfig(o.dir);
  const rows: KeyRow[] = [];
  for (const r of config.replicas) rows.push({ kind: 'replica', name: `replica-${r.id}`, key: fingerprint(r.publicKey), current: true, privateKeyHere: existsSync(replicaKeyPath(o.dir, r.id)), detail: `${r.host}:${r.port}` });
  for (const c of config.table.clients.values()) rows.push({ kind: 'client', name: c.id, key: fingerprint(c.publicKey), current: true, privateKeyHere: existsSync(clientKeyPath(o.dir, c.id)), detail: c.admin ? 'admin' : '' });
  for (const [name, cls] of config.table.channels) {
    if (!needsChannelKey(cls.protection)) {
      rows.push({ kind: 'channel', name, key: '-', current: true, privateKeyHere: false, detail: `${cls.protection}: no channel key (${cls.protection === 'pks' ? 'each publisher signs with its own key' : 'identification only'})` });
      continue;
    }
    if (!existsSync(channelKeyPath(o.dir, name))) {
      rows.push({ kind: 'channel', name, key: 'MISSING', current: false, privateKeyHere: false, detail: `${cls.protection}: create it with \`fitbroker keys channel ${name}\`` });
      continue;
    }
    const ring = readChannelKeyring(o.dir, name);
    for (const k of ring.keys) rows.push({ kind: 'channel', name, key: k.id, current: k.id === ring.current, privateKeyHere: k.secret !== undefined || k.privateKey !== undefined, detail: `${ring.protection}, created ${k.created}` });
  }
  if (o.json) {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return;
  }
  const table = [['KIND', 'NAME', 'KEY', 'CURRENT', 'PRIVATE HERE', 'DETAIL'], ...rows.map((r) => [r.kind, r.name, r.key, r.current ? 'yes' : 'no', r.privateKeyHere ? 'yes' : 'no', r.detail])];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  process.stdout.write(table.map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n');
}

export function keysChannel(channel: string, o: { dir: string; force?: boolean }): void {
  const cls = loadConfig(o.dir).table.channels.get(channel);
  if (!cls) throw new FitError('FIT_ERR_UNKNOWN_CHANNEL', `channel "${channel}" is not in ${configPath(o.dir)}; add it under channels:`, { channel });
  if (!needsChannelKey(cls.protection)) {
    throw new FitError('FIT_ERR_USAGE', `channel "${channel}" is protection: ${cls.protection}, which needs no channel key; set protection: ha or pke in cluster.yaml first`, { channel });
  }
  const file = createChannelKeys(o.dir, channel, cls.protection, o.force ?? false);
  process.stdout.write(`wrote ${file} (${cls.protection}); give it to the publishers and subscribers of "${channel}" only, never to a replica\n`);
}

export interface IdentityOptions {
  dir: string;
  force?: boolean;
  json?: boolean;
}

/**
 * A key pair made on the host that will use it, so the private key never travels: only the
 * public key goes to whoever edits the cluster (`acl register --public-key`, or
 * replicas[N].publicKey). Replacing a key the cluster already knows is `keys rotate`.
 */
export function keysClient(client: string, o: IdentityOptions): void {
  if (!NAME_PATTERN.test(client)) throw new FitError('FIT_ERR_USAGE', `"${client}" is not a valid client name (letters, digits, ".", "_", "-", starting with a letter or digit)`);
  const known = existsSync(configPath(o.dir)) ? loadConfig(o.dir).table.clients.get(client) : undefined;
  if (known) {
    throw new FitError('FIT_ERR_CLIENT_EXISTS', `client "${client}" is already in ${configPath(o.dir)}; to replace its key run \`fitbroker keys rotate --client ${client} --dir ${o.dir}\` on an admin's host`, { client });
  }
  const k = writeIdentity(clientKeyPath(o.dir, client), o.force);
  if (o.json) return void process.stdout.write(`${JSON.stringify({ kind: 'client', name: client, file: k.file, publicKey: k.publicKey })}\n`);
  process.stdout.write(
    `wrote ${k.file} (keep it on this host); its public key:\n${k.publicKey}\n` +
      `an admin registers the client with: fitbroker acl register ${client} --dir DIR --public-key ${k.publicKey} [--publish C1,C2] [--subscribe C1,C2]\n`,
  );
}

export function keysReplica(id: number, o: IdentityOptions): void {
  const file = replicaKeyPath(o.dir, id);
  const replicas = existsSync(configPath(o.dir)) ? loadConfig(o.dir).replicas : undefined;
  if (replicas && !replicas.some((r) => r.id === id)) {
    throw new FitError('FIT_ERR_USAGE', `${configPath(o.dir)} has no replica ${id} (replicas ${replicas.map((r) => r.id).join(', ')}); the replica set is fixed in cluster.yaml`, { replica: id });
  }
  const k = writeIdentity(file, o.force);
  if (o.json) return void process.stdout.write(`${JSON.stringify({ kind: 'replica', name: `replica-${id}`, file: k.file, publicKey: k.publicKey })}\n`);
  process.stdout.write(
    `wrote ${k.file} (keep it on this replica's host); its public key:\n${k.publicKey}\n` +
      `set replicas[${id}].publicKey to it in cluster.yaml, copy that file to every replica and client host, and restart the replicas (they read each other's keys when they start)\n`,
  );
}

function writeIdentity(file: string, force = false): { file: string; publicKey: string } {
  if (existsSync(file) && !force) {
    throw new FitError('FIT_ERR_USAGE', `${file} already exists; pass --force to replace it (whoever knew its public key must then be given the new one), or use \`fitbroker keys rotate\``, { file });
  }
  const k = generateIdentity();
  writePrivateKey(file, k.privatePem);
  return { file, publicKey: k.publicKey };
}

export interface RotateOptions extends AclOptions {
  channel?: string;
  client?: string;
  replica?: number;
}

export async function keysRotate(o: RotateOptions): Promise<void> {
  const chosen = [o.channel, o.client, o.replica].filter((v) => v !== undefined).length;
  if (chosen !== 1) throw new FitError('FIT_ERR_USAGE', 'keys rotate needs exactly one of --channel CH, --client NAME or --replica N');
  if (o.channel !== undefined) {
    const ring = rotateChannelKey(o.dir, o.channel);
    process.stdout.write(
      `channel "${o.channel}": new current key ${ring.current}; ${ring.keys.length - 1} older key(s) kept so events sealed with them still verify.\n` +
        `copy ${channelKeyPath(o.dir, o.channel)} to the channel's subscribers first, then its publishers; retire old keys later with \`fitbroker keys retire --channel ${o.channel} --key ID\`\n`,
    );
    return;
  }
  if (o.client !== undefined) return rotateClient(o.client, o);
  return rotateReplica(o.replica!, o.dir);
}

async function rotateClient(client: string, o: RotateOptions): Promise<void> {
  if (!NAME_PATTERN.test(client)) throw new FitError('FIT_ERR_USAGE', `--client "${client}" is not a valid client name`);
  const config = loadConfig(o.dir);
  if (!config.table.clients.has(client)) throw new FitError('FIT_ERR_UNKNOWN_CLIENT', `client "${client}" is not in ${config.file}`, { client });
  const k = generateIdentity();
  const file = clientKeyPath(o.dir, client);
  // The new key waits beside the old one until f+1 replicas applied the change: a failed
  // rotation leaves the client with the key the replicas still know.
  writePrivateKey(`${file}.next`, k.privatePem);
  try {
    await change(o, { op: 'rekey', client, publicKey: k.publicKey }, config);
  } catch (e) {
    if (!(e instanceof FitError)) throw e;
    if (e.code !== 'FIT_ERR_QUORUM_TIMEOUT' && e.code !== 'FIT_ERR_CONFIG') {
      rmSync(`${file}.next`, { force: true }); // refused: the replicas keep the old key
      throw e;
    }
    // Not confirmed, or confirmed but cluster.yaml not written: the replicas may hold the new key.
    throw new FitError(e.code, `${e.message}; the new key is in ${file}.next: if a retry of this rotation or \`fitbroker status\` shows the change applied, move it to ${file}`, { file });
  }
  renameSync(`${file}.next`, file);
  process.stdout.write(`  its new private key: ${file}; restart that client's processes with it (the replicas ended the connections the old key opened)\n`);
}

function rotateReplica(id: number, dir: string): void {
  const file = loadConfig(dir).file;
  const doc = parseDocument(readFileSync(file, 'utf8'));
  if (!doc.hasIn(['replicas', id])) throw new FitError('FIT_ERR_USAGE', `--replica ${id}: ${file} has no replica ${id}`);
  const k = generateIdentity();
  doc.setIn(['replicas', id, 'publicKey'], k.publicKey);
  const text = doc.toString({ lineWidth: 0 });
  parseConfig(text, file, dir);
  // Both files are renamed into place, key first: a crash between leaves the new key beside an
  // old config, which rotating again repairs, never a half-written key.
  const keyFile = replicaKeyPath(dir, id);
  writePrivateKey(keyFile, k.privatePem);
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
  process.stdout.write(`replica ${id}: new key in ${replicaKeyPath(dir, id)}, public key in ${file}.\ncopy cluster.yaml to every replica and client host and restart the replicas (one at a time keeps the cluster up): replicas read each other's keys when they start\n`);
}

/** A copy of a channel ring for its publishers: for pke, without the private keys (they only encrypt). */
export function keysExport(o: { dir: string; channel: string; public?: boolean; out: string }): void {
  const ring = readChannelKeyring(o.dir, o.channel);
  if (o.public && ring.protection !== 'pke') throw new FitError('FIT_ERR_USAGE', `--public: channel "${o.channel}" is ${ring.protection}, whose key is one secret that publishers and subscribers share; export it whole`, { channel: o.channel });
  const copy = o.public ? { ...ring, keys: ring.keys.map(({ privateKey: _, ...k }) => k) } : ring;
  writeFileSync(o.out, `${JSON.stringify(copy, null, 2)}\n`, { mode: 0o600 });
  process.stdout.write(`wrote ${o.out}${o.public ? ' (public keys only: it seals, it cannot read)' : ''}; it goes to keys/channels/${o.channel}.json on the client's host\n`);
}

export function keysRetire(o: { dir: string; channel: string; key: string }): void {
  const ring = retireChannelKey(o.dir, o.channel, o.key);
  process.stdout.write(`channel "${o.channel}": key ${o.key} retired; ${ring.keys.length} key(s) left, current ${ring.current}\n`);
}
