#include "broker/http/bayeux_json.h"

#include <algorithm>
#include <array>
#include <cstdint>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "core/http/json_messages.h"
#include "rapidjson/encodings.h"
#include "rapidjson/memorystream.h"
#include "rapidjson/reader.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace manifold {
namespace {

// Accepts any JSON up to the depth bound.
class DepthBound
    : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, DepthBound> {
 public:
  bool Default() { return true; }
  bool StartObject() { return Open(); }
  bool StartArray() { return Open(); }
  bool EndObject(rapidjson::SizeType) { return Close(); }
  bool EndArray(rapidjson::SizeType) { return Close(); }

 private:
  bool Open() { return ++depth_ <= kMaxBayeuxJsonDepth; }
  bool Close() {
    --depth_;
    return true;
  }
  size_t depth_ = 0;
};

}  // namespace

bool IsJson(absl::string_view text) {
  if (text.empty() || !http::IsUtf8(text)) return false;
  rapidjson::MemoryStream stream(text.data(), text.size());
  DepthBound bound;
  rapidjson::Reader reader;
  if (reader.Parse<kBayeuxParseFlags>(stream, bound).IsError()) return false;
  // A NUL ends the reader's text early; whatever follows it is not JSON.
  return stream.Tell() == text.size();
}

bool AppendPayloadAsJson(absl::string_view payload, std::string& out) {
  if (IsJson(payload)) {
    out.append(payload.data(), payload.size());
    return false;
  }
  if (http::IsUtf8(payload)) {
    AppendJsonString(payload, out);
    return false;
  }
  absl::StrAppend(&out, "\"", absl::Base64Escape(payload), "\"");
  return true;
}

void AppendJsonString(absl::string_view text, std::string& out) {
  // Names (channels, tokens) are nearly always plain ASCII, which JSON
  // takes as it is; anything else goes through RapidJSON's writer.
  static constexpr auto kPlain = [] {
    std::array<bool, 256> plain{};
    for (int c = 0x20; c < 0x7f; ++c) plain[c] = c != '"' && c != '\\';
    return plain;
  }();
  if (std::all_of(text.begin(), text.end(), [](char c) {
        return kPlain[static_cast<unsigned char>(c)];
      })) {
    out += '"';
    out.append(text.data(), text.size());
    out += '"';
    return;
  }
  // The writer copies bytes as they are: replace what is not UTF-8 first.
  std::string utf8;
  if (!http::IsUtf8(text)) {
    for (size_t at = 0; at < text.size();) {
      rapidjson::MemoryStream in(text.data() + at, text.size() - at);
      unsigned codepoint = 0;
      if (rapidjson::UTF8<>::Decode(in, &codepoint) &&
          in.Tell() <= text.size() - at) {
        utf8.append(text.data() + at, in.Tell());
        at += in.Tell();
      } else {
        utf8 += "\xEF\xBF\xBD";  // U+FFFD; resynchronise on the next byte
        ++at;
      }
    }
    text = utf8;
  }
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
  out.append(buffer.GetString(), buffer.GetSize());
}

}  // namespace manifold
