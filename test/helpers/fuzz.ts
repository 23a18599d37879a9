// The parser fuzzing harness (docs/security.md, "Hardening"): a seeded PRNG, mutators that
// damage valid encodings the way a broken or hostile peer would (bit flips, truncation,
// extension, length-field edits, splices), and a runner that feeds one parser its cases.
//
// The contract every parser is held to: it returns, or it throws a FitError with one of the
// codes the target allows and a message a user can act on. Anything else (a TypeError, a
// RangeError from a huge allocation, a message with "undefined" or "NaN" in it) is a failure,
// reported with the seed, the case number and the command that replays that one case.
// A case's bytes depend only on (seed, case number), so replaying needs nothing else.

import { FitError, mulberry32, type ErrorCode } from '../../src/core/index.js';

/** A seeded generator (mulberry32, from src/core/prng.ts) with the helpers the mutators use. */
export class Rng {
  private readonly draw: () => number;
  constructor(seed: number) {
    this.draw = mulberry32(seed);
  }
  /** Uniform in [0, 1). */
  next(): number {
    return this.draw();
  }
  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
  /** Half the time a boundary value, else uniform. */
  u32(): number {
    return this.chance(0.5) ? this.pick(INTERESTING_U32) : (this.next() * 2 ** 32) >>> 0;
  }
}

export const INTERESTING_U32 = [0, 1, 2, 3, 4, 7, 8, 0x7f, 0x80, 0xff, 0x100, 0xfffe, 0xffff, 0x10000, 0x3ffff, 0x40000, 0x400000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];

/** The case's own generator: depends only on the seed and the case number. */
export function caseRng(seed: number, i: number): Rng {
  return new Rng((seed ^ Math.imul(i + 1, 0x9e3779b9)) >>> 0);
}

const MUTATIONS = ['flip', 'byte', 'truncate', 'extend', 'length32', 'length16', 'delete', 'insert', 'duplicate', 'splice'] as const;

/**
 * 1-4 mutations of `valid` (never changed in place). `other` is a second valid encoding to
 * splice from: a section of another message where this one's should be.
 */
export function mutate(rng: Rng, valid: Buffer, other: Buffer): { input: Buffer; applied: string[] } {
  let b = Buffer.from(valid);
  const applied: string[] = [];
  for (let m = rng.range(1, 4); m > 0; m--) {
    const kind = rng.pick(MUTATIONS);
    applied.push(kind);
    const at = b.length === 0 ? 0 : rng.int(b.length);
    switch (kind) {
      case 'flip':
        if (b.length > 0) b[at] = b[at]! ^ (1 << rng.int(8));
        break;
      case 'byte':
        if (b.length > 0) b[at] = rng.pick([0, 1, 0x7f, 0x80, 0xff, rng.int(256)]);
        break;
      case 'truncate':
        b = b.subarray(0, rng.int(b.length + 1));
        break;
      case 'extend':
        b = Buffer.concat([b, rng.chance(0.5) ? rng.bytes(rng.range(1, 64)) : b.subarray(rng.int(b.length + 1))]);
        break;
      case 'length32':
        // Length fields are u32s at arbitrary offsets: overwrite one with a boundary value, or nudge it.
        if (b.length >= 4) {
          const o = rng.int(b.length - 3);
          b.writeUInt32BE(rng.chance(0.6) ? rng.u32() : (b.readUInt32BE(o) + rng.range(-8, 8)) >>> 0, o);
        }
        break;
      case 'length16':
        if (b.length >= 2) {
          const o = rng.int(b.length - 1);
          b.writeUInt16BE(rng.chance(0.6) ? rng.pick([0, 1, 0xff, 0x100, 0xfffe, 0xffff]) : (b.readUInt16BE(o) + rng.range(-4, 4)) & 0xffff, o);
        }
        break;
      case 'delete': {
        const n = rng.range(1, 16);
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + n)]);
        break;
      }
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), rng.bytes(rng.range(1, 16)), b.subarray(at)]);
        break;
      case 'duplicate': {
        const end = Math.min(b.length, at + rng.range(1, 64));
        b = Buffer.concat([b.subarray(0, end), b.subarray(at, end), b.subarray(end)]);
        break;
      }
      case 'splice': {
        const from = rng.int(other.length + 1);
        const piece = other.subarray(from, from + rng.range(1, 128));
        b = Buffer.concat([b.subarray(0, at), piece, b.subarray(at + (rng.chance(0.5) ? piece.length : 0))]);
        break;
      }
    }
  }
  return { input: b, applied };
}

