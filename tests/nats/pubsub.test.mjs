// Publish/subscribe as nats.js uses it: the handshake, plain and wildcard
// subscriptions, queue groups, echo, unsubscribe (with max), drain, many
// subscriptions, a 1 MiB message, flush/ping and verbose mode.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { connect, ErrorCode } from "nats";
import { isManifold, startServer } from "./lib/servers.mjs";
import { sc, sleep, take, until, untilClosed, within } from "./lib/util.mjs";

let server;
const clients = [];

async function client(options = {}) {
  const nc = await connect({ servers: server.natsUrl, reconnect: false, timeout: 5_000, ...options });
  clients.push(nc);
  return nc;
}

before(async () => {
  server = await startServer();
});

after(async () => {
  await Promise.all(clients.map((nc) => (nc.isClosed() ? null : nc.close())));
  await server.stop();
});

describe("connecting", () => {
  it("reads INFO: protocol 1, headers, the 1 MiB payload limit", async () => {
    const nc = await client({ name: "info-check" });
    assert.equal(nc.info.proto, 1);
    assert.equal(nc.info.headers, true);
    assert.equal(nc.info.max_payload, 1024 * 1024);
    assert.equal(typeof nc.info.server_id, "string");
    assert.ok(nc.info.server_id.length > 0);
    assert.equal(typeof nc.info.client_id, "number");
  });

  it("answers flush and measures a round trip", async () => {
    const nc = await client();
    await within(nc.flush(), 2_000, "flush");
    const rtt = await within(nc.rtt(), 2_000, "rtt");
    assert.ok(rtt >= 0 && rtt < 2_000, `rtt ${rtt}`);
  });
});

describe("publish and subscribe", () => {
  it("delivers a message to a subscriber on another connection", async () => {
    const receiver = await client();
    const sub = receiver.subscribe("greet.alice");
    await receiver.flush(); // the subscription is in place
    const pub = await client();
    pub.publish("greet.alice", sc.encode("hello"));
    const [m] = await take(sub, 1);
    assert.equal(m.subject, "greet.alice");
    assert.equal(sc.decode(m.data), "hello");
  });

  it("keeps the order of 1000 messages from one publisher", async () => {
    const nc = await client();
    const sub = nc.subscribe("order.test");
    for (let i = 0; i < 1000; i++) nc.publish("order.test", sc.encode(String(i)));
    const got = await take(sub, 1000);
    assert.deepEqual(
      got.map((m) => sc.decode(m.data)),
      Array.from({ length: 1000 }, (_, i) => String(i)),
    );
  });

  it("delivers an empty payload", async () => {
    const nc = await client();
    const sub = nc.subscribe("empty");
    nc.publish("empty");
    const [m] = await take(sub, 1);
    assert.equal(m.data.length, 0);
  });

  it("carries binary payloads, CR LF and protocol words inside them intact", async () => {
    const nc = await client();
    const sub = nc.subscribe("binary");
    const bytes = Uint8Array.from({ length: 1000 }, (_, i) => i % 256);
    const tricky = sc.encode("\r\nPING\r\nMSG x 1 2\r\n-ERR 'x'\r\n");
    nc.publish("binary", bytes);
    nc.publish("binary", tricky);
    const [a, b] = await take(sub, 2);
    assert.ok(Buffer.from(a.data).equals(Buffer.from(bytes)));
    assert.ok(Buffer.from(b.data).equals(Buffer.from(tricky)));
  });

  it("matches '*' to exactly one token", async () => {
    const nc = await client();
    const sub = nc.subscribe("room.*.say");
    for (const s of ["room.a.say", "room.say", "room.a.b.say", "room.b.say"]) {
      nc.publish(s, sc.encode(s));
    }
    await nc.flush(); // our own messages arrive before the PONG
    sub.unsubscribe();
    const got = await untilClosed(sub);
    assert.deepEqual(
      got.map((m) => m.subject),
      ["room.a.say", "room.b.say"],
    );
  });

  it("matches '>' to one or more trailing tokens, never zero", async () => {
    const nc = await client();
    const sub = nc.subscribe("log.>");
    for (const s of ["log", "log.a", "log.a.b.c", "logx.a", "other.log.a"]) {
      nc.publish(s, sc.encode(s));
    }
    await nc.flush();
    sub.unsubscribe();
    const got = await untilClosed(sub);
    assert.deepEqual(
      got.map((m) => m.subject),
      ["log.a", "log.a.b.c"],
    );
  });

  it("matches a full wildcard '>' and mixed '*.>'", async () => {
    const nc = await client();
    const all = nc.subscribe(">");
    const mixed = nc.subscribe("*.x.>");
    nc.publish("m.x.1", sc.encode("1"));
    nc.publish("m.y.1", sc.encode("2"));
    nc.publish("m.x", sc.encode("3"));
    await nc.flush();
    all.unsubscribe();
    mixed.unsubscribe();
    const everything = (await untilClosed(all)).map((m) => m.subject);
    for (const s of ["m.x.1", "m.y.1", "m.x"]) assert.ok(everything.includes(s), `> missed ${s}`);
    assert.deepEqual(
      (await untilClosed(mixed)).map((m) => m.subject),
      ["m.x.1"],
    );
  });

  it("does not echo a client's own messages when it asked for noEcho", async () => {
    const quiet = await client({ noEcho: true });
    const other = await client();
    const own = quiet.subscribe("echo.test");
    const theirs = other.subscribe("echo.test");
    await quiet.flush();
    await other.flush();
    quiet.publish("echo.test", sc.encode("from quiet"));
    await take(theirs, 1);
    await quiet.flush();
    own.unsubscribe();
    assert.equal((await untilClosed(own)).length, 0);
  });
});

