// JetStream as nats.js uses it.
// - Durable publishing (jetstream().publish()): a PUB with a reply subject to
//   a subject a stream captures is answered with a PubAck,
//   {"stream":S,"seq":N}, once the message is durable; sequences go on across
//   a kill -9 and a restart; a subject no stream captures gets nats.js's "no
//   responders" error.
// - Durable pull consumers (jetstreamManager().consumers, jetstream().fetch()
//   and pull()): messages in order with their stream sequence, acks that move
//   the consumer's floor and survive a restart, redelivery after ack_wait
//   marked as such, no_wait answers, and JetStream's errors for an unknown
//   stream or consumer and for what Manifold does not serve.
// - Durable push consumers (jetstream().subscribe() with durable() and
//   deliverTo()): messages in order on the deliver subject, a subscription
//   that resumes after a restart past what was acknowledged, ack_policy all
//   with nats.js's automatic acks, and a deliver group sharing the messages.
// - Ephemeral push consumers (jetstream().subscribe() without durable()):
//   named by the server, gone after their inactive_threshold once nobody
//   listens, kept across a restart with their flow control and position; ordered consumers (ephemeral, ack_policy none, flow control and
//   heartbeats), pushed (subscribe() with orderedConsumer()) and pulled
//   (consumers.get() without a name); 16 MiB through an ordered push
//   consumer, with the flow-control requests nats.js answers as it reads.
// Against nats-server the same stream is made with JetStream's own API (the
// control).

import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { AckPolicy, DeliverPolicy, connect, consumerOpts, createInbox, nanos } from "nats";
import { isManifold, startServer } from "./lib/servers.mjs";
import { sc, within } from "./lib/util.mjs";

const dir = mkdtempSync(join(tmpdir(), "nats-jetstream-"));
let server;
const clients = [];

// With `natsVersion`, manifoldd tells NATS clients that version in INFO
// (nats-server is 2.9.10 itself).
async function start({ natsVersion = "" } = {}) {
  if (isManifold) {
    const config = join(dir, "manifoldd.textpb");
    writeFileSync(
      config,
      `data_dir: "${join(dir, "data")}"\n` + `streams { name: "ORDERS" topics: "orders/**" }\n`,
    );
    const version = natsVersion ? ["--nats_version", natsVersion] : [];
    return startServer({ manifoldArgs: ["--config", config, ...version] });
  }
  const s = await startServer({ natsServerConfig: `jetstream { store_dir: "${join(dir, "js")}" }` });
  const nc = await connect({ servers: s.natsUrl, reconnect: false });
  const jsm = await nc.jetstreamManager();
  try {
    await jsm.streams.info("ORDERS");
  } catch {
    await jsm.streams.add({ name: "ORDERS", subjects: ["orders.>"] });
  }
  await nc.close();
  return s;
}

async function client() {
  const nc = await connect({ servers: server.natsUrl, reconnect: false, timeout: 5_000 });
  clients.push(nc);
  return nc;
}

before(async () => {
  server = await start();
});

