// Routes a fixed number of messages through an in-process Broker so that
// `valgrind --tool=callgrind` can count instructions per routed message, a
// figure that does not depend on how busy the machine is.
//
//   route_instructions SCENARIO MESSAGES
//     SCENARIO: 1to1 | 1to1_1k | fanout8 | fanout64 | fanout1000 | queue8 |
//               wildcard | reqrep (a request with a fresh reply subject and
//               its reply: two publishes per "message"), each also with a
//               nats_ prefix (nats_1to1, ...):
//               the same through the NATS front end (NatsCodec on every
//               connection), and with a ws_ prefix (ws_1to1, ...) NATS
//               over WebSocket: every connection an HttpCodec upgraded at
//               /nats, the publisher sending 64 PUBs per masked message
//               (builds with the web front end only). bayeux_1to1 and
//               bayeux_fanout64 are Bayeux long-polling at /cometd: the
//               publisher POSTs 100 publishes per request, and each
//               subscriber's held /meta/connect returns what arrived and is
//               sent again (web front end only).
//
// bench/instructions.sh runs it at N and 2N messages and divides the
// difference by N, which cancels start-up costs.

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "broker/broker.h"
#include "broker/nats/nats_codec.h"
#ifdef MANIFOLD_HAVE_HTTP
#include "broker/http/http_codec.h"
#endif
#include "core/framing.h"
#include "core/manifold.pb.h"

