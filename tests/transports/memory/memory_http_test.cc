// The web front end on the in-process transport: MemoryBroker accepts a link
// with HttpCodec, and HTTP requests and a Server-Sent Events stream work
// beside a native in-process client, as over sockets.
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "broker/http/http_codec.h"
#include "core/framing.h"
#include "core/manifold.pb.h"
#include "gtest/gtest.h"
#include "transports/memory/memory_broker.h"

namespace manifold {
namespace {

// Reads from `link` until what arrived contains `text`, or 5 s pass.
std::string ReadUntil(MemoryLink& link, absl::string_view text) {
  std::string got;
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (!absl::StrContains(got, text) && absl::Now() < deadline) {
    absl::StatusOr<std::string> bytes = link.Read(deadline);
    if (!bytes.ok()) break;
    got += *bytes;
  }
  return got;
}

TEST(MemoryHttpTest, RequestsAndEventStreamsWorkOverAMemoryLink) {
  MemoryBroker broker;
  std::unique_ptr<MemoryLink> sse =
      broker.Connect("page", std::make_unique<HttpCodec>());
  ASSERT_TRUE(sse->Write("GET /sse?topic=news/* HTTP/1.1\r\n\r\n").ok());
  EXPECT_TRUE(absl::StrContains(ReadUntil(*sse, "retry:"),
                                "Content-Type: text/event-stream"));

  std::unique_ptr<MemoryLink> rest =
      broker.Connect("curl", std::make_unique<HttpCodec>());
  ASSERT_TRUE(rest->Write("POST /pub/news/a HTTP/1.1\r\nContent-Length: 5\r\n"
                          "\r\nhello")
                  .ok());
  EXPECT_TRUE(absl::StrContains(ReadUntil(*rest, "}"), "{\"delivered\":1}"));
  EXPECT_TRUE(
      absl::StrContains(ReadUntil(*sse, "data: hello"), "event: news/a"));

  // A native in-process client publishes to the same stream.
  std::unique_ptr<MemoryLink> native = broker.Connect("native");
  wire::ClientMessage hello;
  hello.mutable_hello()->set_protocol_version(1);
  wire::ClientMessage publish;
  publish.mutable_publish()->set_topic("news/b");
  publish.mutable_publish()->set_payload("from native");
  ASSERT_TRUE(native->Write(EncodeFrame(hello) + EncodeFrame(publish)).ok());
  EXPECT_TRUE(absl::StrContains(ReadUntil(*sse, "from native"), "id: 2"));
}

}  // namespace
}  // namespace manifold
