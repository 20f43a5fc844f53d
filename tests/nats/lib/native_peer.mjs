// Drives tests/nats/native_peer (a native Manifold client built on
// client/client.h) through its stdin/stdout line protocol, so a test can make
// native and NATS clients talk through one broker.
//
//   const peer = await NativePeer.start(server.nativeAddress);
//   await peer.run("sub s1 orders/*");
//   const m = await peer.nextMessage("s1");   // { topic, payload, reply_to, headers }
//   await peer.close();

import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

const kAnswerTimeoutMs = 8_000;

export class NativePeer {
  static async start(nativeAddress) {
    const binary = process.env.NATIVE_PEER;
    if (!binary) throw new Error("NATIVE_PEER is not set; run the suite through run_compat.sh");
    const peer = new NativePeer(spawn(binary, ["--server", nativeAddress], { stdio: ["pipe", "pipe", "pipe"] }));
    await peer.ready;
    return peer;
  }

  constructor(child) {
    this.child = child;
    this.nextTag = 0;
    this.pending = new Map(); // tag -> { resolve, reject, timer }
    this.queues = new Map(); // sub -> { messages: [], waiters: [] }
    this.errors = [];
    this.stderr = "";
    child.stderr.on("data", (d) => (this.stderr += d));
    this.ready = new Promise((resolve, reject) => {
      this.onReady = resolve;
      child.on("exit", (code) => reject(new Error(`native_peer exited (${code}): ${this.stderr}`)));
      child.on("error", reject);
    });
    createInterface({ input: child.stdout }).on("line", (line) => this.onLine(line));
  }

  onLine(line) {
    const event = JSON.parse(line);
    if (event.event === "ready") return this.onReady();
    if (event.event === "error") return this.errors.push(event.error);
    if (event.event === "msg") return this.deliver(event);
    const waiter = this.pending.get(event.tag);
    if (!waiter) return;
    this.pending.delete(event.tag);
    clearTimeout(waiter.timer);
    if (event.ok) waiter.resolve(event);
    else waiter.reject(new Error(`native_peer: ${waiter.command}: ${event.error}`));
  }

  queue(sub) {
    if (!this.queues.has(sub)) this.queues.set(sub, { messages: [], waiters: [] });
    return this.queues.get(sub);
  }

  deliver(message) {
    const q = this.queue(message.sub);
    const waiter = q.waiters.shift();
    if (waiter) waiter(message);
    else q.messages.push(message);
  }

  // Runs one command ("sub s1 a/b", "pub a/b hello", ...; see
  // native_peer.cc). Resolves with its answer, rejects with its error.
  run(command) {
    const tag = `t${++this.nextTag}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(tag);
        reject(new Error(`native_peer: no answer to '${command}' within ${kAnswerTimeoutMs} ms`));
      }, kAnswerTimeoutMs);
      this.pending.set(tag, { resolve, reject, timer, command });
      this.child.stdin.write(`${tag} ${command}\n`);
    });
  }

  // Resolves with the next message of subscription `sub`, or rejects after
  // `timeoutMs`.
  nextMessage(sub, timeoutMs = 5_000) {
    const q = this.queue(sub);
    if (q.messages.length > 0) return Promise.resolve(q.messages.shift());
    return new Promise((resolve, reject) => {
      const waiter = (m) => {
        clearTimeout(timer);
        resolve(m);
      };
      const timer = setTimeout(() => {
        q.waiters.splice(q.waiters.indexOf(waiter), 1);
        reject(new Error(`native_peer: no message on ${sub} within ${timeoutMs} ms`));
      }, timeoutMs);
      q.waiters.push(waiter);
    });
  }

  // Messages of `sub` received so far and not taken.
  taken(sub) {
    const q = this.queue(sub);
    const all = q.messages;
    q.messages = [];
    return all;
  }

  async close() {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.on("exit", resolve));
    try {
      await this.run("quit");
    } catch {
      this.child.kill("SIGKILL");
    }
    const kill = setTimeout(() => this.child.kill("SIGKILL"), 3_000);
    await exited;
    clearTimeout(kill);
  }
}
