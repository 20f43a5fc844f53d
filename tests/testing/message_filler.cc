#include "tests/testing/message_filler.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"

namespace manifold::testing {
namespace {

using google::protobuf::FieldDescriptor;

void Fill(google::protobuf::Message& message, int seed, int depth) {
  const google::protobuf::Descriptor* d = message.GetDescriptor();
  const google::protobuf::Reflection* r = message.GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    const google::protobuf::OneofDescriptor* oneof = f->containing_oneof();
    if (oneof != nullptr && oneof->field(0) != f) continue;
    const int value = seed * 31 + i + 1;
    const int copies = f->is_repeated() ? 2 : 1;
    for (int c = 0; c < copies; ++c) {
      switch (f->cpp_type()) {
        case FieldDescriptor::CPPTYPE_MESSAGE:
          if (depth < 3) {
            Fill(f->is_repeated() ? *r->AddMessage(&message, f)
                                  : *r->MutableMessage(&message, f),
                 value + c, depth + 1);
          }
          break;
        case FieldDescriptor::CPPTYPE_STRING: {
          std::string text = f->type() == FieldDescriptor::TYPE_BYTES
                                 ? std::string("\0\xff\x80 bytes", 10)
                                 : absl::StrCat(f->name(), "-", value);
          text += std::string(c, 'x');
          if (f->is_repeated()) {
            r->AddString(&message, f, text);
          } else {
            r->SetString(&message, f, text);
          }
          break;
        }
        case FieldDescriptor::CPPTYPE_BOOL:
          if (!f->is_repeated()) r->SetBool(&message, f, true);
          break;
        case FieldDescriptor::CPPTYPE_UINT32:
          if (!f->is_repeated()) r->SetUInt32(&message, f, value + 300);
          break;
        case FieldDescriptor::CPPTYPE_UINT64:
          if (!f->is_repeated())
            r->SetUInt64(&message, f, (1ull << 40) + value);
          break;
        case FieldDescriptor::CPPTYPE_INT32:
          if (!f->is_repeated()) r->SetInt32(&message, f, -value);
          break;
        case FieldDescriptor::CPPTYPE_INT64:
          if (!f->is_repeated()) r->SetInt64(&message, f, -value);
          break;
        case FieldDescriptor::CPPTYPE_ENUM: {
          const google::protobuf::EnumDescriptor* e = f->enum_type();
          if (!f->is_repeated()) {
            r->SetEnum(&message, f, e->value(e->value_count() - 1));
          }
          break;
        }
        default:
          break;
      }
    }
  }
}

}  // namespace

void FillAllFields(google::protobuf::Message& message, int seed) {
  Fill(message, seed, 0);
}

}  // namespace manifold::testing
