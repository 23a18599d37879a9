// Does a store fsync before it acknowledges? The crash rounds cannot tell (a SIGKILL leaves the
// page cache, so a store that never synced passes them), and the disk's fsync rate moves too
// much on this machine to compare rates. So the crash child runs under strace for a moment,
// printing `append C I` before it hands a batch to the store and `ack C J` when the store says
// it is durable, and each acknowledgement is checked to come after at least one fsync,
// fdatasync, msync or sync_file_range that *completed* after its append was announced.
//
// A necessary condition, not proof that the right bytes were synced; but a store that
// acknowledges from memory fails it (sqlite-normal is the negative control).

import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StoreKind } from './types.js';
import { CHANNELS } from './crash.js';

export interface SyncCheck {
  /** Acknowledgements seen in the trace. */
  acks: number;
  /** Of those, how many had no sync complete between their append and themselves. */
  acksWithoutSync: number;
  /** Sync calls completed in the trace. */
  syncs: number;
}

const SYNC_CALLS = 'fsync|fdatasync|msync|sync_file_range';
const SYNC_DONE = new RegExp(`(?:^\\d+\\s+(?:${SYNC_CALLS})\\(.*\\)|<\\.\\.\\. (?:${SYNC_CALLS}) resumed>.*)\\s+=\\s+0$`);
const ANNOUNCE = /write\(1, "(append|ack) (\S+) (\d+)\\n"/;

export function straceAvailable(): boolean {
  return spawnSync('strace', ['-V'], { stdio: 'ignore' }).status === 0;
}

/** Reads an strace -f -o file: every ack must follow a sync completed after its channel's last append. */
export function checkTrace(trace: string): SyncCheck {
  let syncs = 0;
  let acks = 0;
  let acksWithoutSync = 0;
  // Per channel, the sync count when its batch in flight was announced (one batch per channel at a time).
  const syncsAtAppend = new Map<string, number>();
  for (const line of trace.split('\n')) {
    if (SYNC_DONE.test(line)) {
      syncs++;
      continue;
    }
    const m = ANNOUNCE.exec(line);
    if (!m) continue;
    const [, what, channel] = m;
    if (what === 'append') syncsAtAppend.set(channel!, syncs);
    else {
      const at = syncsAtAppend.get(channel!);
      if (at === undefined) continue; // the trace began between an append and its ack
      acks++;
      if (syncs === at) acksWithoutSync++;
      syncsAtAppend.delete(channel!);
    }
  }
  return { acks, acksWithoutSync, syncs };
}

export async function syncCheck(entry: string, kind: StoreKind, dir: string, seed: number, runMs: number): Promise<SyncCheck> {
  const traceFile = join(dir, 'strace.txt');
  mkdirSync(join(dir, 'store'));
  const child = spawn(
    'strace',
    ['-f', '-qq', '-s', '80', '-e', `trace=${SYNC_CALLS.replaceAll('|', ',')},write`, '-e', 'signal=none', '-o', traceFile, process.execPath, entry, '--crash-child', kind.name, '--dir', join(dir, 'store'), '--seed', String(seed), '--stop-after-ms', String(runMs)],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`strace of the ${kind.name} child exited ${code}: ${stderr.trim().slice(0, 300)}`);
  const result = checkTrace(readFileSync(traceFile, 'utf8'));
  if (result.acks === 0) throw new Error(`no acknowledgement of ${CHANNELS.join(', ')} in the trace of the ${kind.name} child`);
  return result;
}
