// A raw NATS protocol conversation over TCP: send exact bytes, read exact
// bytes. Used to compare manifoldd's wire behaviour with nats-server's.
// Output is returned as latin1 text, one character per byte.
//
//   const r = await converse(port, "CONNECT {}\r\nPING\r\n");
//   // r.info: the INFO object, r.output: "PONG\r\n", r.closed: false

import net from "node:net";

const kWaitMs = 3_000;

// Connects, reads INFO, writes `input` (whole, or `chunk` bytes at a time)
// and reads until the server closes the connection or, when `input` ends
// with PING, until every PING line of `input` has its PONG. Resolves with
// { info, output (everything after INFO, as latin1 text), closed }.
export function converse(port, input, { chunk = 0 } = {}) {
  const bytes = Buffer.isBuffer(input) ? input : Buffer.from(input, "utf8");
  const lines = bytes.toString("latin1").split(/\r?\n/);
  const pings = lines.filter((l) => l.toUpperCase() === "PING").length;
  const waitsForPong = pings > 0 && lines.at(-1) === "" && lines.at(-2).toUpperCase() === "PING";
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    socket.setNoDelay(true);
    let received = Buffer.alloc(0);
    let info = null;
    let sent = false;
    let done = false;
    const finish = (closed) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const text = received.toString("latin1");
      const end = text.indexOf("\r\n");
      const output = info ? text.slice(end + 2) : text;
      resolve({ info, output, closed });
    };
    const timer = setTimeout(() => {
      if (!info) {
        done = true;
        socket.destroy();
        reject(new Error("no INFO from the server"));
      } else {
        finish(false);
      }
    }, kWaitMs);
    const send = async () => {
      sent = true;
      if (chunk <= 0) return socket.write(bytes);
      for (let i = 0; i < bytes.length && !done; i += chunk) {
        socket.write(bytes.subarray(i, i + chunk));
        await new Promise((r) => setImmediate(r));
      }
    };
    socket.on("data", (d) => {
      received = Buffer.concat([received, d]);
      const text = received.toString("latin1");
      if (!info) {
        const end = text.indexOf("\r\n");
        if (end < 0) return;
        info = JSON.parse(text.slice(5, end));
      }
      if (!sent) send();
      if (waitsForPong && text.endsWith("PONG\r\n") && text.split("PONG\r\n").length - 1 >= pings) {
        finish(false);
      }
    });
    socket.on("end", () => finish(true));
    socket.on("close", () => finish(true));
    socket.on("error", (e) => (info ? finish(true) : reject(e)));
  });
}

// A raw connection kept open across several exchanges, for conversations
// between two clients.
//
//   const a = await RawClient.open(port);
//   a.write('CONNECT {}\r\nSUB a 1\r\nPING\r\n');
//   await a.readUntil("PONG\r\n");
// The start and the end of a long buffer, for error messages.
function describe(buffer) {
  if (buffer.length <= 400) return JSON.stringify(buffer);
  return `${buffer.length} bytes: ${JSON.stringify(buffer.slice(0, 200))} ... ${JSON.stringify(buffer.slice(-200))}`;
}

export class RawClient {
  static open(port) {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: "127.0.0.1", port });
      const client = new RawClient(socket);
      const timer = setTimeout(() => reject(new Error("no INFO from the server")), kWaitMs);
      client.info = client.readUntil("\r\n").then((line) => {
        clearTimeout(timer);
        return JSON.parse(line.slice(5, -2));
      });
      client.info.then(() => resolve(client), reject);
      socket.on("error", reject);
    });
  }

  constructor(socket) {
    this.socket = socket;
    this.buffer = "";
    this.waiter = null;
    socket.setNoDelay(true);
    socket.on("data", (d) => {
      this.buffer += d.toString("latin1");
      this.waiter?.();
    });
  }

  write(text) {
    this.socket.write(Buffer.from(text, "utf8"));
  }

  // Resolves with everything received up to and including the first
  // `marker` (and removes it from the buffer); rejects after `waitMs`.
  readUntil(marker, waitMs = kWaitMs) {
    return new Promise((resolve, reject) => {
      // Where the marker may start in what has not been searched yet, so a
      // long stream is searched once, not once per arriving chunk.
      let from = 0;
      const check = () => {
        const at = this.buffer.indexOf(marker, from);
        if (at < 0) {
          from = Math.max(0, this.buffer.length - marker.length + 1);
          return false;
        }
        const text = this.buffer.slice(0, at + marker.length);
        this.buffer = this.buffer.slice(at + marker.length);
        this.waiter = null;
        clearTimeout(timer);
        resolve(text);
        return true;
      };
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new Error(`no '${marker.trim()}' within ${waitMs} ms; got ${describe(this.buffer)}`));
      }, waitMs);
      if (!check()) this.waiter = check;
    });
  }

  // Resolves with the first `count` bytes received, as a Buffer (and removes
  // them from the buffer); rejects after `waitMs`.
  readBytes(count, waitMs = kWaitMs) {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.buffer.length < count) return false;
        const bytes = Buffer.from(this.buffer.slice(0, count), "latin1");
        this.buffer = this.buffer.slice(count);
        this.waiter = null;
        clearTimeout(timer);
        resolve(bytes);
        return true;
      };
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new Error(`only ${this.buffer.length} of ${count} bytes within ${waitMs} ms`));
      }, waitMs);
      if (!check()) this.waiter = check;
    });
  }

  close() {
    this.socket.destroy();
  }
}
