// File: broker/options.h
// -----------------------------------------------------------------------------
//
// Everything a Broker can be told: limits, timeouts, policies. The settings
// are the protobuf message `BrokerOptions`, declared (with each default, help
// line and least value) in broker/options.proto, which is their only
// description: manifoldd's flags, --help and configuration file and the
// transcripts' `broker { ... }` block are all derived from it.
//
// Example:
//
//   BrokerOptions options;                       // every field at its default
//   options.set_server_name("edge-1");
//   options.set_max_payload_bytes(64 * 1024);
//   options.set_slow_consumer_policy(BrokerOptions::DROP);
//   Broker broker(options);
//
// Durations are whole milliseconds in `_ms` fields:
// absl::Milliseconds(options.keepalive_interval_ms()).

#ifndef MANIFOLD_BROKER_OPTIONS_H_
#define MANIFOLD_BROKER_OPTIONS_H_

#include "broker/options.pb.h"  // IWYU pragma: export

#endif  // MANIFOLD_BROKER_OPTIONS_H_
