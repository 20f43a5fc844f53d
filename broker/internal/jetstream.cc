// NATS JetStream's API for streams and consumers (docs/nats.md), so that a
// NATS client reads a stream as it would from nats-server: it creates a
// consumer ($JS.API.CONSUMER.CREATE / DURABLE.CREATE), asks a pull
// consumer for messages ($JS.API.CONSUMER.MSG.NEXT, the request nats.js's
// fetch() and pull() send) or subscribes to a push consumer's deliver
// subject (nats.js's subscribe()), and acknowledges each message on its
// reply subject ($JS.ACK...). The consumer is a Manifold durable consumer
// (consumers.cc): the same position, acks, redelivery and persistence,
// shared with native clients that bind to it by name; an ephemeral one (no
// durable_name) is persisted too, and goes after its inactive_threshold
// unused. One created with mem_storage is never written (nats.js's ordered
// consumers), so a restart ends it.
//
// Served: $JS.API.INFO; STREAM.NAMES, STREAM.LIST, STREAM.INFO; CONSUMER.
// CREATE, DURABLE.CREATE, INFO, DELETE, NAMES, LIST, MSG.NEXT; acks +ACK,
// -NAK, +WPI, +TERM, +NXT; ack policies explicit, all and none; a push
// consumer's idle heartbeats and flow control (requests on $JS.FC...).
// Anything else gets a JSON error naming it, as does what Manifold does not
// do (streams made through the API).

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "broker/internal/broker_core.h"
#include "broker/internal/streams.h"
#include "broker/sys_topics.h"
#include "core/nats/subject.h"
#include "core/nats/writer.h"
#include "core/topic.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace manifold::internal {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

constexpr absl::string_view kJetStreamPrefix = "$JS/";
constexpr absl::string_view kApiPrefix = "$JS/API/";
constexpr absl::string_view kAckPrefix = "$JS/ACK/";
// Flow-control requests' reply topics: "$JS/FC/<stream>/<consumer>/<n>".
constexpr absl::string_view kFlowControlPrefix = "$JS/FC/";
// Heartbeats come no more often than this, whatever a request asks.
constexpr absl::Duration kMinHeartbeat = absl::Milliseconds(100);
// What a consumer delivers when it has no filter: every topic of its stream.
constexpr absl::string_view kEverything = "*/**";

// nats-server's error codes (the "err_code" clients may test).
constexpr int kBadRequest = 10003;
constexpr int kConsumerNotFound = 10014;
constexpr int kStreamNotFound = 10059;
constexpr int kFilterNotInStream = 10093;
constexpr int kConsumerExists = 10148;
constexpr int kStoreFailed = 10077;
constexpr int kFlowControlNeedsPush = 10089;
constexpr int kFlowControlNeedsHeartbeats = 10108;
// nats-server's default inactive_threshold for ephemeral consumers.
constexpr uint64_t kDefaultInactiveThresholdMs = 5000;

// Appends `"error":{...}`, JetStream's error object.
void AppendErrorField(int code, int err_code, absl::string_view description,
                      std::string& out) {
  absl::StrAppend(&out, "\"error\":{\"code\":", code,
                  ",\"err_code\":", err_code, ",\"description\":");
  nats::AppendJsonString(description, out);
  out += "}";
}

// A JSON error answer to an API request, as nats-server writes one.
std::string ErrorJson(absl::string_view type, int code, int err_code,
                      absl::string_view description) {
  std::string out =
      absl::StrCat("{\"type\":\"io.nats.jetstream.api.v1.", type, "\",");
  AppendErrorField(code, err_code, description, out);
  out += "}";
  return out;
}

// An answer that is an error (counted in $JS.API.INFO's api.errors).
JetStreamAnswer JetStreamFailure(absl::string_view type, int code, int err_code,
                                 absl::string_view description) {
  return {ErrorJson(type, code, err_code, description), /*failed=*/true};
}

// Go's RFC 3339 form of a time, in UTC.
std::string TimeJson(int64_t unix_ms) {
  return absl::StrCat(
      "\"",
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixMillis(unix_ms),
                       absl::UTCTimeZone()),
      "\"");
}

// A limit as NATS writes it: -1 for none.
int64_t Limit(uint64_t value) {
  return value == 0 ? -1 : static_cast<int64_t>(value);
}

std::string SubjectOf(absl::string_view topic) {
  std::string subject;
  nats::AppendSubjectForTopic(topic, subject);
  return subject;
}

// A request's JSON object; an empty body is an empty object.
absl::StatusOr<Struct> ParseObject(absl::string_view body) {
  Struct object;
  if (absl::StripAsciiWhitespace(body).empty()) return object;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  if (!google::protobuf::util::JsonStringToMessage(std::string(body), &object,
                                                   options)
           .ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the request is not a JSON object: '", body.substr(0, 64), "'"));
  }
  return object;
}

const Value* Field(const Struct& object, absl::string_view key) {
  auto it = object.fields().find(std::string(key));
  return it == object.fields().end() ? nullptr : &it->second;
}

std::string StringField(const Struct& object, absl::string_view key) {
  const Value* v = Field(object, key);
  return v != nullptr && v->has_string_value() ? v->string_value() : "";
}

