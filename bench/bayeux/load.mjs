// A Bayeux long-polling load client on raw HTTP (node:http, keep-alive
// agents; no Bayeux client library), the same for every server it is pointed
// at. bench/bayeux_compare.sh runs it against manifoldd and Faye.
//
//   node bench/bayeux/load.mjs --url http://127.0.0.1:PORT/cometd \
//       --subs 64 --count 20000 [--batch 100] [--lanes 8] [--window 4000] \
//       [--size 16] [--workers 1] [--duration 120]
//
// Every subscriber is its own Bayeux client (its own handshake, its own
// BAYEUX_BROWSER cookie when the server sets one), subscribes to one channel
// and loops /meta/connect; the subscribers run in --workers worker threads,
// apart from the publisher's thread. One publisher client posts the messages in
// batches of up to --batch publish messages per POST, with up to --lanes
// POSTs in flight (each lane its own keep-alive connection, one POST at a
// time, so a lane's messages reach the server in order), and never more than
// --window messages ahead of the slowest subscriber: servers bound (Manifold:
// session_buffer_bytes) or keep (Faye) what waits for a poll differently,
// and the window keeps both far from any limit. Each message's data is
// {l: lane, s: sequence within the lane, p: padding of --size bytes}; every
// subscriber checks it gets every sequence of every lane exactly once and in
// order.
//
// Prints one JSON object: received msgs/s (all subscribers together, from the
// first publish to the last subscriber's last message), published msgs/s,
// lost / duplicated / reordered counts, `clean`, and the client's own CPU
// time. Exits 1 when the run is not clean.
import http from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";

function parseArgs(argv) {
  const opts = {
    url: "", subs: 1, count: 10000, batch: 100, lanes: 8, window: 4000,
    size: 16, duration: 120, channel: "", workers: 1,
  };
  for (let k = 2; k < argv.length; k += 2) {
    const key = argv[k].replace(/^--/, "");
    if (!(key in opts) || k + 1 >= argv.length) {
      throw new Error(`unknown or incomplete argument ${argv[k]}`);
    }
    opts[key] = typeof opts[key] === "number" ? Number(argv[k + 1]) : argv[k + 1];
  }
  if (!opts.url) throw new Error("--url is required");
  if (!opts.channel) opts.channel = `/bench/run${process.pid}x${Date.now() % 100000}`;
  return opts;
}

const opts = isMainThread ? parseArgs(process.argv) : workerData.opts;
const target = new URL(opts.url);

