// Which request bodies this replica holds, and which references f+1 replicas said they hold.
// Consensus orders references (client, seq, body digest); a reference is proposed and
// prepared only once f+1 replicas attested its body, so at least one correct replica holds it
// and answers a fetch: a faulty leader cannot order a request nobody sent, and a faulty client
// that sends a body to faulty replicas alone cannot make correct ones wait for it forever.
//
// An attestation holds for W seqs (attestationSeqs): it carries the seq its sender had executed
// when it attested (`since`), and a batch at seq q counts it only if since >= q - W. So once a
// replica executed since + W, no batch it has not executed can count its attestation, and a
// body that is still undecided and not ready may go. Without that, requests that never become
// ready (a faulty client's bodies cut differently for each replica, a publisher that crashed
// mid-send) would wait for good, and enough of them fill pendingMax for everyone.

import { refOf, sameRef, type Ref, type Req } from './messages.js';

export const reqKey = (r: { client: string; seq: number }): string => `${r.client}\u0000${r.seq}`;
/**
 * Keys are asked for every reference at every step: built once per Ref object and kept on it,
 * under a symbol that is not enumerable, so that no encoding or comparison sees it. (A WeakMap
 * took 30-80 ns a lookup, a property 3: refKey was 2.5 % of an ordering replica's time.)
 */
const KEY = Symbol('refKey');
export const refKey = (r: Ref): string => {
  const k = (r as Ref & { [KEY]?: string })[KEY];
  if (k !== undefined) return k;
  // Urgency too, before the digest (a digest is any string a faulty replica likes): its
  // attestation of a reference with urgency flipped (which no body matches: the digest covers
  // it) must not take the place of the real one.
  const made = `${reqKey(r)}\u0000${r.urgent === true ? 'u' : 'o'}${r.digest}`;
  Object.defineProperty(r, KEY, { value: made });
  return made;
};

interface Attested {
  ref: Ref;
  /** Who attested it, with the seq each had executed then (Infinity: an older replica's, for good). */
  by: Map<number, number>;
}

/** What executing up to a seq let go (expire()). */
export interface Expired {
  /** References no longer ready and not held here: they stop waiting. */
  gone: Ref[];
  /** Of those, the bodies this replica held and let go undecided. */
  letGo: Req[];
}

export class Availability {
  private readonly bodies = new Map<string, Req>();
  private readonly attested = new Map<string, Attested>();
  /** The references known for each (client, seq): a faulty client may send different bodies under one. */
  private readonly byReq = new Map<string, Set<string>>();
  /** Attestations each replica has outstanding: a faulty one cannot fill memory with made-up references. */
  private readonly outstanding: number[];
  private holdOut: { refs: Ref[]; since: number[] } = { refs: [], since: [] };
  /**
   * The references with an attestation that ends once a seq is executed (since + W), by that
   * seq; empty when W is Infinity. A decided one leaves at once (forget), so this holds what
   * waits, not everything attested over the last W seqs.
   */
  private readonly expiring = new Map<number, Set<string>>();
  /** Attestations ending at or below this seq are gone. */
  private expiredThrough = 0;

  constructor(
    private readonly n: number,
    private readonly f: number,
    private readonly id: number,
    /** Attestations kept per replica (pendingMax): past it, a replica's further ones are ignored. */
    private readonly perReplicaMax: number,
    /** W: the seqs an attestation holds for past the one its sender had executed (Infinity: for good). */
    private readonly window: number,
  ) {
    this.outstanding = new Array<number>(n).fill(0);
  }

  /**
   * A body this replica received from its client, having executed `since`: held, attested,
   * announced with the next HOLD. Undefined, and not held, when its attestation cannot be
   * recorded: a body this replica announced without recording it would never go, while the
   * others counted the announcement (availability must never rest on one it let go).
   */
  hold(req: Req, since: number): Ref | undefined {
    const ref = refOf(req);
    if (this.attestOwn(ref, since) === undefined) return undefined;
    this.bodies.set(refKey(ref), req);
    this.index(ref, refKey(ref));
    return ref;
  }

