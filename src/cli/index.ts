export { eventToJson } from './subscribe.js';
export { lineContentType } from './publish.js';
export { parseUpFaults, CLI_PATH } from './up.js';
export { replicaTotals, type ReplicaTotals } from './status.js';