after(async () => {
  await Promise.all(clients.map((nc) => (nc.isClosed() ? null : nc.close())));
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("jetstream().publish()", () => {
  it("gets a PubAck naming the stream and consecutive sequences", async () => {
    const js = (await client()).jetstream();
    const first = await within(js.publish("orders.new", sc.encode("a")), 5_000, "publish");
    assert.equal(first.stream, "ORDERS");
    assert.equal(first.duplicate, false);
    for (let i = 1; i <= 50; i++) {
      const ack = await within(js.publish(`orders.eu.${i % 3}`, sc.encode(`m${i}`)), 5_000, "publish");
      assert.equal(ack.seq, first.seq + i);
    }
  });

  it("keeps counting after kill -9 and a restart", async () => {
    const js = (await client()).jetstream();
    const before = await js.publish("orders.new", sc.encode("before"));
    server.process.kill("SIGKILL");
    await server.stop();
    server = await start();
    const js2 = (await client()).jetstream();
    const afterRestart = await within(js2.publish("orders.new", sc.encode("after")), 5_000, "publish");
    assert.equal(afterRestart.stream, "ORDERS");
    assert.equal(afterRestart.seq, before.seq + 1);
  });

  it("fails with no responders on a subject no stream captures", async () => {
    const js = (await client()).jetstream();
    await assert.rejects(within(js.publish("elsewhere.x", sc.encode("x")), 5_000, "publish"), (e) => {
      assert.match(String(e.code ?? e.message), /503|no responders/i);
      return true;
    });
  });
});

// Everything `iterator` yields, acknowledging each message when `ack`.
async function drain(iterator, { ack = true } = {}) {
  const got = [];
  for await (const m of iterator) {
    got.push(m);
    if (ack) m.ack();
  }
  return got;
}

describe("durable pull consumers", () => {
  it("deliver in order, and resume after a restart past what was acknowledged", async () => {
    const nc = await client();
    const jsm = await nc.jetstreamManager();
    const created = await jsm.consumers.add("ORDERS", {
      durable_name: "puller",
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      filter_subject: "orders.pull.>",
    });
    assert.equal(created.name, "puller");
    assert.equal(created.config.filter_subject, "orders.pull.>");
    const js = nc.jetstream();
    const acks = [];
    for (let i = 0; i < 10; i++) acks.push(await js.publish(`orders.pull.${i}`, sc.encode(`p${i}`)));

    const first = await within(drain(js.fetch("ORDERS", "puller", { batch: 5, expires: 3_000 })), 10_000, "fetch");
    assert.deepEqual(
      first.map((m) => sc.decode(m.data)),
      ["p0", "p1", "p2", "p3", "p4"],
    );
    assert.deepEqual(
      first.map((m) => m.seq),
      acks.slice(0, 5).map((a) => a.seq),
    );
    assert.equal(first[0].subject, "orders.pull.0");
    assert.equal(first[0].info.stream, "ORDERS");
    assert.equal(first[0].info.consumer, "puller");
    assert.equal(first[0].redelivered, false);
    await nc.flush();
    const info = await jsm.consumers.info("ORDERS", "puller");
    assert.equal(info.ack_floor.stream_seq, acks[4].seq);
    assert.equal(info.delivered.stream_seq, acks[4].seq);
    assert.equal(info.num_ack_pending, 0);
    assert.equal(info.num_pending, 5);

    await server.stop();
    server = await start();
    const js2 = (await client()).jetstream();
    const rest = await within(drain(js2.fetch("ORDERS", "puller", { batch: 10, expires: 2_000 })), 10_000, "fetch");
    assert.deepEqual(
      rest.map((m) => sc.decode(m.data)),
      ["p5", "p6", "p7", "p8", "p9"],
    );
    assert.deepEqual(
      rest.map((m) => m.seq),
      acks.slice(5).map((a) => a.seq),
    );
  });

  it("delivers again what was not acknowledged within ack_wait, marked redelivered", async () => {
    const nc = await client();
    const jsm = await nc.jetstreamManager();
    await jsm.consumers.add("ORDERS", {
      durable_name: "slow",
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.New,
      ack_wait: nanos(1_000),
      filter_subject: "orders.slow.>",
    });
    const js = nc.jetstream();
    const ack = await js.publish("orders.slow.1", sc.encode("s1"));
    const [m1] = await within(drain(js.fetch("ORDERS", "slow", { batch: 1, expires: 2_000 }), { ack: false }), 5_000, "fetch");
    assert.equal(m1.seq, ack.seq);
    assert.equal(m1.redelivered, false);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const [again] = await within(drain(js.fetch("ORDERS", "slow", { batch: 1, expires: 2_000 })), 5_000, "fetch");
    assert.equal(again.seq, ack.seq);
    assert.equal(again.redelivered, true);
    assert.equal(sc.decode(again.data), "s1");
  });

  it("answers at once when asked not to wait, and pull() takes one message", async () => {
    const nc = await client();
    const jsm = await nc.jetstreamManager();
    await jsm.consumers.add("ORDERS", {
      durable_name: "quick",
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.New,
      filter_subject: "orders.quick.>",
    });
    const js = nc.jetstream();
    const started = Date.now();
    const none = await within(drain(js.fetch("ORDERS", "quick", { batch: 5, no_wait: true })), 5_000, "fetch");
    assert.equal(none.length, 0);
    assert.ok(Date.now() - started < 2_000, "a no_wait fetch returned at once");
    await assert.rejects(within(js.pull("ORDERS", "quick"), 5_000, "pull"), /no messages/i);
    const ack = await js.publish("orders.quick.1", sc.encode("q1"));
    const m = await within(js.pull("ORDERS", "quick"), 5_000, "pull");
    assert.equal(m.seq, ack.seq);
    assert.equal(sc.decode(m.data), "q1");
    m.ack();
  });

  it("gives JetStream's errors for an unknown stream or consumer", async () => {
    const jsm = await (await client()).jetstreamManager();
    await assert.rejects(jsm.consumers.info("ORDERS", "nobody"), /consumer not found/i);
    await assert.rejects(jsm.consumers.info("NOSUCH", "nobody"), /stream not found/i);
    await assert.rejects(
      jsm.consumers.add("NOSUCH", { durable_name: "x", ack_policy: AckPolicy.Explicit }),
      /stream not found/i,
    );
    const names = [];
    for await (const ci of jsm.consumers.list("ORDERS")) names.push(ci.name);
    assert.ok(names.includes("puller"), `consumers: ${names}`);
    assert.equal((await jsm.consumers.delete("ORDERS", "quick")), true);
    await assert.rejects(jsm.consumers.info("ORDERS", "quick"), /consumer not found/i);
  });
});

describe("the consumers API (servers from 2.9.4)", () => {
  it("fetch() and consume() read a durable pull consumer, with heartbeats while it waits", async () => {
    await server.stop();
    server = await start({ natsVersion: "2.9.10" });
    const nc = await client();
    const jsm = await nc.jetstreamManager();
    await jsm.consumers.add("ORDERS", {
      durable_name: "modern",
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.New,
      filter_subject: "orders.modern.>",
    });
    const js = nc.jetstream();
    const consumer = await js.consumers.get("ORDERS", "modern");
    const acks = [];
    for (let i = 0; i < 3; i++) acks.push(await js.publish(`orders.modern.${i}`, sc.encode(`n${i}`)));

    const fetched = await within(drain(await consumer.fetch({ max_messages: 3, expires: 2_000 })), 10_000, "fetch");
    assert.deepEqual(
      fetched.map((m) => m.seq),
      acks.map((a) => a.seq),
    );

    // consume() keeps pulling; a message published after two of its
    // requests have expired (heartbeats keep it from giving up) still comes.
    const messages = await consumer.consume({ max_messages: 10, expires: 1_000 });
    const missed = [];
    (async () => {
      for await (const s of await messages.status()) if (s.type === "heartbeats_missed") missed.push(s.data);
    })().catch(() => {});
    const later = new Promise((resolve) =>
      setTimeout(() => resolve(js.publish("orders.modern.late", sc.encode("late"))), 2_500),
    );
    let got = null;
    for await (const m of messages) {
      got = m;
      m.ack();
      break;
    }
    const late = await later;
    assert.equal(got.seq, late.seq);
    assert.equal(sc.decode(got.data), "late");
    assert.deepEqual(missed, []);
    messages.stop();
  });

  it("an ordered consumer (consumers.get() without a name) reads the stream in order", async () => {
    const nc = await client();
    const js = nc.jetstream();
    const acks = [];
    for (let i = 0; i < 5; i++) acks.push(await js.publish(`orders.opull.${i}`, sc.encode(`o${i}`)));
    const consumer = await js.consumers.get("ORDERS", {
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: acks[0].seq,
    });
    const got = await within(drain(await consumer.fetch({ max_messages: 5, expires: 2_000 }), { ack: false }), 10_000, "fetch");
    assert.deepEqual(
      got.map((m) => m.seq),
      acks.map((a) => a.seq),
    );
  });
});

// The first `n` messages `sub` yields, acknowledging each when `ack`.
async function take(sub, n, { ack = true } = {}) {
  const got = [];
  for await (const m of sub) {
    got.push(m);
    if (ack) m.ack();
    if (got.length === n) break;
  }
  return got;
}

describe("durable push consumers (jetstream().subscribe())", () => {
  it("deliver in order to the deliver subject, and resume after a restart", async () => {
    const nc = await client();
    const js = nc.jetstream();
    const acks = [];
    for (let i = 0; i < 6; i++) acks.push(await js.publish(`orders.push.${i}`, sc.encode(`u${i}`)));
    const options = () => {
      const opts = consumerOpts();
      opts.durable("auditor");
      opts.deliverTo("deliver.auditor");
      opts.deliverAll();
      opts.ackExplicit();
      opts.manualAck();
      opts.maxAckPending(3);
      // What went to the first subscription unacknowledged comes again after
      // a second (nats-server keeps it in flight across its restart).
      opts.ackWait(1_000);
      return opts;
    };
    const sub = await js.subscribe("orders.push.>", options());
    await nc.flush();
    const jsm = await nc.jetstreamManager();
    assert.equal((await jsm.consumers.info("ORDERS", "auditor")).push_bound, true);
    // Leaving the loop ends the subscription; the consumer stays.
    const first = await within(take(sub, 3), 10_000, "subscribe");
    assert.deepEqual(
      first.map((m) => sc.decode(m.data)),
      ["u0", "u1", "u2"],
    );
    assert.deepEqual(
      first.map((m) => m.seq),
      acks.slice(0, 3).map((a) => a.seq),
    );
    assert.equal(first[0].subject, "orders.push.0");
    assert.equal(first[0].info.consumer, "auditor");
    await nc.flush();
    const info = await jsm.consumers.info("ORDERS", "auditor");
    assert.equal(info.config.deliver_subject, "deliver.auditor");
    assert.equal(info.ack_floor.stream_seq, acks[2].seq);

    await server.stop();
    server = await start();
    const js2 = (await client()).jetstream();
    const sub2 = await js2.subscribe("orders.push.>", options());
    const rest = await within(take(sub2, 3), 10_000, "subscribe after the restart");
    // What went unacknowledged before comes again, in an order nats-server
    // does not promise.
    rest.sort((a, b) => a.seq - b.seq);
    assert.deepEqual(
      rest.map((m) => sc.decode(m.data)),
      ["u3", "u4", "u5"],
    );
    assert.deepEqual(
      rest.map((m) => m.seq),
      acks.slice(3).map((a) => a.seq),
    );
    sub2.unsubscribe();
  });

  it("takes ack_policy all, with nats.js acknowledging each message as it is read", async () => {
    const nc = await client();
    const js = nc.jetstream();
    const opts = consumerOpts();
    opts.durable("reader");
    opts.deliverTo("deliver.reader");
    opts.deliverNew();
    opts.ackAll();
    const sub = await js.subscribe("orders.read.>", opts);
    const acks = [];
    for (let i = 0; i < 4; i++) acks.push(await js.publish(`orders.read.${i}`, sc.encode(`r${i}`)));
    const got = await within(take(sub, 4, { ack: false }), 10_000, "subscribe");
    assert.deepEqual(
      got.map((m) => m.seq),
      acks.map((a) => a.seq),
    );
    // The last automatic ack goes out when the iterator asks for the next.
    sub.unsubscribe();
    await nc.flush();
    const jsm = await nc.jetstreamManager();
    const info = await jsm.consumers.info("ORDERS", "reader");
    assert.equal(info.config.ack_policy, AckPolicy.All);
    assert.ok(info.ack_floor.stream_seq >= acks[2].seq, JSON.stringify(info.ack_floor));
  });

  it("shares its messages among a deliver group", async () => {
    const nc = await client();
    const js = nc.jetstream();
    const options = () => {
      const opts = consumerOpts();
      opts.durable("pool");
      opts.deliverTo("deliver.pool");
      opts.queue("workers");
      opts.deliverNew();
      opts.ackExplicit();
      opts.manualAck();
      return opts;
    };
    // Two connections: each worker is a client of its own.
    const a = await js.subscribe("orders.pool.>", options());
    const b = await (await client()).jetstream().subscribe("orders.pool.>", options());
    const seen = [];
    const collect = async (sub, name) => {
      for await (const m of sub) {
        seen.push([name, sc.decode(m.data)]);
        m.ack();
      }
    };
    const done = Promise.all([collect(a, "a"), collect(b, "b")]);
    for (let i = 0; i < 10; i++) await js.publish(`orders.pool.${i}`, sc.encode(`w${i}`));
    const deadline = Date.now() + 10_000;
    while (seen.length < 10 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 200));
    a.unsubscribe();
    b.unsubscribe();
    await done;
    assert.deepEqual(
      seen.map(([, data]) => data).sort(),
      Array.from({ length: 10 }, (_, i) => `w${i}`).sort(),
    );
    assert.ok(seen.some(([name]) => name === "a") && seen.some(([name]) => name === "b"), JSON.stringify(seen));
  });
});

describe("ephemeral push consumers", () => {
  it("deliver while subscribed, and go once nobody listens", async () => {
    const nc = await client();
    const js = nc.jetstream();
    const opts = consumerOpts();
    opts.deliverTo(createInbox());
    opts.deliverNew();
    opts.ackExplicit();
    opts.manualAck();
    opts.inactiveEphemeralThreshold(1_000);
    const sub = await js.subscribe("orders.eph.>", opts);
    const name = (await sub.consumerInfo()).name;
    assert.ok(name, "the server names it");
    const jsm = await nc.jetstreamManager();
    assert.equal((await jsm.consumers.info("ORDERS", name)).config.durable_name, undefined);
    const acks = [];
    for (let i = 0; i < 3; i++) acks.push(await js.publish(`orders.eph.${i}`, sc.encode(`e${i}`)));
    const got = await within(take(sub, 3), 10_000, "subscribe");
    assert.deepEqual(
      got.map((m) => m.seq),
      acks.map((a) => a.seq),
    );
    // take() left the loop: the subscription ended. Within twice the
    // threshold the consumer is gone.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    await assert.rejects(jsm.consumers.info("ORDERS", name), /consumer not found/i);
  });
});

describe("ephemeral push consumers across a restart", () => {
  it("go on delivering to their subject, with their flow control and position", async () => {
    const nc = await client();
    const js = nc.jetstream();
    const deliver = createInbox();
    const opts = consumerOpts();
    opts.deliverTo(deliver);
    opts.deliverNew();
    opts.ackExplicit();
    opts.manualAck();
    opts.flowControl();
    opts.idleHeartbeat(1_000);
    opts.inactiveEphemeralThreshold(30_000);
    const sub = await js.subscribe("orders.survive.>", opts);
    const name = (await sub.consumerInfo()).name;
    const before = [];
    for (let i = 0; i < 2; i++) before.push(await js.publish(`orders.survive.${i}`, sc.encode(`s${i}`)));
    await within(take(sub, 2), 10_000, "subscribe");
    await nc.flush();

    await server.stop();
    server = await start();
    const nc2 = await client();
    const jsm = await nc2.jetstreamManager();
    const info = await jsm.consumers.info("ORDERS", name);
    assert.equal(info.config.durable_name, undefined);
    assert.equal(info.config.deliver_subject, deliver);
    assert.equal(info.config.flow_control, true);
    assert.equal(info.ack_floor.stream_seq, before[1].seq);
    // A subscriber of the deliver subject (as nats.js's after it
    // reconnects) gets what comes next.
    const back = nc2.subscribe(deliver);
    await nc2.flush();
    const js2 = nc2.jetstream();
    const after = [];
    for (let i = 2; i < 4; i++) after.push(await js2.publish(`orders.survive.${i}`, sc.encode(`s${i}`)));
    const got = [];
    await within(
      (async () => {
        for await (const m of back) {
          if (m.data.length === 0) continue; // a heartbeat or flow-control request
          got.push(m);
          m.respond(sc.encode("+ACK"));
          if (got.length === 2) break;
        }
      })(),
      10_000,
      "the deliver subject after the restart",
    );
    assert.deepEqual(
      got.map((m) => sc.decode(m.data)),
      ["s2", "s3"],
    );
    assert.ok(got[0].reply.startsWith(`$JS.ACK.ORDERS.${name}.1.${after[0].seq}.`), got[0].reply);
    await jsm.consumers.delete("ORDERS", name);
  });
});

describe("ordered push consumers", () => {
  it("push the stream in order without acks, heartbeats while idle", async () => {
    const nc = await client();
    const js = nc.jetstream();
    const acks = [];
    for (let i = 0; i < 5; i++) acks.push(await js.publish(`orders.ord.${i}`, sc.encode(`d${i}`)));
    // nats.js fills in the options it is given: new ones each time.
    const ordered = () => {
      const opts = consumerOpts();
      opts.orderedConsumer();
      opts.idleHeartbeat(500);
      return opts;
    };
    const sub = await js.subscribe("orders.ord.>", ordered());
    const first = await within(take(sub, 5, { ack: false }), 10_000, "ordered subscribe");
    assert.deepEqual(
      first.map((m) => m.seq),
      acks.map((a) => a.seq),
    );
    const sub2 = await js.subscribe("orders.ord.>", ordered());
    // Idle past two heartbeats: nats.js would reset the consumer on a missed
    // one (a new consumer from where it was), and nothing comes twice.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const late = await js.publish("orders.ord.late", sc.encode("late"));
    const all = await within(take(sub2, 6, { ack: false }), 10_000, "ordered subscribe");
    assert.deepEqual(
      all.map((m) => m.seq),
      [...acks.map((a) => a.seq), late.seq],
    );
    assert.ok(sub2.info.flow_control.heartbeat_count >= 1, JSON.stringify(sub2.info.flow_control));
    assert.equal(sub2.info.flow_control.consumer_restarts, 0);
  });

  it("ask for flow control, which nats.js answers as it reads, and lose nothing", async () => {
    const nc = await client();
    const js = nc.jetstream();
    const payload = new Uint8Array(64 * 1024).fill(120);
    const count = 256; // 16 MiB
    const pubs = [];
    for (let i = 0; i < count; i++) pubs.push(js.publish(`orders.fc.${i}`, payload));
    const acks = await Promise.all(pubs);
    const opts = consumerOpts();
    opts.orderedConsumer();
    const sub = await js.subscribe("orders.fc.>", opts);
    const got = await within(take(sub, count, { ack: false }), 30_000, "flow-controlled subscribe");
    assert.deepEqual(
      got.map((m) => m.seq),
      acks.map((a) => a.seq),
    );
    assert.ok(got.every((m) => m.data.length === payload.length));
    const fc = sub.info.flow_control;
    assert.ok(fc.fc_count >= 1, JSON.stringify(fc));
    assert.equal(fc.consumer_restarts, 0);
    console.log(`flow control: ${JSON.stringify(fc)}`);
  });
});
