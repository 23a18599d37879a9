// The request bodies a replica attests, as its journal holds them (journal.ts, docs/consensus.md
// "Restart from the journal"). A replica attests (HOLD) only a body on its disk, so that every
// ordered body survives on a correct replica even when every replica restarts at once. The
// bodies one step took are one hold group (one key); a decided batch refers to the bodies of
// groups on disk instead of writing them again, which pins those groups until that batch's
// entry is truncated. A body kept aside once its request was decided under another body
// (Core.spareBodies) pins its group until the seq it is let go at, the same way. A group goes
// once every request in it was decided and no decided entry or kept body pins it any more.
//
// It must never: let a group go while a decided entry on disk refers to one of its bodies, or
// a body in it is kept aside, or keep a group whose requests were all decided past the
// truncation of what pins it.

import { refOf, type Ref, type Req } from './messages.js';
import { refKey } from './availability.js';
import type { HoldEntry, JournalEntry } from './journal.js';

const reqKey = (r: { client: string; seq: number }): string => `${r.client}\u0000${r.seq}`;

/** A body let go from hold group `id` (a letgo entry): the same body held again later is another group's. */
export const letGoKey = (id: number, ref: Ref): string => `${id}\u0000${refKey(ref)}`;

interface Group {
  /** The references in it not decided yet. */
  live: Set<string>;
  /** The highest seq whose decided entry refers to one of its bodies. */
  pinnedTo: number;
}

export class HeldBodies {
  private readonly groups = new Map<number, Group>();
  /** Groups all decided, by id, with the seq they are pinned to. */
  private readonly done = new Map<number, number>();
  /** Which group holds each journaled body, by (client, seq) then reference. */
  private readonly heldIn = new Map<string, { client: string; seq: number; groups: Map<string, number> }>();
  /** The group this step builds, with id nextId. */
  private building: Req[] = [];
  private nextId = 1;
  /** Decided entries up to this seq are truncated in the journal. */
  private truncatedTo = 0;

  /** A body to attest: into this step's group, unless it is on disk already. */
  add(req: Req, ref: Ref): void {
    if (this.heldIn.get(reqKey(ref))?.groups.has(refKey(ref))) return;
    this.index(ref, this.nextId);
    this.building.push(req);
  }

  /** The group this step built, to journal with the output whose HOLD attests it. */
  takeGroup(): HoldEntry | undefined {
    if (this.building.length === 0) return undefined;
    const id = this.nextId++;
    this.groups.set(id, { live: new Set(this.building.map((q) => refKey(refOf(q)))), pinnedTo: 0 });
    const e: HoldEntry = { type: 'hold', id, reqs: this.building };
    this.building = [];
    return e;
  }

  /** A decided batch as journaled at `seq`: a body a group on disk holds by reference (pinning the group), any other by itself. */
  batch(seq: number, batch: Req[]): (Req | Ref)[] {
    return batch.map((r) => {
      const ref = refOf(r);
      const id = this.heldIn.get(reqKey(ref))?.groups.get(refKey(ref));
      const g = id === undefined ? undefined : this.groups.get(id);
      if (!g) return r;
      g.pinnedTo = Math.max(g.pinnedTo, seq);
      return ref;
    });
  }

  /**
   * (client, seq) was decided: its bodies leave their groups; what leaves the journal now. A
   * body other than `spared.decided` (the reference decided) was kept aside for a faulty
   * leader's second batch (Core.spareBodies) until seq `spared.to`: its group is pinned as long,
   * so that a restart finds it.
   */
  decided(r: { client: string; seq: number }, spared?: { decided: string | undefined; to: number }): JournalEntry[] {
    const h = this.heldIn.get(reqKey(r));
    if (!h) return [];
    this.heldIn.delete(reqKey(r));
    const out: JournalEntry[] = [];
    for (const [rk, id] of h.groups) this.leave(rk, id, spared !== undefined && rk !== spared.decided ? spared.to : 0, out);
    return out;
  }

  /**
   * A body let go undecided (Availability.expire): it leaves its group; what the journal says
   * of it now (the group goes, or, while the group's other bodies stay, that this one went).
   */
  dropped(ref: Ref): JournalEntry[] {
    const h = this.heldIn.get(reqKey(ref));
    const id = h?.groups.get(refKey(ref));
    if (!h || id === undefined) return [];
    h.groups.delete(refKey(ref));
    if (h.groups.size === 0) this.heldIn.delete(reqKey(ref));
    const out: JournalEntry[] = [];
    this.leave(refKey(ref), id, 0, out);
    if (this.groups.has(id) || this.done.has(id)) out.push({ type: 'letgo', id, ref });
    return out;
  }

