export { loadConfig, parseConfig, configPath, replicaKeyPath, clientKeyPath, replicaDataDir, CONFIG_FILE, tlsIdentityFor, withTlsFiles } from './load.js';
export type { ClusterConfig } from './load.js';
export { initCluster, makeClusterTls, parseClientsFlag, metricsBasePortFor, DEFAULT_CLIENTS, DEFAULT_TLS, METRICS_PORT_OFFSET, MONITORING_CHANNELS, MONITORING_CLIENTS, MONITORING_CONTROL_CHANNEL, MONITORING_DATA_CHANNELS } from './init.js';
export type { InitOptions, ClientRole } from './init.js';
export { clusterSchema, NAME_PATTERN } from './schema.js';
export { recordControl } from './edit.js';