// A whole number field; `fallback` when absent or not a number.
int64_t NumberField(const Struct& object, absl::string_view key,
                    int64_t fallback = 0) {
  const Value* v = Field(object, key);
  if (v == nullptr || !v->has_number_value()) return fallback;
  // Clamped, so that any JSON number converts.
  constexpr double kMost = 4e18;
  return static_cast<int64_t>(std::clamp(v->number_value(), -kMost, kMost));
}

bool BoolField(const Struct& object, absl::string_view key) {
  const Value* v = Field(object, key);
  return v != nullptr && v->has_bool_value() && v->bool_value();
}

// Nanoseconds (NATS's durations) as milliseconds, rounded up.
uint64_t NanosToMillis(int64_t nanos) {
  return nanos <= 0 ? 0 : static_cast<uint64_t>((nanos + 999'999) / 1'000'000);
}

std::string StreamConfigJson(const wire::StreamConfig& config) {
  std::vector<std::string> subjects;
  for (const std::string& topic : config.topics()) {
    std::string s;
    nats::AppendJsonString(SubjectOf(topic), s);
    subjects.push_back(std::move(s));
  }
  return absl::StrCat(
      "{\"name\":\"", config.name(), "\",\"subjects\":[",
      absl::StrJoin(subjects, ","),
      "],\"retention\":\"limits\",\"max_consumers\":-1,\"max_msgs\":",
      Limit(config.max_msgs()), ",\"max_bytes\":", Limit(config.max_bytes()),
      ",\"max_age\":", config.max_age_ms() * 1'000'000,
      ",\"max_msgs_per_subject\":", Limit(config.max_msgs_per_topic()),
      ",\"max_msg_size\":-1,\"storage\":\"",
      config.storage() == wire::STORAGE_MEMORY ? "memory" : "file",
      "\",\"discard\":\"old\",\"num_replicas\":1,\"duplicate_window\":0}");
}

std::string StreamInfoJson(const Stream& s, absl::string_view type) {
  const StreamState& st = s.state;
  return absl::StrCat("{\"type\":\"io.nats.jetstream.api.v1.", type,
                      "\",\"config\":", StreamConfigJson(s.config),
                      ",\"created\":", TimeJson(st.first_time_unix_ms),
                      ",\"state\":{\"messages\":", st.messages,
                      ",\"bytes\":", st.bytes, ",\"first_seq\":", st.first_seq,
                      ",\"first_ts\":", TimeJson(st.first_time_unix_ms),
                      ",\"last_seq\":", st.last_seq,
                      ",\"last_ts\":", TimeJson(st.last_time_unix_ms),
                      ",\"consumer_count\":", s.consumers.size(), "}}");
}

// JetStream's name for how the consumer takes acks.
absl::string_view AckPolicyOf(const wire::ConsumerState& c) {
  return c.ack_none() ? "none" : c.ack_all() ? "all" : "explicit";
}

std::string ConsumerInfoJson(const Stream& s, const Consumer& c,
                             absl::string_view type, int64_t now_ms,
                             bool push_bound) {
  const wire::ConsumerState& st = c.state;
  std::string filter;
  if (st.pattern() != kEverything) {
    filter = ",\"filter_subject\":";
    nats::AppendJsonString(SubjectOf(st.pattern()), filter);
  }
  // A push consumer says where it delivers; a pull consumer how many
  // requests may wait.
  std::string delivery;
  if (st.deliver_topic().empty()) {
    delivery = absl::StrCat(",\"max_waiting\":", Consumer::kMaxPullRequests);
  } else {
    delivery = ",\"deliver_subject\":";
    nats::AppendJsonString(SubjectOf(st.deliver_topic()), delivery);
    if (!st.deliver_group().empty()) {
      delivery += ",\"deliver_group\":";
      nats::AppendJsonString(st.deliver_group(), delivery);
    }
    if (st.idle_heartbeat_ms() > 0) {
      absl::StrAppend(&delivery, ",\"idle_heartbeat\":",
                      st.idle_heartbeat_ms() * 1'000'000);
    }
    if (st.flow_control()) delivery += ",\"flow_control\":true";
  }
  // An ephemeral consumer has no durable name, and says when it goes.
  std::string durable =
      c.ephemeral() ? absl::StrCat("\"inactive_threshold\":",
                                   st.inactive_threshold_ms() * 1'000'000, ",")
                    : absl::StrCat("\"durable_name\":\"", st.name(), "\",");
  if (c.memory_only) durable += "\"mem_storage\":true,";
  const uint64_t pending = s.state.last_seq > st.delivered_high()
                               ? s.state.last_seq - st.delivered_high()
                               : 0;
  return absl::StrCat(
      "{\"type\":\"io.nats.jetstream.api.v1.", type, "\",\"stream_name\":\"",
      s.config.name(), "\",\"name\":\"", st.name(),
      "\",\"created\":", TimeJson(now_ms), ",\"config\":{", durable,
      "\"name\":\"", st.name(), "\",\"ack_policy\":\"", AckPolicyOf(st),
      "\",\"ack_wait\":", st.ack_wait_ms() * 1'000'000,
      ",\"max_ack_pending\":", st.max_in_flight(), ",\"max_deliver\":-1",
      delivery, ",\"replay_policy\":\"instant\"", filter,
      "},\"delivered\":{\"consumer_seq\":", c.deliveries,
      ",\"stream_seq\":", st.delivered_high(),
      "},\"ack_floor\":{\"stream_seq\":", st.ack_floor(),
      "},\"num_ack_pending\":", c.in_flight.size(),
      ",\"num_redelivered\":", c.redeliver.size(),
      ",\"num_waiting\":", c.pulls.size(), ",\"num_pending\":", pending,
      push_bound ? ",\"push_bound\":true}" : "}");
}

// Where a new consumer starts, from its deliver_policy.
absl::StatusOr<wire::Replay> StartFor(const Struct& config) {
  wire::Replay start;
  const std::string policy = StringField(config, "deliver_policy");
  if (policy.empty() || policy == "all") {
    start.set_from_seq(1);
  } else if (policy == "last") {
    start.set_last(1);
  } else if (policy == "new") {
    // The default: new messages only.
  } else if (policy == "by_start_sequence") {
    const int64_t seq = NumberField(config, "opt_start_seq");
    if (seq < 1) {
      return absl::InvalidArgumentError(
          "deliver_policy 'by_start_sequence' needs opt_start_seq >= 1");
    }
    start.set_from_seq(static_cast<uint64_t>(seq));
  } else if (policy == "by_start_time") {
    absl::Time when;
    std::string error;
    if (!absl::ParseTime(absl::RFC3339_full,
                         StringField(config, "opt_start_time"), &when,
                         &error)) {
      return absl::InvalidArgumentError(
          absl::StrCat("deliver_policy 'by_start_time' needs opt_start_time "
                       "as an RFC 3339 time: ",
                       error));
    }
    start.set_since_unix_ms(absl::ToUnixMillis(when));
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "deliver_policy '", policy,
        "' is not served (all, last, new, by_start_sequence, by_start_time)"));
  }
  return start;
}

}  // namespace

