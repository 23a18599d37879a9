// Probes in, consoles out: what connects fitbroker to the systems it monitors and serves.
export { hostProbe, HOST_PROBE_DEFAULTS, authFailure, parseLoadavg, parseMeminfo, parseProcStat, parseUptime } from './hostprobe.js';
export type { HostProbe, HostProbeOptions, HostEvent } from './hostprobe.js';
