// nats.js clients on different nodes of a cluster see one bus: three
// `manifoldd --cluster` nodes over a real redis-server, or, as the control,
// three nats-server nodes joined by routes. Interest crosses nodes
// asynchronously in both, so each test first waits until a probe crosses,
// then checks exact counts: wildcards, no duplicates, no echo, queue groups
// (each message once cluster-wide), requests answered across nodes, and "no
// responders" when no node has one.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { appendFileSync } from "node:fs";
import { createServer } from "node:net";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { connect, ErrorCode } from "nats";
import { isManifold } from "./lib/servers.mjs";
import { sc, within } from "./lib/util.mjs";

const kStartTimeoutMs = 10_000;
const processes = [];
const clients = [];
let urls = [];

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// Starts `command` and resolves with what `match` finds in a line of its
// output; the process is stopped (by PID) after the suite.
function start(command, args, match) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    processes.push(child);
    if (process.env.NATS_COMPAT_PIDS_FILE && child.pid) {
      appendFileSync(process.env.NATS_COMPAT_PIDS_FILE, `${child.pid}\n`);
    }
    const seen = [];
    const timer = setTimeout(
      () => reject(new Error(`${command} not ready within ${kStartTimeoutMs} ms:\n${seen.join("\n")}`)),
      kStartTimeoutMs,
    );
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on("line", (line) => {
        if (seen.length < 50) seen.push(line);
        const value = match(line);
        if (value) {
          clearTimeout(timer);
          resolve(value);
        }
      });
    }
    child.on("error", (e) => reject(new Error(`cannot start ${command}: ${e.message}`)));
  });
}

async function startManifoldCluster() {
  const redisPort = await freePort();
  await start(
    process.env.REDIS_SERVER || "redis-server",
    ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    (line) => line.includes("Ready to accept connections"),
  );
  const nodes = [];
  for (const name of ["n1", "n2", "n3"]) {
    nodes.push(
      start(
        process.env.MANIFOLDD,
        [
          "--listen=127.0.0.1:0",
          "--nats=127.0.0.1:0",
          `--cluster=redis://127.0.0.1:${redisPort}`,
          `--node=${name}`,
          ...(process.env.MANIFOLDD_FLAGS || "").split(" ").filter(Boolean),
        ],
        (line) => {
          const m = /(\d+\.\d+\.\d+\.\d+:\d+) \(nats\)/.exec(line);
          return m ? m[1] : null;
        },
      ),
    );
  }
  return Promise.all(nodes);
}

async function startNatsCluster() {
  const routePorts = [await freePort(), await freePort(), await freePort()];
  const routes = routePorts.map((p) => `nats://127.0.0.1:${p}`).join(",");
  const nodes = routePorts.map((port, i) =>
    start(
      process.env.NATS_SERVER || "nats-server",
      ["-a", "127.0.0.1", "-p", "-1", "-n", `n${i + 1}`, "--cluster_name", "c", "--cluster",
        `nats://127.0.0.1:${port}`, "--routes", routes],
      (line) => {
        const m = /Listening for client connections on (127\.0\.0\.1:\d+)/.exec(line);
        return m ? m[1] : null;
      },
    ),
  );
  return Promise.all(nodes);
}

async function client(node) {
  const nc = await connect({ servers: urls[node], reconnect: false, timeout: 5_000 });
  clients.push(nc);
  return nc;
}

// Publishes `subject` on `nc` every 50 ms until `seen()` is true: the
// subscriber's interest has reached the publisher's node.
async function untilCrossed(nc, subject, seen, what) {
  const deadline = Date.now() + 10_000;
  while (!seen()) {
    assert.ok(Date.now() < deadline, `${what}: interest never crossed nodes`);
    nc.publish(subject, sc.encode("probe"));
    await nc.flush();
    await new Promise((r) => setTimeout(r, 50));
  }
}

// Waits until `n` messages arrived in `list`, or fails after `ms`.
async function until(list, n, ms, what) {
  const deadline = Date.now() + ms;
  while (list.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(list.length, n, `${what}: ${list.length} of ${n} arrived`);
}

before(async () => {
  urls = isManifold ? await startManifoldCluster() : await startNatsCluster();
});

after(async () => {
  await Promise.all(clients.map((nc) => (nc.isClosed() ? null : nc.close())));
  for (const child of processes) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
  }
});

