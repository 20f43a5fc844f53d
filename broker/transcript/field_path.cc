#include "broker/transcript/field_path.h"

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/descriptor.h"

namespace manifold::transcript {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

struct Resolved {
  Message* parent;  // the message holding the last field
  const FieldDescriptor* field;
};

// Walks `path` from `message`. With `create`, missing parents are created;
// without, a missing parent yields parent == nullptr.
absl::StatusOr<Resolved> Resolve(Message& message, absl::string_view path,
                                 bool create) {
  std::vector<absl::string_view> parts = absl::StrSplit(path, '.');
  Message* current = &message;
  for (size_t i = 0; i < parts.size(); ++i) {
    const FieldDescriptor* field =
        current->GetDescriptor()->FindFieldByName(std::string(parts[i]));
    if (field == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "field path '", path, "': ", current->GetDescriptor()->full_name(),
          " has no field '", parts[i], "'"));
    }
    if (field->is_repeated()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "field path '", path, "': '", parts[i], "' is a repeated field"));
    }
    if (i + 1 == parts.size()) {
      if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        return absl::InvalidArgumentError(absl::StrCat(
            "field path '", path, "' ends at a message, not a value"));
      }
      return Resolved{current, field};
    }
    if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
      return absl::InvalidArgumentError(absl::StrCat(
          "field path '", path, "': '", parts[i], "' is not a message"));
    }
    const google::protobuf::Reflection* r = current->GetReflection();
    if (!create && !r->HasField(*current, field)) {
      return Resolved{nullptr, field};
    }
    current = r->MutableMessage(current, field);
  }
  return absl::InvalidArgumentError("empty field path");
}

}  // namespace

absl::StatusOr<std::string> GetField(const Message& message,
                                     absl::string_view path) {
  // Resolve() needs a mutable message only to create parents, which it does
  // not do here.
  absl::StatusOr<Resolved> r =
      Resolve(const_cast<Message&>(message), path, /*create=*/false);
  if (!r.ok()) return r.status();
  if (r->parent == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("field path '", path, "' is not present"));
  }
  const Message& m = *r->parent;
  const google::protobuf::Reflection* refl = m.GetReflection();
  const FieldDescriptor* f = r->field;
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_UINT64:
      return absl::StrCat(refl->GetUInt64(m, f));
    case FieldDescriptor::CPPTYPE_UINT32:
      return absl::StrCat(refl->GetUInt32(m, f));
    case FieldDescriptor::CPPTYPE_INT64:
      return absl::StrCat(refl->GetInt64(m, f));
    case FieldDescriptor::CPPTYPE_INT32:
      return absl::StrCat(refl->GetInt32(m, f));
    case FieldDescriptor::CPPTYPE_BOOL:
      return std::string(refl->GetBool(m, f) ? "true" : "false");
    case FieldDescriptor::CPPTYPE_ENUM:
      return refl->GetEnum(m, f)->name();
    case FieldDescriptor::CPPTYPE_STRING:
      return refl->GetString(m, f);
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "field path '", path, "' has a type variables do not support"));
  }
}

absl::Status SetField(Message& message, absl::string_view path,
                      absl::string_view value) {
  absl::StatusOr<Resolved> r = Resolve(message, path, /*create=*/true);
  if (!r.ok()) return r.status();
  Message& m = *r->parent;
  const google::protobuf::Reflection* refl = m.GetReflection();
  const FieldDescriptor* f = r->field;
  auto bad = [&](absl::string_view type) {
    return absl::InvalidArgumentError(absl::StrCat(
        "field path '", path, "': '", value, "' is not a valid ", type));
  };
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_UINT64: {
      uint64_t v;
      if (!absl::SimpleAtoi(value, &v)) return bad("uint64");
      refl->SetUInt64(&m, f, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_UINT32: {
      uint32_t v;
      if (!absl::SimpleAtoi(value, &v)) return bad("uint32");
      refl->SetUInt32(&m, f, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_INT64: {
      int64_t v;
      if (!absl::SimpleAtoi(value, &v)) return bad("int64");
      refl->SetInt64(&m, f, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_INT32: {
      int32_t v;
      if (!absl::SimpleAtoi(value, &v)) return bad("int32");
      refl->SetInt32(&m, f, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_BOOL: {
      bool v;
      if (!absl::SimpleAtob(value, &v)) return bad("bool");
      refl->SetBool(&m, f, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_ENUM: {
      const google::protobuf::EnumValueDescriptor* e =
          f->enum_type()->FindValueByName(std::string(value));
      if (e == nullptr) return bad(f->enum_type()->full_name());
      refl->SetEnum(&m, f, e);
      break;
    }
    case FieldDescriptor::CPPTYPE_STRING:
      refl->SetString(&m, f, std::string(value));
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "field path '", path, "' has a type variables do not support"));
  }
  return absl::OkStatus();
}

absl::Status ClearField(Message& message, absl::string_view path) {
  absl::StatusOr<Resolved> r = Resolve(message, path, /*create=*/false);
  if (!r.ok()) return r.status();
  if (r->parent != nullptr) {
    r->parent->GetReflection()->ClearField(r->parent, r->field);
  }
  return absl::OkStatus();
}

}  // namespace manifold::transcript
