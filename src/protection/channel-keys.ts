// Channel keys for HA (an HMAC secret) and PKE (an X25519 key pair), held by the channel's
// publishers and subscribers and never by the replicas: that is what stops a replica from
// forging a MAC or reading content. One JSON keyring per channel, keys/channels/CHANNEL.json
// beside cluster.yaml, mode 0600. Rotation adds a key and makes it current; older keys stay
// in the ring so events sealed with them while in flight still verify and decrypt, until an
// operator retires them.
//
// A key's id is the first 4 bytes of SHA-256 of its public part (the HA secret itself, which
// never leaves the ring; the X25519 public key): records carry it, so a subscriber picks the
// right key and a rotated ring reads old and new events alike.

import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { FitError, type Protection } from '../core/index.js';

const keySchema = z.strictObject({
  id: z.string().regex(/^[0-9a-f]{8}$/),
  created: z.string(),
  secret: z.string().optional(),
  privateKey: z.string().optional(),
  publicKey: z.string().optional(),
});

const ringSchema = z.strictObject({
  channel: z.string(),
  protection: z.enum(['ha', 'pke']),
  current: z.string().regex(/^[0-9a-f]{8}$/),
  keys: z.array(keySchema).min(1),
});

export type ChannelKeyringFile = z.infer<typeof ringSchema>;
export type KeyedProtection = 'ha' | 'pke';

export interface ChannelKey {
  id: number;
  /** HA: the HMAC secret. */
  secret?: Buffer;
  /** PKE: the channel's X25519 keys (the private one only where the ring holds it). */
  publicKey?: KeyObject;
  privateKey?: KeyObject;
}

export function channelKeyPath(dir: string, channel: string): string {
  return join(dir, 'keys', 'channels', `${channel}.json`);
}

export function needsChannelKey(p: Protection): p is KeyedProtection {
  return p === 'ha' || p === 'pke';
}

function keyIdOf(material: Buffer): string {
  return createHash('sha256').update(material).digest().subarray(0, 4).toString('hex');
}

function newKey(protection: KeyedProtection): ChannelKeyringFile['keys'][number] {
  const created = new Date().toISOString();
  if (protection === 'ha') {
    const secret = randomBytes(32);
    return { id: keyIdOf(secret), created, secret: secret.toString('base64') };
  }
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  return { id: keyIdOf(raw), created, privateKey: privateKey.export({ type: 'pkcs8', format: 'der' }).toString('base64'), publicKey: raw.toString('base64') };
}

function write(file: string, ring: ChannelKeyringFile): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  // Renamed into place: a running client re-reads the ring and must never see half of it.
  writeFileSync(`${file}.tmp`, `${JSON.stringify(ring, null, 2)}\n`, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

/** Creates the channel's keyring; an existing one is kept unless `force`. Returns the file. */
export function createChannelKeys(dir: string, channel: string, protection: KeyedProtection, force = false): string {
  const file = channelKeyPath(dir, channel);
  if (existsSync(file) && !force) {
    throw new FitError('FIT_ERR_USAGE', `${file} already exists; use \`fitbroker keys rotate --channel ${channel}\` to add a new key, or --force to replace the ring (events sealed with its keys become unreadable)`, { file });
  }
  const key = newKey(protection);
  write(file, { channel, protection, current: key.id, keys: [key] });
  return file;
}

export function readChannelKeyring(dir: string, channel: string): ChannelKeyringFile {
  const file = channelKeyPath(dir, channel);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
    throw new FitError(
      'FIT_ERR_KEY',
      missing ? `no key for channel "${channel}" at ${file}; create it with \`fitbroker keys channel ${channel} --dir ${dir}\` and give it to the channel's clients only` : `${file} is not a channel keyring (${(e as Error).message})`,
      { file, channel },
    );
  }
  const parsed = ringSchema.safeParse(raw);
  if (!parsed.success || parsed.data.channel !== channel || !parsed.data.keys.some((k) => k.id === parsed.data.current)) {
    throw new FitError('FIT_ERR_KEY', `${file} is not a valid keyring for channel "${channel}"; recreate it with \`fitbroker keys channel ${channel} --force\``, { file, channel });
  }
  return parsed.data;
}