namespace manifold {
namespace {

struct Scenario {
  int subscribers;
  bool queue_group;
  size_t payload;
  bool wildcard = false;  // 256 rotating subjects, wildcard subscriptions
  bool nats = false;
  bool websocket = false;  // NATS inside a WebSocket at /nats (nats is set)
  // Request/reply as NATS clients do it: each "message" is a request to a
  // responder with a fresh reply subject, and the responder's reply to it,
  // which the requester's wildcard inbox subscription receives.
  bool request_reply = false;
  bool bayeux = false;  // Bayeux long-polling at /cometd
};

constexpr int kWildcardSubjects = 256;

// Wildcard patterns, native spelling; subscriber i takes pattern i % 2.
constexpr absl::string_view kPatterns[] = {"bench/w/*/data", "bench/w/**"};
constexpr absl::string_view kNatsPatterns[] = {"bench.w.*.data", "bench.w.>"};

// Appends a publish of `payload` on `subject` (NATS spelling; native
// topics use '/') with `reply_to` to `out`.
void AppendPublish(bool nats, absl::string_view subject,
                   absl::string_view reply_to, absl::string_view payload,
                   std::string& out) {
  if (nats) {
    absl::StrAppend(&out, "PUB ", subject, reply_to.empty() ? "" : " ",
                    reply_to, " ", payload.size(), "\r\n", payload, "\r\n");
    return;
  }
  auto topic = [](absl::string_view s) {
    std::string t(s);
    for (char& c : t) c = c == '.' ? '/' : c;
    return t;
  };
  wire::ClientMessage publish;
  publish.mutable_publish()->set_topic(topic(subject));
  publish.mutable_publish()->set_payload(std::string(payload));
  if (!reply_to.empty()) {
    publish.mutable_publish()->set_reply_to(topic(reply_to));
  }
  AppendFrame(publish, &out);
}

// `payload` as one masked binary WebSocket message, as a client sends it.
std::string ClientMessage(absl::string_view payload) {
  std::string frame;
  frame.push_back(static_cast<char>(0x82));
  const size_t n = payload.size();
  if (n < 126) {
    frame.push_back(static_cast<char>(0x80 | n));
  } else if (n < 65536) {
    frame.push_back(static_cast<char>(0x80 | 126));
    frame.push_back(static_cast<char>(n >> 8));
    frame.push_back(static_cast<char>(n & 0xff));
  } else {
    frame.push_back(static_cast<char>(0x80 | 127));
    for (int shift = 56; shift >= 0; shift -= 8) {
      frame.push_back(static_cast<char>((n >> shift) & 0xff));
    }
  }
  const char mask[4] = {0x37, 0x5a, 0x11, 0x6c};
  frame.append(mask, 4);
  for (size_t i = 0; i < n; ++i) frame.push_back(payload[i] ^ mask[i % 4]);
  return frame;
}

constexpr absl::string_view kNatsUpgrade =
    "GET /nats HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n\r\n";

// A NATS connection, over WebSocket when `websocket`.
Connection& AcceptNats(Broker& broker, absl::Time now, bool websocket) {
#ifdef MANIFOLD_HAVE_HTTP
  if (websocket) {
    Connection& c = broker.Accept(PeerInfo{"bench"}, now,
                                  std::make_unique<HttpCodec>(HttpOptions{}));
    c.Receive(kNatsUpgrade, now);
    return c;
  }
#endif
  return broker.Accept(PeerInfo{"bench"}, now, std::make_unique<NatsCodec>());
}

// NATS protocol text for a connection made by AcceptNats(): a WebSocket
// link gets it in masked messages of at most `per_message` commands.
std::string NatsInput(bool websocket, absl::string_view text,
                      int per_message = 64) {
  if (!websocket) return std::string(text);
  // Where each command ends; a PUB's payload line belongs to its command.
  std::vector<size_t> ends;
  for (size_t at = 0; at < text.size();) {
    const size_t eol = text.find("\r\n", at);
    if (eol == absl::string_view::npos) break;
    size_t end = eol + 2;
    const absl::string_view line = text.substr(at, eol - at);
    if (absl::StartsWith(line, "PUB ")) {
      size_t size = 0;  // PUB <subject> [reply] <size>
      if (absl::SimpleAtoi(line.substr(line.rfind(' ') + 1), &size)) {
        end += size + 2;
      }
    }
    ends.push_back(end);
    at = end;
  }
  std::string out;
  size_t start = 0;
  for (size_t i = 0; i < ends.size(); i += per_message) {
    const size_t last = ends[std::min(ends.size(), i + per_message) - 1];
    out += ClientMessage(text.substr(start, last - start));
    start = last;
  }
  return out;
}

// Limits out of the way, and no timers or events: only routing counts.
BrokerOptions RoutingOptions() {
  BrokerOptions options;
  options.set_max_outbound_bytes(1 << 30);
  options.set_max_inbound_bytes(64 << 20);
  options.set_max_frame_bytes(64 << 20);
  options.set_statistics_interval_ms(0);
  options.set_keepalive_interval_ms(0);
  options.set_max_queued_events(0);
  return options;
}

int RunRequestReply(const Scenario& scenario, long messages) {
  BrokerOptions options = RoutingOptions();
  Broker broker(options);
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  auto connect = [&](absl::string_view subject) -> Connection& {
    if (scenario.nats) {
      Connection& c = AcceptNats(broker, now, scenario.websocket);
      c.Receive(NatsInput(scenario.websocket,
                          absl::StrCat("CONNECT {\"verbose\":false}\r\nSUB ",
                                       subject, " 1\r\n")),
                now);
      return c;
    }
    Connection& c = broker.Accept(PeerInfo{"bench"}, now);
    wire::ClientMessage hello;
    hello.mutable_hello()->set_protocol_version(1);
    wire::ClientMessage subscribe;
    std::string pattern(subject);
    for (char& ch : pattern) ch = ch == '.' ? '/' : ch;
    subscribe.mutable_subscribe()->set_pattern(pattern);
    c.Receive(EncodeFrame(hello) + EncodeFrame(subscribe), now);
    return c;
  };
  Connection& requester = connect("_INBOX.r.*");
  Connection& responder = connect("bench.svc");
  broker.Process(now);
  constexpr int kBatch = 1000;
  const std::string payload(scenario.payload, 'p');
  std::vector<ConnectionId> changed;
  absl::string_view chunks[64];
  auto drain = [&](Connection& c) {
    while (c.PendingOutputBytes() > 0) {
      const size_t n = c.PendingOutput(absl::MakeSpan(chunks));
      size_t written = 0;
      for (size_t i = 0; i < n; ++i) written += chunks[i].size();
      c.Consume(written);
    }
  };
  drain(requester);
  drain(responder);
  // Fresh reply subjects throughout, as real requesters use. Encoded up
  // front, always the same number (at least 64k), so the encoding costs the
  // same for any message count and cancels out of instructions.sh's figure.
  const long pool = std::max<long>(messages, 64 * kBatch);
  std::vector<std::string> requests(pool / kBatch + 1);
  std::vector<std::string> replies(requests.size());
  for (long i = 0; i < pool; ++i) {
    const std::string inbox = absl::StrCat("_INBOX.r.", i);
    AppendPublish(scenario.nats, "bench.svc", inbox, payload,
                  requests[i / kBatch]);
    AppendPublish(scenario.nats, inbox, "", payload, replies[i / kBatch]);
  }
  for (std::string& batch : requests) {
    batch = NatsInput(scenario.websocket, batch);
  }
  for (std::string& batch : replies)
    batch = NatsInput(scenario.websocket, batch);
  for (long sent = 0; sent < messages; sent += kBatch) {
    requester.Receive(requests[sent / kBatch], now);
    broker.Process(now);
    drain(responder);
    responder.Receive(replies[sent / kBatch], now);
    broker.Process(now);
    drain(requester);
    broker.TakeChanged(changed);
  }
  std::printf("routed %ld requests and replies, %llu deliveries\n", messages,
              static_cast<unsigned long long>(broker.statistics().deliveries));
  return 0;
}

#ifdef MANIFOLD_HAVE_HTTP
// A POST of `body` to `path` with `cookie`.
std::string BayeuxPost(absl::string_view path, absl::string_view body,
                       absl::string_view cookie) {
  return absl::StrCat("POST ", path, " HTTP/1.1\r\nHost: bench\r\n",
                      cookie.empty() ? "" : "Cookie: BAYEUX_BROWSER=", cookie,
                      cookie.empty() ? "" : "\r\n",
                      "Content-Type: application/json;charset=UTF-8\r\n"
                      "Content-Length: ",
                      body.size(), "\r\n\r\n", body);
}

// The string after `"key":"` in `text`, up to the next quote.
std::string Field(absl::string_view text, absl::string_view key) {
  const std::string start = absl::StrCat("\"", key, "\":\"");
  const size_t at = text.find(start);
  if (at == absl::string_view::npos) return "";
  const absl::string_view rest = text.substr(at + start.size());
  return std::string(rest.substr(0, rest.find('"')));
}

int RunBayeux(const Scenario& scenario, long messages) {
  BrokerOptions options = RoutingOptions();
  options.set_session_buffer_bytes(1 << 30);
  Broker broker(options);
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  absl::string_view chunks[64];
  uint64_t bytes = 0;
  auto take = [&](Connection& c) {
    std::string out;
    while (c.PendingOutputBytes() > 0) {
      const size_t n = c.PendingOutput(absl::MakeSpan(chunks));
      size_t written = 0;
      for (size_t i = 0; i < n; ++i) {
        out.append(chunks[i].data(), chunks[i].size());
        written += chunks[i].size();
      }
      c.Consume(written);
    }
    bytes += out.size();
    return out;
  };
  // A Bayeux client: one keep-alive connection, its clientId and cookie.
  struct Client {
    Connection* link;
    std::string id;
    std::string cookie;
    std::string connect;  // its /meta/connect request
  };
  auto handshake = [&]() {
    Client c;
    c.link = &broker.Accept(PeerInfo{"bench"}, now,
                            std::make_unique<HttpCodec>(HttpOptions{}));
    c.link->Receive(BayeuxPost("/cometd/handshake",
                               "[{\"channel\":\"/meta/handshake\",\"version\":"
                               "\"1.0\",\"supportedConnectionTypes\":["
                               "\"long-polling\"],\"id\":\"1\"}]",
                               ""),
                    now);
    broker.Process(now);
    const std::string reply = take(*c.link);
    c.id = Field(reply, "clientId");
    const size_t at = reply.find("BAYEUX_BROWSER=");
    if (at != std::string::npos) {
      c.cookie = reply.substr(at + 15, reply.find(';', at) - at - 15);
    }
    c.connect = BayeuxPost(
        "/cometd/connect",
        absl::StrCat("[{\"channel\":\"/meta/connect\",\"connectionType\":"
                     "\"long-polling\",\"id\":\"2\",\"clientId\":\"",
                     c.id, "\"}]"),
        c.cookie);
    return c;
  };
  Client publisher = handshake();
  std::vector<Client> subscribers;
  for (int i = 0; i < scenario.subscribers; ++i) {
    Client c = handshake();
    c.link->Receive(
        BayeuxPost("/cometd",
                   absl::StrCat("[{\"channel\":\"/meta/subscribe\","
                                "\"subscription\":\"/bench/topic\",\"id\":"
                                "\"3\",\"clientId\":\"",
                                c.id, "\"}]"),
                   c.cookie),
        now);
    broker.Process(now);
    take(*c.link);
    c.link->Receive(c.connect, now);  // held: nothing has arrived yet
    broker.Process(now);
    take(*c.link);
    subscribers.push_back(std::move(c));
  }
  // One batch: 100 publishes in one POST, as the load client sends them.
  constexpr int kBatch = 100;
  std::string body = "[";
  for (int i = 0; i < kBatch; ++i) {
    absl::StrAppend(
        &body, i == 0 ? "" : ",",
        "{\"channel\":\"/bench/topic\",\"data\":{\"l\":0,\"s\":", 1000000 + i,
        ",\"p\":\"", std::string(scenario.payload, 'p'), "\"},\"id\":\"",
        1000000 + i, "\",\"clientId\":\"", publisher.id, "\"}");
  }
  body += "]";
  const std::string batch = BayeuxPost("/cometd", body, publisher.cookie);
  std::vector<ConnectionId> changed;
  bytes = 0;
  for (long sent = 0; sent < messages; sent += kBatch) {
    publisher.link->Receive(batch, now);
    broker.Process(now);
    take(*publisher.link);
    for (Client& c : subscribers) {
      take(*c.link);  // the held connect's answer
      c.link->Receive(c.connect, now);
    }
    broker.Process(now);
    broker.TakeChanged(changed);
  }
  std::printf("routed %ld messages, %llu deliveries, %llu bytes out\n",
              messages,
              static_cast<unsigned long long>(broker.statistics().deliveries),
              static_cast<unsigned long long>(bytes));
  return 0;
}
#endif

int Run(const Scenario& scenario, long messages) {
  BrokerOptions options = RoutingOptions();
  Broker broker(options);
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);

