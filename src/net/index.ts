export { Connection } from './connection.js';
export type { ConnectionHandlers } from './connection.js';
