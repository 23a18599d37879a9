export { ReplicaServer } from './server.js';
export type { ReplicaOptions } from './server.js';
export { parseFault, assertFaultsAllowed, tamperRecord, FAULT_KINDS, ALLOW_FAULTS_ENV } from './faults.js';
export type { Fault } from './faults.js';
export { readHugePagesState } from './huge-pages.js';
