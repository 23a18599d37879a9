// NATS JetStream client: acknowledged publishes into a file-backed stream, read by one
// ordered consumer per subscriber. The server half (and the stream) is in nats.ts.

import { type ConsumerMessages, type JetStreamClient, type NatsConnection } from 'nats';
import { asBuffer, natsConnect } from './nats.js';
import { AckWindow } from './window.js';
import type { ClientFactory, ClientSide } from './types.js';

// js.publish() is a request: its promise resolves with the server's PubAck once the message
// is stored. The nats.js docs' way to go fast is many such promises in flight, not one at a
// time; we keep a window of them.
const ACK_WINDOW = 1024;
// Messages the ordered consumer asks the server for per pull; the client pulls again when a
// quarter of them were handed over, so delivery does not pause at batch boundaries.
const PULL_BATCH = 4096;

export const jetstreamClient: ClientFactory = async (endpoint, role) => {
  const stream = String(endpoint.params.stream);
  let nc: NatsConnection | undefined;
  let js: JetStreamClient | undefined;
  let messages: ConsumerMessages | undefined;
  const acks = new AckWindow(ACK_WINDOW);
  const side: ClientSide = {
    async connect() {
      nc = await natsConnect(endpoint, role.name);
      // The default 5 s ack timeout is for a lightly loaded server; at saturation on two cores
      // a full window can take longer than that to be stored.
      js = nc.jetstream({ timeout: 60_000 });
    },
    async subscribe(_channels, onMessage) {
      // An ordered consumer: ephemeral, ack policy none, flow-controlled, and recreated by the
      // client from the last sequence it saw if it ever misses one — the consumer the NATS docs
      // give a single reader that wants every message of a stream in order. Acking each
      // message (a durable consumer with explicit acks) would buy redelivery to a crashed
      // reader, which a run does not use, at the price of one more message per message.
      // Delivery starts at the stream's first message (nats.js's default for an ordered
      // consumer; it also sends opt_start_seq, which is why an explicit DeliverPolicy.All is
      // rejected by a 2.9 server). The stream is created empty for the run, so that is
      // everything published in it, whether or not this consumer was in place first.
      const consumer = await js!.consumers.get(stream);
      messages = await consumer.consume({ max_messages: PULL_BATCH, callback: (m) => onMessage(asBuffer(m.data)) });
    },
    publish(channel, payload) {
      return acks.track(js!.publish(channel, payload));
    },
    drained: () => acks.room(),
    flush: () => acks.idle(),
    async close() {
      await messages?.close();
      await nc?.close();
    },
  };
  return side;
};
