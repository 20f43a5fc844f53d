// File: core/nats/writer.h
// -----------------------------------------------------------------------------
//
// Encoders for what a NATS server sends: INFO, MSG/HMSG and their header
// blocks, +OK, -ERR, PING and PONG. The inverse of core/nats/parser.h, and,
// like it, free of I/O and state.
//
// A message to a subscriber is "MSG <subject> <sid> [reply-to] <#bytes>\r\n
// <payload>\r\n" (or HMSG with a header block). Everything but the sid is the
// same for every subscriber, so a message splits in two: the shared part,
// encoded once (the subject, then a MessageTail), and the per-subscriber sid,
// spliced in after the subject.
//
// Example:
//
//   std::string out;
//   ServerInfo info;
//   info.server_id = "edge-1";
//   info.max_payload = 1 << 20;
//   AppendInfo(info, out);          // INFO {"server_id":"edge-1",...} \r\n
//   AppendErr(kInvalidSubject, out);  // -ERR 'Invalid Subject'\r\n

#ifndef MANIFOLD_CORE_NATS_WRITER_H_
#define MANIFOLD_CORE_NATS_WRITER_H_

#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/nats/parser.h"

namespace manifold::nats {

inline constexpr absl::string_view kOk = "+OK\r\n";
inline constexpr absl::string_view kPing = "PING\r\n";
inline constexpr absl::string_view kPong = "PONG\r\n";

// What a server says about itself in INFO.
struct ServerInfo {
  std::string server_id;
  std::string server_name;
  std::string version;
  // Where clients connected; omitted when empty / 0.
  std::string host;
  int port = 0;
  bool headers = true;
  bool auth_required = false;
  // The client must start TLS after this INFO (NATS's upgrade).
  bool tls_required = false;
  uint64_t max_payload = kDefaultMaxPayloadBytes;
  uint64_t client_id = 0;
  // The client's address as the server sees it; omitted when empty.
  std::string client_ip;
};

// Appends "INFO <json> \r\n" (with the space nats-server writes before the
// line end). Strings are JSON-escaped.
void AppendInfo(const ServerInfo& info, std::string& out);

// Appends "-ERR '<text>'\r\n". `text` is sanitized (SanitizeErrorText).
void AppendErr(absl::string_view text, std::string& out);

// Appends `s` as a JSON string literal, quotes included.
void AppendJsonString(absl::string_view s, std::string& out);

// True if `headers` holds a Status header that the status line can carry
// (exactly three digits).
template <typename Headers>
bool HasStatusLine(const Headers& headers) {
  for (const auto& h : headers) {
    if (h.key == kStatusHeader) {
      return h.value.size() == 3 && h.value[0] >= '0' && h.value[0] <= '9' &&
             h.value[1] >= '0' && h.value[1] <= '9' && h.value[2] >= '0' &&
             h.value[2] <= '9';
    }
  }
  return false;
}

// Appends the header block for `headers` (elements with `key` and `value`
// string_view members): "NATS/1.0[ <status>[ <description>]]\r\n", one
// "<key>: <value>\r\n" line per header, then "\r\n". The first Status header,
// when it is three digits, goes on the status line with the first Description
// header; neither is repeated as a line. The inverse of ParseHeaderBlock.
template <typename Headers>
void AppendHeaderBlock(const Headers& headers, std::string& out) {
  out.append("NATS/1.0");
  const bool status_line = HasStatusLine(headers);
  bool status_done = false;
  bool description_done = false;
  if (status_line) {
    for (const auto& h : headers) {
      if (h.key == kStatusHeader && !status_done) {
        absl::StrAppend(&out, " ", h.value);
        status_done = true;
      }
    }
    for (const auto& h : headers) {
      if (h.key == kDescriptionHeader && !description_done) {
        absl::StrAppend(&out, " ", h.value);
        description_done = true;
      }
    }
  }
  out.append("\r\n");
  status_done = description_done = !status_line;
  for (const auto& h : headers) {
    if (!status_done && h.key == kStatusHeader) {
      status_done = true;
      continue;
    }
    if (!description_done && h.key == kDescriptionHeader) {
      description_done = true;
      continue;
    }
    absl::StrAppend(&out, h.key, ": ", h.value, "\r\n");
  }
  out.append("\r\n");
}

// The part of a MSG or HMSG after the sid, with its leading space:
//   MSG:  " [<reply>] <#bytes>\r\n<payload>\r\n"
//   HMSG: " [<reply>] <#header bytes> <#total bytes>\r\n<headers><payload>\r\n"
// Views; the caller keeps what they point to alive.
struct MessageTail {
  absl::string_view reply_subject;  // NATS form; empty when none
  bool hmsg = false;                // HMSG (with `header_block`) or MSG
  absl::string_view header_block;   // complete block (AppendHeaderBlock)
  absl::string_view payload;

  // Bytes Write() writes.
  size_t size() const;
  // Writes the tail at `out` (which has room for size() bytes) and returns
  // the end of what it wrote.
  char* Write(char* out) const;
  // Appends the tail to `out`.
  void AppendTo(std::string& out) const;
};

}  // namespace manifold::nats

#endif  // MANIFOLD_CORE_NATS_WRITER_H_
