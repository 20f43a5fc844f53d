// Fuzzes the Bayeux front end's batch reader and reply writer: arbitrary
// bytes as a POST body or a WebSocket message. Never a crash; a batch that
// is read has one planned operation per broker answer it waits for; every
// publish and service request carries its data as one JSON value; and the
// replies written once every operation is answered (successfully or not,
// as the input's first byte chooses) are one valid JSON array, also with
// the positions of replaying subscriptions (ext.replay) in them.

#include <cstdint>
#include <memory>
#include <string>

#include "broker/http/bayeux.h"
#include "broker/http/bayeux_json.h"
#include "broker/http/bayeux_session_codec.h"
#include "broker/outbound_buffer.h"
#include "core/manifold.pb.h"

namespace {

void Check(bool condition) {
  if (!condition) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t choices = data[0];
  const absl::string_view body(reinterpret_cast<const char*>(data + 1),
                               size - 1);
  manifold::BayeuxOptions options;
  manifold::BayeuxBatch::Context context;
  context.options = &options;
  context.websocket = (choices & 1) != 0;
  context.browser = (choices & 2) != 0 ? "b0" : "";
  context.make_session_codec = [] {
    return std::unique_ptr<manifold::ProtocolCodec>(
        new manifold::BayeuxSessionCodec());
  };
  uint64_t last_op_id = 1000;
  absl::StatusOr<std::unique_ptr<manifold::BayeuxBatch>> parsed =
      manifold::BayeuxBatch::Parse(body, context, last_op_id);
  if (!parsed.ok()) {
    Check(manifold::IsJson(manifold::BayeuxRefusal(parsed.status())));
    return 0;
  }
  manifold::BayeuxBatch& batch = **parsed;
  const bool fail = (choices & 4) != 0;
  manifold::OutboundBuffer empty;
  for (size_t k = 0; k < batch.operations(); ++k) {
    manifold::Operation op;
    batch.Emit(k, op);
    const uint64_t op_id = 1001 + k;
    manifold::wire::ServerMessage answer;
    switch (op.kind) {
      case manifold::Operation::Kind::kPublish:
        Check(manifold::IsJson(op.publish.payload));
        break;
      case manifold::Operation::Kind::kMessage:
        if (op.message.has_request() &&
            !op.message.request().payload().empty()) {
          Check(manifold::IsJson(op.message.request().payload()));
        }
        break;
      default:
        break;
    }
    if (op.kind == manifold::Operation::Kind::kSession &&
        op.session.kind == manifold::SessionOp::Kind::kPoll) {
      std::string stream;
      bool keep = false;
      manifold::PollUpdate update{empty, op_id, /*timed_out=*/true,
                                  absl::OkStatus()};
      Check(batch.TakePoll(update, stream, keep));
      continue;
    }
    if (fail) {
      answer.mutable_error()->set_op_id(op_id);
      answer.mutable_error()->set_code(manifold::wire::SESSION_UNKNOWN);
    } else if (op.kind == manifold::Operation::Kind::kSession &&
               op.session.kind == manifold::SessionOp::Kind::kOpen) {
      answer.mutable_welcome()->set_resume_token(std::string(40, 'a'));
      answer.mutable_welcome()->set_session_binding("b1");
    } else if (op.kind == manifold::Operation::Kind::kMessage &&
               op.message.has_request()) {
      answer.mutable_response()->set_op_id(op_id);
      answer.mutable_response()->set_payload(op.message.request().payload());
    } else {
      answer.mutable_ack()->set_op_id(op_id);
      // A replaying subscription's Ack says where it starts, which the
      // reply writes into ext.replay under the channel's name.
      if (op.kind == manifold::Operation::Kind::kMessage &&
          op.message.has_subscribe() && op.message.subscribe().has_replay()) {
        answer.mutable_ack()->set_stream_seq(op_id);
      }
    }
    Check(batch.Take(answer));
  }
  Check(batch.done());
  Check(manifold::IsJson(batch.Render()));
  return 0;
}
