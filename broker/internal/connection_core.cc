#include "broker/internal/connection_core.h"

#include <utility>
#include <vector>

#include "absl/base/optimization.h"
#include "absl/strings/str_cat.h"
#include "broker/internal/broker_core.h"
#include "core/status.h"

namespace manifold::internal {
namespace {

// Input a transport may push past a full inbound channel before the broker
// concludes it is ignoring WantsRead(): room for one more read.
constexpr size_t kInboundSlack = kMaxReceiveBytes;
// A frame's length prefix takes at most this many bytes.
constexpr size_t kMaxPrefixBytes = 10;

}  // namespace

ConnectionCore::ConnectionCore(BrokerCore& broker, ConnectionId id,
                               PeerInfo peer,
                               std::unique_ptr<ProtocolCodec> codec,
                               absl::Time now)
    : codec_(std::move(codec)),
      broker_(broker),
      id_(id),
      peer_(std::move(peer)),
      last_input_(now) {}

ConnectionCore::~ConnectionCore() = default;

void ConnectionCore::Receive(absl::string_view bytes, absl::Time now) {
  if (state_ == ConnectionState::kClosing || bytes.empty()) return;
  broker_.stats_.bytes_in += bytes.size();
  last_input_ = now;
  pings_outstanding_ = 0;
  const BrokerOptions& options = broker_.options();
  const size_t unread = inbound_.size() - inbound_read_;
  if (unread + bytes.size() >
      options.max_inbound_bytes() + options.max_frame_bytes() + kInboundSlack) {
    ++broker_.stats_.protocol_errors;
    broker_.BeginClose(
        *this,
        ProtocolError(wire::INPUT_OVERFLOW,
                      absl::StrCat("peer sent ", unread + bytes.size(),
                                   " unprocessed bytes; the inbound limit is ",
                                   options.max_inbound_bytes())),
        /*tell_peer=*/true);
    broker_.RunDeferred();
    broker_.FinishTurns();
    return;
  }
  DropReadInput();
  inbound_.append(bytes.data(), bytes.size());
  if (!WantsRead()) read_paused_ = true;
  broker_.MarkReady(*this);
}

bool ConnectionCore::WantsRead() const {
  // A stalled connection is not read: its peer's TCP window fills and it
  // slows down (the backpressure policy).
  if (state_ == ConnectionState::kClosing || stalled_on_ > 0) return false;
  const size_t unread = inbound_.size() - inbound_read_;
  const BrokerOptions& options = broker_.options();
  if (unread < options.max_inbound_bytes()) return true;
  // One operation larger than the inbound limit must still arrive whole.
  return awaiting_rest_of_frame_ &&
         unread < options.max_frame_bytes() + kMaxPrefixBytes;
}

void ConnectionCore::Consume(size_t n) {
  // A resumable session keeps what was written, in case the link lost it.
  if (ABSL_PREDICT_FALSE(resumable_)) broker_.RetainForReplay(*this, n);
  outbound_.Consume(n);
  output_consumed_ += n;
  broker_.stats_.bytes_out += n;
  if ((dropping_ || !waiting_publishers_.empty()) &&
      outbound_.size() < broker_.resume_outbound_bytes_) {
    broker_.OnDrained(*this);
  }
}

std::string ConnectionCore::Describe() const {
  return client_name_.empty()
             ? id_.ToString()
             : absl::StrCat(id_.ToString(), " ('", client_name_, "')");
}

std::string ConnectionCore::CopyPendingOutput() const {
  std::vector<absl::string_view> chunks(64);
  while (true) {
    const size_t n = outbound_.Peek(absl::MakeSpan(chunks));
    if (n < chunks.size()) {
      std::string all;
      all.reserve(outbound_.size());
      for (size_t k = 0; k < n; ++k)
        all.append(chunks[k].data(), chunks[k].size());
      return all;
    }
    chunks.resize(chunks.size() * 2);
  }
}

void ConnectionCore::DropReadInput() {
  // Compacting moves the unread bytes; do it only when the buffer is empty
  // (free) or when the read part dominates, so each byte moves at most once.
  if (inbound_read_ == inbound_.size()) {
    inbound_.clear();
    inbound_read_ = 0;
  } else if (inbound_read_ >= 64 * 1024 &&
             inbound_read_ * 2 >= inbound_.size()) {
    inbound_.erase(0, inbound_read_);
    inbound_read_ = 0;
  }
}

}  // namespace manifold::internal

namespace manifold {

using internal::Core;

ConnectionId Connection::id() const { return Core(*this).id_; }
const PeerInfo& Connection::peer() const { return Core(*this).peer_; }
ConnectionState Connection::state() const { return Core(*this).state_; }
const std::string& Connection::client_name() const {
  return Core(*this).client_name_;
}
const std::string& Connection::user() const { return Core(*this).user_; }
absl::string_view Connection::protocol() const {
  return Core(*this).codec_->name();
}
std::string Connection::codec_settings() const {
  return Core(*this).codec_->settings();
}
std::string Connection::Describe() const { return Core(*this).Describe(); }

void Connection::Receive(absl::string_view bytes, absl::Time now) {
  Core(*this).Receive(bytes, now);
}
bool Connection::WantsRead() const { return Core(*this).WantsRead(); }

size_t Connection::PendingOutputBytes() const {
  return Core(*this).outbound_.ready_size();
}
size_t Connection::PendingOutput(absl::Span<absl::string_view> chunks) const {
  return Core(*this).outbound_.Peek(chunks);
}
std::string Connection::CopyPendingOutput() const {
  return Core(*this).CopyPendingOutput();
}
void Connection::Consume(size_t n) { Core(*this).Consume(n); }
uint64_t Connection::output_total() const {
  const internal::ConnectionCore& c = Core(*this);
  return c.output_consumed_ + c.output_discarded_ + c.outbound_.ready_size();
}

bool Connection::ShouldClose() const {
  const internal::ConnectionCore& c = Core(*this);
  return c.state_ == ConnectionState::kClosing && c.outbound_.empty();
}
const absl::Status& Connection::close_reason() const {
  return Core(*this).close_reason_;
}

}  // namespace manifold
