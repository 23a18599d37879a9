export { loadConfig, parseConfig, configPath, replicaKeyPath, clientKeyPath, replicaDataDir, CONFIG_FILE } from './load.js';
export type { ClusterConfig } from './load.js';
export { initCluster, parseClientsFlag, DEFAULT_CLIENTS } from './init.js';
export type { InitOptions, ClientRole } from './init.js';
export { clusterSchema, NAME_PATTERN } from './schema.js';
export { recordControl } from './edit.js';
