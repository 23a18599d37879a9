// The GDB remote serial protocol, as QEMU's gdbstub speaks it: packet framing, checksums,
// binary escaping and run-length decoding, and the few payloads the VMI back end needs
// (issue 9; shared/notes/vmi-on-these-machines.md). Written here because no well-kept npm
// package implements the client side of the protocol (the ones that exist are GDB front ends or
// unmaintained); the protocol itself is small and stable. Pure: bytes in, packets out; the
// socket client builds on it.
//
// Framing (GDB manual, "Overview" of the remote protocol):
//   $<payload>#<two hex digits: sum of the payload's bytes mod 256>
// answered by '+' (received) or '-' (resend). In a payload, '#', '$', '}' and '*' are sent as
// '}' followed by the byte XOR 0x20. A reply may be run-length encoded: "c*N" means c repeated
// (N − 29) more times, N a printable character. A lone 0x03 byte from the client interrupts
// the target.

import { FitError } from '../../core/index.js';

const ESCAPE = 0x7d;
const ESCAPED = new Set([0x23, 0x24, 0x7d, 0x2a]); // # $ } *

export const INTERRUPT = Buffer.from([0x03]);
export const ACK = Buffer.from('+');
export const NACK = Buffer.from('-');

function protocolError(message: string): FitError {
  return new FitError('FIT_ERR_VMI', `gdb remote protocol: ${message}`);
}

export function checksum(payload: Buffer): number {
  let sum = 0;
  for (const b of payload) sum = (sum + b) & 0xff;
  return sum;
}

/** Escapes a payload's special bytes ('#', '$', '}', '*'). */
export function escape(payload: Buffer): Buffer {
  const out: number[] = [];
  for (const b of payload) {
    if (ESCAPED.has(b)) out.push(ESCAPE, b ^ 0x20);
    else out.push(b);
  }
  return Buffer.from(out);
}

/** A whole packet for a payload: `$` escaped payload `#` checksum. */
export function encodePacket(payload: string | Buffer): Buffer {
  const body = escape(typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload);
  return Buffer.concat([Buffer.from('$'), body, Buffer.from(`#${checksum(body).toString(16).padStart(2, '0')}`)]);
}

/** Undoes escaping and run-length encoding of a received packet body. */
export function decodeBody(body: Buffer): Buffer {
  const out: number[] = [];
  for (let i = 0; i < body.length; i++) {
    const b = body[i]!;
    if (b === ESCAPE) {
      if (i + 1 >= body.length) throw protocolError('a packet ends in the escape byte');
      out.push(body[++i]! ^ 0x20);
    } else if (b === 0x2a) {
      if (out.length === 0 || i + 1 >= body.length) throw protocolError('a run-length marker with nothing to repeat');
      const n = body[++i]! - 29;
      if (n < 0) throw protocolError(`a run-length count below zero (${n})`);
      const last = out[out.length - 1]!;
      for (let k = 0; k < n; k++) out.push(last);
    } else out.push(b);
  }
  return Buffer.from(out);
}

export type Received =
  | { readonly kind: 'ack' }
  | { readonly kind: 'nack' }
  | { readonly kind: 'packet'; readonly payload: Buffer }
  /** A packet whose checksum did not match: answer '-' and the stub sends it again. */
  | { readonly kind: 'corrupt'; readonly body: Buffer };

/**
 * Splits a byte stream from the stub into acks and packets. Feed it chunks as they arrive;
 * bytes of an incomplete packet wait for the next chunk. Noise between packets (a stray byte)
 * is skipped, as GDB does.
 */
export class PacketReader {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Received[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const out: Received[] = [];
    let i = 0;
    while (i < this.pending.length) {
      const b = this.pending[i]!;
      if (b === 0x2b) {
        out.push({ kind: 'ack' });
        i++;
      } else if (b === 0x2d) {
        out.push({ kind: 'nack' });
        i++;
      } else if (b === 0x24 || b === 0x25) {
        // '$' a packet, '%' a notification (non-stop mode): framed the same way.
        const hash = this.findHash(i + 1);
        if (hash === -1 || hash + 2 >= this.pending.length) break;
        const body = this.pending.subarray(i + 1, hash);
        const sent = Number.parseInt(this.pending.subarray(hash + 1, hash + 3).toString('latin1'), 16);
        i = hash + 3;
        if (b === 0x25) continue;
        out.push(sent === checksum(body) ? { kind: 'packet', payload: decodeBody(body) } : { kind: 'corrupt', body: Buffer.from(body) });
      } else i++;
    }
    this.pending = this.pending.subarray(i);
    return out;
  }

