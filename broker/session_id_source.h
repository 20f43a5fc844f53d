// File: broker/session_id_source.h
// -----------------------------------------------------------------------------
//
// Where the broker's session tokens come from. A session that outlives its
// links (a resumable native session, a Bayeux client) is named by a token:
// whoever presents it takes the session over, so it must be unguessable. The
// Broker draws no randomness of its own, so the embedder hands it a source
// of unpredictable bytes; manifoldd reads the operating system's
// (transports/driver/os_session_id_source.h). Without one, the Broker uses
// SeededSessionIdSource(options.session_id_seed()): the same tokens every
// run, which is what tests and transcripts want and what a broker others can
// reach must not use.
//
// Example:
//
//   class MyRandom : public SessionIdSource {
//     void Fill(absl::Span<uint8_t> out) override { MyCsprng(out); }
//   };
//   Broker broker(options, std::make_unique<MyRandom>());
//   std::string token = NewSessionToken(source);   // 40 hex digits

#ifndef MANIFOLD_BROKER_SESSION_ID_SOURCE_H_
#define MANIFOLD_BROKER_SESSION_ID_SOURCE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/types/span.h"

namespace manifold {

class SessionIdSource {
 public:
  virtual ~SessionIdSource() = default;
  // Fills `out` with bytes nobody can predict (for a seeded source: bytes
  // that follow from its seed).
  virtual void Fill(absl::Span<uint8_t> out) = 0;
};

// Bytes in a session token; it is written as twice as many hex digits.
inline constexpr size_t kSessionTokenBytes = 20;

// Returns a new token from `source`: kSessionTokenBytes bytes as lowercase
// hexadecimal (40 characters).
std::string NewSessionToken(SessionIdSource& source);

// A deterministic source: the same seed gives the same bytes, in the same
// order, on every machine. For tests and transcripts only.
std::unique_ptr<SessionIdSource> SeededSessionIdSource(uint64_t seed);

}  // namespace manifold

#endif  // MANIFOLD_BROKER_SESSION_ID_SOURCE_H_
