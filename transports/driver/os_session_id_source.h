// File: transports/driver/os_session_id_source.h
// -----------------------------------------------------------------------------
//
// The session token source for brokers others can reach: bytes from the
// operating system's random source (getrandom(2)), so that nobody can guess
// another client's resume token. The Broker itself draws no randomness
// (broker/session_id_source.h); BrokerDriver hands it one of these.
//
// Example:
//
//   Broker broker(options, OsSessionIdSource());

#ifndef MANIFOLD_TRANSPORTS_DRIVER_OS_SESSION_ID_SOURCE_H_
#define MANIFOLD_TRANSPORTS_DRIVER_OS_SESSION_ID_SOURCE_H_

#include <memory>

#include "broker/session_id_source.h"

namespace manifold {

// Returns a source whose Fill() reads getrandom(2), retrying when
// interrupted. A failing kernel random source leaves nothing safe to do:
// Fill() aborts the process rather than hand out guessable tokens.
std::unique_ptr<SessionIdSource> OsSessionIdSource();

}  // namespace manifold

#endif  // MANIFOLD_TRANSPORTS_DRIVER_OS_SESSION_ID_SOURCE_H_
