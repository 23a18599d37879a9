// The vmi back end's public surface: the guest it builds and boots, its introspection profile,
// the GDB remote protocol client it talks to QEMU with, and the back end itself (docs/vmi.md).
export { ACK, INTERRUPT, NACK, PacketReader, X86_64_GPRS, checksum, decodeBody, encodePacket, escape, insertBreakpoint, parseGsBases, parseMemory, parseRegisters, parseStop, readMemory, removeBreakpoint, writeRegister } from './gdb-rsp.js';
export type { Received, X86Register } from './gdb-rsp.js';
export { GDB_REPLY_TIMEOUT_MS, GdbClient } from './gdb-client.js';
export { GUEST_WORKLOADS, PROFILE_SYMBOLS, initScript } from './guest-init.js';
export type { GuestWorkload } from './guest-init.js';
export { loadProfile, offsets, parseBtfStructs, parseKallsyms, profileSchema, syscallTable } from './profile.js';
export type { Profile, StructLayout } from './profile.js';
export { GUEST_MEMORY_MB, GUEST_READY_TIMEOUT_MS, Guest, QEMU_BINARY, detectAccel, freePort } from './qemu.js';
export type { Accel, GuestFiles, GuestOptions, GuestPs } from './qemu.js';
export { VM_TOOLS, defaultVmCache, prepareGuest } from './guest.js';
export type { PrepareOptions, PreparedGuest } from './guest.js';
export { Introspector, TASKS_MAX, formatArg } from './introspect.js';
export { VMI_CENSUS_MAX_MS, VMI_CENSUS_MS, VMI_CENSUS_ROUNDS, VMI_SETTLE_MS, VMI_WARMUP_MS, vmiBackend } from './backend.js';
export type { VmiBackend, VmiOptions } from './backend.js';
