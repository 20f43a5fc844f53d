// The web front end's limits set in manifoldd's configuration file (the
// `web { ... }` and `broker { ... }` sections): each takes effect and gives
// its own status or close code, seen by a raw socket and by `ws`.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import { Manifoldd } from "./lib/servers.mjs";
import { silentServer } from "./lib/native_frames.mjs";

let server;
let dir;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), "manifold-web-limits-"));
  const config = join(dir, "manifoldd.textpb");
  writeFileSync(config, [
    "web {",
    "  http_max_header_bytes: 1024",
    "  http_max_headers: 8",
    "  http_max_pipelined_requests: 2",
    "  http_request_timeout_ms: 300",
    "  http_tick_ms: 50",
    "}",
    "broker { max_frame_bytes: 4096 }",
    "",
  ].join("\n"));
  server = await Manifoldd.start(["--config", config]);
});
after(async () => {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

// Writes `parts` (one write each, `pauseMs` apart) on a fresh connection and
// resolves with everything the server sent once it closes the connection.
function exchange(parts, { pauseMs = 0, timeoutMs = 5_000 } = {}) {
  const [host, port] = server.http.split(":");
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), host);
    let got = "";
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`no close in time; got ${got}`)); }, timeoutMs);
    socket.on("data", (d) => (got += d.toString("latin1")));
    socket.on("error", () => {});
    socket.on("close", () => { clearTimeout(timer); resolve(got); });
    socket.on("connect", async () => {
      for (const p of parts) {
        socket.write(p);
        if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
      }
    });
  });
}
const statuses = (text) => [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));

test("http_max_header_bytes: a longer header block is 431, a longer target 414", async () => {
  const big = await exchange([`GET /healthz HTTP/1.1\r\nHost: t\r\nX-Pad: ${"p".repeat(1200)}\r\n\r\n`]);
  assert.deepEqual(statuses(big), [431]);
  const target = await exchange([`GET /${"t".repeat(1200)} HTTP/1.1\r\nHost: t\r\n\r\n`]);
  assert.deepEqual(statuses(target), [414]);
  // Under the limit, the same request is answered and the connection kept.
  const fine = await fetch(server.url("/healthz"), { headers: { "X-Pad": "p".repeat(500) } });
  assert.equal(fine.status, 200);
});

test("http_max_headers: a ninth header field is 431", async () => {
  const fields = Array.from({ length: 9 }, (_, i) => `X-${i}: v\r\n`).join("");
  const got = await exchange([`GET /healthz HTTP/1.1\r\n${fields}\r\n`]);
  assert.deepEqual(statuses(got), [431]);
});

test("http_max_pipelined_requests: requests past two waiting are 429", async () => {
  // A service that never answers: requests to it wait, the ones behind
  // them queue up (the default allows 16).
  const silent = await silentServer(WebSocket, server.wsUrl("/ws"), "limits/silent");
  const req = "POST /req/limits/silent?timeout=2s HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nx";
  const got = await exchange([req + req + req]);
  assert.deepEqual(statuses(got), [429, 429, 429]);
  silent.close();
});

test("http_request_timeout_ms: a request still arriving after 300 ms is 408", async () => {
  const started = Date.now();
  const got = await exchange(["GET /healthz HTTP/1.1\r\n", "Host: t\r\n"], { pauseMs: 50 });
  assert.deepEqual(statuses(got), [408]);
  assert.ok(Date.now() - started < 3_000, "408 well before the default 10 s");
});

test("broker max_frame_bytes bounds WebSocket messages: past it, close 1009", async () => {
  const ws = new WebSocket(server.wsUrl("/nats"));
  const closed = new Promise((resolve) => ws.on("close", (code) => resolve(code)));
  await new Promise((resolve, reject) => { ws.on("open", resolve); ws.on("error", reject); });
  ws.send(Buffer.from(`PUB a 5000\r\n${"x".repeat(5000)}\r\n`));
  assert.equal(await closed, 1009);
});
