// The custom_event_loop example, run as a process and used like any broker:
// it must welcome clients, route messages (large ones too, through partial
// writes), report events, and say Goodbye on SIGTERM.

#include <signal.h>

#include <memory>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "tests/testing/program_path.h"
#include "tests/transports/testing/wire_client.h"
#include "transports/sockets/endpoint.h"

#ifndef CUSTOM_EVENT_LOOP_PATH
#define CUSTOM_EVENT_LOOP_PATH nullptr
#endif

namespace manifold {
namespace {

using testing::ChildProcess;
using testing::WireClient;

TEST(CustomEventLoopTest, ServesClientsAndShutsDownGracefully) {
  const std::string program =
      testing::ProgramPath("CUSTOM_EVENT_LOOP", CUSTOM_EVENT_LOOP_PATH);
  ASSERT_FALSE(program.empty()) << "the build did not say where the example is";
  absl::StatusOr<std::unique_ptr<ChildProcess>> process =
      ChildProcess::Start(program, {"0"});
  ASSERT_TRUE(process.ok()) << process.status();
  ChildProcess& example = **process;
  absl::StatusOr<std::string> line = example.ReadLine(absl::Seconds(10));
  ASSERT_TRUE(line.ok()) << line.status();
  absl::string_view address = *line;
  ASSERT_TRUE(absl::ConsumePrefix(&address, "custom_event_loop listening on "))
      << *line;
  absl::StatusOr<Endpoint> endpoint = ParseTcpEndpoint(address);
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();

  // A subscriber with a tiny receive window: the big message below reaches
  // it through many partial writes.
  absl::StatusOr<WireClient> reader =
      WireClient::Connect(*endpoint, /*receive_buffer_bytes=*/4096);
  ASSERT_TRUE(reader.ok()) << reader.status();
  ASSERT_TRUE(reader->Hello("reader").ok());
  EXPECT_EQ(example.ReadLine(absl::Seconds(5)).value_or(""),
            "reader connected");
  ASSERT_TRUE(reader->Subscribe("news/*").ok());

  absl::StatusOr<WireClient> writer = WireClient::Connect(*endpoint);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE(writer->Hello("writer").ok());
  EXPECT_EQ(example.ReadLine(absl::Seconds(5)).value_or(""),
            "writer connected");
  const std::string big = testing::PatternPayload(600 << 10, 9);
  absl::StatusOr<wire::ServerMessage> ack =
      writer->PublishAcked("news/big", big);
  ASSERT_TRUE(ack.ok()) << ack.status();
  EXPECT_EQ(ack->ack().delivered(), 1u);
  ASSERT_TRUE(writer->Publish("news/small", "hi").ok());

  absl::StatusOr<wire::ServerMessage> first =
      reader->Receive(absl::Seconds(10));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->deliver().payload() == big);
  absl::StatusOr<wire::ServerMessage> second = reader->Receive();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->deliver().payload(), "hi");

  writer->Close();
  EXPECT_EQ(example.ReadLine(absl::Seconds(5)).value_or(""),
            "writer left: peer closed the connection");

  ASSERT_TRUE(example.Signal(SIGTERM).ok());
  absl::StatusOr<std::vector<wire::ServerMessage>> last =
      reader->ReadUntilClosed();
  ASSERT_TRUE(last.ok()) << last.status();
  ASSERT_EQ(last->size(), 1u);
  EXPECT_EQ(last->front().goodbye().code(), wire::SHUTTING_DOWN);
  absl::StatusOr<int> exit_code = example.Wait(absl::Seconds(10));
  ASSERT_TRUE(exit_code.ok()) << exit_code.status();
  EXPECT_EQ(*exit_code, 0) << example.Stderr();
}

}  // namespace
}  // namespace manifold
