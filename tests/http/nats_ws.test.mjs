// GET /nats with the `nats.ws` npm client (ws as its WebSocket in Node):
// the NATS protocol over WebSocket as nats-server's websocket listener
// speaks it, sharing subjects with NATS-over-TCP and native clients.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { connect, StringCodec, headers as natsHeaders } from "nats.ws";
import { Manifoldd, manifoldCli, waitFor, waitForPattern } from "./lib/servers.mjs";

globalThis.WebSocket = WebSocket;
const sc = StringCodec();
let server;
before(async () => { server = await Manifoldd.start(); });
after(async () => server.stop());

const dial = () => connect({ servers: server.wsUrl("/nats"), name: "nats-ws-test" });

test("publish and subscribe, with headers and wildcards", async () => {
  const a = await dial();
  const b = await dial();
  const sub = b.subscribe("orders.>", { max: 2 });
  await b.flush();
  const h = natsHeaders();
  h.set("Trace", "x1");
  a.publish("orders.eu.1", sc.encode("first"), { headers: h });
  a.publish("orders.us.2", sc.encode("second"));
  const got = [];
  for await (const m of sub) got.push([m.subject, sc.decode(m.data), m.headers?.get("Trace") ?? ""]);
  assert.deepEqual(got, [["orders.eu.1", "first", "x1"], ["orders.us.2", "second", ""]]);
  await a.close();
  await b.close();
});

test("a burst of messages reaches a nats.ws subscriber whole and in order", async () => {
  const a = await dial();
  const b = await dial();
  const n = 5000;
  const sub = b.subscribe("burst.order", { max: n });
  await b.flush();
  for (let i = 0; i < n; i++) a.publish("burst.order", sc.encode(`${i}`));
  await a.flush();
  let next = 0;
  for await (const m of sub) {
    assert.equal(sc.decode(m.data), `${next}`);
    next++;
  }
  assert.equal(next, n);
  await a.close();
  await b.close();
});

test("request and reply between two nats.ws clients", async () => {
  const server1 = await dial();
  const client = await dial();
  const sub = server1.subscribe("help.please");
  (async () => { for await (const m of sub) m.respond(sc.encode(`answer to ${sc.decode(m.data)}`)); })();
  await server1.flush();
  const reply = await client.request("help.please", sc.encode("q1"), { timeout: 2000 });
  assert.equal(sc.decode(reply.data), "answer to q1");
  await assert.rejects(client.request("nobody.home", sc.encode("?"), { timeout: 2000 }), /503|no responders/i);
  await server1.close();
  await client.close();
});

test("queue groups share the work", async () => {
  const workers = [await dial(), await dial()];
  const counts = [0, 0];
  workers.forEach((nc, i) => {
    const sub = nc.subscribe("jobs", { queue: "q" });
    (async () => { for await (const _ of sub) counts[i]++; })();
  });
  await Promise.all(workers.map((nc) => nc.flush()));
  const producer = await dial();
  for (let i = 0; i < 20; i++) producer.publish("jobs", sc.encode(`${i}`));
  await producer.flush();
  await waitFor(() => counts[0] + counts[1] === 20, "20 jobs handled");
  assert.ok(counts[0] > 0 && counts[1] > 0, `both workers got jobs: ${counts}`);
  await Promise.all([...workers, producer].map((nc) => nc.close()));
});

test("a native client's message reaches nats.ws and back", async () => {
  const nc = await dial();
  const sub = nc.subscribe("native.to.ws", { max: 1 });
  await nc.flush();
  await manifoldCli(server, ["pub", "native/to/ws", "hello from native"]);
  for await (const m of sub) assert.equal(sc.decode(m.data), "hello from native");
  const native = manifoldCli(server, ["sub", "ws/to/native", "--count", "1"]);
  await waitForPattern(server, "ws/to/native", { protocol: "native" });
  nc.publish("ws.to.native", sc.encode("hello from nats.ws"));
  assert.equal(JSON.parse((await native)[0]).payload, "hello from nats.ws");
  await nc.close();
});
