// The native client over TLS (client/tls_stream.h and Client::Dial) against
// a real manifoldd with TLS, on every event loop: messages flow, a
// certificate for another name is refused, and a client with reconnect
// comes back over a new TLS session after manifoldd is killed and
// restarted.

#include "client/tls_stream.h"

#include <signal.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/running_manifoldd.h"
#include "tests/transports/testing/event_loop_params.h"
#include "tests/transports/tls/testing/test_pki.h"
#include "tests/transports/tls/testing/tls_test_contexts.h"
#include "transports/tls/tls_context.h"

namespace manifold {
namespace {

using ::manifold::testing::RunningManifoldd;
using ::manifold::testing::TestPki;
using ::testing::HasSubstr;

class TlsStreamTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() { pki_ = testing::SharedTestPki(); }
  void SetUp() override { ASSERT_NE(pki_, nullptr) << "no test PKI"; }

  absl::StatusOr<std::unique_ptr<RunningManifoldd>> StartBroker(int port = 0) {
    return RunningManifoldd::Start({absl::StrCat("--loop=", GetParam()),
                                    absl::StrCat("--listen=127.0.0.1:", port),
                                    "--tls_cert=" + pki_->server_cert,
                                    "--tls_key=" + pki_->server_key});
  }

  std::shared_ptr<const TlsClientContext> Context(
      const std::string& server_name = "localhost") {
    TlsClientSettings settings;
    settings.ca_file = pki_->ca_cert;
    settings.server_name = server_name;
    absl::StatusOr<std::shared_ptr<const TlsClientContext>> context =
        TlsClientContext::Create(settings);
    EXPECT_TRUE(context.ok()) << context.status();
    return context.ok() ? *context : nullptr;
  }

  static Client::Dialer TlsDialer(
      const std::string& address,
      std::shared_ptr<const TlsClientContext> context) {
    return [address, context](absl::Duration timeout) {
      return ConnectTls(address, context, timeout);
    };
  }

  static const TestPki* pki_;
};

const TestPki* TlsStreamTest::pki_ = nullptr;

INSTANTIATE_TEST_SUITE_P(Loops, TlsStreamTest,
                         ::testing::ValuesIn(testing::EventLoops()),
                         testing::LoopName);

TEST_P(TlsStreamTest, MessagesFlowOverTls) {
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker = StartBroker();
  ASSERT_TRUE(broker.ok()) << broker.status();
  const std::string address = (*broker)->tcp_address();
  absl::StatusOr<std::unique_ptr<Client>> subscriber =
      Client::Dial(TlsDialer(address, Context()));
  ASSERT_TRUE(subscriber.ok()) << subscriber.status();
  auto sub = (*subscriber)->Subscribe("secret/*");
  ASSERT_TRUE(sub.ok()) << sub.status();
  absl::StatusOr<std::unique_ptr<Client>> publisher =
      Client::Dial(TlsDialer(address, Context()));
  ASSERT_TRUE(publisher.ok()) << publisher.status();
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE((*publisher)->Publish("secret/x", absl::StrCat(i)).ok());
  }
  for (int i = 0; i < 100; ++i) {
    absl::StatusOr<Message> m = (*sub)->Next(absl::Seconds(5));
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ(m->payload, absl::StrCat(i));
  }
}

TEST_P(TlsStreamTest, ACertificateForAnotherNameIsRefused) {
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker = StartBroker();
  ASSERT_TRUE(broker.ok()) << broker.status();
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Dial(
      TlsDialer((*broker)->tcp_address(), Context("broker.example.com")));
  ASSERT_FALSE(client.ok());
  EXPECT_THAT(std::string(client.status().message()), HasSubstr("certificate"));
}

TEST_P(TlsStreamTest, ReconnectComesBackOverANewTlsSession) {
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> first = StartBroker();
  ASSERT_TRUE(first.ok()) << first.status();
  const int port = (*first)->tcp().port;
  const std::string address = (*first)->tcp_address();
  ClientOptions options;
  options.reconnect.enabled = true;
  options.reconnect.initial_backoff = absl::Milliseconds(20);
  options.reconnect.max_backoff = absl::Milliseconds(200);
  absl::StatusOr<std::unique_ptr<Client>> subscriber =
      Client::Dial(TlsDialer(address, Context()), options);
  ASSERT_TRUE(subscriber.ok()) << subscriber.status();
  auto sub = (*subscriber)->Subscribe("news/*");
  ASSERT_TRUE(sub.ok()) << sub.status();

  const absl::StatusOr<int> stopped = (*first)->Stop(SIGKILL);
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> second = StartBroker(port);
  ASSERT_TRUE(second.ok()) << second.status();
  // The subscriber comes back on its own schedule: publish until it hears.
  bool heard = false;
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  while (!heard && absl::Now() < deadline) {
    absl::StatusOr<std::unique_ptr<Client>> publisher =
        Client::Dial(TlsDialer(address, Context()));
    if (publisher.ok()) {
      (*publisher)->Publish("news/b", "two").IgnoreError();
      (*publisher)->Ping().IgnoreError();
    }
    absl::StatusOr<Message> m = (*sub)->Next(absl::Milliseconds(100));
    heard = m.ok() && m->payload == "two";
  }
  EXPECT_TRUE(heard);
  EXPECT_GE((*subscriber)->reconnects(), 1u);
  EXPECT_TRUE((*subscriber)->connected());
}

}  // namespace
}  // namespace manifold
