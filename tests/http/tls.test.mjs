// The web listener over TLS (https://, wss://) with real clients: curl
// --cacert, the `ws` package with its `ca` option, Server-Sent Events read by
// curl -N, and nats.ws; plain HTTP sent to the TLS port, clients that do not
// trust manifoldd's CA, and the TLS counters in /metrics, /stats and
// `manifold stats`. The certificates are made by the test (lib/pki.mjs).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import https from "node:https";
import net from "node:net";
import WebSocket from "ws";
import { connect, StringCodec } from "nats.ws";
import { Manifoldd, manifoldCli, waitFor } from "./lib/servers.mjs";
import { makePki } from "./lib/pki.mjs";

const sc = StringCodec();
let pki;
let server;

before(async () => {
  pki = makePki();
  server = await Manifoldd.start(["--tls_cert", pki.serverCert, "--tls_key", pki.serverKey], { tls: true });
});
after(async () => {
  await server?.stop();
  pki?.remove();
});

// Runs curl with `args`; resolves with its exit code and output (curl's
// exit code 60 is "the peer's certificate cannot be verified").
function curl(...args) {
  return new Promise((resolve) => {
    execFile("curl", ["--silent", "--show-error", "--max-time", "10", ...args], (error, stdout, stderr) =>
      resolve({ code: error ? error.code : 0, stdout, stderr }));
  });
}

