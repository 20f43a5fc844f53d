// manifoldd with users, tokens and permissions, as an operator runs it: a
// real process on free loopback ports, raw native and NATS clients, once per
// event loop this build has; the secure example over TLS with the native
// client.

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "broker/auth/password_hash.h"
#include "client/client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "tests/testing/running_manifoldd.h"
#include "tests/testing/temp_dir.h"
#include "tests/transports/testing/event_loop_params.h"
#include "tests/transports/testing/wire_client.h"

#ifdef MANIFOLD_TEST_HAVE_TLS
#include "client/tls_stream.h"
#include "transports/tls/tls_context.h"
#endif

namespace manifold {
namespace {

using testing::Completed;
using ::testing::HasSubstr;
using testing::ManifolddPath;
using testing::RunningManifoldd;
using testing::WireClient;

class ManifolddAuthTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ASSERT_FALSE(ManifolddPath().empty())
        << "the build did not say where manifoldd is";
  }
  ~ManifolddAuthTest() override { std::filesystem::remove_all(directory_); }

  absl::StatusOr<std::unique_ptr<RunningManifoldd>> StartBroker(
      std::vector<std::string> args) {
    args.insert(args.begin(), "--loop=" + GetParam());
    args.insert(args.begin(), "--listen=127.0.0.1:0");
    return RunningManifoldd::Start(args);
  }

  std::string WriteConfig(absl::string_view text) {
    const std::string path = directory_ + "/auth.textpb";
    std::ofstream(path) << text;
    return path;
  }

  const std::string directory_ = testing::MakeShortTempDir();
};

INSTANTIATE_TEST_SUITE_P(Loops, ManifolddAuthTest,
                         ::testing::ValuesIn(testing::EventLoops()),
                         testing::LoopName);

std::string Hash(absl::string_view password) {
  absl::StatusOr<std::string> hash =
      HashPassword(password, std::string(kPasswordSaltBytes, 'k'));
  EXPECT_TRUE(hash.ok()) << hash.status();
  return hash.value_or("");
}

// Sends Hello with credentials; returns the first answer (Welcome or Error).
absl::StatusOr<wire::ServerMessage> Login(WireClient& client,
                                          absl::string_view user,
                                          absl::string_view password,
                                          absl::string_view token = "") {
  wire::ClientMessage hello;
  hello.mutable_hello()->set_protocol_version(1);
  hello.mutable_hello()->set_client_name("auth-test");
  hello.mutable_hello()->set_user(std::string(user));
  hello.mutable_hello()->set_password(std::string(password));
  hello.mutable_hello()->set_auth_token(std::string(token));
  if (absl::Status sent = client.Send(hello); !sent.ok()) return sent;
  return client.ReceiveSkippingPings();
}

TEST_P(ManifolddAuthTest, UserAndPasswordFlagsAdmitOnlyThatUser) {
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker = StartBroker(
      {"--user=alice", "--pass=s3cret", "--failed_login_delay=300ms"});
  ASSERT_TRUE(broker.ok()) << broker.status();

  absl::StatusOr<WireClient> alice = WireClient::Connect((*broker)->tcp());
  ASSERT_TRUE(alice.ok());
  absl::StatusOr<wire::ServerMessage> welcome =
      Login(*alice, "alice", "s3cret");
  ASSERT_TRUE(welcome.ok()) << welcome.status();
  EXPECT_TRUE(welcome->has_welcome()) << welcome->DebugString();
  EXPECT_TRUE(alice->Subscribe("room/*").ok());

  absl::StatusOr<WireClient> guesser = WireClient::Connect((*broker)->tcp());
  ASSERT_TRUE(guesser.ok());
  const absl::Time start = absl::Now();
  absl::StatusOr<wire::ServerMessage> refused =
      Login(*guesser, "alice", "guess");
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_EQ(refused->error().code(), wire::REFUSED);
  EXPECT_EQ(refused->error().message(),
            "connection refused: wrong user name or password");
  // A failed login is answered only after the delay.
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(250));

  absl::StatusOr<WireClient> nobody = WireClient::Connect((*broker)->tcp());
  ASSERT_TRUE(nobody.ok());
  absl::StatusOr<wire::ServerMessage> anonymous = Login(*nobody, "", "");
  ASSERT_TRUE(anonymous.ok());
  EXPECT_EQ(anonymous->error().message(),
            "connection refused: credentials required");
  // Alice never noticed.
  EXPECT_TRUE(alice->Ping().ok());
}