bool BrokerCore::HandleJetStream(ConnectionCore& c, const PublishOp& publish) {
  if (!absl::StartsWith(publish.topic, kJetStreamPrefix)) return false;
  if (absl::StartsWith(publish.topic, kApiPrefix)) {
    HandleJetStreamApi(c, publish, publish.topic.substr(kApiPrefix.size()));
  } else if (absl::StartsWith(publish.topic, kAckPrefix)) {
    HandleJetStreamAck(publish, publish.topic.substr(kAckPrefix.size()));
  } else if (absl::StartsWith(publish.topic, kFlowControlPrefix)) {
    HandleFlowControlAnswer(publish.topic);
  } else {
    return false;
  }
  if (publish.ack) SendAck(c, publish.op_id, 0, 1);
  return true;
}

void BrokerCore::AnswerJetStream(const PublishOp& request,
                                 absl::string_view json) {
  if (request.reply_to.empty()) return;
  PublishReply(request.reply_to, request.spelling, request.spelled_reply_to,
               json);
}

void BrokerCore::PublishReply(absl::string_view topic, CodecSlot spelling,
                              absl::string_view spelled_topic,
                              absl::string_view payload) {
  PublishOp answer;
  answer.topic = topic;
  answer.payload = payload;
  answer.spelling = spelling;
  answer.spelled_topic = spelled_topic;
  Route(answer, nullptr);
}

void BrokerCore::PublishStreamReply(const PendingAck& ack) {
  // What nats.js jetstream().publish() reads: a PubAck, or an error whose
  // code is nats-server's for a store that cannot take the message.
  std::string body;
  if (ack.failure.ok()) {
    body =
        absl::StrCat("{\"stream\":\"", ack.stream, "\",\"seq\":", ack.seq, "}");
  } else {
    body = "{";
    AppendErrorField(503, kStoreFailed, ack.failure.message(), body);
    body += "}";
  }
  PublishReply(ack.reply_to(), static_cast<CodecSlot>(ack.reply_spelling),
               ack.spelled_reply_to(), body);
}