/** Adds a new key and makes it current; the old ones stay for events already sealed with them. */
export function rotateChannelKey(dir: string, channel: string): ChannelKeyringFile {
  const ring = readChannelKeyring(dir, channel);
  const key = newKey(ring.protection);
  const next = { ...ring, current: key.id, keys: [...ring.keys, key] };
  write(channelKeyPath(dir, channel), next);
  return next;
}

/** Removes a key that is not current: events still sealed with it no longer verify. */
export function retireChannelKey(dir: string, channel: string, id: string): ChannelKeyringFile {
  const ring = readChannelKeyring(dir, channel);
  if (id === ring.current) throw new FitError('FIT_ERR_USAGE', `key ${id} is the current key of channel "${channel}"; rotate first, then retire it`, { channel, id });
  if (!ring.keys.some((k) => k.id === id)) throw new FitError('FIT_ERR_USAGE', `channel "${channel}" has no key ${id}; \`fitbroker keys list\` shows its keys`, { channel, id });
  const next = { ...ring, keys: ring.keys.filter((k) => k.id !== id) };
  write(channelKeyPath(dir, channel), next);
  return next;
}

function parseKey(k: ChannelKeyringFile['keys'][number], protection: KeyedProtection, file: string): ChannelKey {
  const id = Number.parseInt(k.id, 16);
  const bad = (): FitError => new FitError('FIT_ERR_KEY', `${file}: key ${k.id} is not a valid ${protection} key; recreate the ring with \`fitbroker keys channel --force\``, { file });
  try {
    if (protection === 'ha') {
      const secret = Buffer.from(k.secret ?? '', 'base64');
      if (secret.length < 16) throw bad();
      return { id, secret };
    }
    const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(k.publicKey ?? '', 'base64').toString('base64url') }, format: 'jwk' });
    const privateKey = k.privateKey ? createPrivateKey({ key: Buffer.from(k.privateKey, 'base64'), format: 'der', type: 'pkcs8' }) : undefined;
    return { id, publicKey, ...(privateKey ? { privateKey } : {}) };
  } catch (e) {
    throw e instanceof FitError ? e : bad();
  }
}

/** How often a publisher looks for a rotated ring (a subscriber looks whenever it meets an unknown key id). */
const RELOAD_INTERVAL_MS = 1000;

/**
 * A channel's keys as a running client uses them: the current one for sealing, any by id for
 * checking. A rotated file is picked up by the publisher within a second and by a subscriber
 * as soon as it meets a key id it does not know (one stat per unknown id: cheap, and bounded
 * by the credits a replica is granted).
 */
export class ChannelKeyring {
  private keys = new Map<number, ChannelKey>();
  private currentId = 0;
  private mtimeMs = -1;
  private checkedAt = -Infinity;
  readonly file: string;

  constructor(
    private readonly dir: string,
    readonly channel: string,
    readonly protection: KeyedProtection,
  ) {
    this.file = channelKeyPath(dir, channel);
    this.load();
  }

  current(): ChannelKey {
    this.maybeReload();
    return this.keys.get(this.currentId)!;
  }

  /** The key with this id; a miss re-reads the ring if it changed, so a new key is never refused. */
  byId(id: number): ChannelKey | undefined {
    const k = this.keys.get(id);
    if (k !== undefined) return k;
    this.maybeReload(true);
    return this.keys.get(id);
  }

  private maybeReload(now = false): void {
    const t = performance.now();
    if (!now && t - this.checkedAt < RELOAD_INTERVAL_MS) return;
    this.checkedAt = t;
    try {
      if (statSync(this.file).mtimeMs !== this.mtimeMs) this.load();
    } catch {
      // A ring removed or half-written while running: keep the keys already loaded.
    }
  }

  private load(): void {
    const mtimeMs = statSync(this.file, { throwIfNoEntry: false })?.mtimeMs ?? -1;
    const ring = readChannelKeyring(this.dir, this.channel);
    if (ring.protection !== this.protection) {
      throw new FitError('FIT_ERR_KEY', `${this.file} holds ${ring.protection} keys but channel "${this.channel}" is ${this.protection}; recreate it with \`fitbroker keys channel ${this.channel} --force\``, {
        file: this.file,
      });
    }
    this.keys = new Map(ring.keys.map((k) => [Number.parseInt(k.id, 16), parseKey(k, ring.protection, this.file)]));
    this.currentId = Number.parseInt(ring.current, 16);
    this.mtimeMs = mtimeMs;
    this.checkedAt = performance.now();
  }
}
