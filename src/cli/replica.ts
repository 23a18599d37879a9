// `fitbroker replica --id N`: one replica, the unit a real deployment runs per host.

import pino from 'pino';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, replicaDataDir, replicaKeyPath, withTlsFiles } from '../config/index.js';
import { FitError, HEAP_FLOOR_FLAG, hasHeapFloor } from '../core/index.js';
import { loadPrivateKey, publicKeyOf } from '../protection/index.js';
import { ReplicaServer, assertFaultsAllowed, parseFault } from '../replica/index.js';
import { DiskStore } from '../broker/index.js';
import { LmdbJournalStore } from '../consensus/index.js';

export interface ReplicaCommandOptions {
  dir: string;
  id: number;
  fault?: string[];
  logLevel?: string;
  /** --data-dir: where this replica keeps its state (default DIR/data/replica-N). */
  dataDir?: string;
  /** --replaced: the id ran before elsewhere; its votes there are unknown here. */
  replaced?: boolean;
  /** --tls-cert, --tls-key: this node's certificate and key, when not where cluster.yaml's tls: says. */
  tlsCert?: string;
  tlsKey?: string;
  /** --metrics-port: overrides replicas.N.metricsPort; 0 serves no metrics. */
  metricsPort?: number;
}

export async function runReplica(o: ReplicaCommandOptions): Promise<void> {
  const config = withTlsFiles(loadConfig(o.dir), o);
  const info = config.replicas[o.id];
  if (!info) throw new FitError('FIT_ERR_USAGE', `--id ${o.id}: ${config.file} lists replicas 0 to ${config.replicas.length - 1}`, { id: o.id });
  const faults = (o.fault ?? []).map(parseFault);
  assertFaultsAllowed(faults);
  const privateKey = loadPrivateKey(replicaKeyPath(o.dir, o.id));
  if (publicKeyOf(privateKey) !== info.publicKey) {
    throw new FitError('FIT_ERR_KEY', `keys/replica-${o.id}.pem does not match replicas.${o.id}.publicKey in ${config.file}; copy the right key file or rerun init`, { id: o.id });
  }
  const level = o.logLevel ?? process.env.FITBROKER_LOG_LEVEL ?? 'info';
  if (!(level in pino.levels.values) && level !== 'silent') {
    throw new FitError('FIT_ERR_USAGE', `log level "${level}" is not one of ${[...Object.keys(pino.levels.values), 'silent'].join(', ')} (--log-level or FITBROKER_LOG_LEVEL)`);
  }
  const logger = pino({ level, base: { replica: o.id, pid: process.pid } });
  const dataDir = o.dataDir ?? replicaDataDir(o.dir, o.id);
  // A replacement for a replica whose disk is gone may meet votes the old one gave: it must be as careful as a restart.
  const restarted = markStarted(dataDir) || o.replaced === true;
  // The ordering protocol runs with n >= 3f+1 (src/replica/ordering.ts); its journal makes a restart not amnesia.
  const journal = config.replicas.length >= 3 * config.f + 1 ? new LmdbJournalStore(join(dataDir, 'consensus')) : undefined;
  const disk = [...config.table.channels].filter(([, c]) => c.persist === 'disk').map(([tag]) => tag);
  const store = disk.length > 0 ? new DiskStore(join(dataDir, 'store')) : undefined;
  if (store) logger.info({ path: store.path, channels: disk }, 'disk channels: records are acknowledged once on disk, and come back after a restart');
  const server = new ReplicaServer({ config, id: o.id, privateKey, faults, logger, restarted, ...(store ? { store } : {}), ...(journal ? { journal } : {}) });
  // Before the client port: /healthz answers while the replica starts, /readyz says what it waits for.
  const metricsPort = o.metricsPort ?? info.metricsPort ?? 0;
  if (metricsPort > 0) {
    try {
      await server.serveOps(metricsPort);
    } catch (e) {
      throw listenError(e, `replica ${o.id} cannot serve metrics on ${info.host}:${metricsPort}`, `change replicas.${o.id}.metricsPort in ${config.file} or pass --metrics-port (0 serves no metrics)`, info.host, metricsPort);
    }
    logger.info({ host: info.host, metricsPort }, `serving /metrics, /healthz and /readyz on http://${info.host}:${metricsPort}`);
  }
  try {
    server.recover();
  } catch (e) {
    await server.close();
    throw e;
  }
  try {
    await server.listen();
  } catch (e) {
    await server.close();
    throw listenError(e, `replica ${o.id} cannot listen on ${info.host}:${info.port}`, `change replicas.${o.id}.port in ${config.file}`, info.host, info.port);
  }
  logger.info({ host: info.host, port: info.port, n: config.replicas.length, f: config.f, channels: [...config.table.channels.keys()], faults: o.fault ?? [] }, 'replica listening');
  // Said only where the operator can change it: a kernel without transparent huge pages, or
  // a system we cannot read, is not this replica's to fix.
  const pages = server.hugePages;
  if (!pages.effective && (pages.kernel === 'madvise' || pages.kernel === 'always')) {
    logger.info({ hugePages: pages }, `malloc runs without transparent huge pages (GLIBC_TUNABLES=${process.env.GLIBC_TUNABLES ?? ''}, glibc ${pages.glibc}, kernel mode ${pages.kernel}): at saturation page faults cost this replica more CPU; see "Memory and huge pages" in docs/operations.md`);
  }
  if (!hasHeapFloor()) logger.info({ nodeArgs: process.execArgv }, `node runs without ${HEAP_FLOOR_FLAG}: at saturation V8's full garbage collections cost this replica about a quarter more CPU; start it with \`node ${HEAP_FLOOR_FLAG} .../fitbroker replica\` (the fitbroker command does); see "Memory and huge pages" in docs/operations.md`);
  if (config.tls) logger.info({ ca: config.tls.ca }, 'TLS on: clients and replicas must present a certificate from this CA naming who they are');
  const crash = faults.find((f) => f.kind === 'crash');
  if (crash && crash.kind === 'crash') {
    setTimeout(() => {
      logger.warn({ fault: 'crash' }, 'injected fault: crashing now');
      process.exit(70);
    }, crash.afterMs);
  }
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    const { shutdownDrainMs, shutdownTimeoutMs } = config.limits;
    logger.info({ signal, shutdownDrainMs, shutdownTimeoutMs }, 'shutting down: no new connections or requests; answering what is pending');
    // Bounded: a shutdown that hangs (a peer that never reads) must not keep the host's
    // supervisor waiting, or make it reach for SIGKILL, which would lose the log line.
    setTimeout(() => {
      logger.error({ shutdownTimeoutMs }, 'shutdown did not finish within shutdownTimeoutMs; exiting anyway');
      process.exit(1);
    }, shutdownTimeoutMs).unref();
    void server.close().then(
      () => process.exit(0),
      (e: unknown) => {
        logger.error({ err: (e as Error)?.message }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

/** A port this replica could not listen on, as the FitError an operator can act on. */
function listenError(e: unknown, what: string, fix: string, host: string, port: number): FitError {
  const code = (e as NodeJS.ErrnoException).code;
  return new FitError(
    'FIT_ERR_CONFIG',
    code === 'EADDRINUSE' ? `${what}: the port is in use (another replica or program); stop it or ${fix}` : `${what}: ${(e as Error).message}`,
    { host, port },
  );
}

/**
 * Whether this replica ran before since init: a marker in its data directory, written (and
 * synced) before it can take part in anything. Without it, a replica restarted after a crash
 * could contradict votes it gave before and no longer remembers.
 */
function markStarted(dataDir: string): boolean {
  const marker = join(dataDir, 'started');
  if (existsSync(marker)) return true;
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const fd = openSync(marker, 'w', 0o600);
    writeSync(fd, `${new Date().toISOString()}\n`);
    fsyncSync(fd);
    closeSync(fd);
  } catch (e) {
    throw new FitError('FIT_ERR_STORE', `cannot write the data directory ${dataDir}: ${(e as Error).message}; make it writable by the user running the replica, or point --data-dir elsewhere`, { path: dataDir });
  }
  return false;
}