void BrokerCore::HandleJetStreamApi(ConnectionCore& c, const PublishOp& request,
                                    absl::string_view api) {
  ++jetstream_requests_;
  const std::vector<absl::string_view> t = absl::StrSplit(api, '/');
  const bool consumer = !t.empty() && t[0] == "CONSUMER";
  JetStreamAnswer answer;
  if (t.size() == 1 && t[0] == "INFO") {
    answer = JetStreamAccountInfo();
  } else if (t.size() == 2 && t[0] == "STREAM" &&
             (t[1] == "NAMES" || t[1] == "LIST")) {
    answer = JetStreamStreams(request.payload, /*names=*/t[1] == "NAMES");
  } else if (t.size() == 3 && t[0] == "STREAM" && t[1] == "INFO") {
    answer = JetStreamStreamInfo(t[2]);
  } else if (!t.empty() && t[0] == "STREAM") {
    answer = JetStreamFailure("stream_response", 400, kBadRequest,
                              absl::StrCat("$JS.API.", SubjectOf(api),
                                           " is not served: Manifold's streams "
                                           "are made with `manifold stream` "
                                           "or the config file"));
  } else if (consumer && t.size() == 5 && t[1] == "DURABLE" &&
             t[2] == "CREATE") {
    answer = JetStreamCreateConsumer(c, request.payload, t[3], t[4], "");
  } else if (consumer && t.size() >= 3 && t[1] == "CREATE") {
    // CONSUMER.CREATE.<stream>[.<name>[.<filter>]]
    answer = JetStreamCreateConsumer(
        c, request.payload, t[2], t.size() > 3 ? t[3] : "",
        t.size() > 4 ? absl::StrJoin(t.begin() + 4, t.end(), "/") : "");
  } else if (consumer && t.size() == 3 && (t[1] == "NAMES" || t[1] == "LIST")) {
    answer = JetStreamConsumers(t[2], /*names=*/t[1] == "NAMES");
  } else if (consumer && t.size() == 4 &&
             (t[1] == "INFO" || t[1] == "DELETE")) {
    answer = JetStreamConsumerRequest(
        c, request,
        t[1] == "INFO" ? JetStreamVerb::kInfo : JetStreamVerb::kDelete, t[2],
        t[3]);
  } else if (consumer && t.size() == 5 && t[1] == "MSG" && t[2] == "NEXT") {
    answer =
        JetStreamConsumerRequest(c, request, JetStreamVerb::kNext, t[3], t[4]);
  } else {
    answer = JetStreamFailure(
        "error_response", 400, kBadRequest,
        absl::StrCat("$JS.API.", SubjectOf(api), " is not served"));
  }
  if (answer.failed) ++jetstream_errors_;
  if (!answer.json.empty()) AnswerJetStream(request, answer.json);
}

JetStreamAnswer BrokerCore::JetStreamAccountInfo() const {
  uint64_t memory = 0, storage = 0, consumers = 0;
  for (const auto& [name, s] : streams_) {
    (s->config.storage() == wire::STORAGE_MEMORY ? memory : storage) +=
        s->state.bytes;
    consumers += s->consumers.size();
  }
  return {absl::StrCat(
      "{\"type\":\"io.nats.jetstream.api.v1.account_info_response\","
      "\"memory\":",
      memory, ",\"storage\":", storage, ",\"streams\":", streams_.size(),
      ",\"consumers\":", consumers,
      ",\"limits\":{\"max_memory\":-1,\"max_storage\":-1,"
      "\"max_streams\":-1,\"max_consumers\":-1,\"max_ack_pending\":-1,"
      "\"memory_max_stream_bytes\":-1,\"storage_max_stream_bytes\":-1,"
      "\"max_bytes_required\":false},\"api\":{\"total\":",
      jetstream_requests_, ",\"errors\":", jetstream_errors_, "}}")};
}

JetStreamAnswer BrokerCore::JetStreamStreams(absl::string_view body,
                                             bool names) const {
  const absl::string_view type =
      names ? "stream_names_response" : "stream_list_response";
  absl::StatusOr<Struct> request = ParseObject(body);
  if (!request.ok()) {
    return JetStreamFailure(type, 400, kBadRequest, request.status().message());
  }
  // Optionally only the streams that capture a subject.
  std::string topic;
  if (const std::string subject = StringField(*request, "subject");
      !subject.empty()) {
    if (absl::Status s =
            nats::SubjectToTopic(subject, nats::SubjectUse::kSubscribe, topic);
        !s.ok()) {
      return JetStreamFailure(type, 400, kBadRequest, s.message());
    }
  }
  std::vector<const Stream*> found;
  for (const auto& [name, s] : streams_) {
    if (topic.empty() || s->topics.IntersectsPattern(topic)) {
      found.push_back(s.get());
    }
  }
  std::sort(found.begin(), found.end(), [](const Stream* a, const Stream* b) {
    return a->config.name() < b->config.name();
  });
  std::vector<std::string> items;
  for (const Stream* s : found) {
    items.push_back(names ? absl::StrCat("\"", s->config.name(), "\"")
                          : StreamInfoJson(*s, "stream_info_response"));
  }
  return {absl::StrCat("{\"type\":\"io.nats.jetstream.api.v1.", type,
                       "\",\"total\":", items.size(),
                       ",\"offset\":0,\"limit\":", items.size(),
                       ",\"streams\":[", absl::StrJoin(items, ","), "]}")};
}

JetStreamAnswer BrokerCore::JetStreamStreamInfo(
    absl::string_view stream) const {
  auto it = streams_.find(stream);
  if (it == streams_.end()) {
    return JetStreamFailure("stream_info_response", 404, kStreamNotFound,
                            "stream not found");
  }
  return {StreamInfoJson(*it->second, "stream_info_response")};
}

