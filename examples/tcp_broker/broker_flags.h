// File: examples/tcp_broker/broker_flags.h
// -----------------------------------------------------------------------------
//
// One command-line flag per BrokerOptions limit, for manifoldd and any other
// program that wants them. Each flag's default is BrokerOptions' own default,
// so a broker started without flags behaves like `Broker broker;`.
//
//   --max_connections=1000 --max_payload_bytes=65536
//   --slow_consumer_policy=drop --keepalive_interval=15s
//
// Example:
//
//   absl::ParseCommandLine(argc, argv);
//   absl::StatusOr<BrokerOptions> options = BrokerOptionsFromFlags();
//   if (!options.ok()) Fail(options.status());   // e.g. "--max_connections
//                                                //  must be at least 1"

#ifndef MANIFOLD_EXAMPLES_TCP_BROKER_BROKER_FLAGS_H_
#define MANIFOLD_EXAMPLES_TCP_BROKER_BROKER_FLAGS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "broker/options.h"

namespace manifold {

// Returns BrokerOptions built from the flags, or INVALID_ARGUMENT naming the
// first flag whose value makes no sense (a zero limit, a negative duration).
absl::StatusOr<BrokerOptions> BrokerOptionsFromFlags();

// Abseil flag support for --slow_consumer_policy=disconnect|drop.
bool AbslParseFlag(absl::string_view text, SlowConsumerPolicy* policy,
                   std::string* error);
std::string AbslUnparseFlag(SlowConsumerPolicy policy);

}  // namespace manifold

#endif  // MANIFOLD_EXAMPLES_TCP_BROKER_BROKER_FLAGS_H_
