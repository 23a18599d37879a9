// The GDB remote protocol (src/monitoring/gdb-rsp.ts, gdb-client.ts) on an exchange recorded
// byte for byte from QEMU 7.2's gdbstub (test/fixtures/gdbstub-qemu.json, made by
// scripts/record-gdbstub.mjs: QEMU paused at its reset vector, no guest), so no VM is needed:
// our packets are the bytes QEMU accepted, its replies parse to what the CPU held, and the
// client, against a stub that replays the recording, gets the same answers.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import fc from 'fast-check';
import { GdbClient } from '../../src/monitoring/vmi/gdb-client.js';
import { PacketReader, decodeBody, encodePacket, escape, insertBreakpoint, parseMemory, parseRegisters, parseStop, readMemory, removeBreakpoint, type Received } from '../../src/monitoring/vmi/gdb-rsp.js';
import { assertProperty } from '../helpers/property.js';

interface Chunk {
  from: 'client' | 'stub';
  bytes: string;
}
const recording = JSON.parse(readFileSync(new URL('../../../test/fixtures/gdbstub-qemu.json', import.meta.url), 'utf8')) as { exchange: Chunk[] };
const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');
const clientPackets = recording.exchange.filter((c) => c.from === 'client' && c.bytes.startsWith('$')).map((c) => c.bytes);
const stubStream = latin1(recording.exchange.filter((c) => c.from === 'stub').map((c) => c.bytes).join(''));
const payloads = (rs: Received[]): string[] => rs.flatMap((r) => (r.kind === 'packet' ? [r.payload.toString('latin1')] : []));

test('our packets are byte for byte the ones QEMU accepted (framing and checksums)', () => {
  const requests = ['qSupported:multiprocess+;swbreak+;hwbreak+', '?', 'g', readMemory(0xfffffff0n, 16), readMemory(0n, 8), insertBreakpoint(0xfffffff0n), removeBreakpoint(0xfffffff0n), readMemory(0xffffffffffff0000n, 4)];
  assert.deepEqual(
    requests.map((p) => encodePacket(p).toString('latin1')),
    clientPackets.filter((p) => p !== '$?#00' && p !== '$D#44'),
  );
});

test("QEMU's replies parse: the stop, the registers at reset, the reset vector, a refusal, a bad checksum refused", () => {
  const rs = new PacketReader().push(stubStream);
  const got = payloads(rs);
  assert.equal(got[0], 'PacketSize=1000;qXfer:features:read+;vContSupported+;multiprocess+');
  const stop = parseStop(latin1(got[1]!));
  assert.deepEqual(stop, { signal: 5, fields: { thread: 'p01.01' } });
  const regs = parseRegisters(latin1(got[2]!));
  assert.equal(regs.rip, 0xfff0n, 'an x86 CPU resets at CS:IP f000:fff0');
  assert.equal(regs.rdx, 0x60fb1n, 'EDX holds the CPU signature at reset');
  assert.equal(regs.rax, 0n);
  const vector = parseMemory(latin1(got[3]!), 16);
  assert.deepEqual([...vector.subarray(0, 5)], [0xea, 0x5b, 0xe0, 0x00, 0xf0], 'the BIOS reset vector: jmp f000:e05b');
  assert.equal(got[5], 'OK');
  assert.equal(got[6], 'OK');
  assert.throws(() => parseMemory(latin1(got[7]!), 4), (e: { code?: string; message: string }) => e.code === 'FIT_ERR_VMI' && /memory read refused \(E14\)/.test(e.message));
  assert.ok(rs.some((r) => r.kind === 'nack'), 'the packet with a wrong checksum was answered "-"');
  assert.equal(rs.filter((r) => r.kind === 'ack').length, 9);
});

