export { Connection } from './connection.js';
export type { ConnectionHandlers } from './connection.js';
export { tlsAcceptor, dialTls, tlsDialError, startsTls } from './tls.js';
export type { TlsAcceptorHandlers } from './tls.js';
