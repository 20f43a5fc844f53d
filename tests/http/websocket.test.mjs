// GET /ws with the `ws` npm client: both subprotocols, WebSocket limits, and
// messages crossing to NATS (nats.ws) and native (the manifold CLI) clients.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import WebSocket, { Sender } from "ws";
import { connect, StringCodec } from "nats.ws";
import { Manifoldd, manifoldCli, waitForPattern } from "./lib/servers.mjs";
import { encodeClient, decodeServer } from "./lib/native_frames.mjs";

globalThis.WebSocket = WebSocket;
const sc = StringCodec();
let server;

before(async () => {
  server = await Manifoldd.start(["--max_frame_bytes", "200000", "--max_payload_bytes", "100000"]);
});
after(async () => server.stop());

// A WebSocket whose messages queue up for next().
async function open(path, protocol) {
  const ws = new WebSocket(server.wsUrl(path), protocol);
  const queue = [];
  const waiters = [];
  ws.on("message", (data, isBinary) => {
    const m = isBinary ? data : data.toString();
    const w = waiters.shift();
    if (w) w(m);
    else queue.push(m);
  });
  ws.closed = new Promise((resolve) => ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() })));
  ws.next = (timeoutMs = 5_000) => queue.length > 0 ? Promise.resolve(queue.shift()) : new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no WebSocket message in time")), timeoutMs);
    waiters.push((m) => { clearTimeout(timer); resolve(m); });
  });
  await new Promise((resolve, reject) => { ws.on("open", resolve); ws.on("error", reject); });
  return ws;
}

async function jsonSession(name) {
  const ws = await open("/ws", "manifold.json");
  assert.equal(ws.protocol, "manifold.json");
  ws.sendJson = (m) => ws.send(JSON.stringify(m));
  ws.nextJson = async () => JSON.parse(await ws.next());
  ws.sendJson({ hello: { protocolVersion: 1, clientName: name } });
  const welcome = await ws.nextJson();
  assert.ok(welcome.welcome, JSON.stringify(welcome));
  return ws;
}

test("manifold.json: subscribe, publish and receive text and binary payloads", async () => {
  const ws = await jsonSession("json-a");
  ws.sendJson({ subscribe: { opId: "1", pattern: "rooms/*" } });
  const ack = await ws.nextJson();
  assert.equal(ack.ack.opId, "1");
  const sid = ack.ack.subscriptionId;
  ws.sendJson({ publish: { opId: "2", topic: "rooms/a", payload: "héllo", ack: true } });
  const first = [await ws.nextJson(), await ws.nextJson()];
  const deliver = first.find((m) => m.deliver).deliver;
  assert.deepEqual([deliver.subscriptionId, deliver.topic, deliver.payload, deliver.base64], [sid, "rooms/a", "héllo", undefined]);
  assert.equal(first.find((m) => m.ack).ack.delivered, "1");
  ws.sendJson({ publish: { topic: "rooms/b", payload: Buffer.from([0xff, 0x00, 0x80]).toString("base64"), base64: true } });
  const binary = (await ws.nextJson()).deliver;
  assert.equal(binary.base64, true);
  assert.deepEqual([...Buffer.from(binary.payload, "base64")], [0xff, 0x00, 0x80]);
  ws.close();
});

test("manifold.json: a REST publish reaches the WebSocket subscriber", async () => {
  const ws = await jsonSession("json-b");
  ws.sendJson({ subscribe: { opId: "1", pattern: "news/**" } });
  await ws.nextJson();
  const r = await fetch(server.url("/pub/news/today"), { method: "POST", body: "extra" });
  assert.deepEqual(await r.json(), { delivered: 1 });
  const d = (await ws.nextJson()).deliver;
  assert.deepEqual([d.topic, d.payload], ["news/today", "extra"]);
  ws.close();
});

test("manifold.json: a malformed message closes with its error first", async () => {
  const ws = await jsonSession("json-c");
  ws.send("{not json");
  const error = await ws.nextJson();
  assert.equal(error.error.code, "MALFORMED_MESSAGE");
  assert.equal(error.error.fatal, true);
  assert.equal((await ws.closed).code, 1008);
});

test("manifold.json: text that is not UTF-8 closes with 1007", async () => {
  const ws = await jsonSession("json-d");
  // ws refuses to send invalid UTF-8 as text itself; write the frame raw.
  ws._sender.sendFrame(Sender.frame(Buffer.from([0x7b, 0xff, 0x7d]), {
    fin: true, opcode: 1, mask: true, readOnly: false, rsv1: false,
  }), () => {});
  assert.equal((await ws.closed).code, 1007);
});

test("a WebSocket message over the broker's frame limit closes with 1009", async () => {
  const ws = await jsonSession("json-e");
  ws.send("x".repeat(300_000));
  assert.equal((await ws.closed).code, 1009);
});

