// Makes the cluster's own TLS CA and issues certificates from it: one per replica
// (`replica-N`) and per client (its id), ECDSA P-256 with SHA-256, which every node:tls and
// OpenSSL build accepts.
//
// Why @peculiar/x509 and not the openssl CLI: node:crypto reads X.509 certificates but cannot
// write them. The package builds them in-process on node:crypto's WebCrypto (the keys and
// signatures are still OpenSSL's), so `init --tls` needs no binary on the host, no shell-out,
// no temporary files holding private keys, and gives typed errors instead of parsed stderr. It
// is loaded only here, lazily, so replicas and clients never load it (nor the Reflect polyfill
// its dependency injection needs).

import { KeyObject, createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { FitError } from '../core/index.js';
import { tlsPathFor, type TlsFiles } from './tls.js';

/** Long enough that a local cluster never meets it; replace the CA with `init --tls --force`. */
export const CA_VALIDITY_DAYS = 3650;
/** About two years, the longest browsers accept; a node's certificate is re-issued from the CA. */
export const CERT_VALIDITY_DAYS = 825;
/** Backdated so a host whose clock is slightly behind the issuer's accepts a new certificate. */
const CLOCK_SKEW_MS = 5 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface PemPair {
  certPem: string;
  keyPem: string;
}

export interface IssueOptions {
  /** Default: now minus a few minutes of clock skew. */
  notBeforeMs?: number;
  /** Default: CERT_VALIDITY_DAYS from now. */
  notAfterMs?: number;
}

type X509 = typeof import('@peculiar/x509');
let x509: Promise<X509> | undefined;

async function loadX509(): Promise<X509> {
  x509 ??= (async () => {
    await import('reflect-metadata');
    const m = await import('@peculiar/x509');
    m.cryptoProvider.set(webcrypto as never);
    return m;
  })();
  return x509;
}

/** A positive 128-bit serial number, unique without a registry of issued ones. */
function serial(): string {
  const b = randomBytes(16);
  b[0]! &= 0x7f;
  return b.toString('hex');
}

function keyPem(key: webcrypto.CryptoKey): string {
  return KeyObject.from(key).export({ type: 'pkcs8', format: 'pem' }).toString();
}

export async function makeCertificateAuthority(commonName: string, nowMs = Date.now()): Promise<PemPair> {
  const m = await loadX509();
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await m.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${commonName}`,
    notBefore: new Date(nowMs - CLOCK_SKEW_MS),
    notAfter: new Date(nowMs + CA_VALIDITY_DAYS * DAY_MS),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      // pathLen 0: the CA issues node certificates only, never another CA.
      new m.BasicConstraintsExtension(true, 0, true),
      new m.KeyUsagesExtension(m.KeyUsageFlags.keyCertSign | m.KeyUsageFlags.cRLSign, true),
      await m.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: keyPem(keys.privateKey) };
}

/**
 * Issues a certificate for one node name (`replica-N` or a client id) from the CA: the name is
 * both the common name and a DNS subject alternative name, which is what the replicas and
 * clients check (docs/security.md). Usable for server and client authentication both: a
 * replica is a server to clients and a client to the other replicas.
 */
export async function issueCertificate(ca: PemPair, name: string, o: IssueOptions = {}): Promise<PemPair> {
  const m = await loadX509();
  const caCert = new m.X509Certificate(ca.certPem);
  const caKey = await webcrypto.subtle.importKey('pkcs8', createPrivateKey(ca.keyPem).export({ type: 'pkcs8', format: 'der' }), { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const nowMs = Date.now();
  const cert = await m.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${name}`,
    issuer: caCert.subject,
    notBefore: new Date(o.notBeforeMs ?? nowMs - CLOCK_SKEW_MS),
    notAfter: new Date(o.notAfterMs ?? nowMs + CERT_VALIDITY_DAYS * DAY_MS),
    signingKey: caKey,
    publicKey: keys.publicKey,
    signingAlgorithm: ALG,
    extensions: [
      new m.BasicConstraintsExtension(false, undefined, true),
      new m.KeyUsagesExtension(m.KeyUsageFlags.digitalSignature, true),
      new m.ExtendedKeyUsageExtension([m.ExtendedKeyUsage.serverAuth, m.ExtendedKeyUsage.clientAuth]),
      new m.SubjectAlternativeNameExtension([{ type: 'dns', value: name }]),
      await m.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: keyPem(keys.privateKey) };
}

/** The CA's private key file: beside its certificate, `ca.crt` → `ca.key`. */
export function caKeyPathFor(caFile: string): string {
  return caFile.replace(/\.(crt|pem|cer)$/, '') + '.key';
}

function writePair(certFile: string, keyFile: string, pair: PemPair): void {
  mkdirSync(dirname(certFile), { recursive: true, mode: 0o700 });
  mkdirSync(dirname(keyFile), { recursive: true, mode: 0o700 });
  // A final newline, so that `cat ca.crt other.crt > bundle.crt` makes a bundle that parses.
  writeFileSync(certFile, pair.certPem.endsWith('\n') ? pair.certPem : `${pair.certPem}\n`, { mode: 0o644 });
  writeFileSync(keyFile, pair.keyPem, { mode: 0o600 });
  // writeFileSync's mode applies only to a new file: an overwritten key keeps its old mode.
  chmodSync(keyFile, 0o600);
}

/**
 * Issues the certificate of one node from the CA whose files are on this host, and writes its
 * certificate and key where the tls: section of cluster.yaml says (reused by `fitbroker keys`).
 */
export async function issueTlsFiles(files: TlsFiles, name: string, o: IssueOptions & { caKeyFile?: string } = {}): Promise<{ certFile: string; keyFile: string }> {
  const caKeyFile = o.caKeyFile ?? caKeyPathFor(files.ca);
  let ca: PemPair;
  try {
    ca = { certPem: readFileSync(files.ca, 'utf8'), keyPem: readFileSync(caKeyFile, 'utf8') };
  } catch (e) {
    throw new FitError('FIT_ERR_TLS_CERT', `cannot read the cluster CA (${files.ca} and its key ${caKeyFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); issue certificates on the host that holds the CA, or make one with \`fitbroker init --tls\``, { path: caKeyFile });
  }
  const pair = await issueCertificate(ca, name, o);
  const certFile = tlsPathFor(files.cert, name);
  const keyFile = tlsPathFor(files.key, name);
  writePair(certFile, keyFile, pair);
  return { certFile, keyFile };
}

/** Makes a new CA (replacing any there) and one certificate per name. */
export async function writeClusterTls(files: TlsFiles, names: string[], clusterName = 'fitbroker cluster CA'): Promise<void> {
  const ca = await makeCertificateAuthority(clusterName);
  writePair(files.ca, caKeyPathFor(files.ca), ca);
  for (const name of names) await issueTlsFiles(files, name);
}
