// TLS as nats.js uses it: the server sends INFO in clear with tls_required,
// the client upgrades the socket (its `tls` option) and everything after is
// encrypted. Certificates are made with the `openssl` command in a temporary
// directory. Against nats-server, the same suite checks the expectations.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connect } from "nats";
import { startServer } from "./lib/servers.mjs";
import { sc, take } from "./lib/util.mjs";

let server;
let dir;
const clients = [];

// A CA and a certificate for 127.0.0.1 (and localhost) signed by it.
function makeCertificates() {
  dir = mkdtempSync(join(tmpdir(), "nats-tls-"));
  const run = (...args) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  const key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  run("req", "-x509", ...key, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=nats-tls-ca");
  run("req", "-new", ...key, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost");
  writeFileSync(join(dir, "server.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
      "-days", "2", "-extfile", "server.ext", "-out", "server.pem");
  return { ca: join(dir, "ca.pem"), cert: join(dir, "server.pem"), key: join(dir, "server.key") };
}

async function client(options = {}) {
  const nc = await connect({ servers: server.natsUrl, reconnect: false, timeout: 5_000, ...options });
  clients.push(nc);
  return nc;
}

let files;

before(async () => {
  files = makeCertificates();
  server = await startServer({
    manifoldArgs: [`--tls_cert=${files.cert}`, `--tls_key=${files.key}`],
    natsServerConfig: `tls { cert_file: "${files.cert}", key_file: "${files.key}" }`,
  });
});

after(async () => {
  await Promise.all(clients.map((nc) => (nc.isClosed() ? null : nc.close())));
  await server.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("tls", () => {
  it("advertises tls_required and upgrades the connection after INFO", async () => {
    const nc = await client({ tls: { caFile: files.ca } });
    assert.equal(nc.info.tls_required, true);
    await nc.flush();
  });

  it("delivers messages between two TLS clients", async () => {
    const receiver = await client({ tls: { caFile: files.ca } });
    const sub = receiver.subscribe("secure.>");
    await receiver.flush();
    const sender = await client({ tls: { caFile: files.ca } });
    sender.publish("secure.alice", sc.encode("over tls"));
    const [m] = await take(sub, 1);
    assert.equal(m.subject, "secure.alice");
    assert.equal(sc.decode(m.data), "over tls");
  });

  it("fails when the client does not trust the server's CA", async () => {
    await assert.rejects(
      client({ tls: { caFile: files.cert } }), // a leaf is not the issuing CA
    );
  });
});