/** One parser under fuzzing. */
export interface FuzzTarget {
  name: string;
  /** What it parses, for the summary. */
  what: string;
  /** Codes it may throw on bad input; anything else is a bug. */
  allowed: readonly ErrorCode[];
  /** A valid encoding, chosen by rng. */
  sample(rng: Rng): Buffer;
  /** Parses `input` the way production code does (and checks target-specific bounds). */
  run(input: Buffer, rng: Rng): void;
  /** Random bytes instead of a mutated sample in this share of cases (default 0.05). */
  randomShare?: number;
  /** Replaces mutate() for inputs with a structure of their own (JSON, YAML). */
  mutateInput?: (rng: Rng, valid: Buffer, other: Buffer) => { input: Buffer; applied: string[] };
}

export interface FuzzCaseInput {
  input: Buffer;
  how: string;
}

/** The input of case `i` of `target` under `seed`. */
export function caseInput(target: FuzzTarget, seed: number, i: number): { rng: Rng; c: FuzzCaseInput } {
  const rng = caseRng(seed, i);
  if (rng.chance(target.randomShare ?? 0.05)) return { rng, c: { input: rng.bytes(rng.int(256)), how: 'random bytes' } };
  const valid = target.sample(rng);
  // A few unmutated samples keep the parser's success path honest.
  if (rng.chance(0.02)) return { rng, c: { input: valid, how: 'valid' } };
  const { input, applied } = (target.mutateInput ?? mutate)(rng, valid, target.sample(rng));
  return { rng, c: { input, how: applied.join('+') } };
}

export interface FuzzFailure {
  target: string;
  seed: number;
  case: number;
  how: string;
  error: string;
  inputHex: string;
  replay: string;
}

export interface FuzzResult {
  target: string;
  cases: number;
  /** Cases the parser accepted, and the ones it refused with an allowed FitError. */
  accepted: number;
  refused: number;
  byCode: Record<string, number>;
  failures: FuzzFailure[];
  ms: number;
  /** Largest growth of the process's resident memory seen during the run. */
  rssGrowthBytes: number;
}

/** Growth of resident memory past which a run fails: a 4 GB length must never be believed. */
export const RSS_GROWTH_BYTES_MAX = 512 * 1024 * 1024;

export function replayCommand(target: string, seed: number, i?: number): string {
  return `npm run fuzz -- --parser ${target} --seed ${seed}${i === undefined ? '' : ` --case ${i}`}`;
}

