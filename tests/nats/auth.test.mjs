// Credentials and per-user permissions, the same against manifoldd and
// nats-server: each server is started with the same users (manifoldd by its
// flags or a configuration file whose password hashes come from
// `manifold passwd`; nats-server by its configuration file), and nats.js
// connects with `user`/`pass` or `token`.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connect, ErrorCode } from "nats";
import { isManifold, startServer } from "./lib/servers.mjs";
import { sc, sleep, take } from "./lib/util.mjs";

const clients = [];

async function client(server, options = {}) {
  const nc = await connect({ servers: server.natsUrl, reconnect: false, timeout: 5_000, ...options });
  clients.push(nc);
  return nc;
}

async function closeClients() {
  await Promise.all(clients.splice(0).map((nc) => (nc.isClosed() ? null : nc.close())));
}

// Resolves with the error connect() fails with.
async function refusal(server, options) {
  try {
    const nc = await connect({ servers: server.natsUrl, reconnect: false, timeout: 5_000, ...options });
    await nc.close();
  } catch (e) {
    return e;
  }
  assert.fail("connect() succeeded");
}

// The statuses nats.js reports on `nc`, collected as they come.
function statuses(nc) {
  const seen = [];
  (async () => {
    for await (const s of nc.status()) seen.push(s);
  })();
  return seen;
}

async function waitFor(what, predicate, ms = 5_000) {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`${what}: not within ${ms} ms`);
    await sleep(10);
  }
}

// A password hash made by `manifold passwd`.
function hash(password) {
  const cli = process.env.MANIFOLD_CLI;
  if (!cli) throw new Error("MANIFOLD_CLI is not set; run the suite through run_compat.sh");
  const run = spawnSync(cli, ["passwd"], { input: `${password}\n`, encoding: "utf8" });
  assert.equal(run.status, 0, run.stderr);
  return run.stdout.trim();
}

describe("user and password", () => {
  let server;
  before(async () => {
    server = await startServer({
      manifoldArgs: ["--user=alice", "--pass=s3cret", "--failed_login_delay=0s"],
      natsServerConfig: "authorization { user: alice, password: s3cret }",
    });
  });
  after(async () => {
    await closeClients();
    await server?.stop();
  });

  it("the right user and password connect, and messages flow", async () => {
    const nc = await client(server, { user: "alice", pass: "s3cret" });
    const sub = nc.subscribe("greetings.*");
    await nc.flush();
    nc.publish("greetings.en", sc.encode("hello"));
    const [m] = await take(sub, 1);
    assert.equal(sc.decode(m.data), "hello");
  });

  it("a wrong password is an Authorization Violation", async () => {
    const e = await refusal(server, { user: "alice", pass: "guess" });
    assert.equal(e.code, ErrorCode.AuthorizationViolation, String(e));
  });

  it("no credentials at all are an Authorization Violation", async () => {
    const e = await refusal(server, {});
    assert.equal(e.code, ErrorCode.AuthorizationViolation, String(e));
  });
});

describe("token", () => {
  let server;
  before(async () => {
    server = await startServer({
      manifoldArgs: ["--token=t0k3n-of-the-day", "--failed_login_delay=0s"],
      natsServerConfig: 'authorization { token: "t0k3n-of-the-day" }',
    });
  });
  after(async () => {
    await closeClients();
    await server?.stop();
  });

  it("the token connects", async () => {
    const nc = await client(server, { token: "t0k3n-of-the-day" });
    await nc.flush();
    assert.equal(nc.isClosed(), false);
  });

  it("a wrong token is an Authorization Violation", async () => {
    const e = await refusal(server, { token: "t0k3n-of-yesterday" });
    assert.equal(e.code, ErrorCode.AuthorizationViolation, String(e));
  });
});

describe("per-user permissions", () => {
  let server;
  let directory;
  before(async () => {
    directory = mkdtempSync(join(tmpdir(), "auth-compat-"));
    let manifoldArgs = [];
    if (isManifold) {
      const config = join(directory, "auth.textpb");
      writeFileSync(
        config,
        `auth {
           users {
             name: "alice" password_hash: "${hash("alice-pw")}"
             permissions {
               publish { allow: "orders/**" }
               subscribe { allow: "orders/**" allow: "_INBOX/**" }
             }
           }
           users { name: "bob" password_hash: "${hash("bob-pw")}" }
         }
         `,
      );
      manifoldArgs = [`--config=${config}`];
    }
    server = await startServer({
      manifoldArgs,
      natsServerConfig: `authorization {
        users = [
          { user: alice, password: alice-pw,
            permissions: { publish: "orders.>", subscribe: ["orders.>", "_INBOX.>"] } }
          { user: bob, password: bob-pw }
        ]
      }`,
    });
  });
  after(async () => {
    await closeClients();
    await server?.stop();
    if (directory) rmSync(directory, { recursive: true, force: true });
  });

  it("an allowed publish reaches other users", async () => {
    const alice = await client(server, { user: "alice", pass: "alice-pw" });
    const bob = await client(server, { user: "bob", pass: "bob-pw" });
    const sub = bob.subscribe("orders.>");
    await bob.flush();
    alice.publish("orders.eu.new", sc.encode("o1"));
    const [m] = await take(sub, 1);
    assert.equal(m.subject, "orders.eu.new");
  });

  it("a denied publish is a Permissions Violation naming the subject, and the connection stays", async () => {
    const alice = await client(server, { user: "alice", pass: "alice-pw" });
    const bob = await client(server, { user: "bob", pass: "bob-pw" });
    const seen = statuses(alice);
    const sub = bob.subscribe("billing.>");
    await bob.flush();
    alice.publish("billing.refund", sc.encode("no"));
    await waitFor("a permissions violation", () => seen.some((s) => s.data === ErrorCode.PermissionsViolation));
    const violation = seen.find((s) => s.data === ErrorCode.PermissionsViolation);
    assert.deepEqual(violation.permissionContext, { operation: "publish", subject: "billing.refund", queue: undefined });
    assert.equal(alice.isClosed(), false);
    await alice.flush();
    // Bob never got it.
    await assert.rejects(take(sub, 1, 200));
  });

  it("a denied subscription is a Permissions Violation and closes that subscription only", async () => {
    const alice = await client(server, { user: "alice", pass: "alice-pw" });
    const seen = statuses(alice);
    const denied = alice.subscribe("billing.>");
    const allowed = alice.subscribe("orders.*");
    await alice.flush();
    await waitFor("a permissions violation", () => seen.some((s) => s.data === ErrorCode.PermissionsViolation));
    const violation = seen.find((s) => s.data === ErrorCode.PermissionsViolation);
    assert.deepEqual(violation.permissionContext, { operation: "subscription", subject: "billing.>", queue: undefined });
    await waitFor("the denied subscription to close", () => denied.isClosed());
    assert.equal(allowed.isClosed(), false);
    alice.publish("orders.new", sc.encode("still here"));
    const [m] = await take(allowed, 1);
    assert.equal(sc.decode(m.data), "still here");
  });

  it("request and reply work within the user's permissions", async () => {
    const alice = await client(server, { user: "alice", pass: "alice-pw" });
    const bob = await client(server, { user: "bob", pass: "bob-pw" });
    bob.subscribe("orders.quote", { callback: (_, m) => m.respond(sc.encode("42")) });
    await bob.flush();
    const reply = await alice.request("orders.quote", sc.encode("?"), { timeout: 5_000 });
    assert.equal(sc.decode(reply.data), "42");
  });
});