JetStreamAnswer BrokerCore::JetStreamCreateConsumer(
    ConnectionCore& c, absl::string_view body, absl::string_view stream,
    absl::string_view subject_name, absl::string_view subject_filter) {
  constexpr absl::string_view type = "consumer_create_response";
  auto fail = [&](int code, int err_code, absl::string_view description) {
    return JetStreamFailure(type, code, err_code, description);
  };
  auto found = streams_.find(stream);
  if (found == streams_.end()) {
    return fail(404, kStreamNotFound, "stream not found");
  }
  Stream& s = *found->second;
  absl::StatusOr<Struct> request = ParseObject(body);
  if (!request.ok()) return fail(400, kBadRequest, request.status().message());
  const Value* config_value = Field(*request, "config");
  const Struct config =
      config_value != nullptr && config_value->has_struct_value()
          ? config_value->struct_value()
          : Struct();
  // The name: in the subject, durable_name or name, the same wherever given.
  // Without a durable_name the consumer is ephemeral, named by the broker
  // when no name is given.
  std::string name(subject_name);
  const std::string durable_name = StringField(config, "durable_name");
  for (const std::string& n : {durable_name, StringField(config, "name")}) {
    if (n.empty()) continue;
    if (name.empty()) name = n;
    if (n != name) {
      return fail(
          400, kBadRequest,
          absl::StrCat("consumer name '", n, "' does not match '", name, "'"));
    }
  }
  const bool ephemeral = durable_name.empty();
  if (name.empty()) {
    do {
      name = absl::StrCat("eph", ++last_ephemeral_consumer_);
    } while (s.consumers.contains(name));
  }
  if (absl::Status v = CheckConsumerName(name); !v.ok()) {
    return fail(400, kBadRequest, v.message());
  }
  // Kept in memory only: never written, so a restart ends it.
  const bool memory_only = BoolField(config, "mem_storage");
  const int64_t inactive = NumberField(config, "inactive_threshold");
  if (inactive < 0) {
    return fail(400, kBadRequest, "inactive_threshold must not be negative");
  }
  // A push consumer: its messages go to the subscribers of deliver_subject.
  std::string deliver_topic;
  if (const std::string deliver = StringField(config, "deliver_subject");
      !deliver.empty()) {
    if (absl::Status v = nats::SubjectToTopic(deliver, nats::SubjectUse::kReply,
                                              deliver_topic);
        !v.ok()) {
      return fail(400, kBadRequest,
                  absl::StrCat("deliver_subject: ", v.message()));
    }
  }
  // Heartbeats while idle, and flow control, for a push consumer (a pull
  // request asks for its own heartbeats).
  const bool flow_control = BoolField(config, "flow_control");
  if (flow_control && deliver_topic.empty()) {
    return fail(400, kFlowControlNeedsPush,
                "flow_control is for push consumers (deliver_subject)");
  }
  const int64_t heartbeat = NumberField(config, "idle_heartbeat");
  // As nats-server: a subscriber that missed a flow-control request learns
  // of it from a heartbeat.
  if (flow_control && heartbeat <= 0) {
    return fail(400, kFlowControlNeedsHeartbeats,
                "flow_control needs an idle_heartbeat");
  }
  if (heartbeat < 0 || (heartbeat > 0 && deliver_topic.empty())) {
    return fail(400, kBadRequest,
                "idle_heartbeat is for push consumers (deliver_subject), and "
                "not negative");
  }
  const uint64_t heartbeat_ms =
      heartbeat > 0
          ? static_cast<uint64_t>(
                std::max(absl::Nanoseconds(heartbeat), kMinHeartbeat) /
                absl::Milliseconds(1))
          : 0;
  const std::string deliver_group = StringField(config, "deliver_group");
  if (!deliver_group.empty() && deliver_topic.empty()) {
    return fail(400, kBadRequest, "deliver_group needs a deliver_subject");
  }
  std::string ack = StringField(config, "ack_policy");
  if (ack.empty()) ack = "explicit";
  if (ack != "explicit" && ack != "all" && ack != "none") {
    return fail(400, kBadRequest,
                absl::StrCat("ack_policy '", ack,
                             "' is not served (explicit, all, none)"));
  }
  // The filter: from the config, else from the subject.
  std::string filter = StringField(config, "filter_subject");
  if (const Value* many = Field(config, "filter_subjects");
      many != nullptr && many->has_list_value()) {
    const auto& list = many->list_value().values();
    if (list.size() > 1) {
      return fail(400, kBadRequest, "a consumer takes one filter subject");
    }
    if (list.size() == 1 && filter.empty()) filter = list[0].string_value();
  }
  std::string pattern(kEverything);
  if (!filter.empty() && filter != ">") {
    if (absl::Status v =
            nats::SubjectToTopic(filter, nats::SubjectUse::kSubscribe, pattern);
        !v.ok()) {
      return fail(400, kBadRequest, v.message());
    }
  } else if (!subject_filter.empty()) {
    pattern = std::string(subject_filter);
  }
  if (absl::Status v =
          ValidateTopic(pattern, TopicRole::kSubscription, topic_limits_);
      !v.ok()) {
    return fail(400, kBadRequest, v.message());
  }
  if (!s.topics.IntersectsPattern(pattern)) {
    return fail(400, kFilterNotInStream,
                absl::StrCat("filter subject '", SubjectOf(pattern),
                             "' matches nothing stream '", s.config.name(),
                             "' captures"));
  }
  if (absl::Status v = MayJetStream(c, AccessOperation::kSubscribe, pattern);
      !v.ok()) {
    return fail(403, kBadRequest, v.message());
  }
  auto existing = s.consumers.find(name);
  if (existing != s.consumers.end()) {
    const wire::ConsumerState& held = existing->second->state;
    if (held.pattern() != pattern) {
      return fail(
          400, kConsumerExists,
          absl::StrCat("consumer '", name, "' already exists and delivers '",
                       SubjectOf(held.pattern()), "'"));
    }
    if (held.deliver_topic() != deliver_topic ||
        held.deliver_group() != deliver_group) {
      return fail(
          400, kConsumerExists,
          absl::StrCat("consumer '", name, "' already exists with ",
                       held.deliver_topic().empty()
                           ? std::string("no deliver_subject")
                           : absl::StrCat("deliver_subject '",
                                          SubjectOf(held.deliver_topic()),
                                          "' and deliver_group '",
                                          held.deliver_group(), "'")));
    }
    if (AckPolicyOf(held) != ack) {
      return fail(
          400, kConsumerExists,
          absl::StrCat("consumer '", name, "' already exists with ack_policy '",
                       AckPolicyOf(held), "'"));
    }
    if (existing->second->ephemeral() != ephemeral) {
      return fail(400, kConsumerExists,
                  absl::StrCat("consumer '", name, "' already exists and is ",
                               ephemeral ? "durable" : "ephemeral"));
    }
    if (existing->second->memory_only != memory_only) {
      return fail(400, kConsumerExists,
                  absl::StrCat("consumer '", name, "' already exists ",
                               memory_only ? "on disk" : "in memory"));
    }
  }
  const bool is_new = existing == s.consumers.end();
  absl::StatusOr<wire::Replay> start = StartFor(config);
  if (!start.ok()) return fail(400, kBadRequest, start.status().message());
  Consumer& created = OpenConsumer(s, name, pattern, *start);
  if (is_new) {
    // New: written with the rest of its state (OpenConsumer marked it),
    // unless ephemeral.
    created.state.set_deliver_topic(deliver_topic);
    created.state.set_deliver_group(deliver_group);
    created.state.set_ack_all(ack == "all");
    created.state.set_ack_none(ack == "none");
    created.memory_only = memory_only;
    if (ephemeral) {
      created.state.set_inactive_threshold_ms(
          inactive > 0 ? NanosToMillis(inactive) : kDefaultInactiveThresholdMs);
      WatchInterest(created);
    }
  }
  const int64_t most = NumberField(config, "max_ack_pending");
  SetConsumerLimits(s, created, NanosToMillis(NumberField(config, "ack_wait")),
                    most > 0 ? static_cast<uint64_t>(most) : 0);
  if (created.state.idle_heartbeat_ms() != heartbeat_ms) {
    created.state.set_idle_heartbeat_ms(heartbeat_ms);
    MarkDirty(s, created);
    PutOffPushHeartbeat(created);
  }
  if (created.state.flow_control() != flow_control) {
    created.state.set_flow_control(flow_control);
    MarkDirty(s, created);
    created.unanswered_bytes = 0;
    created.flow_request.clear();
  }
  // What it holds goes to a subscriber that is already there.
  if (!deliver_topic.empty()) cursors_waiting_ = true;
  return {ConsumerInfoJson(s, created, type, WallNowMs(), PushBound(created))};
}

