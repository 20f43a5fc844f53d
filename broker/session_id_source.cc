#include "broker/session_id_source.h"

#include <array>

#include "absl/strings/escaping.h"
#include "absl/strings/string_view.h"

namespace manifold {
namespace {

// SplitMix64: a tiny generator with good statistical quality whose whole
// state is its seed. Deterministic by design; see SeededSessionIdSource.
class SplitMix64Source final : public SessionIdSource {
 public:
  explicit SplitMix64Source(uint64_t seed) : state_(seed) {}

  void Fill(absl::Span<uint8_t> out) override {
    size_t filled = 0;
    while (filled < out.size()) {
      uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      z ^= z >> 31;
      for (int k = 0; k < 8 && filled < out.size(); ++k) {
        out[filled++] = static_cast<uint8_t>(z >> (8 * k));
      }
    }
  }

 private:
  uint64_t state_;
};

}  // namespace

std::string NewSessionToken(SessionIdSource& source) {
  std::array<uint8_t, kSessionTokenBytes> bytes;
  source.Fill(absl::MakeSpan(bytes));
  return absl::BytesToHexString(absl::string_view(
      reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

std::unique_ptr<SessionIdSource> SeededSessionIdSource(uint64_t seed) {
  return std::make_unique<SplitMix64Source>(seed);
}

}  // namespace manifold