describe("queue groups", () => {
  it("gives each message to exactly one member, and every member some", async () => {
    const members = [await client(), await client(), await client()];
    const counts = [0, 0, 0];
    const seen = new Set();
    const subs = members.map((nc, i) =>
      nc.subscribe("work.items", {
        queue: "workers",
        callback: (err, m) => {
          if (err) return;
          counts[i]++;
          const id = sc.decode(m.data);
          assert.ok(!seen.has(id), `message ${id} delivered twice`);
          seen.add(id);
        },
      }),
    );
    const watcher = (await client()).subscribe("work.items");
    await Promise.all(members.map((nc) => nc.flush()));
    const pub = await client();
    await pub.flush();
    for (let i = 0; i < 300; i++) pub.publish("work.items", sc.encode(String(i)));
    await take(watcher, 300);
    await Promise.all(members.map((nc) => nc.flush()));
    const deadline = Date.now() + 3_000;
    while (seen.size < 300 && Date.now() < deadline) await sleep(10);
    assert.equal(seen.size, 300, `queue group received ${seen.size} of 300`);
    assert.equal(counts[0] + counts[1] + counts[2], 300);
    for (const c of counts) assert.ok(c > 0, `a member got nothing: ${counts}`);
    subs.forEach((s) => s.unsubscribe());
  });

  it("delivers to a plain subscriber and one queue member of each group", async () => {
    const nc = await client();
    const plain = nc.subscribe("q.mix");
    const a1 = nc.subscribe("q.mix", { queue: "a" });
    const a2 = nc.subscribe("q.mix", { queue: "a" });
    const b = nc.subscribe("q.*", { queue: "b" });
    for (let i = 0; i < 20; i++) nc.publish("q.mix", sc.encode(String(i)));
    await nc.flush();
    for (const s of [plain, a1, a2, b]) s.unsubscribe();
    const [p, x1, x2, y] = await Promise.all([plain, a1, a2, b].map((s) => untilClosed(s)));
    assert.equal(p.length, 20);
    assert.equal(x1.length + x2.length, 20);
    assert.equal(y.length, 20);
  });
});

describe("unsubscribe", () => {
  it("stops delivery after unsubscribe", async () => {
    const nc = await client();
    const sub = nc.subscribe("unsub.now");
    nc.publish("unsub.now", sc.encode("1"));
    await take(sub, 1);
    sub.unsubscribe();
    nc.publish("unsub.now", sc.encode("2"));
    await nc.flush();
    assert.equal((await untilClosed(sub)).length, 0);
    assert.equal(sub.isClosed(), true);
  });

  it("ends a subscription after max messages ({ max: 3 })", async () => {
    const nc = await client();
    const sub = nc.subscribe("unsub.max", { max: 3 });
    for (let i = 0; i < 10; i++) nc.publish("unsub.max", sc.encode(String(i)));
    const got = await untilClosed(sub);
    assert.deepEqual(
      got.map((m) => sc.decode(m.data)),
      ["0", "1", "2"],
    );
  });

  it("ends after max messages given later with unsubscribe(max)", async () => {
    const pub = await client();
    const nc = await client();
    const sub = nc.subscribe("unsub.later");
    await nc.flush();
    pub.publish("unsub.later", sc.encode("a"));
    pub.publish("unsub.later", sc.encode("b"));
    await take(sub, 2);
    sub.unsubscribe(4); // two more, counting the two already received
    await nc.flush();
    for (let i = 0; i < 6; i++) pub.publish("unsub.later", sc.encode(String(i)));
    const got = await untilClosed(sub);
    assert.deepEqual(
      got.map((m) => sc.decode(m.data)),
      ["0", "1"],
    );
  });
});

describe("drain", () => {
  it("drains a subscription: what was published before still arrives", async () => {
    const nc = await client();
    const received = [];
    const sub = nc.subscribe("drain.sub", { callback: (_, m) => received.push(sc.decode(m.data)) });
    for (let i = 0; i < 100; i++) nc.publish("drain.sub", sc.encode(String(i)));
    await within(sub.drain(), 5_000, "sub.drain");
    assert.equal(received.length, 100);
    assert.equal(sub.isClosed(), true);
  });

  it("drains a connection: messages in flight arrive, then it closes cleanly", async () => {
    const pub = await client();
    const nc = await client();
    const received = [];
    nc.subscribe("drain.conn", { callback: (_, m) => received.push(sc.decode(m.data)) });
    await nc.flush();
    for (let i = 0; i < 200; i++) pub.publish("drain.conn", sc.encode(String(i)));
    await pub.flush();
    await within(nc.drain(), 5_000, "nc.drain");
    const err = await within(nc.closed(), 2_000, "closed");
    assert.equal(err, undefined);
    assert.equal(received.length, 200);
  });
});