TEST_P(ManifolddAuthTest, TokenFlagAdmitsItsHolderOverNativeAndNats) {
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker = StartBroker(
      {"--nats=127.0.0.1:0", "--token=t0k3n", "--failed_login_delay=0s"});
  ASSERT_TRUE(broker.ok()) << broker.status();
  absl::StatusOr<WireClient> holder = WireClient::Connect((*broker)->tcp());
  ASSERT_TRUE(holder.ok());
  absl::StatusOr<wire::ServerMessage> welcome = Login(*holder, "", "", "t0k3n");
  ASSERT_TRUE(welcome.ok());
  EXPECT_TRUE(welcome->has_welcome()) << welcome->DebugString();

  absl::StatusOr<WireClient> wrong = WireClient::Connect((*broker)->tcp());
  ASSERT_TRUE(wrong.ok());
  absl::StatusOr<wire::ServerMessage> refused = Login(*wrong, "", "", "t0k3m");
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->error().message(), "connection refused: unknown token");

  // NATS: INFO says auth_required; a wrong token gets nats-server's text.
  for (const auto& [token, expected] :
       std::vector<std::pair<std::string, std::string>>{
           {"t0k3n", "PONG\r\n"},
           {"nope", "-ERR 'Authorization Violation'\r\n"}}) {
    absl::StatusOr<WireClient> nats = WireClient::Connect((*broker)->nats());
    ASSERT_TRUE(nats.ok());
    ASSERT_TRUE(nats->SendRaw(absl::StrCat("CONNECT {\"verbose\":false,"
                                           "\"auth_token\":\"",
                                           token, "\"}\r\nPING\r\n"))
                    .ok());
    std::string read;
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (!absl::StrContains(read, expected) && absl::Now() < deadline) {
      pollfd p{nats->fd(), POLLIN, 100};
      if (::poll(&p, 1, 100) <= 0) continue;
      char chunk[4096];
      const ssize_t n = ::read(nats->fd(), chunk, sizeof(chunk));
      if (n <= 0) break;
      read.append(chunk, static_cast<size_t>(n));
    }
    EXPECT_THAT(read, HasSubstr("\"auth_required\":true"));
    EXPECT_THAT(read, HasSubstr(expected)) << token;
  }
}

// The address of the listener `label` in manifoldd's listening line
// ("127.0.0.1:PORT (http)"); empty when it has none.
std::string ListenerAddress(const RunningManifoldd& broker,
                            absl::string_view label) {
  const std::string& line = broker.listening_line();
  const size_t mark = line.find(absl::StrCat(" (", label, ")"));
  if (mark == std::string::npos) return "";
  const size_t start = line.rfind(' ', mark - 1) + 1;
  return line.substr(start, mark - start);
}

// POSTs `body` to `url` with curl, one connection per call, keeping cookies
// in `jar`; returns the response body.
absl::StatusOr<std::string> CurlPost(const std::string& url,
                                     const std::string& body,
                                     const std::string& jar) {
  absl::StatusOr<Completed> curl = testing::RunToCompletion(
      "/usr/bin/curl",
      {"-sS", "--max-time", "10", "-b", jar, "-c", jar, "-H",
       "Content-Type: application/json", "--data-binary", body, url});
  if (!curl.ok()) return curl.status();
  if (curl->exit_code != 0) {
    return absl::UnavailableError(absl::StrCat("curl: ", curl->err));
  }
  return curl->out;
}

