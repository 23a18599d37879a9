export { ConsensusReplica } from './replica.js';
export type { ConsensusOptions, ConsensusStatus, Decision, Output } from './replica.js';
export { batchDigest, nextState, refOf, reqDigest, sameRef, signable, sha256, GENESIS_STATE } from './messages.js';
export type { Batches, Bodies, BodyFetch, Checkpoint, Commit, ConsensusMessage, Fetch, Hold, NewView, PrePrepare, Prepare, PreparedCert, Ref, Req, Signer, StableCheckpoint, ViewChange } from './messages.js';
export { leaderOf, planNewView, validNewView, validViewChange, validPreparedCert, validStable, GENESIS } from './certs.js';
export { ConsensusDriver, consensusOptions, ed25519Signer } from './driver.js';
export type { DriverOptions, DriverStatus } from './driver.js';
export { parseConsensusMessage } from './wire.js';
