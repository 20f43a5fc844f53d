#include "core/nats/writer.h"

#include <cstring>

#include "core/nats/errors.h"

namespace manifold::nats {

void AppendJsonString(absl::string_view s, std::string& out) {
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      default:
        if (c < 0x20) {
          absl::StrAppend(&out, "\\u00", absl::Hex(c, absl::kZeroPad2));
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

void AppendInfo(const ServerInfo& info, std::string& out) {
  out.append("INFO {\"server_id\":");
  AppendJsonString(info.server_id, out);
  out.append(",\"server_name\":");
  AppendJsonString(info.server_name, out);
  out.append(",\"version\":");
  AppendJsonString(info.version, out);
  out.append(",\"proto\":1");
  if (!info.host.empty()) {
    out.append(",\"host\":");
    AppendJsonString(info.host, out);
  }
  if (info.port != 0) absl::StrAppend(&out, ",\"port\":", info.port);
  absl::StrAppend(&out, ",\"headers\":", info.headers ? "true" : "false");
  if (info.auth_required) out.append(",\"auth_required\":true");
  if (info.tls_required) out.append(",\"tls_required\":true");
  absl::StrAppend(&out, ",\"max_payload\":", info.max_payload,
                  ",\"client_id\":", info.client_id);
  if (!info.client_ip.empty()) {
    out.append(",\"client_ip\":");
    AppendJsonString(info.client_ip, out);
  }
  out.append("} \r\n");
}

void AppendErr(absl::string_view text, std::string& out) {
  absl::StrAppend(&out, "-ERR '", SanitizeErrorText(text), "'\r\n");
}

namespace {

char* Put(absl::string_view s, char* out) {
  if (!s.empty()) std::memcpy(out, s.data(), s.size());
  return out + s.size();
}

// Decimal digits of `value`, without formatting it: sizes are computed for
// every message before it is written.
size_t DecimalDigits(uint64_t value) {
  size_t digits = 1;
  while (value >= 10) {
    value /= 10;
    ++digits;
  }
  return digits;
}

char* PutDecimal(uint64_t value, char* out) {
  char* end = out + DecimalDigits(value);
  char* p = end;
  do {
    *--p = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  return end;
}

}  // namespace

size_t MessageTail::size() const {
  size_t size = 1;  // the space after the sid
  if (!reply_subject.empty()) size += reply_subject.size() + 1;
  if (hmsg) {
    size += DecimalDigits(header_block.size()) + 1 +
            DecimalDigits(header_block.size() + payload.size()) +
            header_block.size();
  } else {
    size += DecimalDigits(payload.size());
  }
  return size + 2 + payload.size() + 2;
}

char* MessageTail::Write(char* out) const {
  *out++ = ' ';
  if (!reply_subject.empty()) {
    out = Put(reply_subject, out);
    *out++ = ' ';
  }
  if (hmsg) {
    out = PutDecimal(header_block.size(), out);
    *out++ = ' ';
    out = PutDecimal(header_block.size() + payload.size(), out);
  } else {
    out = PutDecimal(payload.size(), out);
  }
  *out++ = '\r';
  *out++ = '\n';
  if (hmsg) out = Put(header_block, out);
  out = Put(payload, out);
  *out++ = '\r';
  *out++ = '\n';
  return out;
}

void MessageTail::AppendTo(std::string& out) const {
  const size_t at = out.size();
  out.resize(at + size());
  Write(out.data() + at);
}

}  // namespace manifold::nats
