// Configured limits as NATS clients meet them: max_payload from INFO,
// keepalive PINGs (answered by nats.js, fatal for a client that stops
// answering), the time to send CONNECT, the subscription limit, a subscriber that stops reading, and a
// server that shuts down. manifoldd gets the limits as flags, nats-server
// (the control) as a configuration file with the same values.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { connect, ErrorCode } from "nats";
import { RawClient } from "./lib/raw.mjs";
import { isManifold, startServer } from "./lib/servers.mjs";
import { sc, sleep, take, within } from "./lib/util.mjs";

const kManifoldArgs = [
  "--max_payload_bytes=4096",
  "--keepalive_interval=400ms",
  "--keepalive_max_missed=3",
  "--max_subscriptions_per_connection=10",
  "--max_outbound_bytes=65536",
  "--handshake_timeout=1s",
  // Shorter than the keepalive's 1.2 s, so a reader that stops for good is
  // cut for holding up its publisher before it is cut for not answering.
  "--max_stall=500ms",
];
const kNatsServerConfig = `
max_payload: 4096
ping_interval: "400ms"
ping_max: 3
max_subscriptions: 10
max_pending: 65536
`;

let server;
const clients = [];

async function client(options = {}) {
  const nc = await connect({ servers: server.natsUrl, reconnect: false, timeout: 5_000, ...options });
  clients.push(nc);
  return nc;
}

before(async () => {
  server = await startServer({ manifoldArgs: kManifoldArgs, natsServerConfig: kNatsServerConfig });
});

after(async () => {
  await Promise.all(clients.map((nc) => (nc.isClosed() ? null : nc.close())));
  await server.stop();
});

