// Durable publishing as nats.js does it (jetstream().publish()): a PUB with a
// reply subject to a subject a stream captures is answered with a PubAck,
// {"stream":S,"seq":N}, once the message is durable; sequences go on across a
// kill -9 and a restart; a subject no stream captures gets nats.js's "no
// responders" error. Against nats-server the same stream is made with
// JetStream's own API (the control).

import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connect } from "nats";
import { isManifold, startServer } from "./lib/servers.mjs";
import { sc, within } from "./lib/util.mjs";

const dir = mkdtempSync(join(tmpdir(), "nats-jetstream-"));
let server;
const clients = [];

async function start() {
  if (isManifold) {
    const config = join(dir, "manifoldd.textpb");
    writeFileSync(
      config,
      `data_dir: "${join(dir, "data")}"\n` + `streams { name: "ORDERS" topics: "orders/**" }\n`,
    );
    return startServer({ manifoldArgs: ["--config", config] });
  }
  const s = await startServer({ natsServerConfig: `jetstream { store_dir: "${join(dir, "js")}" }` });
  const nc = await connect({ servers: s.natsUrl, reconnect: false });
  const jsm = await nc.jetstreamManager();
  try {
    await jsm.streams.info("ORDERS");
  } catch {
    await jsm.streams.add({ name: "ORDERS", subjects: ["orders.>"] });
  }
  await nc.close();
  return s;
}

async function client() {
  const nc = await connect({ servers: server.natsUrl, reconnect: false, timeout: 5_000 });
  clients.push(nc);
  return nc;
}

before(async () => {
  server = await start();
});

after(async () => {
  await Promise.all(clients.map((nc) => (nc.isClosed() ? null : nc.close())));
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("jetstream().publish()", () => {
  it("gets a PubAck naming the stream and consecutive sequences", async () => {
    const js = (await client()).jetstream();
    const first = await within(js.publish("orders.new", sc.encode("a")), 5_000, "publish");
    assert.equal(first.stream, "ORDERS");
    assert.equal(first.duplicate, false);
    for (let i = 1; i <= 50; i++) {
      const ack = await within(js.publish(`orders.eu.${i % 3}`, sc.encode(`m${i}`)), 5_000, "publish");
      assert.equal(ack.seq, first.seq + i);
    }
  });

  it("keeps counting after kill -9 and a restart", async () => {
    const js = (await client()).jetstream();
    const before = await js.publish("orders.new", sc.encode("before"));
    server.process.kill("SIGKILL");
    await server.stop();
    server = await start();
    const js2 = (await client()).jetstream();
    const afterRestart = await within(js2.publish("orders.new", sc.encode("after")), 5_000, "publish");
    assert.equal(afterRestart.stream, "ORDERS");
    assert.equal(afterRestart.seq, before.seq + 1);
  });

  it("fails with no responders on a subject no stream captures", async () => {
    const js = (await client()).jetstream();
    await assert.rejects(within(js.publish("elsewhere.x", sc.encode("x")), 5_000, "publish"), (e) => {
      assert.match(String(e.code ?? e.message), /503|no responders/i);
      return true;
    });
  });
});
