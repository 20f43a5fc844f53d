#include "transports/tls/tls_context.h"

#include <cstdio>
#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/transports/tls/testing/test_pki.h"
#include "tests/transports/tls/testing/tls_test_contexts.h"

namespace manifold {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

TEST(TlsServerContextTest, BuildsFromACertificateAndKey) {
  const testing::TestPki* pki = testing::SharedTestPki();
  ASSERT_NE(pki, nullptr);
  TlsSettings settings;
  settings.cert_file = pki->server_cert;
  settings.key_file = pki->server_key;
  absl::StatusOr<std::shared_ptr<const TlsServerContext>> context =
      TlsServerContext::Create(settings);
  ASSERT_TRUE(context.ok()) << context.status();
  EXPECT_NE((*context)->native(), nullptr);
}

TEST(TlsServerContextTest, MissingFileIsNamedInTheError) {
  TlsSettings settings;
  settings.cert_file = "/nonexistent/server.pem";
  settings.key_file = "/nonexistent/server.key";
  absl::StatusOr<std::shared_ptr<const TlsServerContext>> context =
      TlsServerContext::Create(settings);
  EXPECT_EQ(context.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(context.status().message(),
              HasSubstr("certificate chain from '/nonexistent/server.pem'"));
}

TEST(TlsServerContextTest, KeyThatDoesNotMatchTheCertificateIsRefused) {
  const testing::TestPki* pki = testing::SharedTestPki();
  ASSERT_NE(pki, nullptr);
  TlsSettings settings;
  settings.cert_file = pki->server_cert;
  settings.key_file = pki->client_key;
  absl::StatusOr<std::shared_ptr<const TlsServerContext>> context =
      TlsServerContext::Create(settings);
  EXPECT_EQ(context.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(context.status().message(),
              AllOf(HasSubstr(pki->client_key), HasSubstr("does not match")));
}

TEST(TlsServerContextTest, VerifyingClientsNeedsACaFile) {
  TlsSettings settings;
  settings.cert_file = "server.pem";
  settings.key_file = "server.key";
  settings.verify_clients = ClientVerification::kRequire;
  EXPECT_THAT(TlsServerContext::Create(settings).status().message(),
              HasSubstr("needs a CA file"));
}

TEST(TlsServerContextTest, CaFileThatIsNotPemIsNamed) {
  const testing::TestPki* pki = testing::SharedTestPki();
  ASSERT_NE(pki, nullptr);
  TlsSettings settings;
  settings.cert_file = pki->server_cert;
  settings.key_file = pki->server_key;
  settings.ca_file = pki->server_key;  // a key, not certificates
  settings.verify_clients = ClientVerification::kRequest;
  EXPECT_THAT(
      TlsServerContext::Create(settings).status().message(),
      HasSubstr("cannot load CA certificates from '" + pki->server_key));
}

TEST(TlsClientContextTest, CertificateWithoutKeyIsRefused) {
  TlsClientSettings settings;
  settings.cert_file = "client.pem";
  EXPECT_EQ(TlsClientContext::Create(settings).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ClientVerificationTest, ParsesTheConfigSpelling) {
  EXPECT_EQ(*ParseClientVerification("none"), ClientVerification::kNone);
  EXPECT_EQ(*ParseClientVerification("request"), ClientVerification::kRequest);
  EXPECT_EQ(*ParseClientVerification("require"), ClientVerification::kRequire);
  EXPECT_FALSE(ParseClientVerification("always").ok());
}

TEST(ReloadableTlsServerContextTest, ReloadSwapsOnlyOnSuccess) {
  absl::StatusOr<testing::TestPki> pki = testing::TestPki::Create();
  ASSERT_TRUE(pki.ok()) << pki.status();
  TlsSettings settings;
  settings.cert_file = pki->server_cert;
  settings.key_file = pki->server_key;
  auto reloadable = ReloadableTlsServerContext::Create(settings);
  ASSERT_TRUE(reloadable.ok()) << reloadable.status();
  std::shared_ptr<const TlsServerContext> first = (*reloadable)->current();
  ASSERT_TRUE((*reloadable)->Reload().ok());
  std::shared_ptr<const TlsServerContext> second = (*reloadable)->current();
  EXPECT_NE(first, second);
  // A broken file keeps the last good context. (This test's own PKI: it
  // removes a file.)
  std::remove(pki->server_key.c_str());
  EXPECT_THAT((*reloadable)->Reload().message(), HasSubstr(pki->server_key));
  EXPECT_EQ((*reloadable)->current(), second);
}

}  // namespace
}  // namespace manifold
