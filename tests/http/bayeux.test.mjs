// Bayeux at /cometd with the official CometD JavaScript client (npm `cometd`
// with `cometd-nodejs-client`) and the Faye client (npm `faye`), over
// long-polling and over WebSocket: handshake, wildcard subscriptions,
// publishing, messages from native and NATS publishers, /service requests
// answered by a native server, unsubscribe, disconnect, session expiry, a
// broker restart, and a stream's channel resumed across a kill -9. Then bad input with plain HTTP requests.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import WebSocket from "ws";
import { adapt } from "cometd-nodejs-client";
import { CometD } from "cometd";
import faye from "faye";
import { connect, StringCodec } from "nats.ws";
import { replayExtension } from "./lib/cometd_replay.mjs";
import { Manifoldd, freePort, manifoldCli, storedConfig, waitFor, waitForPattern } from "./lib/servers.mjs";

adapt();
globalThis.WebSocket = WebSocket;
const sc = StringCodec();

let server;
before(async () => { server = await Manifoldd.start(["--session_timeout=2s", "--max_sessions=64"]); });
after(async () => server.stop());

// ---------------------------------------------------------------------------
// CometD

function cometdClient(transport, target = server) {
  const cometd = new CometD();
  cometd.configure({ url: target.url("/cometd"), logLevel: "warn", maxBackoff: 500 });
  for (const other of ["websocket", "long-polling", "callback-polling"]) {
    if (other !== transport) cometd.unregisterTransport(other);
  }
  return cometd;
}

const handshake = (cometd) => new Promise((resolve, reject) => {
  cometd.handshake((reply) => (reply.successful ? resolve(reply) : reject(new Error(JSON.stringify(reply)))));
});

// Subscribes; resolves with the received messages' list once the broker
// confirmed the subscription.
function subscribe(cometd, channel) {
  const got = [];
  return new Promise((resolve, reject) => {
    const handle = cometd.subscribe(channel, (m) => got.push(m), (reply) => {
      if (reply.successful) resolve({ got, handle });
      else reject(new Error(JSON.stringify(reply)));
    });
  });
}

const cometdPublish = (cometd, channel, data) => new Promise((resolve) => cometd.publish(channel, data, resolve));
const disconnect = (cometd) => new Promise((resolve) => cometd.disconnect(resolve));

for (const transport of ["long-polling", "websocket"]) {
  test(`cometd ${transport}: handshake, wildcard subscriptions, messages from native, NATS and Bayeux publishers`, async () => {
    const a = cometdClient(transport);
    const b = cometdClient(transport);
    const hs = await handshake(a);
    await handshake(b);
    assert.match(a.getClientId(), /^[0-9a-f]{40}$/);
    assert.equal(a.getTransport().type, transport);
    assert.ok(hs.supportedConnectionTypes.includes("long-polling"));
    const one = await subscribe(b, "/chat/*");
    const deep = await subscribe(b, "/chat/**");  // also matches: delivered once
    await waitForPattern(server, "chat/**");

    const reply = await cometdPublish(a, "/chat/room1", { text: "from cometd", n: 1 });
    assert.equal(reply.successful, true);
    await manifoldCli(server, ["pub", "chat/room2", '{"text":"from native"}']);
    const nc = await connect({ servers: server.wsUrl("/nats") });
    nc.publish("chat.room3", sc.encode("plain text from nats"));
    await nc.flush();
    await nc.close();

    await waitFor(() => one.got.length === 3, `3 messages on /chat/* (got ${one.got.length})`);
    assert.deepEqual(one.got.map((m) => [m.channel, m.data]), [
      ["/chat/room1", { text: "from cometd", n: 1 }],
      ["/chat/room2", { text: "from native" }],
      ["/chat/room3", "plain text from nats"],
    ]);
    // A client gets a message once, however many of its subscriptions match.
    await waitFor(() => deep.got.length === 3, "3 messages on /chat/**");
    await disconnect(a);
    await disconnect(b);
  });

  test(`cometd ${transport}: a Bayeux publish reaches native subscribers`, async () => {
    const a = cometdClient(transport);
    await handshake(a);
    const sub = manifoldCli(server, ["sub", "orders/*", "--count", "1"]);
    await waitForPattern(server, "orders/*", { protocol: "native" });
    await cometdPublish(a, "/orders/eu", { id: 7 });
    const lines = await sub;
    const m = JSON.parse(lines[0]);
    assert.equal(m.topic, "orders/eu");
    assert.deepEqual(JSON.parse(m.payload), { id: 7 });
    await disconnect(a);
  });

  test(`cometd ${transport}: /service requests reach a native service`, async () => {
    const topic = `echo/${transport}`;
    const service = manifoldCli(server, ["serve", topic, "--count", "1"], { timeoutMs: 15_000 });
    await waitFor(async () => {
      const list = await fetch(server.url("/connections")).then((r) => r.json());
      return (list.connections || []).some((c) => (c.servedTopics || []).includes(topic));
    }, "the native service");
    const a = cometdClient(transport);
    await handshake(a);
    const reply = await new Promise((resolve) => a.remoteCall(topic, { word: "hi" }, 5000, resolve));
    assert.equal(reply.successful, true, JSON.stringify(reply));
    assert.deepEqual(reply.data, { word: "hi" });  // the echo service answers with the request
    await service;
    const none = await new Promise((resolve) => a.remoteCall("nobody/serves", {}, 5000, resolve));
    assert.equal(none.successful, false);
    assert.match(none.error, /^503::NO_SERVER/);
    await disconnect(a);
  });

  test(`cometd ${transport}: unsubscribe stops messages; disconnect ends the session`, async () => {
    const a = cometdClient(transport);
    await handshake(a);
    const s = await subscribe(a, "/news/*");
    await waitForPattern(server, "news/*");
    await manifoldCli(server, ["pub", "news/1", '"first"']);
    await waitFor(() => s.got.length === 1, "the first message");
    await new Promise((resolve) => a.unsubscribe(s.handle, resolve));
    await waitFor(async () => {
      const list = await fetch(server.url("/connections")).then((r) => r.json());
      return !(list.connections || []).some((c) => (c.subscriptions || []).some((x) => x.pattern === "news/*"));
    }, "the subscription to end");
    await manifoldCli(server, ["pub", "news/2", '"second"']);
    const id = a.getClientId();
    const bye = await disconnect(a);
    assert.equal(bye.successful, true);
    assert.equal(s.got.length, 1);
    // The session is gone: its clientId is unknown now.
    const r = await fetch(server.url("/cometd/connect"), {
      method: "POST", body: JSON.stringify([{ channel: "/meta/connect", clientId: id, connectionType: "long-polling" }]),
    }).then((x) => x.json());
    assert.equal(r[0].error, "402::session_unknown");
  });
}

