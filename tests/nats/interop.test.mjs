// NATS clients (nats.js) and native Manifold clients on one manifoldd: the
// native side is tests/nats/native_peer (the C++ client library,
// client/client.h) and the `manifold` CLI. Messages, headers, queue groups
// and requests cross in both directions (a NATS request also reaches a
// native service), with subjects mapped "." <-> "/",
// ">" <-> "*/**". Manifold only: nats-server has no native side.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { connect, createInbox, ErrorCode, headers, ServiceError } from "nats";
import { NativePeer } from "./lib/native_peer.mjs";
import { isManifold, startServer } from "./lib/servers.mjs";
import { sc, sleep, take, within } from "./lib/util.mjs";

let server;
let peer;
const clients = [];

async function client(options = {}) {
  const nc = await connect({ servers: server.natsUrl, reconnect: false, timeout: 5_000, ...options });
  clients.push(nc);
  return nc;
}

// Runs the `manifold` CLI against the broker's native listener. Resolves with
// { code, stdout, stderr }; kills it after `ms`.
function cli(args, ms = 8_000) {
  return new Promise((resolve, reject) => {
    const binary = process.env.MANIFOLD_CLI;
    if (!binary) return reject(new Error("MANIFOLD_CLI is not set; run the suite through run_compat.sh"));
    const child = spawn(binary, ["--server", server.nativeAddress, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), ms);
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? signal, stdout, stderr });
    });
  });
}

