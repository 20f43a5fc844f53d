// POST /pub and /req, /stats, /metrics, /healthz with curl; keep-alive and
// pipelining over a raw socket; limits and errors, each with its status.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { connect } from "node:net";
import WebSocket from "ws";
import { silentServer } from "./lib/native_frames.mjs";
import { Manifoldd, manifoldCli, waitFor, waitForPattern } from "./lib/servers.mjs";

let server;
before(async () => { server = await Manifoldd.start(["--max_payload_bytes", "4096"]); });
after(async () => server.stop());

// curl -s -i ...: resolves {status, headers, body}.
function curl(...args) {
  const out = execFileSync("curl", ["-s", "-i", "--max-time", "10", ...args], { encoding: "latin1" });
  const split = out.indexOf("\r\n\r\n");
  const head = out.slice(0, split).split("\r\n");
  const headers = {};
  for (const line of head.slice(1)) {
    const colon = line.indexOf(":");
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(head[0].split(" ")[1]), headers, body: out.slice(split + 4) };
}

// The same, without blocking the event loop.
function curlAsync(...args) {
  return new Promise((resolve, reject) => {
    execFile("curl", ["-s", "-i", "--max-time", "10", ...args], { encoding: "latin1" }, (error, out) => {
      if (error) return reject(error);
      const split = out.indexOf("\r\n\r\n");
      resolve({ status: Number(out.slice(0, split).split(" ")[1]), body: out.slice(split + 4) });
    });
  });
}

// Sends `bytes` on one connection; resolves with everything read until the
// server closes it or `idleMs` pass without data.
function raw(bytes, { idleMs = 1_500 } = {}) {
  return new Promise((resolve, reject) => {
    const [host, port] = server.http.split(":");
    const socket = connect(Number(port), host, () => socket.write(bytes));
    let data = "";
    let timer = setTimeout(() => socket.destroy(), idleMs);
    socket.on("data", (d) => {
      data += d.toString("latin1");
      clearTimeout(timer);
      timer = setTimeout(() => socket.destroy(), idleMs);
    });
    socket.on("close", () => { clearTimeout(timer); resolve(data); });
    socket.on("error", reject);
  });
}

const statusLines = (text) => [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));

test("POST /pub answers the delivery count and passes headers", async () => {
  const native = manifoldCli(server, ["sub", "rest/pub", "--count", "1"]);
  await waitForPattern(server, "rest/pub", { protocol: "native" });
  const r = curl("-X", "POST", "--data-binary", "payload!", "-H", "Manifold-Header-Color: blue", server.url("/pub/rest/pub"));
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(r.body), { delivered: 1 });
  const m = JSON.parse((await native)[0]);
  assert.equal(m.payload, "payload!");
});

test("POST /req returns the service's answer, and maps each failure", async () => {
  const serve = manifoldCli(server, ["serve", "rest/svc", "--reply", "pong", "--count", "1"]);
  await waitFor(() => JSON.parse(curl(server.url("/stats")).body).services === "1", "the service");
  const ok = curl("-X", "POST", "--data", "ping", server.url("/req/rest/svc?timeout=2s"));
  assert.equal(ok.status, 200);
  assert.equal(ok.body, "pong");
  await serve;

  const none = curl("-X", "POST", server.url("/req/rest/nobody"));
  assert.equal(none.status, 503);
  assert.equal(JSON.parse(none.body).error.code, "NO_SERVER");

  const slow = await silentServer(WebSocket, server.wsUrl("/ws"), "rest/slow");
  const late = curl("-X", "POST", server.url("/req/rest/slow?timeout=300ms"));
  assert.equal(late.status, 504);
  assert.equal(JSON.parse(late.body).error.code, "TIMED_OUT");

  const pending = curlAsync("-X", "POST", server.url("/req/rest/slow?timeout=5s"));
  await waitFor(() => slow.requests() === 2, "the request at the server");
  slow.close();
  const r = await pending;
  assert.equal(r.status, 502);
  assert.equal(JSON.parse(r.body).error.code, "SERVER_GONE");

  const bad = curl("-X", "POST", server.url("/req/a//b"));
  assert.equal(bad.status, 400);
  assert.equal(JSON.parse(bad.body).error.code, "INVALID_TOPIC");
});

test("/metrics is Prometheus text with per-protocol connections", async () => {
  const r = curl(server.url("/metrics"));
  assert.equal(r.status, 200);
  assert.match(r.headers["content-type"], /^text\/plain; version=0\.0\.4/);
  assert.match(r.body, /^# HELP manifold_connections /m);
  assert.match(r.body, /^# TYPE manifold_deliveries_total counter$/m);
  assert.match(r.body, /^manifold_connections_by_protocol\{protocol="http"\} [1-9]\d*$/m);
  assert.equal(curl(server.url("/healthz")).status, 200);
});

test("keep-alive and pipelining: answers come back in order on one connection", async () => {
  const requests =
    "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" +
    "POST /pub/pipe/a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc" +
    "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n" +
    "POST /req/pipe/none HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n" +
    "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  const answer = await raw(requests);
  assert.deepEqual(statusLines(answer), [200, 200, 404, 503, 200]);
  assert.match(answer, /Connection: close\r\n/);
});

test("limits: each gets its own status and a JSON error", async () => {
  const big = "x".repeat(20_000);
  assert.deepEqual(statusLines(await raw(`GET /healthz HTTP/1.1\r\nX-Big: ${big}\r\n\r\n`)), [431]);
  assert.deepEqual(statusLines(await raw(`POST /pub/a HTTP/1.1\r\nContent-Length: 5000\r\n\r\n`)), [413]);
  const r = curl("-X", "DELETE", server.url("/stats"));
  assert.equal(r.status, 405);
  assert.equal(r.headers.allow, "GET");
  assert.equal(curl(server.url("/nothing/here")).status, 404);
  assert.equal(curl(server.url("/ws")).status, 400);
  assert.deepEqual(statusLines(await raw("NOT HTTP AT ALL\r\n\r\n")), [400]);
  const reserved = curl("-X", "POST", server.url("/pub/$sys/x"));
  assert.equal(reserved.status, 403);
  const never = await silentServer(WebSocket, server.wsUrl("/ws"), "rest/never");
  const flood = statusLines(await raw("POST /req/rest/never HTTP/1.1\r\nContent-Length: 0\r\n\r\n".repeat(20)));
  assert.equal(flood.length, 17);
  assert.ok(flood.every((s) => s === 429), `every waiting request answered 429: ${flood}`);
  never.close();
  const stats = JSON.parse(curl(server.url("/stats")).body);
  assert.ok(Number(stats.protocolErrors) >= 3, `protocol errors counted: ${stats.protocolErrors}`);
  assert.ok(Number(stats.operationErrors) >= 3, `operation errors counted: ${stats.operationErrors}`);
});
