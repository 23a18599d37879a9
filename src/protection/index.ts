export { generateIdentity, publicKeyOf, loadPrivateKey, parsePublicKey, isValidPublicKey, signBytes, verifyBytes } from './keys.js';
export type { GeneratedKeyPair } from './keys.js';
export { authTranscript, newNonce, AUTH_VERSION, NONCE_BYTES } from './auth.js';
export { loadTlsIdentity, certificateNames, parseCertificates, replicaTlsName, tlsPathFor, NAME_PLACEHOLDER } from './tls.js';
export type { TlsFiles, TlsIdentity } from './tls.js';
export { makeCertificateAuthority, issueCertificate, issueTlsFiles, writeClusterTls, caKeyPathFor, CA_VALIDITY_DAYS, CERT_VALIDITY_DAYS } from './x509.js';
export type { PemPair, IssueOptions } from './x509.js';
