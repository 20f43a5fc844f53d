// File: tests/transports/testing/scripted_links.h
// -----------------------------------------------------------------------------
//
// For tests of the BrokerDriver without an event loop: the adapter side of
// its links (LinkIo), scripted by the test. It records what the driver
// writes (kImmediate) or submits (kSubmitted), which links it pauses or
// resumes reading and which it closes; the test limits how much a write
// takes, or makes writes fail.
//
//   testing::ScriptedLinks links;                       // or kSubmitted
//   ConnectionId id = driver.Open(links, PeerInfo{"peer"});
//   driver.OnReceived(id, HelloFrame());
//   driver.RunTurn();
//   std::vector<wire::ServerMessage> got = links.Messages(id);
//   links.budget = 10;                                   // a slow socket
//
// Thread safety: none; use from the driver's thread.

#ifndef MANIFOLD_TESTS_TRANSPORTS_TESTING_SCRIPTED_LINKS_H_
#define MANIFOLD_TESTS_TRANSPORTS_TESTING_SCRIPTED_LINKS_H_

#include <cstddef>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/manifold.pb.h"
#include "transports/driver/broker_driver.h"

namespace manifold::testing {

class ScriptedLinks : public LinkIo {
 public:
  explicit ScriptedLinks(WriteStyle style = WriteStyle::kImmediate)
      : style_(style) {}

  WriteStyle write_style() const override { return style_; }
  // Appends to written[id] what per_write and budget allow; returns
  // fail_writes instead when it is not OK.
  absl::StatusOr<size_t> WriteSome(
      ConnectionId id, absl::Span<const absl::string_view> chunks) override;
  // Appends `bytes` to submitted[id]; the test completes it with
  // BrokerDriver::OnWriteDone.
  void StartWrite(ConnectionId id, absl::string_view bytes) override;
  void SetReading(ConnectionId id, bool reading) override;
  void Close(ConnectionId id) override;

  // The whole native frames written to `id` so far.
  std::vector<wire::ServerMessage> Messages(ConnectionId id);
  // The whole native frames in `bytes`.
  static std::vector<wire::ServerMessage> Decode(absl::string_view bytes);

  // kImmediate: most bytes taken by one WriteSome(), and in total before
  // the link reports would-block.
  size_t per_write = std::numeric_limits<size_t>::max();
  size_t budget = std::numeric_limits<size_t>::max();
  absl::Status fail_writes;

  std::map<ConnectionId, std::string> written;
  std::map<ConnectionId, std::vector<std::string>> submitted;
  std::vector<std::pair<ConnectionId, bool>> reading_changes;
  std::set<ConnectionId> closed;

 private:
  const WriteStyle style_;
};

}  // namespace manifold::testing

#endif  // MANIFOLD_TESTS_TRANSPORTS_TESTING_SCRIPTED_LINKS_H_