describe("NATS and native clients together", { skip: !isManifold && "needs manifoldd's native side" }, () => {
  before(async () => {
    server = await startServer();
    peer = await NativePeer.start(server.nativeAddress);
  });

  after(async () => {
    await Promise.all(clients.map((nc) => (nc.isClosed() ? null : nc.close())));
    if (peer) await peer.close();
    if (server) await server.stop();
  });

  describe("messages", () => {
    it("native publish -> NATS subscriber, '/' becoming '.'", async () => {
      const nc = await client();
      const sub = nc.subscribe("orders.>");
      await nc.flush();
      const answer = await peer.run("pub orders/eu/42 hello from native");
      assert.equal(answer.reached, 1);
      const [m] = await take(sub, 1);
      assert.equal(m.subject, "orders.eu.42");
      assert.equal(sc.decode(m.data), "hello from native");
    });

    it("NATS publish -> native subscriber, '.' becoming '/'", async () => {
      await peer.run("sub s-orders orders/*/7");
      const nc = await client();
      nc.publish("orders.us.7", sc.encode("hello from nats"));
      nc.publish("orders.us.8", sc.encode("not for the pattern"));
      const m = await peer.nextMessage("s-orders");
      assert.equal(m.topic, "orders/us/7");
      assert.equal(m.payload, "hello from nats");
      await peer.run("unsub s-orders");
    });

    it("a native '**' pattern takes NATS subjects of any depth, even zero more", async () => {
      await peer.run("sub s-metrics metrics/**");
      const nc = await client();
      for (const s of ["metrics", "metrics.cpu", "metrics.cpu.0.user"]) nc.publish(s, sc.encode(s));
      await nc.flush();
      const got = [];
      for (let i = 0; i < 3; i++) got.push((await peer.nextMessage("s-metrics")).topic);
      assert.deepEqual(got, ["metrics", "metrics/cpu", "metrics/cpu/0/user"]);
      await peer.run("unsub s-metrics");
    });

    it("a NATS '>' subscription matches what native clients publish one level down or more", async () => {
      const nc = await client();
      const sub = nc.subscribe("tree.>");
      await nc.flush();
      await peer.run("pub tree nothing");
      await peer.run("pub tree/a one");
      await peer.run("pub tree/a/b two");
      await nc.flush();
      const got = await take(sub, 2);
      assert.deepEqual(
        got.map((m) => m.subject),
        ["tree.a", "tree.a.b"],
      );
    });

    it("a '.' inside a native segment is '//' inside a NATS token", async () => {
      const nc = await client();
      const sub = nc.subscribe("sensor//v1.*");
      await nc.flush();
      await peer.run("pub sensor.v1/temp 21.5");
      const [m] = await take(sub, 1);
      assert.equal(m.subject, "sensor//v1.temp");
      await peer.run("sub s-dots sensor.v2/*");
      nc.publish("sensor//v2.hum", sc.encode("40"));
      assert.equal((await peer.nextMessage("s-dots")).topic, "sensor.v2/hum");
      await peer.run("unsub s-dots");
    });

    it("headers cross both ways", async () => {
      const nc = await client();
      const sub = nc.subscribe("hdr.native");
      await nc.flush();
      await peer.run("hpub hdr/native Trace-Id abc-123 with a header");
      const [m] = await take(sub, 1);
      assert.equal(m.headers.get("Trace-Id"), "abc-123");
      assert.equal(sc.decode(m.data), "with a header");

      await peer.run("sub s-hdr hdr/nats");
      const h = headers();
      h.append("X-Multi", "one");
      h.append("X-Multi", "two");
      nc.publish("hdr.nats", sc.encode("from nats"), { headers: h });
      const n = await peer.nextMessage("s-hdr");
      assert.deepEqual(n.headers, [
        ["X-Multi", "one"],
        ["X-Multi", "two"],
      ]);
      assert.equal(n.payload, "from nats");
      await peer.run("unsub s-hdr");
    });

    it("a queue group can have NATS and native members; each message goes to one", async () => {
      await peer.run("sub s-jobs jobs/* workers");
      const nc = await client();
      let natsCount = 0;
      nc.subscribe("jobs.*", { queue: "workers", callback: () => natsCount++ });
      await nc.flush();
      const pub = await client();
      for (let i = 0; i < 200; i++) pub.publish("jobs.build", sc.encode(String(i)));
      await pub.flush();
      await nc.flush();
      await peer.run("ping");
      const deadline = Date.now() + 3_000;
      let nativeCount = 0;
      while (natsCount + nativeCount < 200 && Date.now() < deadline) {
        nativeCount += peer.taken("s-jobs").length;
        await sleep(10);
      }
      assert.equal(natsCount + nativeCount, 200, `nats ${natsCount} + native ${nativeCount}`);
      assert.ok(natsCount > 0 && nativeCount > 0, `nats ${natsCount}, native ${nativeCount}`);
      await peer.run("unsub s-jobs");
    });
  });

  describe("requests", () => {
    it("a native client answers a NATS request through its reply_to", async () => {
      await peer.run("replier r-native svc/native");
      const nc = await client();
      const answer = await nc.request("svc.native", sc.encode("question"), { timeout: 3_000 });
      assert.equal(sc.decode(answer.data), "native:question");
      assert.equal(answer.headers.get("Answered-By"), "native");
      // And many at once, through nats.js's one shared inbox.
      const many = await Promise.all(
        Array.from({ length: 50 }, (_, i) => nc.request("svc.native", sc.encode(`q${i}`), { timeout: 5_000 })),
      );
      assert.deepEqual(
        many.map((m) => sc.decode(m.data)),
        Array.from({ length: 50 }, (_, i) => `native:q${i}`),
      );
      await peer.run("unsub r-native");
    });

    it("a NATS client answers a native request (publish with reply_to)", async () => {
      const nc = await client();
      nc.subscribe("svc.nats", {
        callback: (_, m) => {
          assert.equal(m.reply, "inbox.peer.1");
          const h = headers();
          h.set("Answered-By", "nats");
          m.respond(sc.encode(`nats:${sc.decode(m.data)}`), { headers: h });
        },
      });
      await nc.flush();
      const answer = await peer.run("ask svc/nats inbox/peer question");
      assert.equal(answer.payload, "nats:question");
      assert.equal(answer.topic, "inbox/peer/1");
      assert.deepEqual(answer.headers, [["Answered-By", "nats"]]);
    });

    it("nc.request() to a topic a native client serves (Serve) gets the service's answer", async () => {
      await peer.run("serve svc/served");
      const native = await peer.run("req svc/served direct");
      assert.equal(native.payload, "served:direct");
      const nc = await client();
      const answer = await nc.request("svc.served", sc.encode("?"), { timeout: 3_000 });
      assert.equal(sc.decode(answer.data), "served:?");
      // Many at once, through nats.js's one shared inbox.
      const many = await Promise.all(
        Array.from({ length: 50 }, (_, i) => nc.request("svc.served", sc.encode(`q${i}`), { timeout: 5_000 })),
      );
      assert.deepEqual(
        many.map((m) => sc.decode(m.data)),
        Array.from({ length: 50 }, (_, i) => `served:q${i}`),
      );
    });

    it("headers cross both ways between nc.request() and a native service", async () => {
      await peer.run("hserve svc/pulled");
      const nc = await client();
      const h = headers();
      h.set("Trace", "abc");
      const answer = await nc.request("svc.pulled", sc.encode("q"), { timeout: 3_000, headers: h });
      assert.equal(sc.decode(answer.data), "served:q");
      assert.equal(answer.headers.get("Trace"), "abc");
      assert.equal(answer.headers.get("Served-By"), "native");
    });

    it("a native rejection reaches nc.request() as a NATS service error", async () => {
      await peer.run("hserve svc/strict");
      const nc = await client();
      const answer = await nc.request("svc.strict", sc.encode("reject:not today"), { timeout: 3_000 });
      assert.ok(ServiceError.isServiceError(answer));
      const error = ServiceError.toServiceError(answer);
      assert.equal(error.code, 500);
      assert.equal(error.message, "not today");
    });

    it("a native service that does not answer leaves nc.request() to time out (no NoResponders)", async () => {
      await peer.run("hserve svc/silent");
      const nc = await client();
      await assert.rejects(
        nc.request("svc.silent", sc.encode("ignore"), { timeout: 500 }),
        (e) => e.code === ErrorCode.Timeout,
      );
    });

    it("a served topic with a NATS subscriber: both get the request, the requester gets both answers", async () => {
      await peer.run("serve svc/shared");
      const nc = await client();
      let seen = 0;
      nc.subscribe("svc.shared", {
        callback: (_, m) => {
          seen++;
          m.respond(sc.encode(`nats:${sc.decode(m.data)}`));
        },
      });
      await nc.flush();
      const inbox = createInbox();
      const replies = nc.subscribe(inbox);
      nc.publish("svc.shared", sc.encode("q"), { reply: inbox });
      const got = await take(replies, 2);
      assert.deepEqual(got.map((m) => sc.decode(m.data)).sort(), ["nats:q", "served:q"]);
      assert.equal(seen, 1);
      // nc.request() takes the first of them.
      const first = await nc.request("svc.shared", sc.encode("r"), { timeout: 3_000 });
      assert.ok(["nats:r", "served:r"].includes(sc.decode(first.data)));
    });

    it("native requests (Request) do not reach NATS subscribers: NO_SERVER", async () => {
      const nc = await client();
      nc.subscribe("svc.natsonly", { callback: (_, m) => m.respond(sc.encode("never asked")) });
      await nc.flush();
      await assert.rejects(peer.run("req svc/natsonly x"), /NO_SERVER|no server/i);
    });
  });

  describe("the manifold CLI", () => {
    it("`manifold pub` reaches a NATS subscriber", async () => {
      const nc = await client();
      const sub = nc.subscribe("chat.room");
      await nc.flush();
      const r = await cli(["pub", "chat/room", "hi from the cli"]);
      assert.equal(r.code, 0, r.stderr);
      const [m] = await take(sub, 1);
      assert.equal(sc.decode(m.data), "hi from the cli");
    });

    it("`manifold sub --json` prints what a NATS client publishes, reply_to included", async () => {
      const child = cli(["sub", "chat/**", "--count", "1", "--json"]);
      const nc = await client();
      let done = false;
      // The CLI subscribes after it starts; publish until it has one message.
      const received = (async () => {
        for (let i = 0; i < 100; i++) {
          nc.publish("chat.x.y", sc.encode("to the cli"), { reply: "back.to.me" });
          await nc.flush();
          await sleep(50);
          if (done) return;
        }
      })();
      const r = await within(child, 10_000, "manifold sub");
      done = true;
      await received;
      assert.equal(r.code, 0, r.stderr);
      const line = JSON.parse(r.stdout.trim().split("\n")[0]);
      assert.equal(line.topic, "chat/x/y");
      assert.equal(line.payload, "to the cli");
      assert.equal(line.reply_to, "back/to/me");
    });
  });
});