describe("a cluster of three nodes", () => {
  it("delivers across nodes with wildcards, once each, without echo", async () => {
    const pub = await client(0);
    const star = await client(1);
    const full = await client(2);
    const got = { star: [], full: [], own: [] };
    const probes = { star: 0, full: 0 };
    // Probes (chat.probe) show the interest crossed; only the rest count.
    const collect = (key) => (_, m) => {
      if (m.subject === "chat.probe") probes[key] = (probes[key] ?? 0) + 1;
      else got[key].push(m.subject);
    };
    star.subscribe("chat.*", { callback: collect("star") });
    full.subscribe("chat.>", { callback: collect("full") });
    pub.subscribe("chat.room", { callback: collect("own") });
    await Promise.all([star.flush(), full.flush(), pub.flush()]);
    await untilCrossed(pub, "chat.probe", () => probes.star > 0 && probes.full > 0, "chat");

    for (let i = 0; i < 50; i++) pub.publish("chat.room", sc.encode(String(i)));
    pub.publish("chat.room.deep", sc.encode("deep"));
    await pub.flush();
    await until(got.full, 51, 5_000, "chat.>");
    await until(got.star, 50, 5_000, "chat.*");
    await until(got.own, 50, 5_000, "the publisher's own node");
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(got.star.length, 50, "no duplicates on chat.*");
    assert.equal(got.full.length, 51, "no duplicates on chat.>");
    assert.equal(got.own.length, 50, "no echo through Redis");
  });

  it("gives each message to one member of a queue group across nodes", async () => {
    const pub = await client(0);
    const members = [await client(0), await client(1), await client(2)];
    const got = members.map(() => []);
    const probe = [];
    members.forEach((nc, i) =>
      nc.subscribe("jobs.*", {
        queue: "workers",
        callback: (_, m) => (m.subject === "jobs.probe" ? probe : got[i]).push(sc.decode(m.data)),
      }),
    );
    const watcher = await client(2);
    const watched = [];
    watcher.subscribe("jobs.*", { callback: (_, m) => watched.push(m.subject) });
    await Promise.all([...members, watcher].map((nc) => nc.flush()));
    await untilCrossed(pub, "jobs.probe", () => watched.length > 0, "jobs");
    await new Promise((r) => setTimeout(r, 200));

    const kJobs = 90;
    for (let i = 0; i < kJobs; i++) pub.publish("jobs.build", sc.encode(`job${i}`));
    await pub.flush();
    const all = () => got.flat();
    const deadline = Date.now() + 5_000;
    while (all().length < kJobs && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(all().length, kJobs, "each job once");
    assert.equal(new Set(all()).size, kJobs, "no job twice");
    if (isManifold) {
      // Turns go round the nodes with members (nats-server prefers members
      // on the publisher's own server).
      for (const [i, list] of got.entries()) assert.ok(list.length > 0, `node ${i + 1} got none`);
    }
  });

  it("answers a request from a responder on another node", async () => {
    const responder = await client(2);
    responder.subscribe("svc.time", {
      callback: (_, m) => m.respond(sc.encode(`noon for ${sc.decode(m.data)}`)),
    });
    await responder.flush();
    const requester = await client(0);
    // The first request may find no responder until the interest crossed.
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        await requester.request("svc.time", sc.encode("probe"), { timeout: 1_000 });
        break;
      } catch (e) {
        assert.ok(Date.now() < deadline, `no answer across nodes: ${e.message}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    for (let i = 0; i < 20; i++) {
      const answer = await requester.request("svc.time", sc.encode(`r${i}`), { timeout: 2_000 });
      assert.equal(sc.decode(answer.data), `noon for r${i}`);
    }
    // A fresh connection's very first request (a new inbox) is answered too.
    const fresh = await client(1);
    const answer = await fresh.request("svc.time", sc.encode("fresh"), { timeout: 2_000 });
    assert.equal(sc.decode(answer.data), "noon for fresh");
  });

  it("says no responders at once when no node has one", async () => {
    const requester = await client(1);
    const started = Date.now();
    await assert.rejects(
      within(requester.request("svc.nobody", sc.encode("?"), { timeout: 3_000 }), 4_000, "request"),
      (e) => e.code === ErrorCode.NoResponders,
    );
    assert.ok(Date.now() - started < 1_000, `took ${Date.now() - started} ms`);
  });
});