describe("scale and size", () => {
  it("holds 5000 subscriptions on one connection, each getting its own message", async (t) => {
    const nc = await client();
    const pub = await client();
    const count = 5000;
    const got = new Array(count).fill(0);
    let total = 0;
    for (let i = 0; i < count; i++) {
      nc.subscribe(`many.${i}`, {
        callback: () => {
          got[i]++;
          total++;
        },
      });
    }
    await within(nc.flush(), 10_000, "flush after subscribing");
    const started = Date.now();
    for (let i = 0; i < count; i++) pub.publish(`many.${i}`, sc.encode(String(i)));
    await pub.flush();
    const deadline = Date.now() + 10_000;
    while (total < count && Date.now() < deadline) await sleep(10);
    assert.equal(total, count, `received ${total} of ${count}`);
    assert.ok(
      got.every((n) => n === 1),
      "every subscription received exactly one",
    );
    t.diagnostic(`${count} subjects delivered in ${Date.now() - started} ms`);
  });

  it("fans one message out to 300 connections", async (t) => {
    const started = Date.now();
    const many = await Promise.all(Array.from({ length: 300 }, () => client()));
    let got = 0;
    many.forEach((nc) => nc.subscribe("fan.out", { callback: () => got++ }));
    await Promise.all(many.map((nc) => nc.flush()));
    const pub = await client();
    pub.publish("fan.out", sc.encode("to all"));
    await pub.flush();
    const deadline = Date.now() + 5_000;
    while (got < 300 && Date.now() < deadline) await sleep(10);
    assert.equal(got, 300);
    t.diagnostic(`300 connections, subscribed and delivered in ${Date.now() - started} ms`);
    await Promise.all(many.map((nc) => nc.close()));
  });

  it("carries a message of exactly 1 MiB intact", async () => {
    const nc = await client();
    const sub = nc.subscribe("big");
    const payload = new Uint8Array(1024 * 1024);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 31 + 7) & 0xff;
    nc.publish("big", payload);
    const [m] = await take(sub, 1, 10_000);
    assert.equal(m.data.length, payload.length);
    assert.ok(Buffer.from(m.data).equals(Buffer.from(payload)), "payload differs");
  });

  it("refuses, in the client, a message over INFO's max_payload", async () => {
    const nc = await client();
    assert.throws(
      () => nc.publish("big", new Uint8Array(1024 * 1024 + 1)),
      (e) => e.code === ErrorCode.MaxPayloadExceeded,
    );
  });
});

describe("verbose and pedantic", () => {
  it("works with verbose: every command's +OK is consumed by the client", async () => {
    const nc = await client({ verbose: true, pedantic: true });
    const sub = nc.subscribe("verbose.*");
    for (let i = 0; i < 50; i++) nc.publish("verbose.x", sc.encode(String(i)));
    const got = await take(sub, 50);
    assert.equal(got.length, 50);
    sub.unsubscribe();
    await within(nc.flush(), 2_000, "flush in verbose mode");
    const r = nc.subscribe("verbose.req", { callback: (_, m) => m.respond(sc.encode("yes")) });
    const answer = await nc.request("verbose.req", sc.encode("?"), { timeout: 2_000 });
    assert.equal(sc.decode(answer.data), "yes");
    r.unsubscribe();
    await within(nc.drain(), 2_000, "drain");
  });
});

describe("server side limits as nats-server reports them", () => {
  it("reports an invalid subscription subject without closing the connection", async () => {
    const nc = await client();
    const statuses = [];
    (async () => {
      for await (const s of nc.status()) statuses.push(s);
    })();
    nc.subscribe("bad..subject");
    await nc.flush(); // the -ERR came before the PONG
    // Status events are dispatched asynchronously.
    await until(
      () => statuses.some((s) => s.type === "error" && s.data === ErrorCode.ProtocolError),
      5_000,
      "a protocol error status",
    ).catch((e) => assert.fail(`${e.message}; statuses: ${JSON.stringify(statuses)}`));
    // The connection keeps working.
    const sub = nc.subscribe("still.ok");
    nc.publish("still.ok", sc.encode("yes"));
    const [m] = await take(sub, 1);
    assert.equal(sc.decode(m.data), "yes");
    assert.equal(nc.isClosed(), false);
  });

  it(
    "on manifold only: refuses a publish to a wildcard subject (nats-server reports it and delivers anyway)",
    { skip: !isManifold && "documented difference: nats-server delivers it" },
    async () => {
      const nc = await client();
      const sub = nc.subscribe("wild.*");
      nc.publish("wild.*", sc.encode("not allowed"));
      nc.publish("wild.ok", sc.encode("allowed"));
      const [m] = await take(sub, 1);
      assert.equal(m.subject, "wild.ok");
      await nc.flush();
      sub.unsubscribe();
      assert.equal((await untilClosed(sub)).length, 0);
    },
  );
});
