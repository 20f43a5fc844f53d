// Starts the server under test as a real process on a free loopback port and
// stops it by its PID.
//
// The suite runs against one of two targets (NATS_COMPAT_TARGET):
//   manifold     `manifoldd --listen 127.0.0.1:0 --nats 127.0.0.1:0`; both
//                ports are read from its "listening on" line.
//   nats-server  the reference server (`nats-server -a 127.0.0.1 -p -1`), as a
//                control: a test that fails against both is the suite's
//                problem, one that fails only against manifold is a Manifold
//                difference.
//
//   const server = await startServer();
//   const nc = await connect({ servers: server.natsUrl });
//   ...
//   await server.stop();

import { spawn } from "node:child_process";
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

export const target = process.env.NATS_COMPAT_TARGET ?? "manifold";
export const isManifold = target === "manifold";

const kStartTimeoutMs = 10_000;
const kStopTimeoutMs = 5_000;

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set; run the suite through run_compat.sh`);
  return value;
}

// Spawns `command` and resolves with what `match` finds in its output lines
// (stdout and stderr), or rejects when it exits or takes too long.
function spawnAndWait(command, args, match) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    // run_compat.sh stops whatever is left if the suite itself is killed.
    if (process.env.NATS_COMPAT_PIDS_FILE && child.pid) {
      appendFileSync(process.env.NATS_COMPAT_PIDS_FILE, `${child.pid}\n`);
    }
    const seen = [];
    let done = false;
    const finish = (error, value) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (error) {
        child.kill("SIGKILL");
        reject(error);
      } else {
        resolve({ child, value });
      }
    };
    const timer = setTimeout(
      () =>
        finish(
          new Error(`${command} did not say where it listens within ${kStartTimeoutMs} ms:\n${seen.join("\n")}`),
        ),
      kStartTimeoutMs,
    );
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on("line", (line) => {
        if (seen.length < 50) seen.push(line);
        if (process.env.NATS_COMPAT_SERVER_LOG) process.stderr.write(`[server] ${line}\n`);
        const value = match(line);
        if (value) finish(null, value);
      });
    }
    child.on("error", (e) => finish(new Error(`cannot start ${command}: ${e.message}`)));
    child.on("exit", (code, signal) =>
      finish(new Error(`${command} exited (${code ?? signal}) before listening:\n${seen.join("\n")}`)),
    );
  });
}

function stopper(child, cleanup = () => {}) {
  let stopped = null;
  return () => {
    if (stopped) return stopped;
    stopped = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) {
        cleanup();
        return resolve(child.exitCode);
      }
      child.on("exit", cleanup);
      const kill = setTimeout(() => process.kill(child.pid, "SIGKILL"), kStopTimeoutMs);
      child.on("exit", (code) => {
        clearTimeout(kill);
        resolve(code);
      });
      process.kill(child.pid, "SIGTERM");
    });
    return stopped;
  };
}

// Starts the target server. `manifoldArgs` are extra manifoldd flags (e.g.
// ["--max_payload_bytes=4096"]); `natsServerConfig` is nats-server
// configuration text for the same limits (e.g. "max_payload: 4096"). Resolves
// with { natsUrl, natsPort, nativeAddress (manifold only), pid, stop() }.
export async function startServer({ manifoldArgs = [], natsServerConfig = "" } = {}) {
  if (isManifold) {
    const manifoldd = required("MANIFOLDD");
    const { child, value } = await spawnAndWait(
      manifoldd,
      [
        "--listen",
        "127.0.0.1:0",
        "--nats",
        "127.0.0.1:0",
        // run_compat.sh --manifoldd-flag, e.g. --loop=io_uring
        ...(process.env.MANIFOLDD_FLAGS || "").split(" ").filter(Boolean),
        ...manifoldArgs,
      ],
      (line) => {
        if (!line.includes("listening on")) return null;
        const nats = /(\d+\.\d+\.\d+\.\d+):(\d+) \(nats\)/.exec(line);
        const tcp = /(\d+\.\d+\.\d+\.\d+:\d+) \(tcp\)/.exec(line);
        if (!nats || !tcp) return null;
        return { natsPort: Number(nats[2]), nativeAddress: tcp[1] };
      },
    );
    return {
      natsPort: value.natsPort,
      natsUrl: `127.0.0.1:${value.natsPort}`,
      nativeAddress: value.nativeAddress,
      pid: child.pid,
      process: child,
      stop: stopper(child),
    };
  }
  if (target === "nats-server") {
    const natsServer = process.env.NATS_SERVER || "nats-server";
    const args = ["-a", "127.0.0.1", "-p", "-1"];
    let configDir = null;
    if (natsServerConfig) {
      configDir = mkdtempSync(join(tmpdir(), "nats-compat-"));
      writeFileSync(join(configDir, "server.conf"), natsServerConfig);
      args.push("-c", join(configDir, "server.conf"));
    }
    const cleanup = () => configDir && rmSync(configDir, { recursive: true, force: true });
    const { child, value } = await spawnAndWait(
      natsServer,
      args,
      (line) => {
        const m = /Listening for client connections on 127\.0\.0\.1:(\d+)/.exec(line);
        return m ? { natsPort: Number(m[1]) } : null;
      },
    );
    return {
      natsPort: value.natsPort,
      natsUrl: `127.0.0.1:${value.natsPort}`,
      nativeAddress: null,
      pid: child.pid,
      process: child,
      stop: stopper(child, cleanup),
    };
  }
  throw new Error(`unknown NATS_COMPAT_TARGET '${target}' (manifold or nats-server)`);
}