  /**
   * This replica attests a body it holds, having executed `since`, unless it did already: the
   * seq its attestation carries, the first one (a later one would let the body stay for good),
   * or undefined if none could be recorded. `announce`: in the next HOLD (a resend sends its own).
   */
  attestOwn(ref: Ref, since: number, announce = true): number | undefined {
    const first = this.attested.get(refKey(ref))?.by.get(this.id);
    if (first !== undefined) return first;
    this.attest(this.id, ref, since);
    if (this.attested.get(refKey(ref))?.by.get(this.id) !== since) return undefined;
    if (announce) {
      this.holdOut.refs.push(ref);
      this.holdOut.since.push(since);
    }
    return since;
  }

  /**
   * `from` attests `ref`, having executed `since`; true when that makes it ready (f+1
   * attestations) just now. A replica's first attestation of a reference stands: a later one
   * (a replica that restarted attests again) is not taken, so that no replica can keep a
   * request that never becomes ready waiting for good by attesting it again and again. Its
   * own are not bounded by perReplicaMax: they are as many as the bodies it holds, which
   * admission bounds.
   */
  attest(from: number, ref: Ref, since = Infinity): boolean {
    if (from < 0 || from >= this.n || since + this.window <= this.expiredThrough) return false;
    const full = from !== this.id && this.outstanding[from]! >= this.perReplicaMax;
    const k = refKey(ref);
    let a = this.attested.get(k);
    if (!a) {
      if (full) return false;
      this.attested.set(k, (a = { ref, by: new Map() }));
      this.index(ref, k);
    }
    if (a.by.has(from) || full || !sameRef(a.ref, ref)) return false;
    this.setSince(a, k, from, since);
    this.outstanding[from]!++;
    return a.by.size === this.f + 1;
  }

  private setSince(a: Attested, key: string, from: number, since: number): void {
    a.by.set(from, since);
    const end = since + this.window;
    if (end === Infinity) return;
    let keys = this.expiring.get(end);
    if (!keys) this.expiring.set(end, (keys = new Set()));
    keys.add(key);
  }

  private unexpiring(a: Attested, key: string): void {
    for (const since of a.by.values()) {
      const keys = this.expiring.get(since + this.window);
      if (keys?.delete(key) && keys.size === 0) this.expiring.delete(since + this.window);
    }
  }

  /** `from`'s attestation of `ref` is counted, with a seq at least `since` (and `ref` not decided since). */
  attestedBy(from: number, ref: Ref, since = -Infinity): boolean {
    const at = this.attested.get(refKey(ref))?.by.get(from);
    return at !== undefined && at >= since;
  }

  /** f+1 attestations that have not ended: ready to order at the next seq to execute. */
  ready(ref: Ref): boolean {
    return (this.attested.get(refKey(ref))?.by.size ?? 0) >= this.f + 1;
  }

  /** Ready to order at seq `q`: f+1 attestations whose `since` is at least q - W. */
  readyAt(ref: Ref, q: number): boolean {
    const by = this.attested.get(refKey(ref))?.by;
    if (!by || by.size <= this.f) return false;
    if (this.window === Infinity) return true;
    let valid = 0;
    for (const since of by.values()) if (since >= q - this.window && ++valid > this.f) return true;
    return false;
  }

  /**
   * Some attestation of a reference not decided ends once a seq up to `limit` is executed: a
   * request that waits, here or at another replica, for seqs to move on. (A faulty replica's
   * attestation that claims a seq far ahead ends far above any limit, and counts for nothing.)
   */
  endsBy(limit: number): boolean {
    for (const end of this.expiring.keys()) if (end <= limit) return true;
    return false;
  }

  allReadyAt(refs: readonly Ref[], q: number): boolean {
    return refs.every((r) => this.readyAt(r, q));
  }

