// File: client/cli/format.h
// -----------------------------------------------------------------------------
//
// How `manifold` shows what it receives: one line per message for people, or
// one JSON object per line with --json. Payloads that are not UTF-8 are
// escaped for people and base64-encoded (under "payload_base64") in JSON.
//
// Example:
//
//   FormatMessage(m, /*json=*/false);  // [room/1] hello
//   FormatMessage(m, /*json=*/true);   // {"topic":"room/1","payload":"hello"}

#ifndef MANIFOLD_CLIENT_CLI_FORMAT_H_
#define MANIFOLD_CLIENT_CLI_FORMAT_H_

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/message.h"
#include "core/manifold.pb.h"
#include "google/protobuf/message.h"

namespace manifold::cli {

// `bytes` on one line: control characters and bytes that are not UTF-8 are
// shown as C escapes (\n, \x01).
std::string Printable(absl::string_view bytes);

// Headers as a JSON object of arrays: {"Trace-Id":["abc"]}.
std::string HeadersJson(const Headers& headers);

// A message received on a subscription (or a reply).
//   people: [room/1] hello      [room/1 Trace-Id=abc reply_to=inbox/7] hello
//   JSON:   {"topic":"room/1","payload":"hello","headers":{...},...}
// A message from a durable stream (Message::stream_seq != 0) also shows its
// sequence and when the broker stored it (FormatTimestamp):
//   people: [orders/1 seq=5 time=2026-12-03T13:25:00.123Z] hello
//   JSON:   {"topic":"orders/1","seq":5,"time":"2026-12-03T13:25:00.123Z",...}
std::string FormatMessage(const Message& message, bool json);

// `time` in RFC 3339, in UTC, to the millisecond:
// "2026-12-03T13:25:00.123Z".
std::string FormatTimestamp(absl::Time time);

// A broker event received on `topic`:
//   people: $sys/connection/added connection_added session_id=3 ...
//   JSON:   {"topic":"$sys/...","event":"connection_added","session_id":3,...}
std::string FormatEvent(absl::string_view topic, const wire::BrokerEvent& event,
                        bool json);

// The broker's statistics: one "name value" line per counter for people
// (aligned, no trailing newline), one JSON object for scripts.
std::string FormatStatistics(const wire::Statistics& stats, bool json);

// Every field of `message` (a flat message: scalars, strings, enums) as
// name=value pairs separated by spaces.
std::string FieldsText(const google::protobuf::Message& message);

}  // namespace manifold::cli

#endif  // MANIFOLD_CLIENT_CLI_FORMAT_H_
