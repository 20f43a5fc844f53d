// A throw-away certificate authority for the TLS tests, made with the
// `openssl` command in a fresh temporary directory (no key is committed):
// a CA, a server certificate for localhost and 127.0.0.1 signed by it, and a
// second CA that signed nothing here (a client that trusts only that one
// must refuse manifoldd).
//
//   const pki = makePki();
//   Manifoldd.start(["--tls_cert", pki.serverCert, "--tls_key", pki.serverKey]);
//   https.get(url, { ca: pki.caPem });
//   pki.remove();

import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

function openssl(dir, args) {
  try {
    execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    throw new Error(`openssl ${args.join(" ")} failed: ${e.stderr || e.message}`);
  }
}

function makeCa(dir, name) {
  openssl(dir, ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
    "-keyout", `${name}.key`, "-out", `${name}.pem`, "-days", "2", "-subj", `/CN=${name}`]);
}

export function makePki() {
  const dir = mkdtempSync(join(process.env.TEST_TMPDIR || tmpdir(), "web-pki-"));
  makeCa(dir, "ca");
  makeCa(dir, "stranger-ca");
  openssl(dir, ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
    "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"]);
  writeFileSync(join(dir, "server.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  openssl(dir, ["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
    "-CAcreateserial", "-days", "2", "-extfile", "server.ext", "-out", "server.pem"]);
  return {
    dir,
    caCert: join(dir, "ca.pem"),
    caPem: readFileSync(join(dir, "ca.pem")),
    strangerCaCert: join(dir, "stranger-ca.pem"),
    strangerCaPem: readFileSync(join(dir, "stranger-ca.pem")),
    serverCert: join(dir, "server.pem"),
    serverKey: join(dir, "server.key"),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
