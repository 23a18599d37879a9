// A publisher numbers the records of a batch as the batch is sent (src/client/publisher.ts),
// so that an urgent batch may overtake queued ones while sequence numbers on the wire rise.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { numberRecords, publishHeaderBytes, recordBytes, RecordCursor, writePublishHeader, writeRecord, decodePublish } from '../../src/codec/index.js';

function batch(contents: string[]): { frame: Buffer; at: number } {
  const channel = Buffer.from('alerts');
  const publisher = Buffer.from('probe');
  const epoch = randomBytes(8);
  const at = publishHeaderBytes(channel);
  const size = contents.reduce((n, c) => n + recordBytes(publisher.length, Buffer.byteLength(c)), at);
  const frame = Buffer.alloc(size);
  let o = at;
  for (const c of contents) o = writeRecord(frame, o, { publisher, epoch, seq: 0, timestampMs: 1, priority: 0, contentType: 0, content: Buffer.from(c) });
  writePublishHeader(frame, channel, contents.length, frame.length);
  return { frame, at };
}

it('numbers the records of a batch after the last seq sent, and leaves everything else intact', () => {
  const { frame, at } = batch(['a', 'bb', 'ccc']);
  const before = Buffer.from(frame);
  assert.equal(numberRecords(frame, at, 41), 44);
  const body = frame.subarray(4);
  const view = decodePublish(body);
  const c = new RecordCursor(body, view.sections[0]!.recordsAt, 1024);
  const seqs: number[] = [];
  while (c.next()) seqs.push(c.seq);
  assert.deepEqual(seqs, [42, 43, 44]);
  let changed = 0;
  for (let i = 0; i < frame.length; i++) if (frame[i] !== before[i]) changed++;
  assert.ok(changed <= 3, `only the low bytes of three seq fields change, ${changed} bytes did`);
});

it('carries sequence numbers past 2^32 into the high word', () => {
  const { frame, at } = batch(['x', 'y']);
  assert.equal(numberRecords(frame, at, 0xffff_ffff), 0x1_0000_0001);
  const body = frame.subarray(4);
  const c = new RecordCursor(body, decodePublish(body).sections[0]!.recordsAt, 1024);
  const seqs: number[] = [];
  while (c.next()) seqs.push(c.seq);
  assert.deepEqual(seqs, [0x1_0000_0000, 0x1_0000_0001]);
});