// The value of "clientId" in a Bayeux reply; empty without one.
std::string ClientIdOf(absl::string_view reply) {
  const absl::string_view key = "\"clientId\":\"";
  const size_t at = reply.find(key);
  if (at == absl::string_view::npos) return "";
  const size_t start = at + key.size();
  return std::string(reply.substr(start, reply.find('"', start) - start));
}

TEST_P(ManifolddAuthTest, BayeuxLongPollingStaysLoggedInAcrossConnections) {
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker =
      StartBroker({"--user=alice", "--pass=s3cret", "--http=127.0.0.1:0",
                   "--failed_login_delay=100ms"});
  ASSERT_TRUE(broker.ok()) << broker.status();
  const std::string url =
      absl::StrCat("http://", ListenerAddress(**broker, "http"), "/cometd");
  ASSERT_NE(url, "http:///cometd") << (*broker)->listening_line();
  const std::string jar = directory_ + "/cookies";

  // The handshake logs in; every later request is a new connection that
  // presents only the session (clientId and cookie), as CometD's
  // long-polling transport does.
  absl::StatusOr<std::string> handshake =
      CurlPost(url,
               R"([{"channel":"/meta/handshake","version":"1.0",)"
               R"("supportedConnectionTypes":["long-polling"],)"
               R"("ext":{"auth":{"user":"alice","password":"s3cret"}}}])",
               jar);
  ASSERT_TRUE(handshake.ok()) << handshake.status();
  ASSERT_THAT(*handshake, HasSubstr(R"("successful":true)"));
  const std::string client_id = ClientIdOf(*handshake);
  ASSERT_EQ(client_id.size(), 40u) << *handshake;

  absl::StatusOr<std::string> subscribe =
      CurlPost(url,
               absl::StrCat(R"([{"channel":"/meta/subscribe","clientId":")",
                            client_id, R"(","subscription":"/room/a"}])"),
               jar);
  ASSERT_TRUE(subscribe.ok()) << subscribe.status();
  EXPECT_THAT(*subscribe, HasSubstr(R"("successful":true)"));

  absl::StatusOr<std::string> publish =
      CurlPost(url,
               absl::StrCat(R"([{"channel":"/room/a","clientId":")", client_id,
                            R"(","data":{"n":1}}])"),
               jar);
  ASSERT_TRUE(publish.ok()) << publish.status();
  EXPECT_THAT(*publish, HasSubstr(R"("successful":true)"));

  absl::StatusOr<std::string> connect =
      CurlPost(url,
               absl::StrCat(R"([{"channel":"/meta/connect","clientId":")",
                            client_id, R"(","connectionType":"long-polling",)",
                            R"("advice":{"timeout":0}}])"),
               jar);
  ASSERT_TRUE(connect.ok()) << connect.status();
  EXPECT_THAT(*connect, HasSubstr(R"("data":{"n":1})"));
  EXPECT_THAT(*connect, HasSubstr(R"("successful":true)"));

  // Without the session's cookie the clientId alone vouches for nobody.
  absl::StatusOr<std::string> stranger =
      CurlPost(url,
               absl::StrCat(R"([{"channel":"/room/a","clientId":")", client_id,
                            R"(","data":{"n":2}}])"),
               directory_ + "/no-cookies");
  ASSERT_TRUE(stranger.ok()) << stranger.status();
  EXPECT_THAT(*stranger, HasSubstr("401::credentials required"));
}

// "pw" hashed with yescrypt at cost 8: about ten times the default's work,
// so that a check takes long enough to see whether the loop waits for it.
constexpr absl::string_view kSlowHash =
    "$y$jCT$nZ42HN5qvsbjnYtC82J9Y0$sSJi32B.KpDmKbSxa/OHnRxAK3uyqh4OwlJ.4pbiinD";

