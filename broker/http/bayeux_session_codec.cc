#include "broker/http/bayeux_session_codec.h"

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/optimization.h"
#include "absl/strings/str_cat.h"
#include "broker/http/bayeux_json.h"
#include "broker/http/http_status.h"
#include "core/http/json_messages.h"
#include "core/status.h"
#include "core/topic.h"

namespace manifold {

void AppendBayeuxMessage(const PublishOp& publish, std::string& out) {
  out += "{\"channel\":";
  AppendJsonString(absl::StrCat("/", publish.topic), out);
  out += ",\"data\":";
  bool base64 = false;
  if (IsReserved(publish.topic)) {
    // Broker events: their JSON form, readable by any page.
    wire::BrokerEvent event;
    event.ParseFromArray(publish.payload.data(),
                         static_cast<int>(publish.payload.size()));
    out += http::MessageToJson(event);
  } else if (publish.payload_is_json) {
    out.append(publish.payload.data(), publish.payload.size());
  } else {
    base64 = AppendPayloadAsJson(publish.payload, out);
  }
  if (base64 || !publish.headers.empty() || !publish.reply_to.empty() ||
      publish.stream_seq != 0) {
    // Keys in order, as a JSON object's are written elsewhere; a header
    // named twice keeps its last value.
    out += ",\"ext\":{";
    bool first = true;
    auto key = [&](absl::string_view name) {
      if (!first) out += ',';
      first = false;
      AppendJsonString(name, out);
      out += ':';
    };
    if (base64) {
      key("base64");
      out += "true";
    }
    if (!publish.headers.empty()) {
      std::map<absl::string_view, absl::string_view> headers;
      for (const HeaderView& h : publish.headers) headers[h.key] = h.value;
      key("headers");
      out += '{';
      bool first_header = true;
      for (const auto& [name, value] : headers) {
        if (!first_header) out += ',';
        first_header = false;
        AppendJsonString(name, out);
        out += ':';
        AppendJsonString(value, out);
      }
      out += '}';
    }
    if (publish.stream_seq != 0) {
      // A message a replaying subscription delivers: its position.
      key("replayId");
      absl::StrAppend(&out, publish.stream_seq);
    }
    if (!publish.reply_to.empty()) {
      key("replyTo");
      AppendJsonString(publish.reply_to, out);
    }
    out += '}';
  }
  out += "},";
}

void BayeuxSessionCodec::Encode(const wire::ServerMessage& message,
                                OutboundBuffer& out) {
  if (!message.has_error() || message.error().subscription_id() == 0) return;
  const wire::Error& error = message.error();
  std::string text = "{\"channel\":\"/meta/unsubscribe\",\"error\":";
  AppendJsonString(
      absl::StrCat(StatusForError(error.code()),
                   "::", wire::Code_Name(error.code()), ": ", error.message()),
      text);
  text += ",\"subscription\":";
  AppendJsonString(absl::StrCat("/", error.pattern()), text);
  text += ",\"successful\":false},";
  out.Append(text);
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
  if (ABSL_PREDICT_FALSE(!replaying_.empty())) {
    const PublishOp& publish = message.publish();
    if (publish.stream_seq == 0) {
      // A replaying subscription delivers it stored.
      if (ReplayDelivers(publish.topic)) return;
    } else if (!FirstToBring(subscription, publish.stream_seq, publish.topic)) {
      return;  // another replay brought it
    }
  }
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

void BayeuxSessionCodec::StartedReplay(SubscriptionId subscription,
                                       absl::string_view pattern) {
  Replay replay;
  replay.subscription = subscription;
  replay.pattern = std::string(pattern);
  replay.started = ++replay_events_;
  for (const Replay& other : replaying_) {
    replay.before.emplace_back(other.subscription, other.last);
  }
  replaying_.push_back(std::move(replay));
}

void BayeuxSessionCodec::EndedReplay(SubscriptionId subscription) {
  auto it = std::find_if(replaying_.begin(), replaying_.end(),
                         [subscription](const Replay& r) {
                           return r.subscription == subscription;
                         });
  if (it == replaying_.end()) return;
  it->ended = ++replay_events_;
  if (it->last != 0) ended_.push_back(std::move(*it));
  replaying_.erase(it);
  // An ended replay matters while one that started before its end is
  // behind its last.
  std::erase_if(ended_, [this](const Replay& ended) {
    return std::none_of(replaying_.begin(), replaying_.end(),
                        [&ended](const Replay& r) {
                          return r.started < ended.ended && r.last < ended.last;
                        });
  });
  if (ended_.size() > kMaxEndedReplays) {
    ended_.erase(ended_.begin(),
                 ended_.begin() + (ended_.size() - kMaxEndedReplays));
  }
}

bool BayeuxSessionCodec::ReplayDelivers(absl::string_view topic) const {
  for (const Replay& replay : replaying_) {
    if (Matches(replay.pattern, topic)) return true;
  }
  return false;
}

bool BayeuxSessionCodec::FirstToBring(SubscriptionId subscription, uint64_t seq,
                                      absl::string_view topic) {
  auto self = std::find_if(replaying_.begin(), replaying_.end(),
                           [subscription](const Replay& r) {
                             return r.subscription == subscription;
                           });
  // A stored message for a subscription that is not replaying (a durable
  // consumer's member) is its own.
  if (self == replaying_.end()) return true;
  if (self->first == 0) self->first = seq;
  self->last = std::max(self->last, seq);
  if (replaying_.size() == 1 && ended_.empty()) return true;
  // Whether `other` brought it while `self` went on.
  auto brought = [&](const Replay& other) {
    if (&other == &*self || other.first == 0 || seq < other.first ||
        seq > other.last) {
      return false;
    }
    // It ended before this one started: what it brought is history.
    if (other.ended != 0 && other.ended < self->started) return false;
    // What it brought before this one started is history too.
    const auto was = std::find_if(
        self->before.begin(), self->before.end(),
        [&other](const auto& b) { return b.first == other.subscription; });
    if (was != self->before.end() && seq <= was->second) return false;
    return Matches(other.pattern, topic);
  };
  return std::none_of(replaying_.begin(), replaying_.end(), brought) &&
         std::none_of(ended_.begin(), ended_.end(), brought);
}

}  // namespace manifold
