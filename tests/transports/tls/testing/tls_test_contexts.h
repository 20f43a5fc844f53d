// File: tests/transports/tls/testing/tls_test_contexts.h
// -----------------------------------------------------------------------------
//
// For tests: one throw-away PKI (test_pki.h) shared by every test of a
// binary, and the server and client contexts the TLS tests build from it,
// so each test states only what differs (client verification, a client
// certificate, another CA).
//
//   const testing::TestPki* pki = testing::SharedTestPki();
//   ASSERT_NE(pki, nullptr);
//   auto server = testing::TlsServerContextFor(*pki,
//   ClientVerification::kRequire); auto client =
//   testing::TlsClientContextFor(*pki, pki->client_cert,
//                                              pki->client_key);
//   auto session = TlsSession::ForClient(client);

#ifndef MANIFOLD_TESTS_TRANSPORTS_TLS_TESTING_TLS_TEST_CONTEXTS_H_
#define MANIFOLD_TESTS_TRANSPORTS_TLS_TESTING_TLS_TEST_CONTEXTS_H_

#include <memory>
#include <string>

#include "tests/transports/tls/testing/test_pki.h"
#include "transports/tls/tls_context.h"

namespace manifold::testing {

// The PKI of this test binary, made on first use and removed at exit.
// Returns nullptr (after printing why to stderr) if it cannot be made.
const TestPki* SharedTestPki();

// The settings of a server with `pki`'s server certificate; client
// certificates are checked against `pki`'s CA unless `verify` is kNone.
TlsSettings TlsServerSettingsFor(
    const TestPki& pki, ClientVerification verify = ClientVerification::kNone);

// A server context from TlsServerSettingsFor(). Returns nullptr, after a
// test failure naming the error, if it cannot be built.
std::shared_ptr<const TlsServerContext> TlsServerContextFor(
    const TestPki& pki, ClientVerification verify = ClientVerification::kNone);

// A client context that trusts `ca` (default: `pki`'s CA), expects the
// server to be "localhost", and presents `cert`/`key` when given. Returns
// nullptr, after a test failure naming the error, if it cannot be built.
std::shared_ptr<const TlsClientContext> TlsClientContextFor(
    const TestPki& pki, const std::string& cert = "",
    const std::string& key = "", const std::string& ca = "");

}  // namespace manifold::testing

#endif  // MANIFOLD_TESTS_TRANSPORTS_TLS_TESTING_TLS_TEST_CONTEXTS_H_
