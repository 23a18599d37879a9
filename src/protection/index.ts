export { generateIdentity, publicKeyOf, loadPrivateKey, parsePublicKey, isValidPublicKey, signBytes, verifyBytes } from './keys.js';
export type { GeneratedKeyPair } from './keys.js';
export { authTranscript, newNonce, AUTH_VERSION, NONCE_BYTES } from './auth.js';
