#include "transports/driver/os_session_id_source.h"

#include <sys/random.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace manifold {
namespace {

class GetrandomSource final : public SessionIdSource {
 public:
  void Fill(absl::Span<uint8_t> out) override {
    size_t filled = 0;
    while (filled < out.size()) {
      const ssize_t n =
          ::getrandom(out.data() + filled, out.size() - filled, 0);
      if (n > 0) {
        filled += static_cast<size_t>(n);
      } else if (n < 0 && errno != EINTR) {
        std::fprintf(stderr, "getrandom failed: %s\n", std::strerror(errno));
        std::abort();
      }
    }
  }
};

}  // namespace

std::unique_ptr<SessionIdSource> OsSessionIdSource() {
  return std::make_unique<GetrandomSource>();
}

}  // namespace manifold
