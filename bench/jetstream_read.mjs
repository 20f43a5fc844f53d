// Reads a JetStream stream through a new durable consumer, as nats.js
// applications do, and says how fast: the loads of `streams_compare.sh --only
// pull,push`, the same for nats-server and Manifold's NATS front end.
//
//   node bench/jetstream_read.mjs pull|push HOST:PORT STREAM COUNT [BATCH]
//
// pull: a durable pull consumer on STREAM (all of it, explicit acks), read
// with js.fetch() of BATCH messages at a time (default 1000, no_wait).
// push: a durable push consumer (js.subscribe() with a deliver inbox,
// explicit acks, max_ack_pending BATCH), read from its subscription.
// Each message is acknowledged, until COUNT have come; then the consumer is
// deleted. Prints one JSON line: {"mode", "received", "seconds",
// "received_per_s", "redelivered", "clean"} (clean: COUNT messages with
// consecutive stream sequences from the first, none redelivered).
//
// nats.js comes from tests/nats/node_modules (`npm ci --prefer-offline` there).

import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, "..", "tests", "nats", "package.json"));
let nats;
try {
  nats = require("nats");
} catch {
  console.error("jetstream_read: nats.js is missing: run `npm ci --prefer-offline` in tests/nats");
  process.exit(2);
}
const { AckPolicy, DeliverPolicy, connect, consumerOpts, createInbox } = nats;

const [mode, server, stream, countText, batchText = "1000"] = process.argv.slice(2);
const count = Number(countText);
const batch = Number(batchText);
if (!["pull", "push"].includes(mode) || !server || !stream || !(count > 0) || !(batch > 0)) {
  console.error("usage: node bench/jetstream_read.mjs pull|push HOST:PORT STREAM COUNT [BATCH]");
  process.exit(2);
}

const nc = await connect({ servers: server, reconnect: false });
const jsm = await nc.jetstreamManager();
const js = nc.jetstream();
const name = `${mode}${process.pid}${Date.now() % 100000}`;
let received = 0;
let redelivered = 0;
let expected = 0;
let inOrder = true;
// Checks and acknowledges one message.
function take(m) {
  if (expected === 0) expected = m.seq;
  if (m.seq !== expected) inOrder = false;
  expected = m.seq + 1;
  if (m.redelivered) redelivered++;
  m.ack();
  received++;
}

let started;
if (mode === "pull") {
  await jsm.consumers.add(stream, {
    durable_name: name,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
  });
  started = process.hrtime.bigint();
  while (received < count) {
    const before = received;
    const want = Math.min(batch, count - received);
    for await (const m of js.fetch(stream, name, { batch: want, no_wait: true })) take(m);
    if (received === before) break; // the stream holds fewer than COUNT
  }
} else {
  const opts = consumerOpts();
  opts.durable(name);
  opts.deliverTo(createInbox());
  opts.deliverAll();
  opts.ackExplicit();
  opts.manualAck();
  opts.maxAckPending(batch);
  opts.bindStream(stream);
  // Everything the stream captures (its first subject, as nats-server
  // wants a filter within the stream's subjects).
  const subject = (await jsm.streams.info(stream)).config.subjects[0];
  started = process.hrtime.bigint();
  const sub = await js.subscribe(subject, opts);
  // Ends once COUNT came, or when nothing more comes for 5 s.
  let idle = setTimeout(() => sub.unsubscribe(), 5_000);
  for await (const m of sub) {
    take(m);
    clearTimeout(idle);
    if (received === count) break;
    idle = setTimeout(() => sub.unsubscribe(), 5_000);
  }
  clearTimeout(idle);
}
await nc.flush();
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
await jsm.consumers.delete(stream, name);
await nc.close();
console.log(
  JSON.stringify({
    mode,
    received,
    seconds: Number(seconds.toFixed(3)),
    received_per_s: Math.round(received / seconds),
    redelivered,
    clean: received === count && inOrder && redelivered === 0,
  }),
);
