// File: tests/transports/tls/testing/test_pki.h
// -----------------------------------------------------------------------------
//
// For tests: a throw-away public key infrastructure made with the `openssl`
// command in a fresh temporary directory, so no private key is ever
// committed. Two CAs (the trusted one and a stranger), a server certificate
// for "localhost" (and 127.0.0.1), a client certificate for alice (with DNS
// and email subjectAltNames), one signed by the stranger CA, and an expired
// one. Keys are P-256.
//
//   absl::StatusOr<TestPki> pki = TestPki::Create();
//   ASSERT_TRUE(pki.ok()) << pki.status();
//   TlsSettings settings;
//   settings.cert_file = pki->server_cert;
//   settings.key_file = pki->server_key;
//   ...
//   // The directory is removed when the last copy of `pki` goes away.

#ifndef MANIFOLD_TESTS_TRANSPORTS_TLS_TESTING_TEST_PKI_H_
#define MANIFOLD_TESTS_TRANSPORTS_TLS_TESTING_TEST_PKI_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace manifold::testing {

struct TestPki {
  // Generates every file below. Fails with the openssl command's output if
  // one step fails (e.g. no `openssl` on the PATH).
  static absl::StatusOr<TestPki> Create();

  std::string dir;
  // The CA everything below chains to (except stranger_*).
  std::string ca_cert;
  // Server: CN=localhost, SAN DNS:localhost, IP:127.0.0.1.
  std::string server_cert;
  std::string server_key;
  // Client: CN=alice,O=Manifold Tests; SAN DNS:alice.example,
  // email:alice@example.com.
  std::string client_cert;
  std::string client_key;
  // A second CA, and a client certificate it signed (CN=mallory).
  std::string stranger_ca_cert;
  std::string stranger_client_cert;
  std::string stranger_client_key;
  // A client certificate of the trusted CA whose validity ended yesterday
  // (CN=expired).
  std::string expired_client_cert;
  std::string expired_client_key;

 private:
  // Removes `dir` when the last TestPki sharing it is destroyed.
  std::shared_ptr<void> cleanup_;
};

}  // namespace manifold::testing

#endif  // MANIFOLD_TESTS_TRANSPORTS_TLS_TESTING_TEST_PKI_H_
