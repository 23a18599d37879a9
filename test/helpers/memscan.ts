// Searches a live process's memory for a byte string, the way an attacker who owns a replica
// host would: every readable mapping through /proc/PID/mem (root, or the same user). A V8 heap
// snapshot alone would miss Buffer contents, which live outside the JS heap.

import { closeSync, openSync, readFileSync, readSync } from 'node:fs';

const CHUNK_BYTES = 16 * 1024 * 1024;

/** Mappings in which `needle` occurs in process `pid`, e.g. ["[heap]", "anon 7f..."]; [] if none. */
export function findInProcessMemory(pid: number, needle: Buffer): string[] {
  const maps = readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n');
  const fd = openSync(`/proc/${pid}/mem`, 'r');
  const hits: string[] = [];
  const buf = Buffer.allocUnsafe(CHUNK_BYTES + needle.length);
  try {
    for (const line of maps) {
      const m = /^([0-9a-f]+)-([0-9a-f]+) r/.exec(line);
      if (!m || line.includes('[vvar]') || line.includes('[vsyscall]')) continue;
      const start = Number.parseInt(m[1]!, 16);
      const end = Number.parseInt(m[2]!, 16);
      // Chunks overlap by the needle's length, so a match across a chunk boundary is found.
      for (let at = start; at < end; at += CHUNK_BYTES) {
        const n = Math.min(CHUNK_BYTES + needle.length, end - at);
        let got = 0;
        try {
          got = readSync(fd, buf, 0, n, at);
        } catch {
          continue; // a mapping that went away or cannot be read (guard pages)
        }
        if (buf.subarray(0, got).includes(needle)) {
          hits.push(line.trim().split(/\s+/).slice(5).join(' ') || `anon ${m[1]}`);
          break;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return hits;
}