test("cometd: a broker restart is survived by handshaking again", async () => {
  const own = await Manifoldd.start();
  const port = own.http.split(":")[1];
  const a = cometdClient("long-polling", own);
  const handshakes = [];
  let latest = null;
  // Subscriptions belong to a session: made again on every handshake.
  a.addListener("/meta/handshake", (m) => {
    handshakes.push(m.successful);
    if (m.successful) {
      a.batch(() => { latest = { got: [] }; const box = latest; a.subscribe("/restart/*", (x) => box.got.push(x.data)); });
    }
  });
  await handshake(a);
  await waitForPattern(own, "restart/*");
  const firstId = a.getClientId();
  await own.stop();
  const again = await Manifoldd.start(["--http", `127.0.0.1:${port}`]);
  try {
    await waitFor(() => a.getClientId() !== firstId && handshakes.at(-1) === true, "a new handshake", 15_000);
    await waitForPattern(again, "restart/*", { timeoutMs: 10_000 });
    await manifoldCli(again, ["pub", "restart/x", '"after"']);
    await waitFor(() => latest.got.length === 1, "the message after the restart");
    assert.deepEqual(latest.got, ["after"]);
    await disconnect(a);
  } finally {
    await again.stop();
  }
});

for (const transport of ["long-polling", "websocket"]) {
  test(`cometd ${transport}: a stored channel resumes from its replayId across a kill -9 and restart, losing and repeating nothing`, async () => {
    const stored = storedConfig("log", "log/**");
    const http = `127.0.0.1:${await freePort()}`;
    const flags = ["--config", stored.config, "--http", http];
    let broker = await Manifoldd.start(flags);
    const a = cometdClient(transport, broker);
    try {
      const replay = replayExtension(["/log/*"]);
      a.registerExtension("replay", replay);
      const got = [];
      let handshakes = 0;
      // Subscriptions belong to a session: made again on every handshake,
      // and the extension adds where the last one left off.
      a.addListener("/meta/handshake", (m) => {
        if (!m.successful) return;
        handshakes++;
        a.subscribe("/log/*", (x) => got.push([x.data, x.ext.replayId]));
      });
      await handshake(a);
      await waitForPattern(broker, "log/*");
      const pub = (body) => fetch(broker.url("/pub/log/a"), { method: "POST", body: JSON.stringify(body) }).then((r) => r.json());
      for (const body of ["m1", "m2", "m3"]) await pub(body);
      await waitFor(() => got.length === 3, "three messages");
      assert.equal(replay.positions.get("/log/*"), 3);

      // Killed: nothing said goodbye. What is published after the restart,
      // before the client has handshaken again, is replayed to it.
      await broker.kill();
      broker = await Manifoldd.start(flags);
      for (const body of ["m4", "m5"]) await pub(body);
      await waitFor(() => got.length === 5, "the two published while it was away", 15_000);
      await pub("m6");
      await waitFor(() => got.length === 6, "a live one after them");
      assert.equal(handshakes, 2);
      assert.deepEqual(got, [["m1", 1], ["m2", 2], ["m3", 3], ["m4", 4], ["m5", 5], ["m6", 6]]);
      await disconnect(a);
    } finally {
      await broker.stop();
      stored.remove();
    }
  });
}