JetStreamAnswer BrokerCore::JetStreamConsumers(absl::string_view stream,
                                               bool names) {
  const absl::string_view type =
      names ? "consumer_names_response" : "consumer_list_response";
  auto found = streams_.find(stream);
  if (found == streams_.end()) {
    return JetStreamFailure(type, 404, kStreamNotFound, "stream not found");
  }
  const Stream& s = *found->second;
  std::vector<Consumer*> consumers;
  for (const auto& [name, consumer] : s.consumers) {
    consumers.push_back(consumer.get());
  }
  std::sort(consumers.begin(), consumers.end(),
            [](const Consumer* a, const Consumer* b) {
              return a->state.name() < b->state.name();
            });
  std::vector<std::string> items;
  for (Consumer* consumer : consumers) {
    items.push_back(
        names ? absl::StrCat("\"", consumer->state.name(), "\"")
              : ConsumerInfoJson(s, *consumer, "consumer_info_response",
                                 WallNowMs(), PushBound(*consumer)));
  }
  return {absl::StrCat("{\"type\":\"io.nats.jetstream.api.v1.", type,
                       "\",\"total\":", items.size(),
                       ",\"offset\":0,\"limit\":", items.size(),
                       ",\"consumers\":[", absl::StrJoin(items, ","), "]}")};
}

JetStreamAnswer BrokerCore::JetStreamConsumerRequest(ConnectionCore& c,
                                                     const PublishOp& request,
                                                     JetStreamVerb verb,
                                                     absl::string_view stream,
                                                     absl::string_view name) {
  const absl::string_view type =
      verb == JetStreamVerb::kNext   ? "consumer_next_response"
      : verb == JetStreamVerb::kInfo ? "consumer_info_response"
                                     : "consumer_delete_response";
  auto found = streams_.find(stream);
  if (found == streams_.end()) {
    return JetStreamFailure(type, 404, kStreamNotFound, "stream not found");
  }
  Stream& s = *found->second;
  auto it = s.consumers.find(name);
  if (it == s.consumers.end()) {
    return JetStreamFailure(type, 404, kConsumerNotFound, "consumer not found");
  }
  Consumer& consumer = *it->second;
  absl::Status allowed =
      MayJetStream(c, AccessOperation::kSubscribe, consumer.state.pattern());
  if (allowed.ok() && verb == JetStreamVerb::kDelete) {
    // As removing it natively ($sys/streams/consumer/remove) does.
    allowed =
        MayJetStream(c, AccessOperation::kRequest, sys_topics::kConsumerRemove);
  }
  if (!allowed.ok()) {
    return JetStreamFailure(type, 403, kBadRequest, allowed.message());
  }
  switch (verb) {
    case JetStreamVerb::kNext:
      PullFromConsumer(c, request, s, consumer);
      return {};  // answered by messages and status messages
    case JetStreamVerb::kInfo:
      return {ConsumerInfoJson(s, consumer, type, WallNowMs(),
                               PushBound(consumer))};
    case JetStreamVerb::kDelete:
      RemoveConsumer(s, std::string(name));
      return {
          "{\"type\":\"io.nats.jetstream.api.v1.consumer_delete_response\","
          "\"success\":true}"};
  }
  return {};
}

