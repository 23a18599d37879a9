// Per-replica acknowledgement bookkeeping for one subscribe stream: which positions of the
// replica's stream the voter has resolved, as a cumulative prefix the replica can trim its
// in-flight list by, and how many copies were resolved since credit was last granted.
//
// Credit follows resolution, not arrival: a copy the voter still holds (its event waits for
// other replicas' copies) keeps its credit, so a replica that runs ahead of the others stops
// once its credits are held, instead of filling the voter until it evicts undecided events.
//
// A correct replica sends no further ahead than its credits; the ring grows to
// RESOLVED_AHEAD_MAX for that, and a position beyond it (only a faulty replica sends one) is
// counted for credit but never acknowledged, so it cannot grow the subscriber's memory.

export { ResolvedPrefix as StreamAcks, RESOLVED_AHEAD_MAX } from '../broker/prefix.js';
