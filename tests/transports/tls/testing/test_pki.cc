#include "tests/transports/tls/testing/test_pki.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "tests/testing/temp_dir.h"

namespace manifold::testing {
namespace {

// Runs `command` through the shell with its output in `dir`/openssl.log;
// returns that output in the error when it fails.
absl::Status Run(const std::string& dir, const std::string& command) {
  const std::string log = dir + "/openssl.log";
  const std::string line =
      absl::StrCat("cd '", dir, "' && ", command, " >'", log, "' 2>&1");
  if (std::system(line.c_str()) == 0) return absl::OkStatus();
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  return absl::InternalError(
      absl::StrCat("`", command, "` failed: ", text.str()));
}

// A new P-256 key and a certificate signing request for `subject`.
std::string Request(const std::string& name, const std::string& subject) {
  return absl::StrCat(
      "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
      "-keyout ",
      name, ".key -out ", name, ".csr -subj '", subject, "'");
}

// Signs `name`.csr with `ca` for `days` (negative: already expired) with the
// extensions in `name`.ext.
std::string Sign(const std::string& name, const std::string& ca, int days) {
  return absl::StrCat("openssl x509 -req -in ", name, ".csr -CA ", ca,
                      ".pem -CAkey ", ca, ".key -CAcreateserial -days ", days,
                      " -extfile ", name, ".ext -out ", name, ".pem");
}

absl::Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.close();
  return out ? absl::OkStatus()
             : absl::InternalError(absl::StrCat("cannot write ", path));
}

}  // namespace

absl::StatusOr<TestPki> TestPki::Create() {
  TestPki pki;
  pki.dir = MakeShortTempDir();
  const std::string dir = pki.dir;
  pki.cleanup_ = std::shared_ptr<void>(nullptr, [dir](void*) {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  });
  for (const char* ca : {"ca", "stranger-ca"}) {
    if (absl::Status s =
            Run(dir, absl::StrCat("openssl req -x509 -newkey ec -pkeyopt "
                                  "ec_paramgen_curve:P-256 -nodes -keyout ",
                                  ca, ".key -out ", ca,
                                  ".pem -days 2 -subj '/CN=", ca, "'"));
        !s.ok()) {
      return s;
    }
  }
  struct Leaf {
    const char* name;
    const char* subject;
    const char* extensions;
    const char* ca;
    int days;
  };
  const Leaf leaves[] = {
      {"server", "/CN=localhost",
       "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
       "extendedKeyUsage=serverAuth\n",
       "ca", 2},
      {"client", "/O=Manifold Tests/CN=alice",
       "subjectAltName=DNS:alice.example,email:alice@example.com\n"
       "extendedKeyUsage=clientAuth\n",
       "ca", 2},
      {"stranger-client", "/CN=mallory", "extendedKeyUsage=clientAuth\n",
       "stranger-ca", 2},
      {"expired-client", "/CN=expired", "extendedKeyUsage=clientAuth\n", "ca",
       -1},
  };
  for (const Leaf& leaf : leaves) {
    if (absl::Status s = WriteFile(absl::StrCat(dir, "/", leaf.name, ".ext"),
                                   leaf.extensions);
        !s.ok()) {
      return s;
    }
    if (absl::Status s = Run(dir, Request(leaf.name, leaf.subject)); !s.ok()) {
      return s;
    }
    if (absl::Status s = Run(dir, Sign(leaf.name, leaf.ca, leaf.days));
        !s.ok()) {
      return s;
    }
  }
  pki.ca_cert = dir + "/ca.pem";
  pki.server_cert = dir + "/server.pem";
  pki.server_key = dir + "/server.key";
  pki.client_cert = dir + "/client.pem";
  pki.client_key = dir + "/client.key";
  pki.stranger_ca_cert = dir + "/stranger-ca.pem";
  pki.stranger_client_cert = dir + "/stranger-client.pem";
  pki.stranger_client_key = dir + "/stranger-client.key";
  pki.expired_client_cert = dir + "/expired-client.pem";
  pki.expired_client_key = dir + "/expired-client.key";
  return pki;
}

}  // namespace manifold::testing
