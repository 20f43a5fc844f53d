// File: tests/testing/message_filler.h
// -----------------------------------------------------------------------------
//
// Test helper: builds protobuf messages with every field set, so tests that
// must cover "every message type" keep doing so as the protocol grows.
//
// Example:
//
//   std::vector<wire::ClientMessage> all =
//   OneOfEachKind<wire::ClientMessage>();
//   // one message per oneof case, every field inside it non-default

#ifndef MANIFOLD_TESTS_TESTING_MESSAGE_FILLER_H_
#define MANIFOLD_TESTS_TESTING_MESSAGE_FILLER_H_

#include <vector>

#include "google/protobuf/message.h"

namespace manifold::testing {

// Sets every field of `message` (recursively, up to a small depth) to a
// non-default value derived from `seed`. For a oneof, sets its first member.
void FillAllFields(google::protobuf::Message& message, int seed);

// Returns one message per member of `Message`'s first oneof, each with that
// member set and filled by FillAllFields().
template <typename Message>
std::vector<Message> OneOfEachKind() {
  std::vector<Message> out;
  const google::protobuf::Descriptor* descriptor = Message::descriptor();
  const google::protobuf::OneofDescriptor* oneof = descriptor->oneof_decl(0);
  for (int i = 0; i < oneof->field_count(); ++i) {
    Message message;
    google::protobuf::Message* member =
        message.GetReflection()->MutableMessage(&message, oneof->field(i));
    FillAllFields(*member, i + 1);
    out.push_back(std::move(message));
  }
  return out;
}

}  // namespace manifold::testing

#endif  // MANIFOLD_TESTS_TESTING_MESSAGE_FILLER_H_