absl::Status BrokerCore::MayJetStream(ConnectionCore& c,
                                      AccessOperation operation,
                                      absl::string_view topic) {
  if (c.permissions_ == nullptr) return absl::OkStatus();
  absl::Status denied = c.permissions_->Check(operation, topic);
  if (!denied.ok()) ++stats_.permission_denials;
  return denied;
}

void BrokerCore::PullFromConsumer(ConnectionCore& c, const PublishOp& request,
                                  Stream& stream, Consumer& consumer) {
  if (request.reply_to.empty()) return;  // nowhere to deliver
  // The requester's subscription that receives the reply subject.
  Subscription* inbox = nullptr;
  for (SubscriptionId id : c.subscriptions_) {
    Subscription* sub = index_.Find(id);
    if (sub != nullptr && !sub->stream_only &&
        Matches(sub->pattern, request.reply_to)) {
      inbox = sub;
      break;
    }
  }
  if (inbox == nullptr) return;  // nobody would receive it
  PullRequest pull;
  pull.subscription = inbox->id;
  pull.reply_to = std::string(request.reply_to);
  // The body: nothing (one message), a number (that many), or a JSON
  // object with batch, expires, no_wait and idle_heartbeat.
  const absl::string_view body = absl::StripAsciiWhitespace(request.payload);
  uint64_t batch = 1;
  if (!body.empty() && body.front() != '{') {
    if (!absl::SimpleAtoi(body, &batch) || batch == 0) {
      ++jetstream_errors_;
      SendPullStatus(pull, "400", "Bad Request");
      return;
    }
  } else if (!body.empty()) {
    absl::StatusOr<Struct> args = ParseObject(body);
    if (!args.ok() || NumberField(*args, "batch", 1) < 1 ||
        NumberField(*args, "expires") < 0 ||
        NumberField(*args, "idle_heartbeat") < 0) {
      ++jetstream_errors_;
      SendPullStatus(pull, "400", "Bad Request");
      return;
    }
    batch = static_cast<uint64_t>(NumberField(*args, "batch", 1));
    pull.no_wait = BoolField(*args, "no_wait");
    if (const int64_t expires = NumberField(*args, "expires"); expires > 0) {
      pull.expires = now_ + absl::Nanoseconds(expires);
    }
    if (const int64_t hb = NumberField(*args, "idle_heartbeat"); hb > 0) {
      pull.heartbeat = std::max(absl::Nanoseconds(hb), kMinHeartbeat);
      pull.next_heartbeat = now_ + pull.heartbeat;
    }
  }
  pull.remaining = batch;
  if (consumer.pulls.size() >= Consumer::kMaxPullRequests) {
    SendPullStatus(pull, "409", "Exceeded MaxWaiting");
    return;
  }
  ArmConsumerTimer(consumer, std::min(pull.expires, pull.next_heartbeat));
  consumer.pulls.push_back(std::move(pull));
  PumpConsumer(stream, consumer);
}

std::string BrokerCore::JetStreamAckTopic(const Stream& stream,
                                          const Consumer& c, uint64_t seq,
                                          int64_t time_unix_ms,
                                          bool redelivered) const {
  const uint64_t pending =
      stream.state.last_seq > c.state.delivered_high()
          ? stream.state.last_seq - c.state.delivered_high()
          : 0;
  // $JS.ACK.<stream>.<consumer>.<delivery count>.<stream seq>.<consumer
  // seq>.<time in ns>.<pending>, as clients parse it.
  return absl::StrCat(kAckPrefix, stream.config.name(), "/", c.state.name(),
                      "/", redelivered ? 2 : 1, "/", seq, "/", c.deliveries,
                      "/", time_unix_ms * 1'000'000, "/", pending);
}

void BrokerCore::SendPullStatus(const PullRequest& pull, absl::string_view code,
                                absl::string_view description) {
  Subscription* sub = index_.Find(pull.subscription);
  if (sub == nullptr) return;
  // What the request still wanted, as nats-server tells it.
  const std::string left = absl::StrCat(pull.remaining);
  const HeaderView pending[] = {{"Nats-Pending-Messages", left},
                                {"Nats-Pending-Bytes", "0"}};
  SendStatus(*sub, pull.reply_to, code, description,
             code == "408" || code == "409" ? absl::MakeConstSpan(pending)
                                            : absl::Span<const HeaderView>());
}

