// The monitoring layer's public surface: monitoring sets and their configuration, the control
// command and its answers, the back-end interface and the sim back end, the estimator and the
// predictor. The agent, the control and performance modules that wire these to the broker, and
// the ptrace, proc and vmi back ends, build on this (docs/monitoring.md).
export { SET_LIMITS, SET_NAMES, SYSCALL_NAME_PATTERN, EMPTY_CONFIG, activeSets, applySetChange, formatConfig, monitorConfigSchema, parseSetChange, parseSetChangeValue, parseSetSpec, parseSetSpecValue, sameSpec, setChangeSchema, setSpecSchema, tracesSyscall } from './sets.js';
export type { FilesParams, MonitorConfig, ProclistParams, SetChange, SetEffect, SetName, SetSpec, SyscallsParams } from './sets.js';
export { REFUSAL_REASONS, ackFor, applyCommand, commandAckSchema, commandRefusalSchema, controlCommandSchema, parseCommand, refusalFor } from './command.js';
export type { CommandAck, CommandContext, CommandOutcome, CommandRefusal, ControlCommand, RefusalReason } from './command.js';
export { zeroCosts } from './backend.js';
export type { BackendKind, Calibration, CostReport, EventSink, FilesEvent, MonitorBackend, MonitorEvent, ProcessInfo, ProclistEvent, StopTally, SyscallEvent } from './backend.js';
export { simBackend } from './sim.js';
export type { SimBackend, SimOccurrence, SimOptions } from './sim.js';
export { SIM_COST_PROFILES, SIM_JITTER_DEFAULT, SIM_WORKLOADS } from './sim-profiles.js';
export type { SimCostProfileName, SimPhase, SimWorkload } from './sim-profiles.js';
export { estimate } from './estimate.js';
export type { Estimate, StopEstimate } from './estimate.js';
export { MEASURED_EXTRACTIONS_MIN, MEASURED_STOPS_MIN, predict, predictionSchema } from './predict.js';
export type { ExtractionTerm, Prediction } from './predict.js';
export { countOpenFiles, descendants, listPids, parseStat, readOpenFiles, readProcessList, readStat } from './procfs.js';
export type { ProcStat } from './procfs.js';
export { attachTarget, launchTarget } from './target.js';
export type { LaunchOptions, Target, TargetExit } from './target.js';
export { periodicExtractions } from './periodic.js';
export type { PeriodicExtractions, PeriodicOptions, PeriodicSet } from './periodic.js';
export { COUNTER_INTERVAL_MS, PERF, parsePerfInterval, startSyscallCounter } from './rates.js';
export type { SyscallCounter } from './rates.js';
export { procBackend } from './proc.js';
export type { ProcOptions } from './proc.js';
export { STRACE, STRACE_PATH, STRACE_STRING_BYTES_MAX, parseResult, parseStraceLine, splitArgs, startStrace, straceAssembler } from './strace.js';
export type { StraceAssembler, StraceCall, StraceLine, StraceOptions, StraceSession } from './strace.js';
export { ptraceBackend } from './ptrace.js';
export type { PtraceOptions } from './ptrace.js';
export { SWITCH_SHARE, calibratePtrace } from './ptrace-calibrate.js';
export type { PtraceCalibration } from './ptrace-calibrate.js';
export { allowedCpus, colocate, lastCpu, setAffinity } from './affinity.js';
export type { Colocation } from './affinity.js';
export { calibratePtraceBackend } from './ptrace-calibrate-backend.js';
export { AGENT_BACKLOG_EVENTS_MAX, MonitorAgent, STALE_COMMAND_MS, PERF_CHANNEL, STATUS_CHANNEL, setChannel } from './agent.js';
export type { AgentOptions } from './agent.js';
export { PREDICTION_BASIS_MIN_NS, PREDICTION_WINDOW_MAX_MS, PREDICTION_WINDOW_MS_DEFAULT, PerfWindow, calibrationSchema, estimateSchema, perfReportSchema, predictFrom } from './perf.js';
export type { PerfReport } from './perf.js';
export { simInRealTime } from './sim-realtime.js';
// The vmi back end (issue 9) has its own folder and surface; the agent's users reach it here too.
export { GUEST_WORKLOADS, Guest, GdbClient, defaultVmCache, detectAccel, loadProfile, prepareGuest, vmiBackend } from './vmi/index.js';
export type { GuestWorkload, PreparedGuest, Profile, VmiBackend, VmiOptions } from './vmi/index.js';
