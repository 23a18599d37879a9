// Shared by the commands: turning flags into values with errors that say which flag and
// what it wants, and turning any failure into one line on stderr and an exit code.

import { InvalidArgumentError } from 'commander';
import { existsSync } from 'node:fs';
import { FitError, isFitError } from '../core/index.js';
import { clientKeyPath, type ClusterConfig } from '../config/index.js';

export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
export const EXIT_TIMEOUT = 3;

export function intFlag(min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected an integer from ${min} to ${max}, got "${value}"`);
    return n;
  };
}

export function secondsFlag(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`expected a positive number of seconds, got "${value}"`);
  return n;
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function fail(err: unknown): never {
  if (isFitError(err)) {
    process.stderr.write(`fitbroker: ${err.code}: ${err.message}\n`);
    const usage = err.code === 'FIT_ERR_USAGE' || err.code === 'FIT_ERR_CONFIG' || err.code === 'FIT_ERR_KEY' || err.code === 'FIT_ERR_TLS_CERT' || err.code === 'FIT_ERR_NOT_SUPPORTED' || err.code === 'FIT_ERR_STORE' || err.code === 'FIT_ERR_JOURNAL' || err.code === 'FIT_ERR_MONITOR_CONFIG' || err.code === 'FIT_ERR_MONITOR_TARGET';
    process.exit(err.code === 'FIT_ERR_QUORUM_TIMEOUT' ? EXIT_TIMEOUT : usage ? EXIT_USAGE : EXIT_FAILURE);
  }
  process.stderr.write(`fitbroker: unexpected failure (a bug, please report it): ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(EXIT_FAILURE);
}

/** The identity a command acts as: --as, or the admin client init created. */
export function defaultClient(config: ClusterConfig, as: string | undefined): string {
  if (as) return as;
  const admin = [...config.table.clients.values()].find((c) => c.admin && existsSync(clientKeyPath(config.dir, c.id)));
  if (admin) return admin.id;
  throw new FitError('FIT_ERR_USAGE', `no admin client with a key in ${config.dir}/keys; pass --as CLIENT`);
}