describe("configured limits", () => {
  it("announces max_payload in INFO; nats.js refuses larger messages, carries one of that size", async () => {
    const nc = await client();
    assert.equal(nc.info.max_payload, 4096);
    assert.throws(
      () => nc.publish("limit.big", new Uint8Array(4097)),
      (e) => e.code === ErrorCode.MaxPayloadExceeded,
    );
    const sub = nc.subscribe("limit.big");
    nc.publish("limit.big", new Uint8Array(4096).fill(7));
    const [m] = await take(sub, 1);
    assert.equal(m.data.length, 4096);
  });

  it("nats.js answers the server's keepalive PINGs and stays connected", async () => {
    const nc = await client();
    const sub = nc.subscribe("keepalive.check");
    await sleep(2_000); // five keepalive intervals
    assert.equal(nc.isClosed(), false);
    nc.publish("keepalive.check", sc.encode("still here"));
    const [m] = await take(sub, 1);
    assert.equal(sc.decode(m.data), "still here");
  });

  it("closes a client that stops answering PING with 'Stale Connection'", async () => {
    const raw = await RawClient.open(server.natsPort);
    try {
      raw.write('CONNECT {"verbose":false}\r\n');
      const said = await raw.readUntil("-ERR 'Stale Connection'\r\n");
      assert.equal(said, "PING\r\nPING\r\nPING\r\n-ERR 'Stale Connection'\r\n");
    } finally {
      raw.close();
    }
  });

  it(
    "closes a connection that sends no CONNECT in time with 'Authentication Timeout'",
    { skip: !isManifold && "nats-server without auth waits for CONNECT indefinitely" },
    async () => {
      const raw = await RawClient.open(server.natsPort);
      try {
        const started = Date.now();
        assert.equal(await raw.readUntil("\r\n"), "-ERR 'Authentication Timeout'\r\n");
        assert.ok(Date.now() - started < 2_500, `took ${Date.now() - started} ms`);
      } finally {
        raw.close();
      }
    },
  );

  it("refuses subscriptions past the limit and keeps the connection", async () => {
    const raw = await RawClient.open(server.natsPort);
    try {
      let subs = "";
      for (let i = 1; i <= 12; i++) subs += `SUB s${i} ${i}\r\n`;
      raw.write('CONNECT {"verbose":false}\r\n' + subs + "PUB s10 1\r\nx\r\nPUB s11 1\r\ny\r\nPING\r\n");
      // A keepalive PING of the server's may come between the answers on a
      // slow machine: it is not an answer to anything this test sent.
      const said = (await raw.readUntil("PONG\r\n")).replace(/^PING\r\n/gm, "");
      // nats-server 2.9 writes the text in lower case; clients compare it
      // without regard to case.
      assert.equal(
        said.toLowerCase(),
        "-err 'maximum subscriptions exceeded'\r\n".repeat(2) + "msg s10 10 1\r\nx\r\npong\r\n",
      );
    } finally {
      raw.close();
    }
  });

  it(
    "stalls only the publisher of a subscriber that stops reading; when it reads again it has every message, in order",
    { skip: !isManifold && "nats-server has no backpressure: it cuts or drops a slow reader" },
    async () => {
      const stalled = await RawClient.open(server.natsPort);
      stalled.socket.pause(); // stop reading: the socket buffers fill up
      stalled.write('CONNECT {"verbose":false}\r\nSUB flood 1\r\n');
      const bystander = await client();
      const news = bystander.subscribe("news");
      await bystander.flush();
      const pub = await client();
      const other = await client();
      await pub.flush();
      const count = 3000;
      for (let i = 0; i < count; i++) {
        const payload = new Uint8Array(4000); // nats.js keeps it until sent
        payload[0] = i & 0xff;
        payload[1] = i >> 8;
        pub.publish("flood", payload); // 12 MB, more than the broker buffers
      }
      // A publisher that does not reach the stalled subscriber goes on.
      other.publish("news", sc.encode("all well"));
      const [m] = await take(news, 1);
      assert.equal(sc.decode(m.data), "all well");
      stalled.socket.resume();
      const frame = 2 + "MSG flood 1 4000\r\n".length + 4000;
      const all = await stalled.readBytes(count * frame, 20_000);
      for (let i = 0; i < count; i++) {
        const at = i * frame + "MSG flood 1 4000\r\n".length;
        assert.equal(all.subarray(i * frame, at).toString(), "MSG flood 1 4000\r\n");
        assert.equal(all[at] | (all[at + 1] << 8), i, `message ${i} in order`);
      }
      await within(pub.flush(), 10_000, "publisher flush");
      stalled.close();
      assert.equal(bystander.isClosed(), false);
      assert.equal(pub.isClosed(), false);
    },
  );

  it(
    "disconnects a subscriber that never reads with 'Slow Consumer' after max_stall; its publisher goes on",
    { skip: !isManifold && "nats-server leaves a stalled reader to its write deadline or keepalive" },
    async () => {
      const stalled = await RawClient.open(server.natsPort);
      stalled.socket.pause(); // stop reading: the socket buffers fill up
      stalled.write('CONNECT {"verbose":false}\r\nSUB flood 1\r\n');
      const bystander = await client();
      const news = bystander.subscribe("news");
      await bystander.flush();
      // The broker says on $sys/slow_consumer when it gives up on a reader.
      const watcher = bystander.subscribe("$sys.slow_consumer");
      await bystander.flush();
      const pub = await client();
      await pub.flush();
      const payload = new Uint8Array(4000);
      for (let i = 0; i < 12000; i++) pub.publish("flood", payload); // 48 MB
      // The publisher is held back until max_stall (500 ms) ends the stall.
      await take(watcher, 1, 15_000);
      // The cut subscriber gets its backlog, then the reason.
      stalled.socket.resume();
      const said = await stalled.readUntil("-ERR 'Slow Consumer'\r\n", 15_000);
      assert.ok(said.endsWith("\r\n-ERR 'Slow Consumer'\r\n"));
      await within(pub.flush(), 15_000, "publisher flush");
      stalled.close();
      pub.publish("news", sc.encode("all well"));
      const [m] = await take(news, 1);
      assert.equal(sc.decode(m.data), "all well");
      assert.equal(bystander.isClosed(), false);
      assert.equal(pub.isClosed(), false);
    },
  );
});

describe("shutdown", () => {
  it("a server stopped with SIGTERM closes its NATS clients; nats.js reports the close", async () => {
    const own = await startServer();
    try {
      const nc = await connect({ servers: own.natsUrl, reconnect: false, timeout: 5_000 });
      await nc.flush();
      const closed = nc.closed();
      await own.stop();
      await within(closed, 5_000, "closed()");
      assert.equal(nc.isClosed(), true);
    } finally {
      await own.stop();
    }
  });
});