TEST_P(ManifolddAuthTest, PasswordChecksDoNotStallOtherClients) {
  const std::string config =
      WriteConfig(absl::StrCat("auth {\n"
                               "  users { name: \"slow\" password_hash: \"",
                               kSlowHash,
                               "\" }\n"
                               "  users { name: \"alice\" password_hash: \"",
                               Hash("alice-pw"),
                               "\" }\n"
                               "  max_failed_logins: 100\n"
                               "  failed_login_delay_ms: 1\n"
                               "}\n"));
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker =
      StartBroker({"--config=" + config});
  ASSERT_TRUE(broker.ok()) << broker.status();
  absl::StatusOr<WireClient> alice = WireClient::Connect((*broker)->tcp());
  ASSERT_TRUE(alice.ok());
  absl::StatusOr<wire::ServerMessage> welcome =
      Login(*alice, "alice", "alice-pw");
  ASSERT_TRUE(welcome.ok() && welcome->has_welcome());

  // Five wrong passwords for the slow user at once, from one address: four
  // are checked one after another on the worker, the fifth is refused at
  // once (at most four per address wait).
  std::vector<WireClient> guessers;
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<WireClient> guesser = WireClient::Connect((*broker)->tcp());
    ASSERT_TRUE(guesser.ok());
    guessers.push_back(*std::move(guesser));
  }
  const absl::Time start = absl::Now();
  for (WireClient& guesser : guessers) {
    wire::ClientMessage hello;
    hello.mutable_hello()->set_protocol_version(1);
    hello.mutable_hello()->set_user("slow");
    hello.mutable_hello()->set_password("guess");
    ASSERT_TRUE(guesser.Send(hello).ok());
  }
  // Meanwhile alice's pings are answered as usual.
  absl::Duration slowest_ping;
  for (int i = 0; i < 10; ++i) {
    const absl::Time sent = absl::Now();
    ASSERT_TRUE(alice->Ping().ok());
    slowest_ping = std::max(slowest_ping, absl::Now() - sent);
  }
  int wrong = 0;
  int busy = 0;
  for (WireClient& guesser : guessers) {
    absl::StatusOr<wire::ServerMessage> answer =
        guesser.ReceiveSkippingPings(absl::Seconds(60));
    ASSERT_TRUE(answer.ok()) << answer.status();
    const std::string& message = answer->error().message();
    if (message == "connection refused: wrong user name or password") ++wrong;
    if (message ==
        "connection refused: too many logins from this address at once; try "
        "later") {
      ++busy;
    }
  }
  const absl::Duration checking = absl::Now() - start;
  EXPECT_EQ(wrong, 4);
  EXPECT_EQ(busy, 1);
  // Checked on the loop, one ping would have waited for all four checks;
  // on the worker none waits for even one.
  EXPECT_LT(slowest_ping, checking / 4)
      << "slowest ping " << slowest_ping << ", four checks took " << checking;
}

TEST_P(ManifolddAuthTest, ConfiguredUsersGetTheirPermissions) {
  const std::string config = WriteConfig(
      absl::StrCat("auth {\n"
                   "  users {\n"
                   "    name: \"alice\"\n"
                   "    password_hash: \"",
                   Hash("alice-pw"),
                   "\"\n"
                   "    permissions { publish { allow: \"orders/**\" } }\n"
                   "  }\n"
                   "  allow_anonymous: true\n"
                   "  anonymous_permissions { publish { deny: \"**\" } }\n"
                   "}\n"));
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker =
      StartBroker({"--config=" + config});
  ASSERT_TRUE(broker.ok()) << broker.status();

  absl::StatusOr<WireClient> guest = WireClient::Connect((*broker)->tcp());
  ASSERT_TRUE(guest.ok());
  ASSERT_TRUE(Login(*guest, "", "").ok());
  ASSERT_TRUE(guest->Subscribe("orders/*").ok());

  absl::StatusOr<WireClient> alice = WireClient::Connect((*broker)->tcp());
  ASSERT_TRUE(alice.ok());
  absl::StatusOr<wire::ServerMessage> welcome =
      Login(*alice, "alice", "alice-pw");
  ASSERT_TRUE(welcome.ok() && welcome->has_welcome());
  absl::StatusOr<wire::ServerMessage> denied =
      alice->PublishAcked("billing/1", "x");
  ASSERT_TRUE(denied.ok());
  EXPECT_EQ(denied->error().code(), wire::PERMISSION_DENIED);
  EXPECT_EQ(denied->error().message(),
            "permission denied: publish to 'billing/1' (user 'alice')");
  ASSERT_TRUE(alice->Publish("orders/1", "o1").ok());
  absl::StatusOr<wire::ServerMessage> delivered = guest->ReceiveSkippingPings();
  ASSERT_TRUE(delivered.ok()) << delivered.status();
  EXPECT_EQ(delivered->deliver().payload(), "o1");

  absl::StatusOr<wire::ServerMessage> guest_publish =
      guest->PublishAcked("orders/2", "x");
  ASSERT_TRUE(guest_publish.ok());
  EXPECT_EQ(guest_publish->error().code(), wire::PERMISSION_DENIED);
}

