// File: tests/broker/http/http_test_link.h
// -----------------------------------------------------------------------------
//
// Test helpers for the web front end against a real Broker: one HTTP
// connection whose transport the test plays (HttpLink), requests written by
// hand, and WebSocket frames as a client writes them and as the server's are
// read back; and a memory stream, for the tests of resuming from one.
//
// Example:
//
//   BrokerHarness h;
//   HttpLink link(h);
//   link.Send(Post("/pub/a", "hi"));
//   EXPECT_THAT(link.Take(), HasSubstr("{\"delivered\":0}"));

#ifndef MANIFOLD_TESTS_BROKER_HTTP_HTTP_TEST_LINK_H_
#define MANIFOLD_TESTS_BROKER_HTTP_HTTP_TEST_LINK_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "broker/http/http_codec.h"
#include "broker/sys_topics.h"
#include "gtest/gtest.h"
#include "tests/testing/broker_harness.h"

namespace manifold::testing {

// One HTTP connection; the test plays its transport.
class HttpLink {
 public:
  HttpLink(BrokerHarness& h, HttpOptions options = HttpOptions()) : h_(h) {
    id_ = h.broker()
              .Accept(PeerInfo{"127.0.0.1:1"}, h.now(),
                      std::make_unique<HttpCodec>(std::move(options)))
              .id();
  }
  // Sends bytes, `chunk` at a time, letting the broker work after each.
  void Send(absl::string_view bytes, size_t chunk = 1 << 20) {
    for (size_t at = 0; at < bytes.size(); at += chunk) {
      Connection* c = h_.broker().FindConnection(id_);
      ASSERT_NE(c, nullptr) << "connection closed";
      c->Receive(bytes.substr(at, chunk), h_.now());
      h_.Pump();
    }
  }
  // Everything the broker wrote since the last call.
  std::string Take() {
    h_.Pump();
    Connection* c = h_.broker().FindConnection(id_);
    if (c == nullptr) return "";
    std::string out = c->CopyPendingOutput();
    c->Consume(out.size());
    if (c->ShouldClose()) {
      h_.broker().Close(id_, "done", h_.now());
      closed_ = true;
    }
    return out;
  }
  bool closed() {
    Take();
    return closed_ || h_.broker().FindConnection(id_) == nullptr;
  }
  Connection* connection() { return h_.broker().FindConnection(id_); }

 private:
  BrokerHarness& h_;
  ConnectionId id_;
  bool closed_ = false;
};

inline std::string Post(absl::string_view path, absl::string_view body,
                        absl::string_view extra = "") {
  return absl::StrCat("POST ", path, " HTTP/1.1\r\nHost: t\r\n", extra,
                      "Content-Length: ", body.size(), "\r\n\r\n", body);
}
inline std::string Get(absl::string_view path, absl::string_view extra = "") {
  return absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: t\r\n", extra, "\r\n");
}
inline std::vector<int> Statuses(absl::string_view text) {
  std::vector<int> out;
  size_t at = 0;
  while ((at = text.find("HTTP/1.1 ", at)) != absl::string_view::npos) {
    out.push_back(std::stoi(std::string(text.substr(at + 9, 3))));
    at += 9;
  }
  return out;
}

// A client WebSocket frame (masked, as RFC 6455 requires of clients).
inline std::string ClientFrame(uint8_t opcode, absl::string_view payload,
                               bool fin = true) {
  std::string f;
  f.push_back(static_cast<char>((fin ? 0x80 : 0) | opcode));
  const size_t n = payload.size();
  if (n < 126) {
    f.push_back(static_cast<char>(0x80 | n));
  } else {
    f.push_back(static_cast<char>(0x80 | 126));
    f.push_back(static_cast<char>(n >> 8));
    f.push_back(static_cast<char>(n & 0xff));
  }
  const char mask[4] = {0x12, 0x34, 0x56, 0x78};
  f.append(mask, 4);
  for (size_t i = 0; i < n; ++i) f.push_back(payload[i] ^ mask[i % 4]);
  return f;
}

// Server frames (unmasked) -> their payloads; `opcodes` gets each opcode.
inline std::vector<std::string> ServerPayloads(
    absl::string_view bytes, std::vector<int>* opcodes = nullptr) {
  std::vector<std::string> out;
  while (bytes.size() >= 2) {
    const int opcode = bytes[0] & 0x0f;
    size_t n = static_cast<uint8_t>(bytes[1]) & 0x7f;
    size_t header = 2;
    if (n == 126) {
      n = (static_cast<uint8_t>(bytes[2]) << 8) |
          static_cast<uint8_t>(bytes[3]);
      header = 4;
    } else if (n == 127) {
      n = 0;
      for (int i = 2; i < 10; ++i) n = n << 8 | static_cast<uint8_t>(bytes[i]);
      header = 10;
    }
    if (bytes.size() < header + n) break;
    out.emplace_back(bytes.substr(header, n));
    if (opcodes != nullptr) opcodes->push_back(opcode);
    bytes.remove_prefix(header + n);
  }
  return out;
}

inline std::string Upgrade(absl::string_view path, absl::string_view protocol) {
  return Get(path, absl::StrCat(
                       "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                       "Sec-WebSocket-Version: 13\r\n",
                       protocol.empty()
                           ? ""
                           : absl::StrCat("Sec-WebSocket-Protocol: ", protocol,
                                          "\r\n")));
}

// Adds memory stream `name` over `pattern` through `admin`'s request to
// $sys/streams/add, expecting it to succeed.
inline void AddMemoryStream(TestClient& admin, absl::string_view name,
                            absl::string_view pattern) {
  wire::StreamConfig config;
  config.set_name(std::string(name));
  config.add_topics(std::string(pattern));
  config.set_storage(wire::STORAGE_MEMORY);
  admin.Request(sys_topics::kStreamAdd, config.SerializeAsString());
  wire::ServerMessage added = admin.Next();
  ASSERT_EQ(added.response().status(), wire::REQUEST_OK) << added.DebugString();
}

}  // namespace manifold::testing

#endif  // MANIFOLD_TESTS_BROKER_HTTP_HTTP_TEST_LINK_H_
