export { FrameDecoder, frame, FRAME_HEADER_BYTES } from './frame.js';
export { SlabFrameReader } from './frame-slab.js';
export { FramePool } from './frame-pool.js';
export { u32, u16, f64be } from './bytes.js';
export { RecordCursor, writeRecord, numberRecords, recordBytes, decodeRecord, RecordDecoder, contentOffset, sameBytesAt, recordLayout, newRecordLayout, EPOCH_BYTES, RECORD_VERSION, PROTECTION_MAX } from './record.js';
export { RecordIndex } from './record-index.js';
export type { RecordInput, RecordLayout } from './record.js';
export {
  MessageType,
  malformed,
  encodeJson,
  decodeJson,
  PUBLISH_SEQ_AT,
  PUBLISH_FIXED_BYTES,
  publishHeaderBytes,
  publishSectionHeaderBytes,
  writePublishHeader,
  writePublishFrameHeader,
  writePublishSection,
  decodePublish,
  encodeAck,
  decodeAck,
  EVENTS_SECTION_HEADER_BYTES,
  EventsWriter,
  refOf,
  encodeEvents,
  decodeEvents,
  encodeCredit,
  decodeCredit,
} from './messages.js';
export type { PublishView, PublishSection, EventsSection, RecordRef, RecordSink } from './messages.js';
export { controlOpSchema, signedControlSchema, controlClient, controlSignable, CONTROL_OPS } from './control.js';
export type { ControlOp, SignedControl } from './control.js';
export { encodeOrdered, readOrdered, ORDERED_KIND, ORDERED_HEADER_BYTES } from './ordered.js';
export type { OrderedView } from './ordered.js';
