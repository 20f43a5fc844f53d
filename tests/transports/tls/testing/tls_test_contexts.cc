#include "tests/transports/tls/testing/tls_test_contexts.h"

#include <cstdio>
#include <utility>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"

namespace manifold::testing {

const TestPki* SharedTestPki() {
  static const absl::StatusOr<TestPki>* pki = [] {
    auto* made = new absl::StatusOr<TestPki>(TestPki::Create());
    if (!made->ok()) {
      std::fprintf(stderr, "cannot make the test PKI: %s\n",
                   made->status().ToString().c_str());
    }
    return made;
  }();
  return pki->ok() ? &**pki : nullptr;
}

TlsSettings TlsServerSettingsFor(const TestPki& pki,
                                 ClientVerification verify) {
  TlsSettings settings;
  settings.cert_file = pki.server_cert;
  settings.key_file = pki.server_key;
  if (verify != ClientVerification::kNone) settings.ca_file = pki.ca_cert;
  settings.verify_clients = verify;
  return settings;
}

std::shared_ptr<const TlsServerContext> TlsServerContextFor(
    const TestPki& pki, ClientVerification verify) {
  absl::StatusOr<std::shared_ptr<const TlsServerContext>> context =
      TlsServerContext::Create(TlsServerSettingsFor(pki, verify));
  EXPECT_TRUE(context.ok()) << context.status();
  return context.ok() ? *std::move(context) : nullptr;
}

std::shared_ptr<const TlsClientContext> TlsClientContextFor(
    const TestPki& pki, const std::string& cert, const std::string& key,
    const std::string& ca) {
  TlsClientSettings settings;
  settings.ca_file = ca.empty() ? pki.ca_cert : ca;
  settings.cert_file = cert;
  settings.key_file = key;
  settings.server_name = "localhost";
  absl::StatusOr<std::shared_ptr<const TlsClientContext>> context =
      TlsClientContext::Create(settings);
  EXPECT_TRUE(context.ok()) << context.status();
  return context.ok() ? *std::move(context) : nullptr;
}

}  // namespace manifold::testing
