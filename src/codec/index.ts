export { FrameDecoder, frame, FRAME_HEADER_BYTES } from './frame.js';
export { RecordCursor, writeRecord, numberRecords, recordBytes, decodeRecord, contentOffset, EPOCH_BYTES, RECORD_VERSION } from './record.js';
export type { RecordInput } from './record.js';
export {
  MessageType,
  malformed,
  encodeJson,
  decodeJson,
  PUBLISH_SEQ_AT,
  publishHeaderBytes,
  writePublishHeader,
  decodePublish,
  encodeAck,
  decodeAck,
  EVENTS_HEADER_BYTES,
  encodeEvents,
  decodeEventsHeader,
  encodeCredit,
  decodeCredit,
} from './messages.js';
export type { PublishView } from './messages.js';
