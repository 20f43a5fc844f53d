// File: client/cli/stream_format.h
// -----------------------------------------------------------------------------
//
// How `manifold stream` shows streams: a table or "key value" lines for
// people, one JSON object per stream per line with --json. Times are RFC
// 3339 in UTC to the millisecond (FormatTimestamp in format.h); in JSON, a time
// the stream does not have (it is empty) is null, and every key is always
// present.
//
// Example:
//
//   FormatStreamList(list, /*json=*/false);
//   // NAME    STORAGE  TOPICS     MESSAGES  BYTES  FIRST_SEQ  LAST_SEQ
//   // orders  file     orders/**         3     42          1         3
//   FormatStreamInfo(info, /*json=*/true);
//   // {"name":"orders","storage":"file","topics":["orders/**"],...}

#ifndef MANIFOLD_CLIENT_CLI_STREAM_FORMAT_H_
#define MANIFOLD_CLIENT_CLI_STREAM_FORMAT_H_

#include <string>

#include "core/manifold.pb.h"

namespace manifold::cli {

// "file", "memory", or "STORAGE_<n>" for a kind this build does not know.
std::string StorageName(wire::StorageKind storage);

// One stream: "key value" lines for people (aligned, no trailing newline):
// name, storage, topics, the limits ("none" for 0), messages, bytes,
// first/last seq and time, expired, then one "consumer" line per durable
// consumer (its name, pattern, ack floor, highest delivered, in flight,
// members). For scripts, one JSON object:
//   {"name":..,"storage":..,"topics":[..],"max_msgs":N,
//    "max_msgs_per_topic":N,"max_bytes":N,
//    "max_age_ms":N,"messages":N,"bytes":N,"first_seq":N,"last_seq":N,
//    "first_time":"..."|null,"last_time":"..."|null,"expired":N,
//    "consumers":[{"name":..,"pattern":..,"ack_wait_ms":N,
//                  "max_in_flight":N,"ack_floor":N,"delivered_high":N,
//                  "in_flight":N,"members":N},...]}
std::string FormatStreamInfo(const wire::StreamInfo& info, bool json);

// Every stream: a table for people (a header line, then one line per
// stream; "no streams" when there is none), or one JSON object per stream
// per line as FormatStreamInfo (nothing when there is none). No trailing
// newline.
std::string FormatStreamList(const wire::StreamList& list, bool json);

}  // namespace manifold::cli

#endif  // MANIFOLD_CLIENT_CLI_STREAM_FORMAT_H_
