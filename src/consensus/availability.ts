// Which request bodies this replica holds, and which references f+1 replicas said they hold.
// Consensus orders references (client, seq, body digest); a reference is proposed and
// prepared only once f+1 replicas attested its body, so at least one correct replica holds it
// and answers a fetch: a faulty leader cannot order a request nobody sent, and a faulty client
// that sends a body to faulty replicas alone cannot make correct ones wait for it forever.

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
  const made = `${reqKey(r)}\u0000${r.digest}`;
  Object.defineProperty(r, KEY, { value: made });
  return made;
};

interface Attested {
  ref: Ref;
  by: Set<number>;
}

export class Availability {
  private readonly bodies = new Map<string, Req>();
  private readonly attested = new Map<string, Attested>();
  /** The references known for each (client, seq): a faulty client may send different bodies under one. */
  private readonly byReq = new Map<string, Set<string>>();
  /** Attestations each replica has outstanding: a faulty one cannot fill memory with made-up references. */
  private readonly outstanding: number[];
  private holdOut: Ref[] = [];

  constructor(
    private readonly n: number,
    private readonly f: number,
    private readonly id: number,
    /** Attestations kept per replica (pendingMax): past it, a replica's further ones are ignored. */
    private readonly perReplicaMax: number,
  ) {
    this.outstanding = new Array<number>(n).fill(0);
  }

  /** A body this replica received from its client: held, attested, announced with the next HOLD. */
  hold(req: Req): Ref {
    const ref = refOf(req);
    this.bodies.set(refKey(ref), req);
    this.index(ref, refKey(ref));
    this.holdOut.push(ref);
    this.attest(this.id, ref);
    return ref;
  }

  /** `from` attests `ref`; true when that makes it ready (f+1 attestations) just now. */
  attest(from: number, ref: Ref): boolean {
    if (from < 0 || from >= this.n) return false;
    const k = refKey(ref);
    let a = this.attested.get(k);
    if (!a) {
      if (this.outstanding[from]! >= this.perReplicaMax) return false;
      this.attested.set(k, (a = { ref, by: new Set() }));
      this.index(ref, k);
    }
    if (a.by.has(from) || !sameRef(a.ref, ref)) return false;
    if (this.outstanding[from]! >= this.perReplicaMax) return false;
    a.by.add(from);
    this.outstanding[from]!++;
    return a.by.size === this.f + 1;
  }

  /** `from`'s attestation of `ref` is counted (and `ref` not decided since). */
  attestedBy(from: number, ref: Ref): boolean {
    return this.attested.get(refKey(ref))?.by.has(from) === true;
  }

  ready(ref: Ref): boolean {
    return (this.attested.get(refKey(ref))?.by.size ?? 0) >= this.f + 1;
  }

  allReady(refs: readonly Ref[]): boolean {
    return refs.every((r) => this.ready(r));
  }

  body(ref: Ref): Req | undefined {
    return this.bodies.get(refKey(ref));
  }

  /** Who attested `ref` (whom to ask for its body), or everyone else when nobody did here. */
  holders(ref: Ref): number[] {
    const by = this.attested.get(refKey(ref))?.by;
    const list = by ? [...by].filter((r) => r !== this.id) : [];
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

  /** The references to announce in a HOLD (emptied). */
  takeHolds(): Ref[] {
    const out = this.holdOut;
    this.holdOut = [];
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
      for (const r of a.by) this.outstanding[r]!--;
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
