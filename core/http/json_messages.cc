#include "core/http/json_messages.h"

#include <algorithm>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/stubs/common.h"
#include "google/protobuf/util/json_util.h"

namespace manifold::http {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

constexpr absl::string_view kPayload = "payload";
constexpr absl::string_view kBase64Flag = "base64";

// Client side: a text payload becomes the base64 protobuf's parser expects;
// one flagged base64 stays as it is. Applies to every object at any depth.
absl::Status PayloadsToBase64(Value& value) {
  if (value.has_list_value()) {
    for (Value& item : *value.mutable_list_value()->mutable_values()) {
      if (absl::Status s = PayloadsToBase64(item); !s.ok()) return s;
    }
    return absl::OkStatus();
  }
  if (!value.has_struct_value()) return absl::OkStatus();
  auto& fields = *value.mutable_struct_value()->mutable_fields();
  bool base64 = false;
  if (auto flag = fields.find(std::string(kBase64Flag)); flag != fields.end()) {
    if (flag->second.kind_case() != Value::kBoolValue) {
      return absl::InvalidArgumentError("\"base64\" must be true or false");
    }
    base64 = flag->second.bool_value();
    fields.erase(flag);
  }
  for (auto& [name, field] : fields) {
    if (name == kPayload && field.kind_case() == Value::kStringValue) {
      if (!base64) {
        field.set_string_value(absl::Base64Escape(field.string_value()));
      }
    } else if (absl::Status s = PayloadsToBase64(field); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

// Server side: a base64 payload (protobuf's mapping of bytes) becomes text
// when it decodes to UTF-8, else stays base64 with the flag.
void PayloadsToText(Value& value) {
  if (value.has_list_value()) {
    for (Value& item : *value.mutable_list_value()->mutable_values()) {
      PayloadsToText(item);
    }
    return;
  }
  if (!value.has_struct_value()) return;
  auto& fields = *value.mutable_struct_value()->mutable_fields();
  bool binary = false;
  for (auto& [name, field] : fields) {
    if (name == kPayload && field.kind_case() == Value::kStringValue) {
      std::string bytes;
      if (absl::Base64Unescape(field.string_value(), &bytes) && IsUtf8(bytes)) {
        field.set_string_value(bytes);
      } else {
        binary = true;
      }
    } else {
      PayloadsToText(field);
    }
  }
  if (binary) fields[std::string(kBase64Flag)].set_bool_value(true);
}

// A delivery that did not come from a durable stream leaves out the stream
// fields (all zero), so that JSON clients of plain pub/sub read what they
// always read.
void DropUnusedStreamFields(Value& value) {
  if (!value.has_struct_value()) return;
  auto& top = *value.mutable_struct_value()->mutable_fields();
  auto deliver = top.find("deliver");
  if (deliver == top.end() || !deliver->second.has_struct_value()) return;
  auto& fields = *deliver->second.mutable_struct_value()->mutable_fields();
  auto seq = fields.find("streamSeq");
  if (seq == fields.end() || seq->second.string_value() != "0") return;
  fields.erase("streamSeq");
  fields.erase("streamTimeUnixMs");
  fields.erase("redelivered");
}

}  // namespace

std::string ValueToJson(const Value& value) {
  switch (value.kind_case()) {
    case Value::kStructValue: {
      // google::protobuf::Map iterates in no fixed order: sort the keys so
      // the same message always prints the same bytes.
      const auto& fields = value.struct_value().fields();
      std::vector<const std::string*> keys;
      keys.reserve(fields.size());
      for (const auto& [key, field] : fields) keys.push_back(&key);
      std::sort(
          keys.begin(), keys.end(),
          [](const std::string* a, const std::string* b) { return *a < *b; });
      std::string out = "{";
      for (const std::string* key : keys) {
        if (out.size() > 1) out += ",";
        Value name;
        name.set_string_value(*key);
        absl::StrAppend(&out, ValueToJson(name), ":",
                        ValueToJson(fields.at(*key)));
      }
      return out + "}";
    }
    case Value::kListValue: {
      std::string out = "[";
      for (const Value& item : value.list_value().values()) {
        if (out.size() > 1) out += ",";
        out += ValueToJson(item);
      }
      return out + "]";
    }
    default: {
      std::string out;
      if (!google::protobuf::util::MessageToJsonString(value, &out).ok()) {
        return "null";
      }
      return out;
    }
  }
}

bool IsUtf8(absl::string_view bytes) {
  // protobuf's check runs through ASCII eight bytes at a time.
  return google::protobuf::internal::IsStructurallyValidUTF8(
      bytes.data(), static_cast<int>(bytes.size()));
}

absl::StatusOr<wire::ClientMessage> ClientMessageFromJson(
    absl::string_view json) {
  Value value;
  if (auto s = google::protobuf::util::JsonStringToMessage(
          google::protobuf::StringPiece(json.data(), json.size()), &value);
      !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("message is not JSON: ", s.message().as_string()));
  }
  if (!value.has_struct_value()) {
    return absl::InvalidArgumentError(
        "message must be a JSON object such as {\"publish\":{...}}");
  }
  if (absl::Status s = PayloadsToBase64(value); !s.ok()) return s;
  std::string normalized;
  if (!google::protobuf::util::MessageToJsonString(value, &normalized).ok()) {
    return absl::InvalidArgumentError("message is not valid JSON");
  }
  wire::ClientMessage message;
  if (auto s =
          google::protobuf::util::JsonStringToMessage(normalized, &message);
      !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "not a Manifold client message: ", s.message().as_string()));
  }
  return message;
}

std::string MessageToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(message, &json, options)
           .ok()) {
    return "{}";
  }
  if (json.find("\"payload\"") == std::string::npos) return json;
  Value value;
  if (!google::protobuf::util::JsonStringToMessage(json, &value).ok()) {
    return json;
  }
  PayloadsToText(value);
  DropUnusedStreamFields(value);
  return ValueToJson(value);
}

std::string ServerMessageToJson(const wire::ServerMessage& message) {
  return MessageToJson(message);
}

}  // namespace manifold::http