  /**
   * Executed up to `through`: attestations whose window ended go. A reference left with fewer
   * than f+1 stops waiting; a body this replica held of one goes too once its own attestation
   * ended, since no batch it has not executed can count that attestation any more.
   */
  expire(through: number): Expired {
    const out: Expired = { gone: [], letGo: [] };
    if (this.expiring.size === 0 || through <= this.expiredThrough) {
      this.expiredThrough = Math.max(this.expiredThrough, through);
      return out;
    }
    const ends: number[] = [];
    if (through - this.expiredThrough <= this.expiring.size) {
      for (let s = this.expiredThrough + 1; s <= through; s++) if (this.expiring.has(s)) ends.push(s);
    } else for (const s of this.expiring.keys()) if (s <= through) ends.push(s);
    this.expiredThrough = through;
    const touched = new Map<string, Ref>();
    for (const end of ends) {
      for (const key of this.expiring.get(end)!) {
        const a = this.attested.get(key);
        if (!a) continue;
        for (const [from, since] of a.by) {
          // Another attester's, ending later.
          if (since + this.window > through) continue;
          a.by.delete(from);
          this.outstanding[from]!--;
          touched.set(key, a.ref);
        }
        if (a.by.size === 0) this.attested.delete(key);
      }
      this.expiring.delete(end);
    }
    for (const [key, ref] of touched) {
      if (this.ready(ref) || this.attestedBy(this.id, ref)) continue;
      out.gone.push(ref);
      const body = this.bodies.get(key);
      if (body) {
        this.bodies.delete(key);
        out.letGo.push(body);
      }
      if (!this.attested.has(key)) this.unindex(ref, key);
    }
    return out;
  }

  body(ref: Ref): Req | undefined {
    return this.bodies.get(refKey(ref));
  }

  /** Who attested `ref` (whom to ask for its body), or everyone else when nobody did here. */
  holders(ref: Ref): number[] {
    const by = this.attested.get(refKey(ref))?.by;
    const list = by ? [...by.keys()].filter((r) => r !== this.id) : [];
    return list.length > 0 ? list : Array.from({ length: this.n }, (_, i) => i).filter((i) => i !== this.id);
  }

  /** A fetched body: kept only if it is the body of a reference this replica was told of. */
  addBody(req: Req, wanted: (ref: Ref) => boolean): boolean {
    const ref = refOf(req);
    const k = refKey(ref);
    if (this.bodies.has(k) || !(this.attested.has(k) || wanted(ref))) return false;
    this.bodies.set(k, req);
    this.index(ref, k);
    return true;
  }

  private index(ref: Ref, k: string): void {
    const rk = reqKey(ref);
    let set = this.byReq.get(rk);
    if (!set) this.byReq.set(rk, (set = new Set()));
    set.add(k);
  }

  private unindex(ref: Ref, k: string): void {
    const rk = reqKey(ref);
    const set = this.byReq.get(rk);
    if (set?.delete(k) && set.size === 0) this.byReq.delete(rk);
  }

  /** The references to announce in a HOLD, with the seq each attestation carries (emptied). */
  takeHolds(): { refs: Ref[]; since: number[] } {
    const out = this.holdOut;
    this.holdOut = { refs: [], since: [] };
    return out;
  }

  /**
   * A decided request: the bodies and attestations of every reference under its (client, seq)
   * go. Returns the keys of those references, and the bodies this replica held.
   */
  forget(req: { client: string; seq: number }): { keys: string[]; bodies: Req[] } {
    const rk = reqKey(req);
    const keys = [...(this.byReq.get(rk) ?? [])];
    const bodies: Req[] = [];
    for (const k of keys) {
      const body = this.bodies.get(k);
      if (body) bodies.push(body);
      this.bodies.delete(k);
      const a = this.attested.get(k);
      if (!a) continue;
      for (const r of a.by.keys()) this.outstanding[r]!--;
      this.unexpiring(a, k);
      this.attested.delete(k);
    }
    this.byReq.delete(rk);
    return { keys, bodies };
  }

  /** After a snapshot skipped decisions: forgets every request `decided` says was decided; returns the bodies it held. */
  forgetDecided(decided: (client: string, seq: number) => boolean): Req[] {
    const refs = [...this.attested.values()].map((a) => a.ref);
    const bodies: Req[] = [];
    for (const req of [...refs, ...this.bodies.values()]) if (decided(req.client, req.seq)) bodies.push(...this.forget(req).bodies);
    return bodies;
  }

  /** This replica holds a body under `req`'s (client, seq), whatever its digest. */
  holdsBodyOf(req: { client: string; seq: number }): boolean {
    for (const k of this.byReq.get(reqKey(req)) ?? []) if (this.bodies.has(k)) return true;
    return false;
  }

  get size(): { bodies: number; attested: number } {
    return { bodies: this.bodies.size, attested: this.attested.size };
  }
}
