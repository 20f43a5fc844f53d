#include "broker/transcript/recorded_session_ids.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace manifold {
namespace {

class RecordingSource final : public SessionIdSource {
 public:
  RecordingSource(std::unique_ptr<SessionIdSource> live,
                  std::function<void(absl::Span<const uint8_t>)> on_draw)
      : live_(std::move(live)), on_draw_(std::move(on_draw)) {}

  void Fill(absl::Span<uint8_t> out) override {
    live_->Fill(out);
    on_draw_(out);
  }

 private:
  std::unique_ptr<SessionIdSource> live_;
  std::function<void(absl::Span<const uint8_t>)> on_draw_;
};

bool IsHex(absl::string_view text) {
  return text.size() % 2 == 0 &&
         std::all_of(text.begin(), text.end(),
                     [](char c) { return absl::ascii_isxdigit(c); });
}

}  // namespace

std::unique_ptr<SessionIdSource> RecordSessionIds(
    std::unique_ptr<SessionIdSource> live,
    std::function<void(absl::Span<const uint8_t>)> on_draw) {
  return std::make_unique<RecordingSource>(std::move(live), std::move(on_draw));
}

ReplayedSessionIds::ReplayedSessionIds(
    const google::protobuf::RepeatedPtrField<std::string>& recorded,
    uint64_t seed)
    : recorded_(recorded.begin(), recorded.end()),
      seeded_(SeededSessionIdSource(seed)) {}

absl::Status ReplayedSessionIds::Check() const {
  for (size_t i = 0; i < recorded_.size(); ++i) {
    if (!IsHex(recorded_[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("session_ids[", i, "] \"", recorded_[i],
                       "\" is not hexadecimal bytes"));
    }
  }
  return absl::OkStatus();
}

void ReplayedSessionIds::Fill(absl::Span<uint8_t> out) {
  if (next_ >= recorded_.size()) {
    seeded_->Fill(out);
    return;
  }
  const size_t index = next_++;
  const std::string bytes = absl::HexStringToBytes(recorded_[index]);
  if (bytes.size() != out.size()) {
    if (divergence_.empty()) {
      divergence_ = absl::StrCat("the broker drew ", out.size(),
                                 " bytes of session id where the recording "
                                 "has ",
                                 bytes.size(), " (session_ids[", index, "])");
    }
    seeded_->Fill(out);
    return;
  }
  std::copy(bytes.begin(), bytes.end(), out.begin());
}

}  // namespace manifold
