// `fitbroker replica --id N`: one replica, the unit a real deployment runs per host.

import pino from 'pino';
import { loadConfig, replicaKeyPath } from '../config/index.js';
import { FitError } from '../core/index.js';
import { loadPrivateKey, publicKeyOf } from '../protection/index.js';
import { ReplicaServer, assertFaultsAllowed, parseFault } from '../replica/index.js';

export interface ReplicaCommandOptions {
  dir: string;
  id: number;
  fault?: string[];
  logLevel?: string;
}

export async function runReplica(o: ReplicaCommandOptions): Promise<void> {
  const config = loadConfig(o.dir);
  const info = config.replicas[o.id];
  if (!info) throw new FitError('FIT_ERR_USAGE', `--id ${o.id}: ${config.file} lists replicas 0 to ${config.replicas.length - 1}`, { id: o.id });
  const faults = (o.fault ?? []).map(parseFault);
  assertFaultsAllowed(faults);
  const privateKey = loadPrivateKey(replicaKeyPath(o.dir, o.id));
  if (publicKeyOf(privateKey) !== info.publicKey) {
    throw new FitError('FIT_ERR_KEY', `keys/replica-${o.id}.pem does not match replicas.${o.id}.publicKey in ${config.file}; copy the right key file or rerun init`, { id: o.id });
  }
  const logger = pino({ level: o.logLevel ?? process.env.FITBROKER_LOG_LEVEL ?? 'info', base: { replica: o.id, pid: process.pid } });
  const server = new ReplicaServer({ config, id: o.id, privateKey, faults, logger });
  await server.listen();
  logger.info({ host: info.host, port: info.port, n: config.replicas.length, f: config.f, channels: [...config.table.channels.keys()], faults: o.fault ?? [] }, 'replica listening');
  const crash = faults.find((f) => f.kind === 'crash');
  if (crash && crash.kind === 'crash') {
    setTimeout(() => {
      logger.warn({ fault: 'crash' }, 'injected fault: crashing now');
      process.exit(70);
    }, crash.afterMs);
  }
  const shutdown = (signal: string): void => {
    logger.info({ signal }, 'shutting down');
    void server.close().then(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}
