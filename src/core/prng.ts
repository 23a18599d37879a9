// A small seeded pseudo-random generator (mulberry32) for everything that must replay exactly
// from one seed: the consensus simulation and the parser fuzzer in test/, and the simulated VM
// of the `sim` monitoring back end in src/monitoring/sim.ts. It is not for keys or nonces:
// nothing secret may ever come from it (node:crypto is for that).

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. Uniform in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
