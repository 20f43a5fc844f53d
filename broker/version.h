// File: broker/version.h
// -----------------------------------------------------------------------------
//
// The broker's version and the native protocol version it speaks.
//
//   std::cout << "Manifold " << kBrokerVersion << "\n";

#ifndef MANIFOLD_BROKER_VERSION_H_
#define MANIFOLD_BROKER_VERSION_H_

#include <cstdint>

#include "absl/strings/string_view.h"

namespace manifold {

// The broker's version, sent to clients that ask (e.g. in NATS INFO).
inline constexpr absl::string_view kBrokerVersion = "0.1.0";
// The native protocol version this broker speaks (wire::PROTOCOL_VERSION_1).
inline constexpr uint32_t kProtocolVersion = 1;

}  // namespace manifold

#endif  // MANIFOLD_BROKER_VERSION_H_