void BrokerCore::SendStatus(Subscription& sub, absl::string_view topic,
                            absl::string_view code,
                            absl::string_view description,
                            absl::Span<const HeaderView> more,
                            absl::string_view reply_to) {
  PublishOp notice;
  notice.topic = topic;
  notice.reply_to = reply_to;
  notice.headers.push_back({"Status", code});
  notice.headers.push_back({"Description", description});
  notice.headers.insert(notice.headers.end(), more.begin(), more.end());
  notice.has_header_block = true;
  SharedMessage message(notice, encode_scratch_, ++last_message_id_);
  message.set_single_recipient(true);
  DeliverTo(sub, message, nullptr);
}

void BrokerCore::AnswerNoWaitPulls(Consumer& c) {
  std::erase_if(c.pulls, [&](const PullRequest& pull) {
    if (!pull.no_wait) return false;
    if (pull.delivered == 0) {
      SendPullStatus(pull, "404", "No Messages");
    } else {
      SendPullStatus(pull, "408", "Request Timeout");
    }
    return true;
  });
}

void BrokerCore::ExpirePulls(Consumer& c) {
  std::erase_if(c.pulls, [&](PullRequest& pull) {
    if (pull.expires <= now_) {
      SendPullStatus(pull, "408", "Request Timeout");
      return true;
    }
    if (pull.next_heartbeat <= now_) {
      SendPullStatus(pull, "100", "Idle Heartbeat");
      pull.next_heartbeat = now_ + pull.heartbeat;
    }
    return false;
  });
}

void BrokerCore::CountPushed(const Stream& stream, Consumer& c,
                             Subscription& to, size_t bytes) {
  c.unanswered_bytes += bytes;
  if (!c.flow_request.empty() ||
      c.unanswered_bytes < Consumer::kFlowControlWindow / 2) {
    return;
  }
  c.flow_request = absl::StrCat(kFlowControlPrefix, stream.config.name(), "/",
                                c.state.name(), "/", ++c.flow_requests);
  c.flow_request_bytes = c.unanswered_bytes;
  c.flow_request_to = to.id;
  SendStatus(to, c.state.deliver_topic(), "100", "FlowControl Request", {},
             c.flow_request);
}

void BrokerCore::HandleFlowControlAnswer(absl::string_view topic) {
  const std::vector<absl::string_view> t =
      absl::StrSplit(topic.substr(kFlowControlPrefix.size()), '/');
  if (t.size() != 3) return;
  auto stream = streams_.find(t[0]);
  if (stream == streams_.end()) return;
  auto it = stream->second->consumers.find(t[1]);
  if (it == stream->second->consumers.end()) return;
  Consumer& c = *it->second;
  // An answer to an older request, or a repeated one, changes nothing.
  if (c.flow_request != topic) return;
  c.unanswered_bytes -= std::min(c.unanswered_bytes, c.flow_request_bytes);
  c.flow_request.clear();
  PumpConsumer(*stream->second, c);
}

void BrokerCore::HandleJetStreamAck(const PublishOp& publish,
                                    absl::string_view ack) {
  // <stream>/<consumer>/<count>/<stream seq>/..., or with a domain and an
  // account hash first (the newer form).
  std::vector<absl::string_view> t = absl::StrSplit(ack, '/');
  if (t.size() >= 9) t.erase(t.begin(), t.begin() + 2);
  uint64_t seq = 0;
  if (t.size() < 7 || !absl::SimpleAtoi(t[3], &seq)) return;
  auto stream = streams_.find(t[0]);
  if (stream == streams_.end()) return;
  Stream& s = *stream->second;
  auto it = s.consumers.find(t[1]);
  if (it == s.consumers.end()) return;
  Consumer& c = *it->second;
  const absl::string_view kind = absl::StripAsciiWhitespace(publish.payload);
  if (absl::StartsWith(kind, "-NAK")) {
    // Delivered again now.
    if (c.in_flight.erase(seq) > 0) c.redeliver.insert(seq);
  } else if (absl::StartsWith(kind, "+WPI")) {
    // In progress: the ack_wait starts again.
    auto f = c.in_flight.find(seq);
    if (f != c.in_flight.end()) {
      f->second.deadline = now_ + absl::Milliseconds(c.state.ack_wait_ms());
    }
  } else if (seq > c.state.ack_floor()) {
    // +ACK, an empty body, +NXT, +TERM: done with. An ack that comes after
    // the ack_wait, before the redelivery, still counts. Under ack_policy
    // all, an ack (not +TERM) is for every message delivered before too.
    const uint64_t first = c.state.ack_all() && !absl::StartsWith(kind, "+TERM")
                               ? c.state.ack_floor() + 1
                               : seq;
    bool moved = false;
    for (auto r = c.redeliver.lower_bound(first);
         r != c.redeliver.end() && *r <= seq;) {
      c.acked.insert(*r);
      r = c.redeliver.erase(r);
      moved = true;
    }
    for (auto f = c.in_flight.lower_bound(first);
         f != c.in_flight.end() && f->first <= seq;) {
      c.acked.insert(f->first);
      f = c.in_flight.erase(f);
      moved = true;
    }
    if (moved) RaiseAckFloor(s, c);
  }
  // A client that asked for a confirmation (ackAck) gets an empty message.
  AnswerJetStream(publish, "");
  // A later deadline (+WPI) leaves the timer early: it finds nothing due
  // and is set again.
  PumpConsumer(s, c);
}

}  // namespace manifold::internal