test("manifold.v1: native frames, one per binary message", async () => {
  const ws = await open("/ws", "manifold.v1");
  assert.equal(ws.protocol, "manifold.v1");
  ws.send(encodeClient({ hello: { protocolVersion: 1, clientName: "native-ws" } }));
  assert.ok(decodeServer(await ws.next()).welcome);
  ws.send(encodeClient({ subscribe: { opId: 1, pattern: "v1/*" } }));
  const ack = decodeServer(await ws.next()).ack;
  assert.equal(ack.opId, 1);
  ws.send(encodeClient({ publish: { topic: "v1/x", payload: Buffer.from("binary\u0000ok") } }));
  const d = decodeServer(await ws.next()).deliver;
  assert.equal(d.subscriptionId, ack.subscriptionId);
  assert.equal(d.topic, "v1/x");
  assert.equal(d.payload.toString(), "binary\u0000ok");
  ws.close();
});

test("manifold.v1: a burst routed in one turn still comes one frame per message", async () => {
  const ws = await open("/ws", "manifold.v1");
  ws.send(encodeClient({ hello: { protocolVersion: 1, clientName: "burst" } }));
  assert.ok(decodeServer(await ws.next()).welcome);
  ws.send(encodeClient({ subscribe: { opId: 1, pattern: "burst/v1" } }));
  assert.ok(decodeServer(await ws.next()).ack);
  // 200 publishes in one WebSocket message: the broker routes them together.
  ws.send(Buffer.concat(Array.from({ length: 200 }, (_, i) =>
    encodeClient({ publish: { topic: "burst/v1", payload: Buffer.from(`m${i}`) } }))));
  for (let i = 0; i < 200; i++) {
    const d = decodeServer(await ws.next()).deliver;
    assert.equal(d.payload.toString(), `m${i}`);
  }
  ws.close();
});

test("/nats: a burst routed in one turn arrives in fewer WebSocket messages, intact", async () => {
  const ws = await open("/nats");
  assert.match((await ws.next()).toString(), /^INFO /);
  let stream = "";
  let messages = 0;
  const readUntil = async (text) => {
    while (!stream.includes(text)) {
      stream += (await ws.next()).toString();
      messages++;
    }
  };
  ws.send(Buffer.from("CONNECT {\"verbose\":false}\r\nSUB burst.nats 1\r\nPING\r\n"));
  await readUntil("PONG\r\n");
  stream = "";
  messages = 0;
  let pubs = "";
  for (let i = 0; i < 500; i++) pubs += `PUB burst.nats ${`m${i}`.length}\r\nm${i}\r\n`;
  ws.send(Buffer.from(pubs + "PING\r\n"));
  await readUntil("PONG\r\n");
  let expected = "";
  for (let i = 0; i < 500; i++) expected += `MSG burst.nats 1 ${`m${i}`.length}\r\nm${i}\r\n`;
  assert.equal(stream, expected + "PONG\r\n");
  assert.ok(messages < 500, `500 MSGs in ${messages} WebSocket messages`);
  ws.close();
});

test("a bad upgrade is 400, a missing subprotocol too", async () => {
  for (const [path, protocol] of [["/ws", undefined], ["/nope", "manifold.json"]]) {
    const ws = new WebSocket(server.wsUrl(path), protocol);
    const status = await new Promise((resolve) => {
      ws.on("unexpected-response", (req, res) => resolve(res.statusCode));
      ws.on("open", () => resolve("opened"));
      ws.on("error", () => {});
    });
    assert.equal(status, 400, `${path} with ${protocol}`);
  }
});

test("cross-protocol: a browser-side publish reaches NATS and native subscribers, and back", async () => {
  const ws = await jsonSession("browser");
  ws.sendJson({ subscribe: { opId: "1", pattern: "cross/back" } });
  await ws.nextJson();
  const nc = await connect({ servers: server.wsUrl("/nats") });
  const natsSub = nc.subscribe("cross.out", { max: 1 });
  await nc.flush();
  const native = manifoldCli(server, ["sub", "cross/out", "--count", "1"]);
  await waitForPattern(server, "cross/out", { protocol: "native" });

  ws.sendJson({ publish: { topic: "cross/out", payload: "from the browser" } });
  const [natsMessage] = await Promise.all([(async () => { for await (const m of natsSub) return m; })()]);
  assert.equal(sc.decode(natsMessage.data), "from the browser");
  const lines = await native;
  assert.equal(JSON.parse(lines[0]).payload, "from the browser");

  nc.publish("cross.back", sc.encode("from nats"));
  await manifoldCli(server, ["pub", "cross/back", "from native"]);
  const got = [(await ws.nextJson()).deliver.payload, (await ws.nextJson()).deliver.payload].sort();
  assert.deepEqual(got, ["from native", "from nats"]);
  await nc.close();
  ws.close();
});
