// TLS for replica and client connections (node:tls, mutual): the replica side that accepts a
// TCP socket and either hands it to TLS or answers a plain client that it needs TLS, and the
// dialing side used by clients and by replicas towards each other. Both verify the peer's
// chain against the cluster CA and the name it proves: `replica-N` for a replica; a client's
// name is checked against the id it claims, in the replica server's handshake. The Ed25519
// handshake of src/protection/auth.ts still runs inside: TLS adds confidentiality and keeps a
// network attacker out; it never replaces the control table.

import { connect as tlsConnect, createServer as createTlsServer, checkServerIdentity, type TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import { FitError, type Limits, type ReplicaInfo } from '../core/index.js';
import { certificateNames, replicaTlsName, type TlsIdentity } from '../protection/index.js';

/** A TLS connection starts with a handshake record (RFC 8446 §5.1, ContentType handshake(22)). */
const TLS_HANDSHAKE_RECORD = 0x16;

/** True when a connection's first bytes are a TLS ClientHello, not a fitbroker frame. */
export function startsTls(first: Buffer): boolean {
  return first[0] === TLS_HANDSHAKE_RECORD;
}

export interface TlsAcceptorHandlers {
  /** The handshake finished and the peer's certificate chains to the cluster CA. */
  onSecure(socket: TLSSocket, names: string[], remote: string): void;
  /** The handshake finished but the peer's certificate is refused: tell it why, then close. */
  onRefused(socket: TLSSocket, err: FitError, remote: string): void;
  /** A plain TCP connection (nothing, or not TLS, in its first bytes): tell it, then close. */
  onPlain(socket: Socket, remote: string): void;
  /** The handshake itself failed; the socket is gone. For the log. */
  onFailed(err: FitError, remote: string): void;
}

/**
 * Returns the connection listener of a TLS replica. requestCert with rejectUnauthorized off
 * is deliberate: with it on, node:tls destroys a socket whose certificate it refuses without
 * an event (tested), so the refused client sees a bare reset and the replica's log says
 * nothing. The same check is made here, in the first handler that sees the socket, before a
 * byte of the fitbroker protocol: a refused peer gets one error frame and is closed.
 */
export function tlsAcceptor(identity: TlsIdentity, limits: Limits, handlers: TlsAcceptorHandlers): (socket: Socket) => void {
  const server = createTlsServer({
    ca: identity.ca,
    cert: identity.cert,
    key: identity.key,
    requestCert: true,
    rejectUnauthorized: false,
    minVersion: 'TLSv1.2',
    handshakeTimeout: limits.handshakeTimeoutMs,
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    if (socket.authorized) return handlers.onSecure(socket, certificateNames(socket.getPeerX509Certificate()!), remote);
    handlers.onRefused(socket, refusedCertificate(socket, identity), remote);
  });
  server.on('tlsClientError', (e: NodeJS.ErrnoException, socket: TLSSocket) => {
    handlers.onFailed(handshakeFailed(e), `${socket.remoteAddress}:${socket.remotePort}`);
  });
  return (socket: Socket) => {
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    socket.setNoDelay(true);
    let decided = false;
    const onError = (): void => {
      socket.destroy();
    };
    const decide = (first: Buffer | undefined): void => {
      if (decided) return;
      decided = true;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('end', onGone);
      socket.off('close', onGone);
      if (first) {
        socket.pause();
        // node:tls reads what is already buffered on the socket before its own reads.
        socket.unshift(first);
      }
      if (first && startsTls(first)) server.emit('connection', socket);
      else handlers.onPlain(socket, remote);
    };
    const onData = (chunk: Buffer): void => decide(chunk);
    // Closed before it said anything (a port check, a health probe): nobody to tell.
    const onGone = (): void => {
      decided = true;
      clearTimeout(timer);
    };
    socket.on('error', onError);
    socket.on('data', onData);
    socket.once('end', onGone);
    socket.once('close', onGone);
    // setImmediate: had the event loop been busy past the timer, a first byte that arrived
    // meanwhile is read (poll phase) before this decides (check phase) that none came.
    const timer = setTimeout(() => setImmediate(() => decide(undefined)), limits.tlsFirstByteMs);
  };
}

function refusedCertificate(socket: TLSSocket, identity: TlsIdentity): FitError {
  const cert = socket.getPeerX509Certificate();
  const who = cert ? `"${certificateNames(cert)[0] ?? cert.subject}"` : 'a peer';
  const code = String(socket.authorizationError ?? 'UNKNOWN');
  const fields = { reason: code, certificate: cert ? certificateNames(cert).join(',') : undefined };
  if (!cert) return new FitError('FIT_ERR_TLS_HANDSHAKE', `${identity.name} refused a TLS connection without a client certificate; every client needs its own certificate from the cluster CA (tls: in cluster.yaml, fitbroker init --tls)`, fields);
  if (code === 'CERT_HAS_EXPIRED') return new FitError('FIT_ERR_TLS_HANDSHAKE', `${identity.name} refused the TLS certificate of ${who}: it expired on ${new Date(cert.validTo).toISOString()}; issue a new one from the cluster CA`, fields);
  if (code === 'CERT_NOT_YET_VALID') return new FitError('FIT_ERR_TLS_HANDSHAKE', `${identity.name} refused the TLS certificate of ${who}: it is not valid before ${new Date(cert.validFrom).toISOString()}; check the clocks of both hosts`, fields);
  return new FitError('FIT_ERR_TLS_HANDSHAKE', `${identity.name} refused the TLS certificate of ${who}: it does not chain to the cluster CA (${code}); issue the certificate from the CA in tls.ca of cluster.yaml`, fields);
}

function handshakeFailed(e: NodeJS.ErrnoException): FitError {
  if (e.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') return new FitError('FIT_ERR_TLS_HANDSHAKE', 'a TLS handshake did not finish in handshakeTimeoutMs; the peer is slow or not a fitbroker client', { reason: e.code });
  return new FitError('FIT_ERR_TLS_HANDSHAKE', `a TLS handshake failed (${e.code ?? e.message}); if the peer is a fitbroker client or replica, it did not accept this replica's certificate: check that its tls.ca is this cluster's CA`, { reason: e.code ?? e.message });
}

/** Dials a replica over TLS, proving `identity` and checking that the replica proves `replica-N`. */
export function dialTls(replica: ReplicaInfo, identity: TlsIdentity): TLSSocket {
  const expected = replicaTlsName(replica.id);
  const socket = tlsConnect({
    host: replica.host,
    port: replica.port,
    ca: identity.ca,
    cert: identity.cert,
    key: identity.key,
    minVersion: 'TLSv1.2',
    // The replica is known by its id, not by its address (an IP, often): its certificate must
    // name replica-N, whatever host it was reached at.
    servername: expected,
    checkServerIdentity: (_host, cert) => checkServerIdentity(expected, cert),
  });
  socket.setNoDelay(true);
  return socket;
}

const NOT_FROM_CA = new Set(['SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_SIGNATURE_FAILURE', 'CERT_UNTRUSTED']);
const NOT_TLS = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG', 'ERR_SSL_HTTP_REQUEST', 'ERR_SSL_UNKNOWN_PROTOCOL', 'ERR_SSL_RECORD_LAYER_FAILURE']);

/**
 * What a TLS error on a dialed connection means, for the person running the client; undefined
 * for errors that are not about TLS (refused, unreachable: FIT_ERR_CONNECTION as without TLS).
 */
export function tlsDialError(e: NodeJS.ErrnoException, replica: ReplicaInfo, identity: TlsIdentity): FitError | undefined {
  const code = e.code ?? '';
  const at = `replica ${replica.id} at ${replica.host}:${replica.port}`;
  const fields = { replica: replica.id, reason: code };
  if (NOT_FROM_CA.has(code)) return new FitError('FIT_ERR_TLS_HANDSHAKE', `${at} presented a TLS certificate not issued by the cluster CA in ${identity.caFile} (${code}); the replica's certificate comes from another CA, or something else answers on that port`, fields);
  if (code === 'CERT_HAS_EXPIRED') return new FitError('FIT_ERR_TLS_HANDSHAKE', `${at} presented an expired TLS certificate; issue the replica a new one from the cluster CA`, fields);
  if (code === 'CERT_NOT_YET_VALID') return new FitError('FIT_ERR_TLS_HANDSHAKE', `${at} presented a TLS certificate not valid yet; check the clocks of both hosts`, fields);
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return new FitError('FIT_ERR_TLS_HANDSHAKE', `${at} presented a TLS certificate that does not name ${replicaTlsName(replica.id)} (${e.message}); check replicas.${replica.id} in cluster.yaml and that replica's certificate`, fields);
  if (NOT_TLS.has(code)) return new FitError('FIT_ERR_TLS_HANDSHAKE', `${at} does not speak TLS: it runs with a cluster.yaml without a tls: section; every replica and client must use the same cluster.yaml`, fields);
  if (code.startsWith('ERR_SSL_')) return new FitError('FIT_ERR_TLS_HANDSHAKE', `the TLS handshake with ${at} failed (${code}): ${e.message.split(':').pop()?.trim() || e.message}; check that this node's certificate (${identity.certFile}) was issued by the cluster CA`, fields);
  return undefined;
}