  auto connect = [&]() -> Connection& {
    if (scenario.nats) {
      Connection& c = AcceptNats(broker, now, scenario.websocket);
      c.Receive(NatsInput(scenario.websocket,
                          "CONNECT {\"verbose\":false,\"pedantic\":false}\r\n"),
                now);
      return c;
    }
    Connection& c = broker.Accept(PeerInfo{"bench"}, now);
    wire::ClientMessage hello;
    hello.mutable_hello()->set_protocol_version(1);
    c.Receive(EncodeFrame(hello), now);
    return c;
  };
  auto subscribe = [&](Connection& c, int index) {
    const absl::string_view group = scenario.queue_group ? "g" : "";
    if (scenario.nats) {
      const absl::string_view subject =
          scenario.wildcard ? kNatsPatterns[index % 2] : "bench.topic";
      c.Receive(NatsInput(scenario.websocket,
                          absl::StrCat("SUB ", subject, " ", group,
                                       group.empty() ? "" : " ", "1\r\n")),
                now);
      return;
    }
    wire::ClientMessage subscribe;
    subscribe.mutable_subscribe()->set_pattern(
        std::string(scenario.wildcard ? kPatterns[index % 2] : "bench/topic"));
    subscribe.mutable_subscribe()->set_queue_group(std::string(group));
    c.Receive(EncodeFrame(subscribe), now);
  };
  if (scenario.request_reply) return RunRequestReply(scenario, messages);
#ifdef MANIFOLD_HAVE_HTTP
  if (scenario.bayeux) return RunBayeux(scenario, messages);
#endif
  Connection& publisher = connect();
  std::vector<Connection*> subscribers;
  for (int i = 0; i < scenario.subscribers; ++i) {
    Connection& c = connect();
    subscribe(c, i);
    subscribers.push_back(&c);
  }
  broker.Process(now);