test("cometd: a replaying subscription the broker ends is said on /meta/unsubscribe", async () => {
  await manifoldCli(server, ["stream", "add", "ENDED", "--topics", "ended/**", "--storage", "memory"]);
  const a = cometdClient("long-polling");
  const ended = [];
  a.addListener("/meta/unsubscribe", (m) => ended.push(m));
  a.registerExtension("replay", replayExtension(["/ended/*"]));
  await handshake(a);
  const sub = await subscribe(a, "/ended/*");
  await waitForPattern(server, "ended/*");
  await manifoldCli(server, ["pub", "ended/x", '"stored"']);
  await waitFor(() => sub.got.length === 1, "the stored message");
  assert.equal(sub.got[0].ext.replayId, 1);
  await manifoldCli(server, ["stream", "rm", "ENDED"]);
  await waitFor(() => ended.length === 1, "the broker's unsubscribe");
  assert.equal(ended[0].successful, false);
  assert.equal(ended[0].subscription, "/ended/*");
  assert.match(ended[0].error, /::UNKNOWN_STREAM: /);
  await disconnect(a);
});

// A TCP proxy in front of `target`'s HTTP listener that can cut every link
// and refuse new ones for a while, as a network outage does.
async function outageProxy(target) {
  const [host, port] = target.http.split(":");
  const sockets = new Set();
  let down = false;
  const proxy = net.createServer((client) => {
    if (down) return client.destroy();
    const upstream = net.connect(Number(port), host);
    for (const s of [client, upstream]) { sockets.add(s); s.on("close", () => sockets.delete(s)); s.on("error", () => {}); }
    client.pipe(upstream).pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  return {
    http: `127.0.0.1:${proxy.address().port}`,
    url(path) { return `http://${this.http}${path}`; },
    cut() { down = true; for (const s of sockets) s.destroy(); },
    restore() { down = false; },
    close() { for (const s of sockets) s.destroy(); proxy.close(); },
  };
}

// The session ids of the broker's Bayeux sessions, from /connections.
async function bayeuxSessions(target) {
  const list = await fetch(target.url("/connections")).then((r) => r.json());
  return new Set((list.connections || []).filter((c) => c.protocol === "bayeux" && c.state === "polled").map((c) => c.sessionId));
}

test("cometd: a session that expired while the client was away is handshaken again", async () => {
  const proxy = await outageProxy(server);
  const a = cometdClient("long-polling", proxy);
  let handshakes = 0;
  a.addListener("/meta/handshake", (m) => { if (m.successful) handshakes++; });
  const earlier = await bayeuxSessions(server);
  await handshake(a);
  const id = a.getClientId();
  const mine = [...(await bayeuxSessions(server))].filter((x) => !earlier.has(x));
  assert.equal(mine.length, 1);
  // Nobody polls the session for longer than session_timeout (2 s): it
  // ends. The client's next connect gets 402::session_unknown, and it
  // handshakes again.
  proxy.cut();
  await waitFor(async () => !(await bayeuxSessions(server)).has(mine[0]), "the session to expire", 10_000);
  proxy.restore();
  await waitFor(() => handshakes === 2 && a.getClientId() !== id, "a new handshake", 15_000);
  assert.match(a.getClientId(), /^[0-9a-f]{40}$/);
  await disconnect(a);
  proxy.close();
});

// ---------------------------------------------------------------------------
// Faye

for (const transport of ["long-polling", "websocket"]) {
  test(`faye ${transport}: subscribe, publish, and messages from a native publisher`, async () => {
    const client = new faye.Client(server.url("/cometd"), { timeout: 10 });
    if (transport === "long-polling") client.disable("websocket");
    const got = [];
    const subscription = client.subscribe("/faye/*", (data) => got.push(data));
    await subscription;  // resolves once the broker confirmed it
    await waitForPattern(server, "faye/*");
    await client.publish("/faye/a", { from: "faye" });
    await manifoldCli(server, ["pub", "faye/b", '{"from":"native"}']);
    await waitFor(() => got.length === 2, `two messages (got ${got.length})`);
    assert.deepEqual(got, [{ from: "faye" }, { from: "native" }]);
    if (transport === "websocket") {
      await waitFor(async () => {
        const list = await fetch(server.url("/connections")).then((r) => r.json());
        return (list.connections || []).some((c) => c.protocol === "bayeux-ws");
      }, "faye to move to the WebSocket");
    }
    await subscription.cancel();
    await client.disconnect();
  });
}

// ---------------------------------------------------------------------------
// Bad input and limits, over plain HTTP

const post = (path, body, headers = {}) =>
  fetch(server.url(path), { method: "POST", body, headers });

async function rawHandshake(cookie) {
  const r = await post("/cometd/handshake", JSON.stringify([{ channel: "/meta/handshake", version: "1.0", id: "1" }]),
    cookie ? { Cookie: cookie } : {});
  const body = await r.json();
  return { r, reply: body[0] };
}

test("bayeux: malformed JSON is 400 and the connection's next request works", async () => {
  const r = await post("/cometd", "[{\"channel\": ");
  assert.equal(r.status, 400);
  assert.match((await r.json()).error.message, /not valid JSON/);
  const { reply } = await rawHandshake();
  assert.equal(reply.successful, true);
});

test("bayeux: missing clientId, unknown meta channels and publishes without data are refused by message", async () => {
  const r = await post("/cometd", JSON.stringify([
    { channel: "/meta/connect", connectionType: "long-polling", id: "a" },
    { channel: "/meta/bogus", clientId: "x", id: "b" },
    { channel: "/meta/connect", clientId: "x", connectionType: "callback-polling", id: "c" },
    { id: "d" },
    42,
  ]));
  assert.equal(r.status, 400);  // 42 is not a message: the batch is refused whole
  const ok = await post("/cometd", JSON.stringify([
    { channel: "/meta/connect", connectionType: "long-polling", id: "a" },
    { channel: "/meta/bogus", clientId: "x", id: "b" },
    { channel: "/meta/connect", clientId: "x", connectionType: "callback-polling", id: "c" },
    { id: "d" },
    { channel: "/some/where", clientId: "x", id: "e" },
  ])).then((x) => x.json());
  assert.deepEqual(ok.map((m) => [m.id, m.successful, m.error]), [
    ["a", false, "402::session_unknown"],
    ["b", false, "400::unknown meta channel /meta/bogus"],
    ["c", false, '400::unsupported connectionType "callback-polling"; use long-polling or websocket'],
    ["d", false, "400::message without a channel"],
    ["e", false, "400::a publish needs data"],
  ]);
  assert.equal(ok[0].advice.reconnect, "handshake");
});

test("bayeux: the BAYEUX_BROWSER cookie is set once, shared, and checked", async () => {
  const first = await rawHandshake();
  const cookie = first.r.headers.get("set-cookie").split(";")[0];
  assert.match(cookie, /^BAYEUX_BROWSER=[0-9a-f]{40}$/);
  // A second client of the same browser keeps the cookie.
  const second = await rawHandshake(cookie);
  assert.equal(second.r.headers.get("set-cookie"), null);
  const connect = (clientId, headers) => post("/cometd/connect", JSON.stringify([
    { channel: "/meta/connect", clientId, connectionType: "long-polling", advice: { timeout: 0 } },
  ]), headers).then((x) => x.json());
  assert.equal((await connect(second.reply.clientId, { Cookie: cookie }))[0].successful, true);
  // Another browser's cookie, or none, does not reach the session.
  const other = await rawHandshake();
  const otherCookie = other.r.headers.get("set-cookie").split(";")[0];
  assert.equal((await connect(second.reply.clientId, { Cookie: otherCookie }))[0].error, "402::session_unknown");
  assert.equal((await connect(second.reply.clientId, {}))[0].error, "402::session_unknown");
});

test("bayeux: a body over max_payload_bytes is 413", async () => {
  const big = JSON.stringify([{ channel: "/big", clientId: "x", data: "y".repeat(1100 * 1024) }]);
  const r = await post("/cometd", big);
  assert.equal(r.status, 413);
});

test("bayeux: a flood of handshakes is bounded, and sessions without a poll expire", async () => {
  const flood = await Manifoldd.start(["--session_timeout=1s", "--max_sessions=8"]);
  try {
    const hs = () => fetch(flood.url("/cometd/handshake"), {
      method: "POST", body: JSON.stringify([{ channel: "/meta/handshake", version: "1.0" }]),
    }).then((x) => x.json()).then((x) => x[0]);
    const replies = [];
    for (let i = 0; i < 12; i++) replies.push(await hs());
    assert.equal(replies.filter((m) => m.successful).length, 8);
    const refused = replies.find((m) => !m.successful);
    assert.match(refused.error, /^503::TOO_MANY_CONNECTIONS/);
    // Nobody polls them: after session_timeout they are gone, and there is
    // room again.
    await waitFor(async () => (await hs()).successful, "room for a new session", 5_000);
  } finally {
    await flood.stop();
  }
});
