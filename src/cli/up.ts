// `fitbroker up`: runs every replica of a config as its own child process, in the foreground.
// Each child is the same `fitbroker replica` a multi-host deployment runs, so loopback is a
// deployment here, not a special case. Ctrl-C (or SIGTERM) stops them all.

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { FitError, withHeapFloor, withHugePages } from '../core/index.js';
import { loadConfig } from '../config/index.js';
import { assertFaultsAllowed, parseFault } from '../replica/index.js';

export const CLI_PATH = fileURLToPath(new URL('./main.js', import.meta.url));

export interface UpOptions {
  dir: string;
  fault?: string[];
  logLevel?: string;
}

export function parseUpFaults(specs: string[], n: number): Map<number, string[]> {
  const byReplica = new Map<number, string[]>();
  for (const spec of specs) {
    const at = spec.indexOf(':');
    const id = Number(spec.slice(0, at));
    if (at < 1 || !Number.isInteger(id) || id < 0 || id >= n) {
      throw new FitError('FIT_ERR_USAGE', `--fault "${spec}" is not ID:KIND with ID a replica from 0 to ${n - 1} (e.g. --fault 2:tamper)`, { fault: spec });
    }
    const kind = spec.slice(at + 1);
    parseFault(kind);
    byReplica.set(id, [...(byReplica.get(id) ?? []), kind]);
  }
  return byReplica;
}

/** Past the replicas' own shutdownTimeoutMs, how long `up` still waits before it kills them. */
const KILL_GRACE_MS = 2_000;

export async function up(o: UpOptions): Promise<void> {
  const config = loadConfig(o.dir);
  const faults = parseUpFaults(o.fault ?? [], config.replicas.length);
  assertFaultsAllowed([...faults.values()].flat());
  const children = new Map<number, ChildProcess>();
  let stopping = false;
  let failed = 0;
  /** Replicas that did not exit 0 once asked to stop. */
  const unclean: string[] = [];
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      // A second Ctrl-C: the operator will not wait.
      for (const c of children.values()) c.kill('SIGKILL');
      return;
    }
    stopping = true;
    process.stderr.write(`fitbroker up: ${signal}: stopping ${children.size} replica(s) (again to kill them)\n`);
    // Each replica stops gracefully (docs/operations.md) and exits by itself within
    // shutdownTimeoutMs; one that does not is killed a little later.
    for (const c of children.values()) c.kill('SIGTERM');
    setTimeout(() => {
      for (const c of children.values()) c.kill('SIGKILL');
    }, config.limits.shutdownTimeoutMs + KILL_GRACE_MS).unref();
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  await Promise.all(
    config.replicas.map(
      (r) =>
        new Promise<void>((resolve) => {
          const args = [CLI_PATH, 'replica', '--dir', o.dir, '--id', String(r.id), ...(faults.get(r.id) ?? []).flatMap((k) => ['--fault', k])];
          if (o.logLevel) args.push('--log-level', o.logLevel);
          const child = spawn(process.execPath, [...withHeapFloor(), ...args], { stdio: ['ignore', 'inherit', 'inherit'], env: withHugePages() });
          children.set(r.id, child);
          child.on('exit', (code, signal) => {
            children.delete(r.id);
            const how = signal ?? `code ${code}`;
            if (!stopping) {
              failed++;
              process.stderr.write(`fitbroker up: replica ${r.id} exited (${how}); the others keep serving\n`);
            } else if (code !== 0 && signal !== 'SIGTERM') {
              // Ended by the SIGTERM itself is clean: it was still starting, before it could catch it.
              unclean.push(`${r.id} (${how})`);
            }
            resolve();
          });
        }),
    ),
  );
  if (failed === config.replicas.length) {
    throw new FitError('FIT_ERR_INTERNAL', `every replica exited on its own; their log lines above say why`, { replicas: failed });
  }
  if (unclean.length > 0) {
    process.stderr.write(`fitbroker up: replica(s) ${unclean.join(', ')} did not stop cleanly; their log lines above say why\n`);
    process.exitCode = 1;
    return;
  }
  if (stopping) process.stderr.write(`fitbroker up: every replica stopped\n`);
}