  // One batch: 1000 publishes (rotating over the wildcard subjects).
  constexpr int kBatch = 1000;
  const std::string payload(scenario.payload, 'p');
  std::string batch;
  for (int i = 0; i < kBatch; ++i) {
    const int k = i % kWildcardSubjects;
    if (scenario.nats) {
      const std::string subject = scenario.wildcard
                                      ? absl::StrCat("bench.w.", k, ".data")
                                      : std::string("bench.topic");
      absl::StrAppend(&batch, "PUB ", subject, " ", payload.size(), "\r\n",
                      payload, "\r\n");
    } else {
      wire::ClientMessage publish;
      publish.mutable_publish()->set_topic(
          scenario.wildcard ? absl::StrCat("bench/w/", k, "/data")
                            : std::string("bench/topic"));
      publish.mutable_publish()->set_payload(payload);
      AppendFrame(publish, &batch);
    }
  }
  batch = NatsInput(scenario.websocket, batch);

  std::vector<ConnectionId> changed;
  absl::string_view chunks[64];
  uint64_t bytes = 0;
  auto drain = [&](Connection& c) {
    while (c.PendingOutputBytes() > 0) {
      const size_t n = c.PendingOutput(absl::MakeSpan(chunks));
      size_t written = 0;
      for (size_t i = 0; i < n; ++i) written += chunks[i].size();
      c.Consume(written);
      bytes += written;
    }
  };
  for (Connection* c : subscribers) drain(*c);
  drain(publisher);
  bytes = 0;
  for (long sent = 0; sent < messages; sent += kBatch) {
    publisher.Receive(batch, now);
    broker.Process(now);
    broker.TakeChanged(changed);
    for (Connection* c : subscribers) drain(*c);
    publisher.Consume(publisher.PendingOutputBytes());
  }
  std::printf("routed %ld messages, %llu deliveries, %llu bytes out\n",
              messages,
              static_cast<unsigned long long>(broker.statistics().deliveries),
              static_cast<unsigned long long>(bytes));
  return 0;
}

}  // namespace
}  // namespace manifold