test('however the stub stream is cut into chunks, the reader finds the same acks and packets', (t) => {
  const whole = new PacketReader().push(stubStream);
  assertProperty(
    t,
    import.meta.url,
    fc.property(fc.array(fc.integer({ min: 1, max: stubStream.length - 1 }), { maxLength: 30 }), (cuts) => {
      const at = [...new Set(cuts)].sort((a, b) => a - b);
      const r = new PacketReader();
      const out: Received[] = [];
      let from = 0;
      for (const c of [...at, stubStream.length]) {
        out.push(...r.push(stubStream.subarray(from, c)));
        from = c;
      }
      assert.deepEqual(out, whole);
    }),
    { numRuns: 200 },
  );
});

test('escaping round-trips any bytes, and an escaped packet never holds a bare # $ or *', (t) => {
  assertProperty(
    t,
    import.meta.url,
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      const b = Buffer.from(bytes);
      assert.deepEqual(decodeBody(escape(b)), b);
      const packet = encodePacket(b);
      const body = packet.subarray(1, packet.length - 3);
      for (let i = 0; i < body.length; i++) {
        if (body[i] === 0x7d) i++;
        else assert.ok(![0x23, 0x24, 0x2a].includes(body[i]!), `a bare special byte at ${i}`);
      }
      const [r] = new PacketReader().push(packet);
      assert.deepEqual(r, { kind: 'packet', payload: b });
    }),
    { numRuns: 300 },
  );
});

test('run-length encoding expands, and malformed bodies are refused with FIT_ERR_VMI', () => {
  assert.equal(decodeBody(latin1('0* 1')).toString('latin1'), '00001', '"0* " is 0 and 3 more');
  assert.equal(decodeBody(latin1('ab*"')).toString('latin1'), 'abbbbbb', '"b*\\"" is b and 5 more');
  for (const bad of ['*!', 'ab}', 'a*']) assert.throws(() => decodeBody(latin1(bad)), (e: { code?: string }) => e.code === 'FIT_ERR_VMI', bad);
  const [corrupt] = new PacketReader().push(latin1('$OK#00'));
  assert.equal(corrupt!.kind, 'corrupt');
});

/** A stub that replays the recording: each client packet gets the recorded answer to it. */
async function replayingStub(o: { nackFirst?: boolean; stopOnConnect?: boolean }): Promise<{ port: number; close(): void }> {
  const answers = new Map<string, string>();
  const ex = recording.exchange;
  for (let i = 0; i < ex.length; i++) {
    if (ex[i]!.from !== 'client' || !ex[i]!.bytes.startsWith('$')) continue;
    const replies = [];
    for (let j = i + 1; j < ex.length && ex[j]!.from === 'stub'; j++) replies.push(ex[j]!.bytes);
    answers.set(ex[i]!.bytes, replies.join(''));
  }
  const sockets: Socket[] = [];
  const server = createServer((s) => {
    sockets.push(s);
    let nacked = false;
    if (o.stopOnConnect) s.write(encodePacket('T05thread:p01.01;'));
    const reader = new PacketReader();
    s.on('data', (d: Buffer) => {
      for (const r of reader.push(d)) {
        if (r.kind !== 'packet') continue;
        if (o.nackFirst && !nacked) {
          nacked = true;
          s.write('-');
          continue;
        }
        s.write(answers.get(encodePacket(r.payload).toString('latin1')) ?? '+$#00');
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, close: () => (sockets.forEach((s) => s.destroy()), server.close()) };
}

test('the client gets the recorded answers, drains a stop sent on connect, and resends a refused packet', async () => {
  const stub = await replayingStub({ nackFirst: true, stopOnConnect: true });
  const c = await GdbClient.connect('127.0.0.1', stub.port);
  try {
    assert.equal(c.stops.length, 1, 'the stop reply sent on connect was drained and kept');
    assert.deepEqual(parseStop(await c.request('?')), { signal: 5, fields: { thread: 'p01.01' } });
    assert.equal(parseRegisters(await c.request('g')).rip, 0xfff0n);
    assert.equal((await c.request(insertBreakpoint(0xfffffff0n))).toString(), 'OK');
    assert.throws(() => parseMemory(Buffer.from('E14'), 4), /E14/);
    assert.equal((await c.request(readMemory(0xffffffffffff0000n, 4))).toString(), 'E14');
  } finally {
    c.close();
    stub.close();
  }
});
