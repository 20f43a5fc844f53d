// Reads a JetStream stream through a durable pull consumer, as nats.js
// applications do, and says how fast: the load of `streams_compare.sh --only
// pull`, the same for nats-server and Manifold's NATS front end.
//
//   node bench/jetstream_pull.mjs HOST:PORT STREAM COUNT [BATCH]
//
// Creates a new durable pull consumer on STREAM (all of it, explicit acks),
// fetches BATCH messages at a time (default 1000, no_wait) and acknowledges
// each, until COUNT have come; then deletes the consumer. Prints one JSON
// line: {"received", "seconds", "received_per_s", "redelivered", "clean"}
// (clean: COUNT messages with consecutive stream sequences from the first).
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
  console.error("jetstream_pull: nats.js is missing: run `npm ci --prefer-offline` in tests/nats");
  process.exit(2);
}
const { AckPolicy, DeliverPolicy, connect } = nats;

const [server, stream, countText, batchText = "1000"] = process.argv.slice(2);
const count = Number(countText);
const batch = Number(batchText);
if (!server || !stream || !(count > 0) || !(batch > 0)) {
  console.error("usage: node bench/jetstream_pull.mjs HOST:PORT STREAM COUNT [BATCH]");
  process.exit(2);
}

const nc = await connect({ servers: server, reconnect: false });
const jsm = await nc.jetstreamManager();
const name = `pull${process.pid}${Date.now() % 100000}`;
await jsm.consumers.add(stream, {
  durable_name: name,
  ack_policy: AckPolicy.Explicit,
  deliver_policy: DeliverPolicy.All,
});
const js = nc.jetstream();
let received = 0;
let redelivered = 0;
let expected = 0;
let inOrder = true;
const started = process.hrtime.bigint();
while (received < count) {
  const want = Math.min(batch, count - received);
  let got = 0;
  for await (const m of js.fetch(stream, name, { batch: want, no_wait: true })) {
    if (expected === 0) expected = m.seq;
    if (m.seq !== expected) inOrder = false;
    expected = m.seq + 1;
    if (m.redelivered) redelivered++;
    m.ack();
    got++;
  }
  if (got === 0) break;  // the stream holds fewer than COUNT
  received += got;
}
await nc.flush();
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
await jsm.consumers.delete(stream, name);
await nc.close();
console.log(
  JSON.stringify({
    received,
    seconds: Number(seconds.toFixed(3)),
    received_per_s: Math.round(received / seconds),
    redelivered,
    clean: received === count && inOrder && redelivered === 0,
  }),
);
