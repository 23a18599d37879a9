// A node's TLS material (the cluster CA, its own certificate and key), read and checked before
// any connection: an expired certificate, one from another CA or one naming another node is
// an error here, at start, with the file named, rather than a reset connection later that
// says nothing. What the certificates name is the identity TLS binds: `replica-N` for a
// replica, the client id for a client (docs/security.md, "TLS").

import { readFileSync } from 'node:fs';
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { FitError } from '../core/index.js';

/** Where a cluster's TLS files are (absolute paths); `{name}` in cert and key is the node's name. */
export interface TlsFiles {
  ca: string;
  cert: string;
  key: string;
}

/** One node's checked TLS material, as node:tls takes it. */
export interface TlsIdentity {
  /** `replica-N` or the client id: what the certificate names. */
  name: string;
  /** The CA certificates, one PEM each (a file of several, or one without its last newline, stays whole). */
  ca: string[];
  cert: Buffer;
  key: Buffer;
  certFile: string;
  caFile: string;
}

/** In cluster.yaml's tls.cert and tls.key paths, the token each node replaces with its own name (replica-N or a client id). */
export const NODE_NAME_TOKEN = '{name}';

/** The name a replica's certificate carries. */
export function replicaTlsName(id: number): string {
  return `replica-${id}`;
}

export function tlsPathFor(template: string, name: string): string {
  return template.split(NODE_NAME_TOKEN).join(name);
}

function certError(file: string, what: string, fix: string): FitError {
  return new FitError('FIT_ERR_TLS_CERT', `${file}: ${what}; ${fix}`, { path: file });
}

function readFile(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw certError(file, `cannot read this ${what} (${why})`, 'make it with `fitbroker init --tls` (or copy it from the host that holds the cluster CA) and make it readable by this user');
  }
}

/** Every certificate in a PEM file (a CA file may hold several while a CA is replaced). */
export function parseCertificates(pem: Buffer, file: string): X509Certificate[] {
  const blocks = pem.toString('utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  const certs: X509Certificate[] = [];
  for (const b of blocks) {
    try {
      certs.push(new X509Certificate(b));
    } catch (e) {
      throw certError(file, `holds a certificate that does not parse (${(e as Error).message})`, 'replace it with the PEM file `fitbroker init --tls` wrote');
    }
  }
  if (certs.length === 0) throw certError(file, 'holds no PEM certificate (-----BEGIN CERTIFICATE-----)', 'point the tls: section of cluster.yaml at the PEM certificate');
  return certs;
}

/** The names a certificate binds: its DNS subject alternative names and its common name. */
export function certificateNames(cert: X509Certificate): string[] {
  const names: string[] = [];
  for (const part of (cert.subjectAltName ?? '').split(/,\s*/)) if (part.startsWith('DNS:')) names.push(part.slice(4).replace(/^"|"$/g, ''));
  for (const line of cert.subject.split('\n')) if (line.startsWith('CN=')) names.push(line.slice(3));
  return [...new Set(names)];
}

/**
 * Reads and checks one node's TLS files: each readable, the key the certificate's, the
 * certificate issued by a CA in the CA file, valid now, and naming `name`.
 */
export function loadTlsIdentity(files: TlsFiles, name: string, nowMs = Date.now()): TlsIdentity {
  const certFile = tlsPathFor(files.cert, name);
  const keyFile = tlsPathFor(files.key, name);
  const ca = readFile(files.ca, 'CA certificate');
  const cert = readFile(certFile, `TLS certificate of ${name}`);
  const key = readFile(keyFile, `TLS private key of ${name}`);
  const cas = parseCertificates(ca, files.ca);
  const leaf = parseCertificates(cert, certFile)[0]!;
  let keyObject: KeyObject;
  try {
    keyObject = createPrivateKey(key);
  } catch (e) {
    throw certError(keyFile, `is not a PEM private key (${(e as Error).message})`, 'replace it with the key file issued with the certificate');
  }
  if (!leaf.checkPrivateKey(keyObject)) throw certError(keyFile, `is not the private key of ${certFile}`, 'use the key issued together with that certificate');
  if (!cas.some((c) => leaf.checkIssued(c) && leaf.verify(c.publicKey))) {
    throw certError(certFile, `was not issued by the cluster CA in ${files.ca} (its issuer: ${leaf.issuer.replace(/\n/g, ', ')})`, 'issue it from the cluster CA (`fitbroker init --tls` makes one), or point tls.ca at the CA that issued it');
  }
  const from = Date.parse(leaf.validFrom);
  const to = Date.parse(leaf.validTo);
  if (nowMs > to) throw certError(certFile, `expired on ${new Date(to).toISOString()}`, 'issue a new certificate for this node from the cluster CA');
  if (nowMs < from) throw certError(certFile, `is not valid before ${new Date(from).toISOString()}`, "check this host's clock, or issue a certificate valid from now");
  const names = certificateNames(leaf);
  if (!names.includes(name)) {
    throw certError(certFile, `names ${names.map((n) => `"${n}"`).join(', ') || 'nobody'}, not "${name}"`, `each node needs a certificate for its own name (CN or DNS subject alternative name "${name}")`);
  }
  return { name, ca: cas.map((c) => c.toString()), cert, key, certFile, caFile: files.ca };
}