// One POST of a JSON array (or its text); resolves to [status, parsed body,
// set-cookie], or with `raw` to [status, body text].
function post(agent, path, cookie, messages, raw = false) {
  const body = typeof messages === "string" ? messages : JSON.stringify(messages);
  return new Promise((resolve, reject) => {
    const headers = {
      "Content-Type": "application/json",
      "Content-Length": Buffer.byteLength(body),
    };
    if (cookie) headers.Cookie = cookie;
    const req = http.request({
      host: target.hostname, port: target.port, method: "POST",
      path: target.pathname + path, agent, headers,
    }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        if (raw) {
          resolve([res.statusCode, text]);
          return;
        }
        let parsed;
        try {
          parsed = JSON.parse(text);
        } catch (e) {
          reject(new Error(`${path}: HTTP ${res.statusCode}, not JSON: ${text.slice(0, 200)}`));
          return;
        }
        resolve([res.statusCode, parsed, res.headers["set-cookie"]]);
      });
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

let nextId = 0;
const id = () => String(++nextId);

// A Bayeux client: handshake (keeping the cookie), then messages by POST.
class Client {
  constructor() {
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
    this.cookie = "";
    this.clientId = "";
  }

  async send(path, messages) {
    const [status, body, setCookie] = await post(this.agent, path, this.cookie, messages);
    if (setCookie && !this.cookie) this.cookie = setCookie[0].split(";")[0];
    if (status !== 200) throw new Error(`${path}: HTTP ${status}: ${JSON.stringify(body).slice(0, 200)}`);
    return Array.isArray(body) ? body : [body];
  }

  async handshake() {
    const [reply] = await this.send("/handshake", [{
      channel: "/meta/handshake", version: "1.0", minimumVersion: "1.0",
      supportedConnectionTypes: ["long-polling"], id: id(),
    }]);
    if (!reply.successful) throw new Error(`handshake: ${JSON.stringify(reply)}`);
    this.clientId = reply.clientId;
  }

  async subscribe(channel) {
    const replies = await this.send("/", [{
      channel: "/meta/subscribe", clientId: this.clientId, subscription: channel, id: id(),
    }]);
    const reply = replies.find((m) => m.channel === "/meta/subscribe");
    if (!reply || !reply.successful) throw new Error(`subscribe: ${JSON.stringify(replies)}`);
  }

  connect() {
    return this.send("/connect", [{
      channel: "/meta/connect", clientId: this.clientId,
      connectionType: "long-polling", id: id(),
    }]);
  }

  async disconnect() {
    try {
      await this.send("/", [{ channel: "/meta/disconnect", clientId: this.clientId, id: id() }]);
    } catch {
      // The run's result does not depend on a polite goodbye.
    }
    this.agent.destroy();
  }
}

const stats = { lost: 0, duplicated: 0, reordered: 0, errors: [] };
let progressWaiters = [];
function notifyProgress() {
  const waiters = progressWaiters;
  progressWaiters = [];
  for (const w of waiters) w();
}
// Per lane, the messages the publisher sends on it.
const perLane = Array.from({ length: opts.lanes }, (_, l) =>
  Math.floor(opts.count / opts.lanes) + (l < opts.count % opts.lanes ? 1 : 0));

class Subscriber extends Client {
  constructor() {
    super();
    this.received = 0;
    this.next = new Array(opts.lanes).fill(0);
    this.stopped = false;
  }

  take(message) {
    const d = message.data;
    if (!d || typeof d.l !== "number" || typeof d.s !== "number" || d.l >= opts.lanes) {
      stats.errors.push(`unexpected data ${JSON.stringify(message).slice(0, 200)}`);
      return;
    }
    const want = this.next[d.l];
    if (d.s === want) {
      this.next[d.l] = want + 1;
      this.received++;
    } else if (d.s < want) {
      stats.duplicated++;
    } else {
      stats.reordered++;  // a gap: lost or out of order, settled at the end
      this.next[d.l] = d.s + 1;
      this.received++;
    }
  }

  async loop(expected) {
    while (!this.stopped && this.received < expected) {
      const replies = await this.connect();
      for (const m of replies) {
        if (m.channel === opts.channel) {
          this.take(m);
        } else if (m.channel === "/meta/connect" && !m.successful) {
          throw new Error(`connect refused: ${JSON.stringify(m)}`);
        }
      }
      notifyProgress();
    }
  }
}

// A worker thread's share of the subscribers: handshakes and subscribes them,
// says "ready", loops their connects, reports the fewest messages any of them
// has after every poll, and its counts once all are done (or told to stop).
async function subscriberThread() {
  const subs = Array.from({ length: workerData.subs }, () => new Subscriber());
  await Promise.all(subs.map(async (s) => {
    await s.handshake();
    await s.subscribe(opts.channel);
  }));
  parentPort.on("message", (m) => {
    if (m === "stop") for (const s of subs) s.stopped = true;
  });
  parentPort.postMessage({ type: "ready" });
  let reported = -1;
  const report = () => {
    let min = Infinity;
    let total = 0;
    for (const s of subs) {
      min = Math.min(min, s.received);
      total += s.received;
    }
    if (min !== reported) {
      reported = min;
      parentPort.postMessage({ type: "progress", min, total });
    }
  };
  const loops = subs.map((s) => s.loop(opts.count)
    .catch((e) => { stats.errors.push(e.message); })
    .finally(() => { s.stopped = true; }));
  progressWaiters = [];
  const ticker = setInterval(report, 20);
  const wake = () => { report(); progressWaiters.push(wake); };
  progressWaiters.push(wake);
  await Promise.all(loops);
  clearInterval(ticker);
  report();
  let received = 0;
  for (const s of subs) {
    received += s.received;
    for (let l = 0; l < opts.lanes; l++) stats.lost += Math.max(0, perLane[l] - s.next[l]);
  }
  parentPort.postMessage({ type: "done", received, ...stats });
  await Promise.all(subs.map((c) => c.disconnect()));
  process.exit(0);
}

async function main() {
  const threads = Math.max(1, Math.min(opts.workers, opts.subs));
  const workers = [];
  const mins = new Array(threads).fill(0);
  const totals = new Array(threads).fill(0);  // what a run cut short got
  const finished = [];
  let ready = 0;
  let allReady;
  const readyPromise = new Promise((r) => { allReady = r; });
  let allDone;
  const donePromise = new Promise((r) => { allDone = r; });
  let doneAt = 0n;
  for (let w = 0; w < threads; w++) {
    const share = Math.floor(opts.subs / threads) + (w < opts.subs % threads ? 1 : 0);
    const worker = new Worker(new URL(import.meta.url), { workerData: { opts, subs: share } });
    worker.on("message", (m) => {
      if (m.type === "ready") {
        if (++ready === threads) allReady();
      } else if (m.type === "progress") {
        mins[w] = m.min;
        totals[w] = m.total;
        notifyProgress();
      } else if (m.type === "done") {
        finished.push(m);
        if (finished.length === threads) {
          doneAt = process.hrtime.bigint();
          allDone();
        }
      }
    });
    worker.on("error", (e) => {
      stats.errors.push(`subscriber thread: ${e.message}`);
      finished.push({ received: 0, lost: 0, duplicated: 0, reordered: 0, errors: [] });
      if (finished.length === threads) allDone();
    });
    workers.push(worker);
  }
  const publisher = new Client();
  await publisher.handshake();
  // The publisher polls too, as a Bayeux client must: a server may end a
  // session that stops polling (Manifold does after session_timeout).
  let publishing = true;
  const publisherPolls = (async () => {
    while (publishing) await publisher.connect();
  })().catch((e) => {
    if (publishing) stats.errors.push(`publisher connect: ${e.message}`);
  });
  await readyPromise;

  const channel = JSON.stringify(opts.channel);
  const clientId = JSON.stringify(publisher.clientId);
  const pad = JSON.stringify("x".repeat(opts.size));
  const countOf = (text, what) => {
    let n = 0;
    for (let at = text.indexOf(what); at >= 0; at = text.indexOf(what, at + what.length)) n++;
    return n;
  };
  let sent = 0;
  const minReceived = () => Math.min(...mins);

  const cpuBefore = process.cpuUsage();
  const start = process.hrtime.bigint();
  const deadline = Date.now() + opts.duration * 1000;

  // One lane: its own keep-alive connection, one POST at a time.
  const lanes = perLane.map(async (total, lane) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    let seq = 0;
    try {
      while (seq < total && Date.now() <= deadline) {
        let room = opts.window - (sent - minReceived());
        while (room <= 0) {
          if (Date.now() > deadline) return;
          await Promise.race([new Promise((r) => progressWaiters.push(r)), sleep(100)]);
          room = opts.window - (sent - minReceived());
        }
        const n = Math.min(opts.batch, total - seq, room);
        // The batch as text, and its replies checked as text, so that the
        // client spends little on the publishing side.
        let batch = "[";
        for (let k = 0; k < n; k++) {
          batch += `${k ? "," : ""}{"channel":${channel},"clientId":${clientId},` +
            `"data":{"l":${lane},"s":${seq + k},"p":${pad}},"id":"${++nextId}"}`;
        }
        batch += "]";
        seq += n;
        sent += n;
        const [status, text] = await post(agent, "/", publisher.cookie, batch, true);
        if (status !== 200 || countOf(text, '"successful":true') !== n) {
          throw new Error(`publish: HTTP ${status}: ${text.slice(0, 300)}`);
        }
      }
    } finally {
      agent.destroy();
    }
  });
  try {
    await Promise.all(lanes);
  } catch (e) {
    stats.errors.push(e.message);
  }
  const publishedAt = process.hrtime.bigint();

  const stop = setTimeout(() => { for (const w of workers) w.postMessage("stop"); },
    Math.max(0, deadline - Date.now()));
  const outcome = await Promise.race([
    donePromise.then(() => "done"),
    new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now()) + 5000, "timeout")),
  ]);
  clearTimeout(stop);
  const end = doneAt || process.hrtime.bigint();
  const cpu = process.cpuUsage(cpuBefore);  // every thread of the process

  const expected = opts.count * opts.subs;
  // Threads that never finished count what they last reported.
  let received = outcome === "done" ? 0 : totals.reduce((a, b) => a + b, 0);
  if (outcome === "done") for (const f of finished) received += f.received;
  for (const f of finished) {
    stats.lost += f.lost;
    stats.duplicated += f.duplicated;
    stats.reordered += f.reordered;
    stats.errors.push(...f.errors);
  }
  // A gap that was later filled shows as reordered, never as lost.
  stats.lost += Math.max(0, expected - received - stats.lost);
  const seconds = Number(end - start) / 1e9;
  const result = {
    scenario: opts.subs === 1 ? "pubsub" : "fanout",
    subs: opts.subs, count: opts.count, size: opts.size, batch: opts.batch,
    lanes: opts.lanes, window: opts.window, workers: threads,
    seconds: +seconds.toFixed(3),
    received, expected,
    received_per_s: Math.round(received / seconds),
    published_per_s: Math.round(sent / (Number(publishedAt - start) / 1e9)),
    lost: stats.lost, duplicated: stats.duplicated, reordered: stats.reordered,
    errors: stats.errors.slice(0, 3),
    timed_out: outcome === "timeout",
    client_cpu_s: +((cpu.user + cpu.system) / 1e6).toFixed(3),
  };
  result.clean = received === expected && stats.lost === 0 && stats.duplicated === 0 &&
    stats.reordered === 0 && stats.errors.length === 0 && outcome === "done";
  publishing = false;
  await publisher.disconnect();  // ends the held connect too
  await publisherPolls;
  console.log(JSON.stringify(result));
  process.exit(result.clean ? 0 : 1);
}

if (isMainThread) {
  main().catch((e) => {
    console.error(`load.mjs: ${e.message}`);
    process.exit(2);
  });
} else {
  subscriberThread().catch((e) => {
    parentPort.postMessage({
      type: "done", received: 0, lost: 0, duplicated: 0, reordered: 0, errors: [e.message],
    });
    process.exit(1);
  });
}
