#include "broker/http/bayeux_session_codec.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "broker/http/bayeux_json.h"
#include "core/http/json_messages.h"
#include "core/status.h"
#include "core/topic.h"
#include "nlohmann/json.hpp"

namespace manifold {

using Json = nlohmann::json;

void AppendBayeuxMessage(const PublishOp& publish, std::string& out) {
  out += "{\"channel\":";
  out += Json(absl::StrCat("/", publish.topic))
             .dump(-1, ' ', false, Json::error_handler_t::replace);
  out += ",\"data\":";
  bool base64 = false;
  if (IsReserved(publish.topic)) {
    // Broker events: their JSON form, readable by any page.
    wire::BrokerEvent event;
    event.ParseFromArray(publish.payload.data(),
                         static_cast<int>(publish.payload.size()));
    out += http::MessageToJson(event);
  } else {
    base64 = AppendPayloadAsJson(publish.payload, out);
  }
  if (base64 || !publish.headers.empty() || !publish.reply_to.empty()) {
    Json ext = Json::object();
    if (base64) ext["base64"] = true;
    if (!publish.headers.empty()) {
      Json headers = Json::object();
      for (const HeaderView& h : publish.headers) {
        headers[std::string(h.key)] = std::string(h.value);
      }
      ext["headers"] = std::move(headers);
    }
    if (!publish.reply_to.empty()) {
      ext["replyTo"] = std::string(publish.reply_to);
    }
    out += ",\"ext\":";
    out += ext.dump(-1, ' ', false, Json::error_handler_t::replace);
  }
  out += "},";
}

absl::StatusOr<size_t> BayeuxSessionCodec::Decode(absl::string_view input,
                                                  size_t max_frame_bytes,
                                                  Operation& op) {
  return ProtocolError(wire::INTERNAL,
                       "a Bayeux session has no link to receive from");
}

void BayeuxSessionCodec::EncodeDelivery(SharedMessage& message,
                                        SubscriptionId subscription,
                                        OutboundBuffer& out) {
  // Once per message, however many of the session's subscriptions match.
  if (message.id() != 0) {
    if (message.id() == last_message_id_) return;
    last_message_id_ = message.id();
  }
  if (!message.encoded(CodecSlot::kBayeux)) {
    std::string text;
    AppendBayeuxMessage(message.publish(), text);
    char* bytes = message.BeginEncoding(CodecSlot::kBayeux, text.size());
    std::copy(text.begin(), text.end(), bytes);
    message.FinishEncoding(CodecSlot::kBayeux);
  }
  message.AppendEncoded(CodecSlot::kBayeux, out);
}

}  // namespace manifold