TEST_P(ManifolddAuthTest, AnAddressThatFailsTooOftenIsRefusedUnchecked) {
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker =
      StartBroker({"--user=alice", "--pass=s3cret", "--failed_login_delay=0s",
                   "--max_failed_logins=2", "--failed_login_window=1m"});
  ASSERT_TRUE(broker.ok()) << broker.status();
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<WireClient> c = WireClient::Connect((*broker)->tcp());
    ASSERT_TRUE(c.ok());
    absl::StatusOr<wire::ServerMessage> refused = Login(*c, "alice", "guess");
    ASSERT_TRUE(refused.ok());
    EXPECT_EQ(refused->error().message(),
              "connection refused: wrong user name or password");
  }
  // Even the right password is not checked now.
  absl::StatusOr<WireClient> c = WireClient::Connect((*broker)->tcp());
  ASSERT_TRUE(c.ok());
  absl::StatusOr<wire::ServerMessage> throttled = Login(*c, "alice", "s3cret");
  ASSERT_TRUE(throttled.ok());
  EXPECT_EQ(throttled->error().message(),
            "connection refused: too many failed logins from this address; "
            "try later");
}

TEST_P(ManifolddAuthTest,
       SighupAppliesChangedUsersAndPermissionsToLiveClients) {
  const std::string alice_hash = Hash("alice-pw");
  auto config_text = [&](absl::string_view alice_rules,
                         absl::string_view more_users) {
    return absl::StrCat("auth {\n  users { name: \"alice\" password_hash: \"",
                        alice_hash, "\" permissions { ", alice_rules, " } }\n",
                        more_users, "}\n");
  };
  const std::string config = WriteConfig(
      config_text("subscribe { allow: \"news/*\" allow: \"orders/*\" }", ""));
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker =
      StartBroker({"--config=" + config});
  ASSERT_TRUE(broker.ok()) << broker.status();
  absl::StatusOr<WireClient> alice = WireClient::Connect((*broker)->tcp());
  ASSERT_TRUE(alice.ok());
  ASSERT_TRUE(Login(*alice, "alice", "alice-pw")->has_welcome());
  absl::StatusOr<uint64_t> news = alice->Subscribe("news/*");
  ASSERT_TRUE(news.ok());
  ASSERT_TRUE(alice->Subscribe("orders/*").ok());

  // Alice loses news; bob appears.
  WriteConfig(
      config_text("subscribe { allow: \"orders/*\" }",
                  absl::StrCat("  users { name: \"bob\" password_hash: \"",
                               Hash("bob-pw"), "\" }\n")));
  ASSERT_EQ(::kill((*broker)->pid(), SIGHUP), 0);
  absl::StatusOr<wire::ServerMessage> ended = alice->ReceiveSkippingPings();
  ASSERT_TRUE(ended.ok()) << ended.status();
  EXPECT_EQ(ended->error().code(), wire::PERMISSION_DENIED);
  EXPECT_EQ(ended->error().subscription_id(), *news);
  EXPECT_FALSE(ended->error().fatal());
  EXPECT_TRUE(alice->Ping().ok());

  absl::StatusOr<WireClient> bob = WireClient::Connect((*broker)->tcp());
  ASSERT_TRUE(bob.ok());
  ASSERT_TRUE(Login(*bob, "bob", "bob-pw")->has_welcome());
  ASSERT_TRUE(bob->Publish("orders/1", "o").ok());
  ASSERT_TRUE(bob->Publish("news/1", "n").ok());
  absl::StatusOr<wire::ServerMessage> delivered = alice->ReceiveSkippingPings();
  ASSERT_TRUE(delivered.ok()) << delivered.status();
  EXPECT_EQ(delivered->deliver().payload(), "o");

  EXPECT_THAT((*broker)->Log(),
              HasSubstr("reloaded the configuration: 2 configured users"));

  // A configuration that does not load leaves the running one in place.
  WriteConfig("auth { users { name: \"x\" password_hash: \"plain\" } }\n");
  ASSERT_EQ(::kill((*broker)->pid(), SIGHUP), 0);
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (!absl::StrContains((*broker)->Log(), "reload failed") &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_THAT((*broker)->Log(),
              HasSubstr("reload failed, the running configuration stays: "
                        "auth: user 'x': password_hash: not a password hash"));
  absl::StatusOr<WireClient> bob_again = WireClient::Connect((*broker)->tcp());
  ASSERT_TRUE(bob_again.ok());
  EXPECT_TRUE(Login(*bob_again, "bob", "bob-pw")->has_welcome());
  EXPECT_TRUE(alice->Ping().ok());
}

std::string SecureConfigPath() {
#ifdef MANIFOLDD_SECURE_CONFIG
  return MANIFOLDD_SECURE_CONFIG;
#else
  const char* path = std::getenv("MANIFOLDD_SECURE_CONFIG");
  return path != nullptr ? path : "examples/tcp_broker/secure.textpb";
#endif
}

std::string MakeTestCertsPath() {
#ifdef MANIFOLDD_MAKE_TEST_CERTS
  return MANIFOLDD_MAKE_TEST_CERTS;
#else
  const char* path = std::getenv("MANIFOLDD_MAKE_TEST_CERTS");
  return path != nullptr ? path : "examples/tcp_broker/make-test-certs.sh";
#endif
}

#ifdef MANIFOLD_TEST_HAVE_TLS
// A native client over TLS that trusts `ca`, logged in with `options`'
// credentials (or refused: the broker's answer).
absl::StatusOr<std::unique_ptr<Client>> ConnectTlsClient(
    const RunningManifoldd& broker, const std::string& ca,
    ClientOptions options) {
  TlsClientSettings settings;
  settings.ca_file = ca;
  settings.server_name = "localhost";
  absl::StatusOr<std::shared_ptr<const TlsClientContext>> context =
      TlsClientContext::Create(settings);
  if (!context.ok()) return context.status();
  absl::StatusOr<std::unique_ptr<ByteStream>> stream =
      ConnectTls(broker.tcp_address(), *context, absl::Seconds(5));
  if (!stream.ok()) return stream.status();
  return Client::Connect(*std::move(stream), std::move(options));
}

ClientOptions Credentials(absl::string_view user, absl::string_view password,
                          absl::string_view token = "") {
  ClientOptions options;
  options.name = "secure-example-test";
  options.user = std::string(user);
  options.password = std::string(password);
  options.auth_token = std::string(token);
  return options;
}
#endif

// secure.textpb as its comments say to run it: certificates made by
// make-test-certs.sh in certs/ under manifoldd's working directory, which
// the file's relative paths are opened from.
TEST_P(ManifolddAuthTest, TheSecureExampleWorksAsItsCommentsSay) {
#ifndef MANIFOLD_TEST_HAVE_TLS
  GTEST_SKIP() << "built without OpenSSL: secure.textpb needs TLS";
#else
  absl::StatusOr<Completed> certs = testing::RunToCompletion(
      MakeTestCertsPath(), {directory_ + "/certs"}, absl::Seconds(30));
  ASSERT_TRUE(certs.ok()) << certs.status();
  ASSERT_EQ(certs->exit_code, 0) << certs->err;
  RunningManifoldd::Options options;
  options.working_directory = directory_;
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker =
      RunningManifoldd::Start(
          {"--loop=" + GetParam(), "--listen=127.0.0.1:0",
           "--config=" + std::filesystem::absolute(SecureConfigPath()).string(),
           "--nats=127.0.0.1:0", "--failed_login_delay=0s"},
          options);
  ASSERT_TRUE(broker.ok()) << broker.status();
  const std::string ca = directory_ + "/certs/ca.pem";

  absl::StatusOr<std::unique_ptr<Client>> alice = ConnectTlsClient(
      **broker, ca, Credentials("alice", "alice-example-password"));
  ASSERT_TRUE(alice.ok()) << alice.status();
  absl::StatusOr<std::unique_ptr<Client>> dashboard = ConnectTlsClient(
      **broker, ca, Credentials("", "", "example-dashboard-token-change-me"));
  ASSERT_TRUE(dashboard.ok()) << dashboard.status();
  absl::StatusOr<std::unique_ptr<Client::Subscription>> orders =
      (*dashboard)->Subscribe("orders/**");
  ASSERT_TRUE(orders.ok()) << orders.status();
  absl::StatusOr<uint64_t> denied =
      (*dashboard)->PublishConfirmed("orders/1", "x");
  EXPECT_THAT(denied.status().message(), HasSubstr("PERMISSION_DENIED"));
  absl::StatusOr<uint64_t> audit =
      (*alice)->PublishConfirmed("orders/eu/audit", "x");
  EXPECT_THAT(audit.status().message(),
              HasSubstr("permission denied: publish to 'orders/eu/audit' "
                        "(user 'alice')"));
  absl::StatusOr<uint64_t> delivered =
      (*alice)->PublishConfirmed("orders/eu/new", "o");
  ASSERT_TRUE(delivered.ok()) << delivered.status();
  EXPECT_EQ(*delivered, 1u);
  absl::StatusOr<Message> m = (*orders)->Next(absl::Seconds(5));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->payload, "o");

  absl::StatusOr<std::unique_ptr<Client>> ops = ConnectTlsClient(
      **broker, ca, Credentials("ops", "ops-example-password"));
  ASSERT_TRUE(ops.ok()) << ops.status();
  absl::StatusOr<std::unique_ptr<Client>> nobody =
      ConnectTlsClient(**broker, ca, Credentials("", ""));
  EXPECT_THAT(nobody.status().message(), HasSubstr("credentials required"));

  // Only TLS is spoken: a client in clear gets no Welcome.
  absl::StatusOr<WireClient> clear = WireClient::Connect((*broker)->tcp());
  ASSERT_TRUE(clear.ok());
  EXPECT_FALSE(Login(*clear, "alice", "alice-example-password").ok());
  EXPECT_THAT((*broker)->Log(), HasSubstr("plain text on a TLS port"));
#endif
}

TEST(ManifolddAuthConfigTest, BadAuthSettingsAreOneLineErrors) {
  const std::string directory = testing::MakeShortTempDir();
  const std::string plain = directory + "/plain.textpb";
  std::ofstream(plain)
      << "auth { users { name: \"a\" password_hash: \"secret\" } }\n";
  struct Case {
    std::vector<std::string> args;
    std::string error;
  };
  for (const Case& c : std::vector<Case>{
           {{"--user=alice"}, "manifoldd: --user needs --pass\n"},
           {{"--pass=x"}, "manifoldd: --pass needs --user\n"},
           {{"--config=" + plain},
            "manifoldd: auth: user 'a': password_hash: not a password hash: "
            "a hash starts with '$' (make one with `manifold passwd`)\n"}}) {
    std::vector<std::string> args = c.args;
    args.push_back("--listen=127.0.0.1:0");
    absl::StatusOr<Completed> run =
        testing::RunToCompletion(ManifolddPath(), args);
    ASSERT_TRUE(run.ok()) << run.status();
    EXPECT_EQ(run->exit_code, 2) << args[0];
    EXPECT_EQ(run->err, c.error);
  }
  std::filesystem::remove_all(directory);
}

}  // namespace
}  // namespace manifold
