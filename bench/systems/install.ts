// The peer brokers are the Debian packages, run as plain child processes: installed if missing
// by ensureDebianPackage (src/core/packages.ts: when we are root and apt-get exists), started
// on a free loopback port with a config written to a temp dir, and stopped with the dir removed. Debian's postinst may
// start a system service on the default port; we never connect to that one, and our own
// instance listens on a random port, so the two cannot collide.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DebianBinary } from '../../src/core/index.js';
import { withHugePages } from '../../src/core/index.js';
import { canConnect, freeBasePort } from '../../test/helpers/cluster.js';

/** A peer's binary and the Debian package that ships it (ensureDebianPackage installs it). */
export type PeerBinary = DebianBinary;

export const NATS_SERVER: PeerBinary = { pkg: 'nats-server', path: '/usr/sbin/nats-server' };
export const MOSQUITTO: PeerBinary = { pkg: 'mosquitto', path: '/usr/sbin/mosquitto' };
export const REDIS_SERVER: PeerBinary = { pkg: 'redis-server', path: '/usr/bin/redis-server' };

export interface Daemon {
  port: number;
  dir: string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

export interface DaemonSpec {
  name: string;
  binary: PeerBinary;
  /** Files to write into the temp dir before the start (e.g. the config), by name. */
  files?(port: number, dir: string): Record<string, string>;
  args(port: number, dir: string): string[];
}

// A binary that cannot be spawned never emits 'exit'; its 'error' is kept here instead.
const spawnErrors = new WeakMap<ChildProcess, Error>();
const exited = (p: ChildProcess): boolean => p.exitCode !== null || p.signalCode !== null || spawnErrors.has(p);

// If the harness dies without stopping a server, do not leave it running.
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

export async function startDaemon(spec: DaemonSpec): Promise<Daemon> {
  // The port is free when we pick it but not reserved: another process may take it before
  // the server binds, so a server that exits at once is retried on a new port.
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const dir = mkdtempSync(join(tmpdir(), `fitbench-${spec.name}-`));
    const port = await freeBasePort(1);
    for (const [name, text] of Object.entries(spec.files?.(port, dir) ?? {})) writeFileSync(join(dir, name), text);
    const logFile = join(dir, 'server.log');
    const log = openSync(logFile, 'a');
    const proc = spawn(spec.binary.path, spec.args(port, dir), { stdio: ['ignore', log, log], env: withHugePages() });
    closeSync(log);
    proc.once('error', (e) => spawnErrors.set(proc, e));
    live.add(proc);
    const daemon: Daemon = { port, dir, proc, stop: () => stopDaemon(proc, dir) };
    try {
      await waitListening(port, proc);
      return daemon;
    } catch (e) {
      const tail = readLog(logFile);
      lastError = new Error(`${spec.name}: ${e instanceof Error ? e.message : String(e)}${tail ? `\n${tail}` : ''}`);
      await daemon.stop();
    }
  }
  throw lastError;
}

function readLog(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-10).join('\n');
  } catch {
    return '';
  }
}

async function waitListening(port: number, proc: ChildProcess, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (exited(proc)) throw new Error(`exited (${spawnErrors.get(proc)?.message ?? proc.signalCode ?? proc.exitCode}) before listening on ${port}`);
    if ((await canConnect(port)) && !exited(proc)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`did not listen on ${port} within ${timeoutMs} ms`);
}

async function stopDaemon(proc: ChildProcess, dir: string): Promise<void> {
  const gone = new Promise<void>((resolve) => {
    if (exited(proc)) resolve();
    else proc.once('exit', () => resolve());
  });
  if (!exited(proc)) proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
  await gone;
  clearTimeout(timer);
  live.delete(proc);
  rmSync(dir, { recursive: true, force: true });
}