// One HTTPS request on a fresh connection, trusting `ca`.
function request(path, { method = "GET", body, ca = pki.caPem } = {}) {
  return new Promise((resolve, reject) => {
    const req = https.request(server.url(path), { method, ca, agent: false }, (res) => {
      let data = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (data += d));
      res.on("end", () => resolve({ status: res.statusCode, body: data }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

const getJson = async (path) => JSON.parse((await request(path)).body);
const publish = async (topic, body) => JSON.parse((await request(`/pub/${topic}`, { method: "POST", body })).body);

async function waitForPattern(pattern) {
  await waitFor(async () => ((await getJson("/connections")).connections || [])
    .some((c) => (c.subscriptions || []).some((s) => s.pattern === pattern)), `a subscription to ${pattern}`);
}

// A manifold.json WebSocket session over wss, trusting `ca`; its messages
// queue up for nextJson().
async function wssSession(name, ca = pki.caPem) {
  const ws = new WebSocket(server.wsUrl("/ws"), "manifold.json", { ca });
  const queue = [];
  const waiters = [];
  ws.on("message", (data) => {
    const m = JSON.parse(data.toString());
    const w = waiters.shift();
    if (w) w(m);
    else queue.push(m);
  });
  ws.nextJson = (timeoutMs = 5_000) => queue.length > 0 ? Promise.resolve(queue.shift()) : new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no WebSocket message in time")), timeoutMs);
    waiters.push((m) => { clearTimeout(timer); resolve(m); });
  });
  ws.sendJson = (m) => ws.send(JSON.stringify(m));
  await new Promise((resolve, reject) => { ws.on("open", resolve); ws.on("error", reject); });
  ws.sendJson({ hello: { protocolVersion: 1, clientName: name } });
  const welcome = await ws.nextJson();
  assert.ok(welcome.welcome, JSON.stringify(welcome));
  return ws;
}

async function subscribe(ws, pattern) {
  ws.sendJson({ subscribe: { opId: "1", pattern } });
  const ack = await ws.nextJson();
  assert.equal(ack.ack?.opId, "1", JSON.stringify(ack));
}

// Sends `text` in clear to the TLS port; resolves with what came back once
// manifoldd has closed the connection.
function sendPlain(text) {
  return new Promise((resolve, reject) => {
    const [host, port] = server.http.split(":");
    const socket = net.connect(Number(port), host, () => socket.write(text));
    const chunks = [];
    const timer = setTimeout(() => { socket.destroy(); reject(new Error("the plain-text connection was not closed")); }, 5_000);
    socket.on("data", (d) => chunks.push(d));
    socket.on("error", () => {});
    socket.on("close", () => { clearTimeout(timer); resolve(Buffer.concat(chunks)); });
  });
}

test("curl --cacert reads /healthz and /stats over https and publishes with POST", async () => {
  const health = await curl("--cacert", pki.caCert, server.url("/healthz"));
  assert.equal(health.code, 0, health.stderr);
  assert.deepEqual(JSON.parse(health.stdout), { status: "ok" });
  const stats = await curl("--cacert", pki.caCert, server.url("/stats"));
  assert.equal(stats.code, 0, stats.stderr);
  assert.equal(JSON.parse(stats.stdout).slowConsumerPolicy, "backpressure");
  const pub = await curl("--cacert", pki.caCert, "-X", "POST", "--data-binary", "hello", server.url("/pub/tls/rest"));
  assert.equal(pub.code, 0, pub.stderr);
  assert.deepEqual(JSON.parse(pub.stdout), { delivered: 0 });
});

test("wss: a ws client given the CA subscribes and receives a publish made with curl over https", async () => {
  const ws = await wssSession("wss-a");
  await subscribe(ws, "tls/ws/*");
  const pub = await curl("--cacert", pki.caCert, "-X", "POST", "--data-binary", "through tls", server.url("/pub/tls/ws/1"));
  assert.deepEqual(JSON.parse(pub.stdout), { delivered: 1 });
  const d = (await ws.nextJson()).deliver;
  assert.deepEqual([d.topic, d.payload], ["tls/ws/1", "through tls"]);
  ws.close();
});

test("Server-Sent Events over https reach curl -N", async () => {
  const sse = spawn("curl", ["--silent", "--show-error", "-N", "--cacert", pki.caCert, server.url("/sse?topic=tls/sse")],
    { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  sse.stdout.on("data", (d) => (out += d));
  sse.stderr.on("data", (d) => (err += d));
  const exited = new Promise((resolve) => sse.on("exit", resolve));
  try {
    await waitForPattern("tls/sse");
    assert.deepEqual(await publish("tls/sse", "streamed"), { delivered: 1 });
    await waitFor(() => out.includes("data: streamed"), `the event in curl's output (${out}${err})`);
    assert.match(out, /id: 1\nevent: tls\/sse\ndata: streamed\n/);
  } finally {
    sse.kill("SIGTERM");
    await exited;
  }
});

test("nats.ws over wss publishes and subscribes", async () => {
  // nats.ws makes its sockets with `new WebSocket(url)`: this one adds the CA.
  globalThis.WebSocket = class extends WebSocket {
    constructor(url, protocols, options) { super(url, protocols, { ...options, ca: pki.caPem }); }
  };
  const a = await connect({ servers: server.wsUrl("/nats"), name: "nats-wss-a" });
  const b = await connect({ servers: server.wsUrl("/nats"), name: "nats-wss-b" });
  const sub = b.subscribe("tls.nats", { max: 1 });
  await b.flush();
  a.publish("tls.nats", sc.encode("over wss"));
  for await (const m of sub) assert.equal(sc.decode(m.data), "over wss");
  await a.close();
  await b.close();
});

test("plain HTTP to the TLS port is closed without an HTTP answer; a wss client beside it is unharmed", async () => {
  const ws = await wssSession("wss-beside");
  await subscribe(ws, "tls/beside");
  const answer = await sendPlain("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n");
  assert.ok(!answer.toString("latin1").startsWith("HTTP/"), `no HTTP answer in clear: ${answer.toString("latin1")}`);
  assert.deepEqual(await publish("tls/beside", "still here"), { delivered: 1 });
  const d = (await ws.nextJson()).deliver;
  assert.deepEqual([d.topic, d.payload], ["tls/beside", "still here"]);
  ws.close();
});

test("a client that does not trust manifoldd's CA refuses to talk to it", async () => {
  const none = await curl(server.url("/healthz"));
  assert.equal(none.code, 60, `curl without the CA: ${none.stderr}`);
  const stranger = await curl("--cacert", pki.strangerCaCert, server.url("/healthz"));
  assert.equal(stranger.code, 60, `curl with another CA: ${stranger.stderr}`);
  await assert.rejects(request("/healthz", { ca: pki.strangerCaPem }), /certificate|issuer/i);
  await assert.rejects(wssSession("wss-untrusting", pki.strangerCaPem), /certificate|issuer/i);
});

// The value of the Prometheus sample `name` (with its labels), or undefined.
function sample(text, name) {
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const m = text.match(new RegExp(`^${escaped} (\\d+)$`, "m"));
  return m ? Number(m[1]) : undefined;
}

test("TLS handshakes and failures are counted in /metrics, /stats and manifold stats", async () => {
  const metrics = async () => (await request("/metrics")).body;
  const before = await metrics();
  const handshakes = sample(before, "manifold_tls_handshakes_total");
  const plain = sample(before, 'manifold_tls_failures_total{reason="plain_text"}');
  const failed = sample(before, 'manifold_tls_failures_total{reason="handshake_failure"}');
  assert.ok(handshakes >= 1 && plain !== undefined && failed !== undefined, before);
  assert.match(before, /^# TYPE manifold_tls_failures_total counter$/m);
  assert.notEqual(sample(before, 'manifold_tls_failures_total{reason="handshake_timeout"}'), undefined);
  assert.notEqual(sample(before, 'manifold_tls_failures_total{reason="protocol_error"}'), undefined);

  await sendPlain("GET /metrics HTTP/1.1\r\n\r\n");
  // The client gives up on the certificate: the handshake fails on both sides.
  await curl("--cacert", pki.strangerCaCert, server.url("/healthz"));
  let after = "";
  await waitFor(async () => {
    after = await metrics();
    // At least: the previous test's refused clients may still be counted.
    return sample(after, 'manifold_tls_failures_total{reason="plain_text"}') >= plain + 1 &&
      sample(after, 'manifold_tls_failures_total{reason="handshake_failure"}') >= failed + 1;
  }, "one more plain-text and one more handshake failure in /metrics");
  const plainNow = sample(after, 'manifold_tls_failures_total{reason="plain_text"}');
  const failedNow = sample(after, 'manifold_tls_failures_total{reason="handshake_failure"}');
  // The /metrics requests themselves shook hands.
  assert.ok(sample(after, "manifold_tls_handshakes_total") >= handshakes + 1, after);

  const stats = await getJson("/stats");
  assert.ok(Number(stats.tlsHandshakes) >= handshakes + 2, JSON.stringify(stats));
  const byReason = Object.fromEntries(stats.tlsFailures.map((f) => [f.reason, Number(f.count)]));
  assert.deepEqual(Object.keys(byReason), ["handshake_failure", "handshake_timeout", "plain_text", "protocol_error"]);
  assert.equal(byReason.plain_text, plainNow);
  assert.equal(byReason.handshake_failure, failedNow);

  // The native listener has TLS too: `manifold stats` connects with the CA.
  const cli = JSON.parse((await manifoldCli(server,
    ["--tls", "--tls_ca", pki.caCert, "--tls_server_name", "localhost", "stats"]))[0]);
  assert.ok(Number(cli.tls_handshakes) >= handshakes + 3, JSON.stringify(cli));
  assert.equal(Number(cli.tls_failures.plain_text), plainNow);
  assert.equal(Number(cli.tls_failures.handshake_failure), failedNow);
});