int main(int argc, char** argv) {
  long messages = 0;
  if (argc != 3 || !absl::SimpleAtoi(argv[2], &messages) || messages <= 0) {
    std::fprintf(
        stderr,
        "usage: route_instructions [nats_|ws_|bayeux_]1to1|1to1_1k|fanout8|"
        "fanout64|fanout1000|queue8|wildcard|reqrep MESSAGES\n");
    return 2;
  }
  absl::string_view name = argv[1];
  const bool bayeux = absl::ConsumePrefix(&name, "bayeux_");
#ifndef MANIFOLD_HAVE_HTTP
  if (bayeux) {
    std::fprintf(stderr,
                 "built without the web front end: no bayeux_ scenarios\n");
    return 2;
  }
#endif
  const bool websocket = absl::ConsumePrefix(&name, "ws_");
  const bool nats = websocket || absl::ConsumePrefix(&name, "nats_");
#ifndef MANIFOLD_HAVE_HTTP
  if (websocket) {
    std::fprintf(stderr, "built without the web front end: no ws_ scenarios\n");
    return 2;
  }
#endif
  manifold::Scenario scenario;
  if (name == "1to1") {
    scenario = {1, false, 16};
  } else if (name == "1to1_1k") {
    scenario = {1, false, 1024};
  } else if (name == "fanout8") {
    scenario = {8, false, 16};
  } else if (name == "fanout64") {
    scenario = {64, false, 16};
  } else if (name == "fanout1000") {
    scenario = {1000, false, 16};
  } else if (name == "queue8") {
    scenario = {8, true, 16};
  } else if (name == "wildcard") {
    scenario = {2, false, 16, /*wildcard=*/true};
  } else if (name == "reqrep") {
    scenario = {1, false, 16};
    scenario.request_reply = true;
  } else {
    std::fprintf(stderr, "unknown scenario '%s'\n", argv[1]);
    return 2;
  }
  scenario.nats = nats;
  scenario.websocket = websocket;
  scenario.bayeux = bayeux;
  if (bayeux && (name != "1to1" && name != "fanout64")) {
    std::fprintf(stderr, "Bayeux scenarios: bayeux_1to1, bayeux_fanout64\n");
    return 2;
  }
  return manifold::Run(scenario, messages);
}