  /** Body `rk` leaves group `id`, which stays pinned at least to `pinTo`; the group goes once empty and unpinned. */
  private leave(rk: string, id: number, pinTo: number, out: JournalEntry[]): void {
    if (id === this.nextId) {
      // Still being built in this step: it never reaches the journal.
      this.building = this.building.filter((q) => refKey(refOf(q)) !== rk);
      return;
    }
    const g = this.groups.get(id);
    if (!g) return;
    g.pinnedTo = Math.max(g.pinnedTo, pinTo);
    g.live.delete(rk);
    if (g.live.size > 0) return;
    this.groups.delete(id);
    if (g.pinnedTo <= this.truncatedTo) out.push({ type: 'unhold', id });
    else this.done.set(id, g.pinnedTo);
  }

  /** Every held request `decided` says was decided (a snapshot skipped their decisions); their bodies, kept aside until seq `sparedTo`, pin their groups as long. */
  decidedWhere(decided: (client: string, seq: number) => boolean, sparedTo: number): JournalEntry[] {
    const out: JournalEntry[] = [];
    for (const h of [...this.heldIn.values()]) if (decided(h.client, h.seq)) out.push(...this.decided(h, { decided: undefined, to: sparedTo }));
    return out;
  }

  /** Decided entries up to `seq` are truncated (in the same output, before what this returns): the groups only they referred to go. */
  truncated(seq: number): JournalEntry[] {
    if (seq <= this.truncatedTo) return [];
    this.truncatedTo = seq;
    const out: JournalEntry[] = [];
    for (const [id, pinnedTo] of this.done) {
      if (pinnedTo > this.truncatedTo) continue;
      this.done.delete(id);
      out.push({ type: 'unhold', id });
    }
    return out;
  }

  /**
   * Recovery: the groups in the journal, `pins` (for each body a decided entry on disk refers to,
   * the highest such seq) and how far decided entries were truncated at least. `hold` takes each
   * body whose request is not decided; `spare` is offered each one whose request is, and says
   * whether it keeps it aside until seq `spared.to` (its group is pinned as long). A body of
   * a group in `letGo` (letGoKey: let go undecided before the crash; held again in a later
   * group, it is that group's) is neither; one `hold` could not attest is left out. What leaves
   * the journal now is returned.
   */
  restore(
    groups: HoldEntry[],
    pins: Map<string, number>,
    truncatedTo: number,
    isDecided: (ref: Ref) => boolean,
    hold: (req: Req, ref: Ref) => boolean,
    spared: { to: number; spare: (req: Req, ref: Ref) => boolean },
    letGo: ReadonlySet<string> = new Set(),
  ): JournalEntry[] {
    for (const g of groups) {
      let pinnedTo = 0;
      const live = new Set<string>();
      for (const req of g.reqs) {
        const ref = refOf(req);
        pinnedTo = Math.max(pinnedTo, pins.get(refKey(ref)) ?? 0);
        if (letGo.has(letGoKey(g.id, ref))) continue;
        if (isDecided(ref)) {
          if (spared.spare(req, ref)) pinnedTo = Math.max(pinnedTo, spared.to);
          continue;
        }
        if (this.heldIn.get(reqKey(ref))?.groups.has(refKey(ref)) || !hold(req, ref)) continue;
        this.index(ref, g.id);
        live.add(refKey(ref));
      }
      if (live.size > 0) this.groups.set(g.id, { live, pinnedTo });
      else this.done.set(g.id, pinnedTo);
      this.nextId = Math.max(this.nextId, g.id + 1);
    }
    const out = this.truncated(truncatedTo);
    // Groups done and pinned to nothing still on disk (truncated before the crash, the unhold lost).
    for (const [id, pinnedTo] of this.done) {
      if (pinnedTo > this.truncatedTo) continue;
      this.done.delete(id);
      out.push({ type: 'unhold', id });
    }
    return out;
  }

  private index(ref: Ref, group: number): void {
    const k = reqKey(ref);
    let h = this.heldIn.get(k);
    if (!h) this.heldIn.set(k, (h = { client: ref.client, seq: ref.seq, groups: new Map() }));
    h.groups.set(refKey(ref), group);
  }
}