  /** The '#' ending the packet that starts before `from`, skipping escaped bytes; -1 if not yet here. */
  private findHash(from: number): number {
    for (let j = from; j < this.pending.length; j++) {
      const c = this.pending[j]!;
      if (c === ESCAPE) j++;
      else if (c === 0x23) return j;
    }
    return -1;
  }
}

// ---- payloads -------------------------------------------------------------------------------

const hex = (n: bigint | number): string => n.toString(16);

/** `m addr,length`: read guest memory. */
export const readMemory = (addr: bigint, length: number): string => `m${hex(addr)},${hex(length)}`;
/** `Z0,addr,kind` / `z0,…`: insert or remove a software breakpoint (kind 1 on x86). */
export const insertBreakpoint = (addr: bigint): string => `Z0,${hex(addr)},1`;
export const removeBreakpoint = (addr: bigint): string => `z0,${hex(addr)},1`;

/** The bytes of an `m` reply; an `Exx` reply is the stub's refusal. */
export function parseMemory(reply: Buffer, length: number): Buffer {
  const text = reply.toString('latin1');
  if (/^E[0-9a-fA-F]{2}$/.test(text)) throw protocolError(`memory read refused (${text})`);
  if (!/^([0-9a-fA-F]{2})*$/.test(text)) throw protocolError(`a memory reply that is not hex: ${text.slice(0, 40)}`);
  const bytes = Buffer.from(text, 'hex');
  if (bytes.length !== length) throw protocolError(`asked for ${length} bytes of memory, got ${bytes.length}`);
  return bytes;
}

/** x86-64 general registers in the order of a `g` reply (each 8 bytes, little endian). */
export const X86_64_GPRS = ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip'] as const;
export type X86Register = (typeof X86_64_GPRS)[number];

/** The general registers from a `g` reply (QEMU sends more after rip: flags, segments, FPU). */
export function parseRegisters(reply: Buffer): Record<X86Register, bigint> {
  const bytes = Buffer.from(reply.toString('latin1'), 'hex');
  if (bytes.length < X86_64_GPRS.length * 8) throw protocolError(`a register reply of ${bytes.length} bytes, fewer than the ${X86_64_GPRS.length * 8} of the general registers`);
  const regs = {} as Record<X86Register, bigint>;
  X86_64_GPRS.forEach((name, i) => (regs[name] = bytes.readBigUInt64LE(i * 8)));
  return regs;
}

/** A stop reply (`S05`, `T05thread:01;…`); undefined for any other reply. */
export function parseStop(reply: Buffer): { signal: number; fields: Record<string, string> } | undefined {
  const text = reply.toString('latin1');
  const m = /^([ST])([0-9a-fA-F]{2})(.*)$/.exec(text);
  if (!m) return undefined;
  const fields: Record<string, string> = {};
  if (m[1] === 'T') {
    for (const pair of m[3]!.split(';')) {
      const colon = pair.indexOf(':');
      if (colon > 0) fields[pair.slice(0, colon)] = pair.slice(colon + 1);
    }
  }
  return { signal: Number.parseInt(m[2]!, 16), fields };
}

/**
 * The GS bases from a `g` reply of QEMU's x86-64 target: after the general registers and rip
 * come eflags and six segment selectors (4 bytes each), then fs_base, gs_base and k_gs_base (8
 * each). In the kernel after swapgs, gs_base is this CPU's per-CPU area; in user mode it is
 * k_gs_base that holds it.
 */
export function parseGsBases(reply: Buffer): { gsBase: bigint; kernelGsBase: bigint } {
  const bytes = Buffer.from(reply.toString('latin1'), 'hex');
  if (bytes.length < 188) throw protocolError(`a register reply of ${bytes.length} bytes has no segment bases (QEMU's x86-64 sends them at 164–188)`);
  return { gsBase: bytes.readBigUInt64LE(172), kernelGsBase: bytes.readBigUInt64LE(180) };
}

/** `P n=value`: write register n (16 is rip); QEMU needs enableRegisterPackets() first. */
export function writeRegister(n: number, value: bigint): string {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(value);
  return `P${n.toString(16)}=${b.toString('hex')}`;
}