/** Why `e` breaks the contract, or undefined if it is an allowed refusal. */
export function contractBreach(target: FuzzTarget, e: unknown): string | undefined {
  if (!(e instanceof FitError)) return `threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)} instead of a FitError`;
  if (!target.allowed.includes(e.code)) return `threw ${e.code} (${e.message}); this parser may throw only ${target.allowed.join(', ')}`;
  if (e.message.length < 12 || /undefined|NaN|\[object /.test(e.message)) return `threw ${e.code} with an unclear message: "${e.message}"`;
  return undefined;
}

/** Runs cases [first, first + cases) of `target` under `seed`; stops collecting after 10 failures. */
export function runFuzz(target: FuzzTarget, seed: number, cases: number, first = 0): FuzzResult {
  const r: FuzzResult = { target: target.name, cases: 0, accepted: 0, refused: 0, byCode: {}, failures: [], ms: 0, rssGrowthBytes: 0 };
  const rss0 = process.memoryUsage.rss();
  const t0 = performance.now();
  for (let i = first; i < first + cases; i++) {
    const { rng, c } = caseInput(target, seed, i);
    r.cases++;
    try {
      target.run(c.input, rng);
      r.accepted++;
    } catch (e) {
      const breach = contractBreach(target, e);
      if (breach === undefined) {
        r.refused++;
        const code = (e as FitError).code;
        r.byCode[code] = (r.byCode[code] ?? 0) + 1;
      } else if (r.failures.length < 10) {
        r.failures.push({ target: target.name, seed, case: i, how: c.how, error: breach, inputHex: c.input.subarray(0, 256).toString('hex'), replay: replayCommand(target.name, seed, i) });
      }
    }
    if ((i & 1023) === 1023 || i === first + cases - 1) {
      const growth = process.memoryUsage.rss() - rss0;
      if (growth > r.rssGrowthBytes) r.rssGrowthBytes = growth;
      if (growth > RSS_GROWTH_BYTES_MAX && r.failures.length < 10) {
        r.failures.push({ target: target.name, seed, case: i, how: 'memory', error: `resident memory grew by ${Math.round(growth / 2 ** 20)} MiB by this case`, inputHex: c.input.subarray(0, 256).toString('hex'), replay: replayCommand(target.name, seed) });
      }
    }
  }
  r.ms = performance.now() - t0;
  return r;
}

/** A failure as a report line a person can act on. */
export function describeFailure(f: FuzzFailure): string {
  return `${f.target}: seed ${f.seed} case ${f.case} (${f.how}): ${f.error}\n  input (first 256 bytes): ${f.inputHex}\n  replay: ${f.replay}`;
}

// JSON inputs: half the cases mutate the bytes (mostly invalid JSON), half the value (valid
// JSON of the wrong shape, which is what gets past JSON.parse to the schema and beyond).

export const WEIRD_VALUES: unknown[] = [null, true, 0, -1, 1.5, 2 ** 53, 1e308, -1e308, '', 'x'.repeat(2000), [], {}, [[[[]]]], { __proto__: 1 }, 'constructor', Number.MAX_SAFE_INTEGER];

export function mutateValue(rng: Rng, v: unknown, depth = 0): unknown {
  if (rng.chance(0.15) || depth > 8) return rng.pick(WEIRD_VALUES);
  if (Array.isArray(v)) {
    const out = v.map((x) => (rng.chance(0.3) ? mutateValue(rng, x, depth + 1) : x));
    if (rng.chance(0.1) && out.length > 0) out.splice(rng.int(out.length), 1);
    if (rng.chance(0.1)) out.push(out.length > 0 ? rng.pick(out) : rng.pick(WEIRD_VALUES));
    return out;
  }
  if (typeof v === 'object' && v !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      if (rng.chance(0.05)) continue;
      out[k] = rng.chance(0.3) ? mutateValue(rng, x, depth + 1) : x;
    }
    if (rng.chance(0.05)) out[rng.pick(['extra', '__proto__', 'type', 'from', 'sig'])] = rng.pick(WEIRD_VALUES);
    return out;
  }
  if (typeof v === 'number') return rng.chance(0.5) ? rng.pick([v + 1, v - 1, -v, v * 2 ** 32]) : rng.pick(WEIRD_VALUES);
  return v;
}

export function jsonMutator(rng: Rng, valid: Buffer, other: Buffer): { input: Buffer; applied: string[] } {
  if (rng.chance(0.5)) return mutate(rng, valid, other);
  const value = JSON.parse(valid.toString('utf8')) as unknown;
  return { input: Buffer.from(JSON.stringify(mutateValue(rng, value)), 'utf8'), applied: ['value'] };
}
