// Records recorded_bayeux_*.textpb: a live `manifoldd --http --record FILE`
// while the CometD JavaScript client (npm `cometd` with
// `cometd-nodejs-client`, installed in tests/http by `npm ci
// --prefer-offline`) handshakes, subscribes to a wildcard channel, receives
// what a native client (`manifold pub`) and a raw NATS client publish,
// publishes, calls a /service channel that `manifold serve` answers,
// unsubscribes and disconnects. Then it checks that the file replays.
//
//   node tests/transcripts/record_bayeux.mjs long-polling|websocket OUT.textpb \
//       build/examples/tcp_broker/manifoldd build/client/manifold
//
// Every process it starts is stopped by its PID before it exits.
import { spawn, execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { createInterface } from "node:readline";
import net from "node:net";
import { pathToFileURL } from "node:url";

const [transport, out, manifoldd, cli] = process.argv.slice(2);
if (!["long-polling", "websocket"].includes(transport) || !cli) {
  console.error("usage: record_bayeux.mjs long-polling|websocket OUT.textpb MANIFOLDD MANIFOLD_CLI");
  process.exit(2);
}
// The clients are tests/http's npm packages.
const fromWeb = createRequire(new URL("../http/package.json", import.meta.url));
const load = async (name) => import(pathToFileURL(fromWeb.resolve(name)).href);
const { default: WebSocket } = await load("ws");
const { adapt } = await load("cometd-nodejs-client");
const { CometD } = await load("cometd");
adapt();
globalThis.WebSocket = WebSocket;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
async function waitFor(predicate, what, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
const exited = (child) => new Promise((resolve) => (child.exitCode !== null ? resolve() : child.on("exit", resolve)));

// Periodic statistics off: they would only add timer turns to the recording.
const broker = spawn(manifoldd, ["--listen", "127.0.0.1:0", "--nats", "127.0.0.1:0", "--http", "127.0.0.1:0",
  "--log_level", "warning", "--statistics_interval=0", "--record", out], { stdio: ["ignore", "pipe", "inherit"] });
const ports = await new Promise((resolve, reject) => {
  broker.on("exit", (code) => reject(new Error(`manifoldd exited (${code})`)));
  createInterface({ input: broker.stdout }).on("line", (line) => {
    const found = {};
    for (const m of line.matchAll(/(\S+) \((\w+)\)/g)) found[m[2]] = m[1];
    if (found.http) resolve(found);
  });
});
const native = (args) => execFileSync(cli, ["--server", ports.tcp, ...args], { encoding: "utf8" });

let service;
try {
  // A native service that echoes its requests; up once it answers one.
  service = spawn(cli, ["--server", ports.tcp, "serve", "quotes/acme"], { stdio: "ignore" });
  await waitFor(() => {
    try {
      native(["req", "quotes/acme", "ready?", "--timeout", "1s"]);
      return true;
    } catch {
      return false;
    }
  }, "the native service");

  const cometd = new CometD();
  cometd.configure({ url: `http://${ports.http}/cometd`, logLevel: "warn" });
  for (const other of ["websocket", "long-polling", "callback-polling"]) {
    if (other !== transport) cometd.unregisterTransport(other);
  }
  const hs = await new Promise((resolve) => cometd.handshake(resolve));
  if (!hs.successful || cometd.getTransport().type !== transport) throw new Error(JSON.stringify(hs));
  const pattern = transport === "websocket" ? "/chat/**" : "/chat/*";
  const got = [];
  const sub = await new Promise((resolve) => {
    const handle = cometd.subscribe(pattern, (m) => got.push(m), (reply) => resolve({ reply, handle }));
  });
  if (!sub.reply.successful) throw new Error(JSON.stringify(sub.reply));

  native(["pub", "chat/lobby", '{"text":"from native"}']);
  await waitFor(() => got.length === 1, "the native publish");
  await new Promise((resolve, reject) => {
    const [host, port] = ports.nats.split(":");
    const s = net.connect(Number(port), host, () =>
      s.write('CONNECT {"verbose":false}\r\nPUB chat.kitchen 15\r\nplain from nats\r\nPING\r\n'));
    let seen = "";
    s.on("data", (d) => {
      seen += d;
      if (seen.includes("PONG")) s.end(resolve);
    });
    s.on("error", reject);
  });
  await waitFor(() => got.length === 2, "the NATS publish");
  const pub = await new Promise((resolve) => cometd.publish("/chat/lobby", { text: "from cometd", n: 1 }, resolve));
  if (!pub.successful) throw new Error(JSON.stringify(pub));
  await waitFor(() => got.length === 3, "its own publish");
  const call = await new Promise((resolve) => cometd.remoteCall("quotes/acme", { symbol: "ACME" }, 5000, resolve));
  if (!call.successful || call.data.symbol !== "ACME") throw new Error(JSON.stringify(call));
  const unsub = await new Promise((resolve) => cometd.unsubscribe(sub.handle, resolve));
  if (!unsub.successful) throw new Error(JSON.stringify(unsub));
  await new Promise((resolve) => cometd.disconnect(resolve));
  console.log(`${transport}: received ${JSON.stringify(got.map((m) => [m.channel, m.data]))}`);
} finally {
  if (service) {
    service.kill("SIGTERM");
    await exited(service);
  }
  broker.kill("SIGINT");  // manifoldd writes the recording as it exits
  await exited(broker);
}
console.log(native(["replay", out]).trim());
