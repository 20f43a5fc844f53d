// Starts a real `manifoldd --http` (and the native and NATS listeners beside
// it) on free loopback ports, and the `manifold` CLI as a native client, for
// the web suite. Every process's PID goes to $WEB_PIDS_FILE, so run_web.sh
// stops any the tests leave behind.
//
//   const server = await Manifoldd.start();
//   fetch(`http://${server.http}/healthz`);
//   await server.stop();
//
// With { tls: true } the flags must turn TLS on (--tls_cert, --tls_key), and
// url() and wsUrl() answer https:// and wss:// addresses.

import { spawn } from "node:child_process";
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

const kStartTimeoutMs = 10_000;

function remember(pid) {
  if (process.env.WEB_PIDS_FILE) appendFileSync(process.env.WEB_PIDS_FILE, `${pid}\n`);
}

export class Manifoldd {
  static async start(extraFlags = [], { tls = false } = {}) {
    const binary = process.env.MANIFOLDD;
    if (!binary) throw new Error("MANIFOLDD is not set; run the suite through run_web.sh");
    const flags = (process.env.MANIFOLDD_FLAGS || "").split(" ").filter(Boolean);
    const child = spawn(binary, [
      "--listen", "127.0.0.1:0", "--nats", "127.0.0.1:0", "--http", "127.0.0.1:0",
      "--log_level", "warning", ...flags, ...extraFlags,
    ], { stdio: ["ignore", "pipe", "pipe"] });
    remember(child.pid);
    const server = new Manifoldd(child);
    server.tls = tls;
    await server.ready;
    return server;
  }

  constructor(child) {
    this.child = child;
    this.log = "";
    child.stderr.on("data", (d) => (this.log += d));
    this.ready = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`manifoldd did not start: ${this.log}`)), kStartTimeoutMs);
      child.on("exit", (code) => reject(new Error(`manifoldd exited (${code}): ${this.log}`)));
      createInterface({ input: child.stdout }).on("line", (line) => {
        // manifoldd listening on 127.0.0.1:1 (tcp), 127.0.0.1:2 (nats), 127.0.0.1:3 (http), loop epoll
        const found = {};
        for (const m of line.matchAll(/(\S+) \((\w+)\)/g)) found[m[2]] = m[1];
        if (!found.http) return;
        this.native = found.tcp;
        this.nats = found.nats;
        this.http = found.http;
        clearTimeout(timer);
        resolve();
      });
    });
  }

  url(path) {
    return `${this.tls ? "https" : "http"}://${this.http}${path}`;
  }

  wsUrl(path) {
    return `${this.tls ? "wss" : "ws"}://${this.http}${path}`;
  }

  // Ends it with SIGKILL, as a crash would: nothing says goodbye.
  async kill() {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.on("exit", resolve));
    this.child.kill("SIGKILL");
    await exited;
  }

  async stop() {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.on("exit", resolve));
    this.child.kill("SIGTERM");
    const kill = setTimeout(() => this.child.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(kill);
  }
}

// Runs the `manifold` CLI (a native client) with `args` against `server`;
// resolves with its stdout lines once it exits.
export function manifoldCli(server, args, { timeoutMs = 10_000 } = {}) {
  const binary = process.env.MANIFOLD_CLI;
  if (!binary) throw new Error("MANIFOLD_CLI is not set; run the suite through run_web.sh");
  const child = spawn(binary, ["--server", server.native, "--json", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  remember(child.pid);
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  const done = new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`manifold ${args.join(" ")} did not finish within ${timeoutMs} ms: ${err}`));
    }, timeoutMs);
    child.on("exit", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out.split("\n").filter(Boolean));
      else reject(new Error(`manifold ${args.join(" ")} exited ${code}: ${err}`));
    });
  });
  done.child = child;
  return done;
}

// Resolves when `predicate()` is true, polling; rejects after `timeoutMs`.
export async function waitFor(predicate, what, timeoutMs = 5_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// Subscribers on the broker, from /stats: lets a test wait until a
// subscription is in place instead of sleeping.
export async function subscriptions(server) {
  const stats = await fetch(server.url("/stats")).then((r) => r.json());
  return Number(stats.subscriptions);
}

// Resolves once a subscription to `pattern` is in place on the broker (from
// /connections), on a connection of `protocol` when given, so a test
// publishes only when it will be delivered.
export async function waitForPattern(server, pattern, { protocol, timeoutMs = 5_000 } = {}) {
  await waitFor(async () => {
    const list = await fetch(server.url("/connections")).then((r) => r.json());
    return (list.connections || []).some((c) => (!protocol || c.protocol === protocol) &&
      (c.subscriptions || []).some((s) => s.pattern === pattern));
  }, `a subscription to ${pattern}`, timeoutMs);
}

// A free loopback port, so that a broker restarted on it is where its
// clients reconnect.
export async function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// A config file in a new temporary directory that stores `pattern` in file
// stream `name` under a data directory beside it. remove() deletes it all.
export function storedConfig(name, pattern) {
  const dir = mkdtempSync(join(tmpdir(), "manifold-stored-"));
  const config = join(dir, "manifoldd.textpb");
  writeFileSync(config, `data_dir: "${join(dir, "data")}"\nstreams { name: "${name}" topics: "${pattern}" }\n`);
  return { config, remove() { rmSync(dir, { recursive: true, force: true }); } };
}
