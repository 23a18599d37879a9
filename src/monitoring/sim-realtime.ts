// Runs a sim back end on the wall clock, for the agent and the demo: the simulated VM itself
// never reads a clock (sim.ts), so something outside it must advance it as real time passes.

import type { SimBackend } from './sim.js';

/** How often the simulated VM catches up with real time. */
const TICK_MS = 20;

/** Advances the sim (once it exists) with the wall clock until the returned function is called. */
export function simInRealTime(sim: () => Pick<SimBackend, 'advance'> | undefined): () => void {
  let last = performance.now();
  const t = setInterval(() => {
    const now = performance.now();
    sim()?.advance(now - last);
    last = now;
  }, TICK_MS);
  return () => clearInterval(t);
}
