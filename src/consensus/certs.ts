// Checks of the signed messages and certificates a replica accepts from others, and the one
// computation two replicas must agree on during a view change (which batches the new view
// re-proposes). Pure functions: everything a Byzantine replica sends passes through here.

import { batchDigest, GENESIS_STATE, signable, type NewView, type PrePrepare, type PreparedCert, type Prepare, type Ref, type Signer, type StableCheckpoint, type ViewChange } from './messages.js';

export interface Group {
  n: number;
  f: number;
}

export const leaderOf = (view: number, n: number): number => view % n;

export const GENESIS: StableCheckpoint = { seq: 0, state: GENESIS_STATE, snapshot: '', proof: [] };

export function validPrePrepare(m: PrePrepare, g: Group, signer: Signer): boolean {
  return m.from === leaderOf(m.view, g.n) && m.seq > 0 && m.digest === batchDigest(m.batch) && signer.verify(m.from, signable(m), m.sig);
}

export function validPrepare(m: Prepare, signer: Signer): boolean {
  return signer.verify(m.from, signable(m), m.sig);
}

/** A PRE-PREPARE and 2f PREPAREs for it from distinct replicas other than its leader. */
export function validPreparedCert(c: PreparedCert, g: Group, signer: Signer): boolean {
  const pp = c.prePrepare;
  if (!validPrePrepare(pp, g, signer)) return false;
  const from = new Set<number>();
  for (const p of c.prepares) {
    if (p.view !== pp.view || p.seq !== pp.seq || p.digest !== pp.digest || p.from === pp.from || p.from < 0 || p.from >= g.n || from.has(p.from)) return false;
    if (!validPrepare(p, signer)) return false;
    from.add(p.from);
  }
  return from.size >= 2 * g.f;
}

/** 2f+1 matching signed checkpoints from distinct replicas (the genesis state needs none). */
export function validStable(s: StableCheckpoint, g: Group, signer: Signer): boolean {
  if (s.seq === 0) return s.state === GENESIS_STATE && s.snapshot === '';
  const from = new Set<number>();
  for (const c of s.proof) {
    if (c.seq !== s.seq || c.state !== s.state || c.snapshot !== s.snapshot || c.from < 0 || c.from >= g.n || from.has(c.from)) return false;
    if (!signer.verify(c.from, signable(c), c.sig)) return false;
    from.add(c.from);
  }
  return from.size >= 2 * g.f + 1;
}

export function validViewChange(vc: ViewChange, g: Group, signer: Signer): boolean {
  if (vc.from < 0 || vc.from >= g.n || vc.view < 1 || !signer.verify(vc.from, signable(vc), vc.sig)) return false;
  if (!validStable(vc.stable, g, signer)) return false;
  const seqs = new Set<number>();
  for (const c of vc.prepared) {
    const pp = c.prePrepare;
    if (pp.seq <= vc.stable.seq || pp.view >= vc.view || seqs.has(pp.seq) || !validPreparedCert(c, g, signer)) return false;
    seqs.add(pp.seq);
  }
  return true;
}

/** What a new view re-proposes: every seq between the highest stable checkpoint and the highest prepared seq. */
export interface NewViewPlan {
  stable: StableCheckpoint;
  /** seq -> batch: the highest-view prepared batch at that seq, or an empty (null) batch. */
  batches: { seq: number; batch: Ref[] }[];
}

/**
 * PBFT's choice (Castro & Liskov 2002, §4.4): from 2f+1 view changes, the highest stable
 * checkpoint, and for each seq above it up to the highest prepared one, the batch prepared in
 * the highest view, or nothing. Deterministic in the set of view changes, so every replica
 * recomputes it to check the new leader's NEW-VIEW.
 */
export function planNewView(vcs: readonly ViewChange[]): NewViewPlan {
  let stable = GENESIS;
  for (const vc of vcs) if (vc.stable.seq > stable.seq) stable = vc.stable;
  const best = new Map<number, PrePrepare>();
  let maxSeq = stable.seq;
  for (const vc of vcs) {
    for (const c of vc.prepared) {
      const pp = c.prePrepare;
      if (pp.seq <= stable.seq) continue;
      const cur = best.get(pp.seq);
      if (!cur || pp.view > cur.view) best.set(pp.seq, pp);
      if (pp.seq > maxSeq) maxSeq = pp.seq;
    }
  }
  const batches: NewViewPlan['batches'] = [];
  for (let s = stable.seq + 1; s <= maxSeq; s++) batches.push({ seq: s, batch: best.get(s)?.batch ?? [] });
  return { stable, batches };
}

/** A NEW-VIEW is valid when 2f+1 valid view changes for its view back exactly what it re-proposes. */
export function validNewView(nv: NewView, g: Group, signer: Signer): NewViewPlan | undefined {
  if (nv.from !== leaderOf(nv.view, g.n) || !signer.verify(nv.from, signable(nv), nv.sig)) return undefined;
  const from = new Set<number>();
  for (const vc of nv.viewChanges) {
    if (vc.view !== nv.view || from.has(vc.from) || !validViewChange(vc, g, signer)) return undefined;
    from.add(vc.from);
  }
  if (from.size < 2 * g.f + 1) return undefined;
  const plan = planNewView(nv.viewChanges);
  if (nv.prePrepares.length !== plan.batches.length) return undefined;
  for (let i = 0; i < plan.batches.length; i++) {
    const pp = nv.prePrepares[i]!;
    const want = plan.batches[i]!;
    if (pp.view !== nv.view || pp.seq !== want.seq || pp.digest !== batchDigest(want.batch) || !validPrePrepare(pp, g, signer)) return undefined;
  }
  return plan;
}
