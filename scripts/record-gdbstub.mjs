// Records a real exchange with QEMU's gdbstub, byte for byte, for the GDB protocol tests
// (test/unit/monitoring-gdb-rsp.test.ts): QEMU starts paused with no guest (-S, the CPU at its
// reset vector), so no kernel or disk image is needed. Run: node scripts/record-gdbstub.mjs
// (needs qemu-system-x86_64; writes test/fixtures/gdbstub-qemu.json).
import { spawn } from 'node:child_process';
import { createConnection } from 'node:net';
import { writeFileSync } from 'node:fs';

const port = 20000 + Math.floor(Math.random() * 20000);
const qemu = spawn('qemu-system-x86_64', ['-S', '-display', 'none', '-nographic', '-m', '32', '-no-reboot', '-accel', 'tcg', '-gdb', `tcp:127.0.0.1:${port}`, '-serial', 'none', '-monitor', 'none'], { stdio: 'ignore' });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
await sleep(1500);
const sock = createConnection({ host: '127.0.0.1', port });
await new Promise((r) => sock.once('connect', r));
const log = [];
let buf = '';
sock.on('data', (d) => {
  const s = d.toString('latin1');
  log.push({ from: 'stub', bytes: s });
  buf += s;
});
const sum = (s) => [...Buffer.from(s, 'latin1')].reduce((a, b) => (a + b) & 0xff, 0).toString(16).padStart(2, '0');
const send = async (raw) => {
  log.push({ from: 'client', bytes: raw });
  buf = '';
  sock.write(Buffer.from(raw, 'latin1'));
  for (let i = 0; i < 100 && !/#[0-9a-f]{2}$/.test(buf); i++) await sleep(20);
  if (/#[0-9a-f]{2}$/.test(buf)) {
    log.push({ from: 'client', bytes: '+' });
    sock.write('+');
  }
  await sleep(50);
};
const packet = (p) => `$${p}#${sum(p)}`;
await sleep(300);
for (const p of ['qSupported:multiprocess+;swbreak+;hwbreak+', '?', 'g', 'mfffffff0,10', 'm0,8', 'Z0,fffffff0,1', 'z0,fffffff0,1', 'mffffffffffff0000,4']) await send(packet(p));
// A packet with a wrong checksum: the stub answers '-'.
log.push({ from: 'client', bytes: '$?#00' });
buf = '';
sock.write('$?#00');
await sleep(200);
await send(packet('D'));
sock.destroy();
qemu.kill('SIGKILL');
writeFileSync(new URL('../test/fixtures/gdbstub-qemu.json', import.meta.url), `${JSON.stringify({ recorded: new Date().toISOString(), qemu: 'qemu-system-x86_64 7.2 (Debian), -S, no guest', exchange: log }, null, 1)}\n`);
console.log(`recorded ${log.length} chunks`);
