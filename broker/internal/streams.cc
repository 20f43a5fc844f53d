// Durable streams: capturing publishes into batches (group commit), the
// $sys/streams requests, acks once durable, and replays. See streams.h for
// the state and docs/streams.md for the behaviour.

#include "broker/internal/streams.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "broker/internal/broker_core.h"
#include "broker/internal/message_checks.h"
#include "broker/storage/memory_stream_storage.h"
#include "broker/sys_topics.h"
#include "core/status.h"
#include "core/topic.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"

namespace manifold::internal {
namespace {

constexpr size_t kMaxStreamNameLength = 64;
// Topics whose stream CaptureForStreams remembers; past this it forgets all.
constexpr size_t kMaxCapturedTopics = 4096;

absl::Status ValidateStreamName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxStreamNameLength) {
    return ProtocolError(
        wire::INVALID_ARGUMENT,
        absl::StrCat("stream name '", name.substr(0, 80), "' must have 1 to ",
                     kMaxStreamNameLength, " characters"));
  }
  for (char ch : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(ch)) && ch != '-' &&
        ch != '_') {
      return ProtocolError(
          wire::INVALID_ARGUMENT,
          absl::StrCat("stream name '", name,
                       "' may hold only letters, digits, '-' and '_'"));
    }
  }
  return absl::OkStatus();
}

// The wire::StoredMessage of `publish`, serialized straight from the
// publish's views into memory of `batch`: building the message first would
// copy the payload once more, on the path every stored message takes.
absl::string_view EncodeStored(const PublishOp& publish, int64_t time_unix_ms,
                               StorageBatch& batch) {
  using google::protobuf::internal::WireFormatLite;
  using google::protobuf::io::CodedOutputStream;
  auto field_size = [](int field, size_t size) {
    return WireFormatLite::TagSize(field, WireFormatLite::TYPE_BYTES) +
           WireFormatLite::LengthDelimitedSize(size);
  };
  auto header_size = [&field_size](const HeaderView& h) {
    return field_size(wire::Header::kKeyFieldNumber, h.key.size()) +
           field_size(wire::Header::kValueFieldNumber, h.value.size());
  };
  size_t size =
      field_size(wire::StoredMessage::kTopicFieldNumber, publish.topic.size()) +
      field_size(wire::StoredMessage::kPayloadFieldNumber,
                 publish.payload.size()) +
      WireFormatLite::TagSize(wire::StoredMessage::kTimeUnixMsFieldNumber,
                              WireFormatLite::TYPE_INT64) +
      WireFormatLite::Int64Size(time_unix_ms);
  for (const HeaderView& h : publish.headers) {
    size +=
        field_size(wire::StoredMessage::kHeadersFieldNumber, header_size(h));
  }
  auto* const start = reinterpret_cast<uint8_t*>(batch.Allocate(size));
  uint8_t* out = start;
  auto length_delimited = [&out](int field, size_t size) {
    out = WireFormatLite::WriteTagToArray(
        field, WireFormatLite::WIRETYPE_LENGTH_DELIMITED, out);
    out = CodedOutputStream::WriteVarint32ToArray(static_cast<uint32_t>(size),
                                                  out);
  };
  auto bytes = [&out, &length_delimited](int field, absl::string_view value) {
    length_delimited(field, value.size());
    out = CodedOutputStream::WriteRawToArray(
        value.data(), static_cast<int>(value.size()), out);
  };
  bytes(wire::StoredMessage::kTopicFieldNumber, publish.topic);
  bytes(wire::StoredMessage::kPayloadFieldNumber, publish.payload);
  for (const HeaderView& h : publish.headers) {
    length_delimited(wire::StoredMessage::kHeadersFieldNumber, header_size(h));
    bytes(wire::Header::kKeyFieldNumber, h.key);
    bytes(wire::Header::kValueFieldNumber, h.value);
  }
  out = WireFormatLite::WriteInt64ToArray(
      wire::StoredMessage::kTimeUnixMsFieldNumber, time_unix_ms, out);
  return absl::string_view(reinterpret_cast<const char*>(start), out - start);
}

wire::StreamInfo InfoOf(const Stream& s) {
  wire::StreamInfo info;
  *info.mutable_config() = s.config;
  info.set_first_seq(s.state.first_seq);
  info.set_last_seq(s.state.last_seq);
  info.set_messages(s.state.messages);
  info.set_bytes(s.state.bytes);
  info.set_first_time_unix_ms(s.state.first_time_unix_ms);
  info.set_last_time_unix_ms(s.state.last_time_unix_ms);
  info.set_expired(s.expired);
  std::vector<const Consumer*> consumers;
  for (const auto& [name, c] : s.consumers) consumers.push_back(c.get());
  std::sort(consumers.begin(), consumers.end(),
            [](const Consumer* a, const Consumer* b) {
              return a->state.name() < b->state.name();
            });
  for (const Consumer* c : consumers) {
    wire::ConsumerState* shown = info.add_consumers();
    *shown = c->state;
    shown->set_in_flight(c->in_flight.size());
    shown->set_members(c->members.size());
  }
  return info;
}

}  // namespace

// --- Opening and managing streams -------------------------------------------

absl::Status BrokerCore::OpenStreams(StreamStorage* file_storage,
                                     std::vector<RecoveredStream> held,
                                     absl::Time now) {
  Advance(now);
  if (file_storage == nullptr && !held.empty()) {
    return absl::InvalidArgumentError("recovered streams without a storage");
  }
  file_lane_.storage = file_storage;
  for (RecoveredStream& r : held) {
    if (absl::Status s = ValidateStreamName(r.config.name()); !s.ok()) {
      return absl::DataLossError(absl::StrCat(
          "the storage holds a stream with a bad name: ", s.message()));
    }
    auto stream = std::make_unique<Stream>();
    stream->config = std::move(r.config);
    stream->config.set_storage(wire::STORAGE_FILE);
    stream->state = std::move(r.state);
    stream->state.name = stream->config.name();
    stream->assigned_last = stream->state.last_seq;
    stream->last_time_unix_ms = stream->state.last_time_unix_ms;
    for (const std::string& p : stream->config.topics()) {
      if (!ValidateTopic(p, TopicRole::kSubscription, topic_limits_).ok()) {
        return absl::DataLossError(absl::StrCat(
            "stream '", stream->config.name(), "' has a bad topic '", p, "'"));
      }
      stream->topics.Add(p);
    }
    stream->storage = file_storage;
    for (auto& [topic, seq] : r.last_per_topic) {
      stream->last_per_topic.emplace(std::move(topic), seq);
    }
    for (const wire::ConsumerState& c : r.consumers) {
      RestoreConsumer(*stream, c);
    }
    streams_[stream->config.name()] = std::move(stream);
  }
  capture_cache_.clear();
  if (!streams_.empty()) ScheduleStreamTimer();
  return absl::OkStatus();
}

absl::Status BrokerCore::CheckStreamConfig(wire::StreamConfig& config) const {
  if (absl::Status s = ValidateStreamName(config.name()); !s.ok()) return s;
  if (config.topics().empty()) {
    return ProtocolError(
        wire::INVALID_ARGUMENT,
        absl::StrCat("stream '", config.name(), "' names no topics"));
  }
  for (const std::string& p : config.topics()) {
    if (absl::Status s =
            ValidateTopic(p, TopicRole::kSubscription, topic_limits_);
        !s.ok()) {
      return ProtocolError(wire::INVALID_PATTERN,
                           absl::StrCat("stream '", config.name(),
                                        "': topic pattern: ", s.message()));
    }
    if (IsReserved(p)) {
      return ProtocolError(wire::RESERVED_TOPIC,
                           absl::StrCat("stream '", config.name(), "': topic '",
                                        p, "' is reserved for the broker"));
    }
    for (const auto& [name, other] : streams_) {
      if (name == config.name()) continue;
      if (other->topics.IntersectsPattern(p)) {
        return ProtocolError(
            wire::INVALID_ARGUMENT,
            absl::StrCat("stream '", config.name(), "': topics '", p,
                         "' overlap those of stream '", name, "' (",
                         absl::StrJoin(other->config.topics(), ", "), ")"));
      }
    }
  }
  if (config.storage() == wire::STORAGE_FILE && file_lane_.storage == nullptr) {
    return ProtocolError(
        wire::STORAGE_UNAVAILABLE,
        absl::StrCat("stream '", config.name(),
                     "': file storage needs a data directory (manifoldd "
                     "--data_dir); without one only memory streams can be "
                     "created"));
  }
  if (config.storage() == wire::STORAGE_MEMORY) {
    if (config.max_bytes() == 0 ||
        config.max_bytes() > options_.memory_stream_max_bytes()) {
      config.set_max_bytes(options_.memory_stream_max_bytes());
    }
  }
  return absl::OkStatus();
}

StreamStorage* BrokerCore::StorageFor(wire::StorageKind kind) {
  if (kind == wire::STORAGE_FILE) return file_lane_.storage;
  if (memory_storage_ == nullptr) {
    memory_storage_ = std::make_unique<MemoryStreamStorage>();
    memory_lane_.storage = memory_storage_.get();
  }
  return memory_lane_.storage;
}

StorageLane& BrokerCore::LaneOf(const Stream& s) {
  return s.storage == file_lane_.storage && s.storage != nullptr ? file_lane_
                                                                 : memory_lane_;
}

absl::StatusOr<Stream*> BrokerCore::PutStream(wire::StreamConfig config) {
  if (absl::Status s = CheckStreamConfig(config); !s.ok()) return s;
  auto it = streams_.find(config.name());
  if (it != streams_.end()) {
    Stream& s = *it->second;
    if (s.config.storage() != config.storage()) {
      return ProtocolError(
          wire::INVALID_ARGUMENT,
          absl::StrCat("stream '", config.name(),
                       "' exists with another storage kind; remove it first"));
    }
    if (s.config.SerializeAsString() == config.SerializeAsString()) return &s;
    const std::vector<AppendRecord>& gathered = LaneOf(s).gathering.appends;
    if (s.config.max_msgs_per_topic() != config.max_msgs_per_topic() &&
        (s.state.messages > 0 || s.assigned_last > s.state.last_seq ||
         std::any_of(gathered.begin(), gathered.end(),
                     [&](const AppendRecord& a) {
                       return a.stream == config.name();
                     }))) {
      // The storage keeps a held-sequence list per topic only for a stream
      // with the limit: one without has none to start from.
      return ProtocolError(
          wire::INVALID_ARGUMENT,
          absl::StrCat("stream '", config.name(),
                       "': max_msgs_per_topic cannot change while the stream "
                       "holds messages; purge it first"));
    }
    s.config = config;
    capture_cache_.clear();
    s.topics = PatternSet();
    for (const std::string& p : config.topics()) s.topics.Add(p);
    StorageLane& lane = LaneOf(s);
    lane.gathering.put_streams.push_back(config);
    lane.gathering.enforce_streams.push_back(config.name());
    return &s;
  }
  if (streams_.size() >= options_.max_streams()) {
    return ProtocolError(
        wire::INVALID_ARGUMENT,
        absl::StrCat("the broker has ", streams_.size(),
                     " streams; the limit is ", options_.max_streams()));
  }
  auto stream = std::make_unique<Stream>();
  stream->config = config;
  stream->state.name = config.name();
  for (const std::string& p : config.topics()) stream->topics.Add(p);
  stream->storage = StorageFor(config.storage());
  Stream* s = stream.get();
  streams_[config.name()] = std::move(stream);
  capture_cache_.clear();
  LaneOf(*s).gathering.put_streams.push_back(config);
  ScheduleStreamTimer();
  return s;
}

absl::StatusOr<wire::StreamInfo> BrokerCore::AddStream(
    const wire::StreamConfig& config, absl::Time now) {
  Advance(now);
  absl::StatusOr<Stream*> s = PutStream(config);
  if (!s.ok()) return s.status();
  wire::StreamInfo info = InfoOf(**s);
  FlushStorage();
  CollectStorage();
  return info;
}

wire::StreamList BrokerCore::ListStreams() const {
  std::vector<const Stream*> sorted;
  for (const auto& [name, s] : streams_) sorted.push_back(s.get());
  std::sort(sorted.begin(), sorted.end(), [](const Stream* a, const Stream* b) {
    return a->config.name() < b->config.name();
  });
  wire::StreamList list;
  for (const Stream* s : sorted) *list.add_streams() = InfoOf(*s);
  return list;
}

void BrokerCore::DropGathered(StorageLane& lane, const std::string& stream) {
  std::vector<AppendRecord>& appends = lane.gathering.appends;
  std::vector<size_t> new_index(appends.size(), SIZE_MAX);
  size_t kept = 0;
  for (size_t i = 0; i < appends.size(); ++i) {
    if (appends[i].stream == stream) {
      lane.gathering_bytes -= appends[i].record.size();
      continue;
    }
    new_index[i] = kept;
    if (kept != i) appends[kept] = std::move(appends[i]);
    ++kept;
  }
  appends.resize(kept);
  // A publisher whose message is dropped this way waits for the batch all
  // the same: its message was captured before the purge or removal that
  // drops it, as if it had been stored just before.
  for (auto& [ack, index] : lane.gathering_acks) {
    if (index != SIZE_MAX) index = new_index[index];
  }
}

bool BrokerCore::HandleStreamRequest(RequesterKind kind,
                                     ConnectionCore* requester, uint64_t op_id,
                                     absl::string_view topic,
                                     absl::string_view payload) {
  const bool add = topic == sys_topics::kStreamAdd;
  const bool list = topic == sys_topics::kStreamList;
  const bool info = topic == sys_topics::kStreamInfo;
  const bool purge = topic == sys_topics::kStreamPurge;
  const bool remove = topic == sys_topics::kStreamRemove;
  const bool remove_consumer = topic == sys_topics::kConsumerRemove;
  if (!add && !list && !info && !purge && !remove && !remove_consumer) {
    return false;
  }

  wire::ServerMessage m;
  wire::Response* response = m.mutable_response();
  response->set_op_id(op_id);
  auto reject = [&](absl::string_view why) {
    response->set_status(wire::REJECTED);
    response->set_message(std::string(why));
    Answer(kind, requester, m);
  };
  // Durable changes are answered once their batch is.
  auto answer_when_durable = [&](StorageLane& lane) {
    PendingAnswer& a = lane.gathering_answers.emplace_back();
    a.requester_kind = static_cast<int>(kind);
    if (requester != nullptr) a.requester = requester->id();
    a.op_id = op_id;
    a.response = *response;
  };
  if (list) {
    response->set_status(wire::REQUEST_OK);
    response->set_payload(ListStreams().SerializeAsString());
    Answer(kind, requester, m);
    return true;
  }
  if (add) {
    wire::StreamConfig config;
    if (!config.ParseFromString(std::string(payload))) {
      reject("the payload is not a serialized StreamConfig");
      return true;
    }
    const bool existed = streams_.contains(config.name());
    absl::StatusOr<Stream*> s = PutStream(std::move(config));
    if (!s.ok()) {
      reject(s.status().message());
      return true;
    }
    response->set_status(wire::REQUEST_OK);
    response->set_payload(InfoOf(**s).SerializeAsString());
    StorageLane& lane = LaneOf(**s);
    if (lane.gathering.put_streams.empty() && existed) {
      Answer(kind, requester, m);  // unchanged: nothing to write
      return true;
    }
    answer_when_durable(lane);
    if (!existed) lane.gathering_answers.back().created = (*s)->config.name();
    return true;
  }
  wire::ConsumerState named;
  if (remove_consumer &&
      (!named.ParseFromString(std::string(payload)) || named.name().empty())) {
    reject(
        "the payload is not a serialized ConsumerState naming a stream "
        "and a consumer");
    return true;
  }
  const std::string name =
      remove_consumer ? named.stream() : std::string(payload);
  auto it = streams_.find(name);
  if (it == streams_.end()) {
    reject(absl::StrCat("no stream '", name.substr(0, 80), "'"));
    return true;
  }
  Stream& s = *it->second;
  StorageLane& lane = LaneOf(s);
  response->set_status(wire::REQUEST_OK);
  if (info) {
    response->set_payload(InfoOf(s).SerializeAsString());
    Answer(kind, requester, m);
    return true;
  }
  if (remove_consumer) {
    if (!RemoveConsumer(s, named.name())) {
      reject(absl::StrCat("stream '", name, "' has no consumer '",
                          named.name().substr(0, 80), "'"));
      return true;
    }
    response->set_payload(InfoOf(s).SerializeAsString());
    answer_when_durable(lane);
    return true;
  }
  DropGathered(lane, name);
  if (purge) {
    lane.gathering.purge_streams.push_back(name);
    s.last_per_topic.clear();
    wire::StreamInfo after = InfoOf(s);
    after.set_first_seq(0);
    after.set_messages(0);
    after.set_bytes(0);
    after.set_first_time_unix_ms(0);
    response->set_payload(after.SerializeAsString());
    answer_when_durable(lane);
    return true;
  }
  // remove: its replaying subscriptions and its consumers' end, saying why.
  lane.gathering.remove_streams.push_back(name);
  std::vector<SubscriptionId> ended;
  for (const auto& cursor : s.cursors) ended.push_back(cursor->subscription);
  for (auto& [consumer_name, consumer] : s.consumers) {
    timers_.Cancel(consumer->timer);
    consumer_ids_.erase(consumer->id);
    for (SubscriptionId member : consumer->members) ended.push_back(member);
  }
  streams_.erase(it);
  capture_cache_.clear();
  const std::string why =
      absl::StrCat("stream '", name, "' was removed; its replay ended");
  for (const SubscriptionId ended_id : ended) {
    EndStoredSubscription(ended_id, why, "stream removed");
  }
  answer_when_durable(lane);
  return true;
}

void BrokerCore::EndStoredSubscription(SubscriptionId id, absl::string_view why,
                                       absl::string_view reason) {
  consumer_members_.erase(id);
  Subscription* sub = index_.Find(id);
  if (sub == nullptr) return;
  ConnectionCore& c = *sub->connection;
  wire::ServerMessage error;
  wire::Error* e = error.mutable_error();
  e->set_code(wire::UNKNOWN_STREAM);
  e->set_message(std::string(why));
  e->set_subscription_id(sub->id.value());
  e->set_pattern(sub->pattern);
  Send(c, error);
  c.subscriptions_.erase(sub->id);
  RemoveSubscription(*sub, /*emit_event=*/true, reason);
}

bool BrokerCore::RemoveConsumer(Stream& stream, const std::string& name) {
  auto it = stream.consumers.find(name);
  if (it == stream.consumers.end()) return false;
  std::unique_ptr<Consumer> consumer = std::move(it->second);
  stream.consumers.erase(it);
  timers_.Cancel(consumer->timer);
  consumer_ids_.erase(consumer->id);
  StorageLane& lane = LaneOf(stream);
  // A state waiting to be written would bring it back.
  std::vector<wire::ConsumerState>& puts = lane.gathering.put_consumers;
  puts.erase(std::remove_if(puts.begin(), puts.end(),
                            [&](const wire::ConsumerState& c) {
                              return c.stream() == stream.config.name() &&
                                     c.name() == name;
                            }),
             puts.end());
  // (A memory-only one was never written.)
  if (!consumer->memory_only) {
    lane.gathering.remove_consumers.emplace_back(stream.config.name(), name);
  }
  // Its bound subscriptions end, saying why.
  const std::string why = absl::StrCat(
      consumer->ephemeral() ? "ephemeral" : "durable", " consumer '", name,
      "' of stream '", stream.config.name(), "' was removed");
  for (const SubscriptionId member : consumer->members) {
    EndStoredSubscription(member, why, "consumer removed");
  }
  for (const PullRequest& pull : consumer->pulls) {
    SendPullStatus(pull, "409", "Consumer Deleted");
  }
  return true;
}

// --- Capturing publishes ----------------------------------------------------

int64_t BrokerCore::StampFor(Stream& s) {
  const int64_t wall = WallNowMs();
  s.last_time_unix_ms = std::max(s.last_time_unix_ms, wall);
  return s.last_time_unix_ms;
}

bool BrokerCore::CaptureForStreams(ConnectionCore* publisher,
                                   const PublishOp& publish, uint64_t delivered,
                                   bool js_reply) {
  const bool wildcard = HasWildcard(publish.topic);
  // Streams' topics never overlap, so a literal topic belongs to one stream
  // at most; which one is remembered (publishers repeat their topics).
  Stream* only = nullptr;
  if (!wildcard) {
    auto cached = capture_cache_.find(publish.topic);
    if (cached != capture_cache_.end()) {
      only = cached->second;
    } else {
      for (auto& [name, stream] : streams_) {
        if (stream->topics.MatchesTopic(publish.topic)) {
          only = stream.get();
          break;
        }
      }
      if (capture_cache_.size() >= kMaxCapturedTopics) capture_cache_.clear();
      capture_cache_.emplace(publish.topic, only);
    }
    if (only == nullptr) return false;
  }
  uint64_t ack_id = 0;
  bool captured = false;
  // Encoded once, into the first capturing lane's batch.
  absl::string_view record;
  StorageBatch* record_in = nullptr;
  for (auto& [name, stream] : streams_) {
    Stream& s = *stream;
    if (wildcard ? !s.topics.IntersectsPattern(publish.topic) : &s != only) {
      continue;
    }
    StorageLane& lane = LaneOf(s);
    const bool waits = publisher != nullptr && (publish.ack || js_reply);
    const size_t waiting = lane.gathering_bytes + lane.in_flight_bytes;
    if (waiting + MessageSize(publish) > options_.max_stream_pending_bytes()) {
      ++stats_.stream_refusals;
      if (waits) {
        const absl::Status busy = ProtocolError(
            wire::STORAGE_UNAVAILABLE,
            absl::StrCat("stream '", name, "' is behind: ", waiting,
                         " bytes wait for the storage (the limit is ",
                         options_.max_stream_pending_bytes(), ")"));
        if (ack_id != 0) {
          pending_acks_[ack_id].failure = busy;
        } else {
          FailPublish(*publisher, publish, busy, js_reply);
        }
        return true;
      }
      continue;
    }
    StorageBatch& batch = lane.gathering;
    if (record_in == nullptr) {
      record = EncodeStored(publish, StampFor(s), batch);
      record_in = &batch;
    } else if (record_in != &batch) {
      // A wildcard publish that streams of both lanes capture.
      record = batch.Keep(record);
      record_in = &batch;
    }
    AppendRecord& a = batch.appends.emplace_back();
    a.stream = name;
    a.topic = batch.Keep(publish.topic);
    a.time_unix_ms = StampFor(s);
    a.record = record;
    lane.gathering_bytes += a.record.size();
    ++stats_.stored_messages;
    captured = true;
    if (!waits) continue;
    if (ack_id == 0) {
      ack_id = ++last_ack_id_;
      PendingAck& ack = pending_acks_[ack_id];
      // A publish made for a session without a link (Bayeux) is answered on
      // the link that made it, as SendAck would have answered at once.
      ack.connection = (reply_link_ != nullptr ? reply_link_ : publisher)->id();
      ack.op_id = publish.op_id;
      ack.ack = publish.ack;
      ack.delivered = delivered;
      if (js_reply) {
        ack.SetReply(publish.reply_to, publish.spelled_reply_to,
                     static_cast<uint8_t>(publish.spelling));
      }
    }
    PendingAck& ack = pending_acks_[ack_id];
    ++ack.waiting;
    lane.gathering_acks.emplace_back(ack_id, lane.gathering.appends.size() - 1);
  }
  return captured && ack_id != 0;
}

void BrokerCore::FailPublish(ConnectionCore& publisher,
                             const PublishOp& publish, const absl::Status& why,
                             bool js_reply) {
  if (publish.ack) SendError(publisher, publish.op_id, why);
  if (js_reply) {
    PendingAck ack;
    ack.SetReply(publish.reply_to, publish.spelled_reply_to,
                 static_cast<uint8_t>(publish.spelling));
    ack.failure = why;
    PublishStreamReply(ack);
  }
}

void BrokerCore::FinishAck(uint64_t ack_id) {
  auto it = pending_acks_.find(ack_id);
  if (it == pending_acks_.end()) return;
  PendingAck ack = std::move(it->second);
  pending_acks_.erase(it);
  ConnectionCore* c = FindConnection(ack.connection);
  if (c != nullptr && ack.ack) {
    if (ack.failure.ok()) {
      SendAck(*c, ack.op_id, 0, ack.delivered);
    } else {
      SendError(*c, ack.op_id, ack.failure);
    }
  }
  if (ack.reply_topic_size > 0) PublishStreamReply(ack);
}

// --- Writing and collecting -------------------------------------------------

void BrokerCore::FlushStorage() {
  if (!dirty_consumers_.empty()) {
    // Each consumer's state is written with the next batch of its lane.
    std::vector<std::pair<std::string, std::string>> still;
    for (auto& [stream_name, name] : dirty_consumers_) {
      auto stream = streams_.find(stream_name);
      if (stream == streams_.end()) continue;
      auto c = stream->second->consumers.find(name);
      if (c == stream->second->consumers.end()) continue;
      if (c->second->memory_only) {
        c->second->dirty = false;  // made memory-only after it was marked
        continue;
      }
      StorageLane& lane = LaneOf(*stream->second);
      if (lane.storage == nullptr) continue;
      if (!lane.can_write()) {
        still.emplace_back(stream_name, name);
        continue;
      }
      c->second->dirty = false;
      lane.gathering.put_consumers.push_back(c->second->state);
    }
    dirty_consumers_ = std::move(still);
  }
  for (StorageLane* lane : {&file_lane_, &memory_lane_}) {
    if (!lane->can_write()) continue;
    StorageBatch& b = lane->gathering;
    const bool empty = b.put_streams.empty() && b.remove_streams.empty() &&
                       b.purge_streams.empty() && b.appends.empty() &&
                       b.enforce_streams.empty() && b.put_consumers.empty() &&
                       b.remove_consumers.empty();
    const bool sync_due =
        lane->unsynced && options_.stream_sync() == BrokerOptions::INTERVAL &&
        now_ - last_sync_ >=
            absl::Milliseconds(options_.stream_sync_interval_ms());
    if (empty && !sync_due && lane->gathering_answers.empty()) continue;
    // Sequences are given now, not at capture: a failed batch then leaves
    // no hole for the next one.
    for (AppendRecord& a : b.appends) {
      auto s = streams_.find(a.stream);
      a.seq = ++s->second->assigned_last;
    }
    for (const auto& [ack_id, index] : lane->gathering_acks) {
      if (index == SIZE_MAX) continue;
      PendingAck& ack = pending_acks_[ack_id];
      if (ack.seq == 0) {
        ack.stream = b.appends[index].stream;
        ack.seq = b.appends[index].seq;
      }
    }
    WrittenBatch& written = lane->in_flight.emplace_back();
    written.acks = std::move(lane->gathering_acks);
    lane->gathering_acks.clear();
    written.answers = std::move(lane->gathering_answers);
    lane->gathering_answers.clear();
    for (const AppendRecord& a : b.appends) {
      // A run of one topic needs its last sequence only.
      if (!written.topics.empty() &&
          std::get<0>(written.topics.back()) == a.stream &&
          std::get<1>(written.topics.back()) == a.topic) {
        std::get<2>(written.topics.back()) = a.seq;
        continue;
      }
      written.topics.emplace_back(a.stream, a.topic, a.seq);
    }
    b.id = ++last_batch_id_;
    b.now_unix_ms = WallNowMs();
    // A batch of consumer positions only, that nobody waits for, is not
    // worth a sync of its own: an acknowledgement without an answer may be
    // lost in a crash (the message comes again), and the next synced batch
    // makes it durable with everything before it.
    const bool positions_only =
        b.appends.empty() && b.put_streams.empty() &&
        b.remove_streams.empty() && b.purge_streams.empty() &&
        b.enforce_streams.empty() && b.remove_consumers.empty() &&
        written.acks.empty() && written.answers.empty();
    switch (options_.stream_sync()) {
      case BrokerOptions::ALWAYS:
        b.sync = !positions_only;
        break;
      case BrokerOptions::INTERVAL:
        b.sync = sync_due;
        break;
      case BrokerOptions::NEVER:
        b.sync = false;
        break;
    }
    if (b.sync) {
      last_sync_ = now_;
      lane->unsynced = false;
    } else if (!b.appends.empty()) {
      lane->unsynced = true;
    }
    for (const AppendRecord& a : b.appends) {
      if (written.streams.empty() || written.streams.back().first != a.stream) {
        written.streams.emplace_back(a.stream, 0);
      }
      ++written.streams.back().second;
    }
    written.bytes = lane->gathering_bytes;
    lane->in_flight_bytes += written.bytes;
    lane->gathering_bytes = 0;
    StorageBatch batch = std::move(b);
    b = StorageBatch();
    ++stats_.storage_batches;
    lane->storage->Write(std::move(batch));
  }
}

void BrokerCore::CollectStorage() {
  for (int round = 0; round < 4; ++round) {
    bool any = false;
    for (StorageLane* lane : {&file_lane_, &memory_lane_}) {
      if (lane->storage == nullptr) continue;
      storage_done_.clear();
      lane->storage->Poll(storage_done_);
      for (StorageCompletion& done : storage_done_) {
        any = true;
        if (done.kind == StorageCompletion::Kind::kBatch) {
          OnBatchDone(*lane, done.batch);
        } else if (lane->consumer_reads.contains(done.read.id)) {
          OnConsumerRead(*lane, done.read);
        } else {
          OnReadDone(*lane, done.read);
        }
      }
    }
    // A storage that finishes at once (memory) gets the next batch now,
    // and finishes reads a replay asked for meanwhile.
    FlushStorage();
    if (!any) break;
  }
  PumpCursors();
}

void BrokerCore::OnBatchDone(StorageLane& lane, BatchDone& done) {
  // (Nothing is in flight for a completion this broker did not write: it
  // settles nothing, and its states still count.)
  WrittenBatch written;
  if (!lane.in_flight.empty()) {
    written = std::move(lane.in_flight.front());
    lane.in_flight.pop_front();
    lane.in_flight_bytes -= written.bytes;
  }
  if (!done.status.ok()) {
    ++stats_.storage_failures;
    // A batch written after one that failed fails for the failed one's
    // reason (its sequences do not follow what the stream holds).
    const absl::Status cause = lane.draining.ok() ? done.status : lane.draining;
    lane.draining = lane.in_flight.empty() ? absl::OkStatus() : cause;
    const absl::Status why = ProtocolError(
        wire::STORAGE_UNAVAILABLE,
        absl::StrCat("the message could not be stored: ", cause.message()));
    for (auto& [name, s] : streams_) {
      if (&LaneOf(*s) == &lane) s->assigned_last = s->state.last_seq;
    }
    for (const auto& [ack_id, index] : written.acks) {
      auto it = pending_acks_.find(ack_id);
      if (it == pending_acks_.end()) continue;
      it->second.failure = why;
      if (--it->second.waiting <= 0) FinishAck(ack_id);
    }
    for (PendingAnswer& a : written.answers) {
      if (!a.created.empty()) streams_.erase(a.created);
      a.response.set_status(wire::REJECTED);
      a.response.set_message(
          absl::StrCat("the storage failed: ", cause.message()));
      a.response.clear_payload();
      SendStreamAnswer(a);
    }
    if (!storage_failing_) {
      storage_failing_ = true;
      wire::BrokerEvent event;
      event.mutable_storage_failed()->set_message(std::string(cause.message()));
      Emit(std::move(event), sys_topics::kStorageFailed);
    }
    return;
  }
  // A batch that touched no stream the failed one did may succeed while
  // draining; the drain ends with the last batch in flight all the same.
  if (lane.in_flight.empty()) lane.draining = absl::OkStatus();
  if (storage_failing_) {
    storage_failing_ = false;
    wire::BrokerEvent event;
    event.mutable_storage_recovered();
    Emit(std::move(event), sys_topics::kStorageRecovered);
  }
  for (StreamState& state : done.states) {
    auto it = streams_.find(state.name);
    if (it == streams_.end()) continue;
    Stream& s = *it->second;
    uint64_t appended = 0;
    for (const auto& [name, count] : written.streams) {
      if (name == state.name) appended += count;
    }
    const uint64_t before = s.state.messages + appended;
    if (before > state.messages &&
        state.last_seq == s.state.last_seq + appended) {
      s.expired += before - state.messages;
    }
    s.state = std::move(state);
    if (s.assigned_last < s.state.last_seq) s.assigned_last = s.state.last_seq;
  }
  for (auto& [stream, topic, seq] : written.topics) {
    auto it = streams_.find(stream);
    if (it == streams_.end()) continue;
    Stream& s = *it->second;
    s.last_per_topic[topic] = seq;
    if (s.last_per_topic.size() > 2 * s.last_per_topic_pruned_size + 1024) {
      absl::erase_if(s.last_per_topic, [&](const auto& entry) {
        return entry.second < s.state.first_seq;
      });
      s.last_per_topic_pruned_size = s.last_per_topic.size();
    }
  }
  for (const auto& [ack_id, index] : written.acks) {
    auto it = pending_acks_.find(ack_id);
    if (it == pending_acks_.end()) continue;
    if (--it->second.waiting <= 0) FinishAck(ack_id);
  }
  for (PendingAnswer& a : written.answers) SendStreamAnswer(a);
  // Replays that had caught up read what just became durable.
  for (const auto& [name, count] : written.streams) {
    auto it = streams_.find(name);
    if (it == streams_.end()) continue;
    for (auto& cursor : it->second->cursors) ReadMore(*it->second, *cursor);
    for (auto& [consumer_name, consumer] : it->second->consumers) {
      PumpConsumer(*it->second, *consumer);
    }
  }
}

void BrokerCore::SendStreamAnswer(PendingAnswer& a) {
  wire::ServerMessage m;
  *m.mutable_response() = std::move(a.response);
  const auto kind = static_cast<RequesterKind>(a.requester_kind);
  ConnectionCore* requester = nullptr;
  if (kind == RequesterKind::kConnection) {
    requester = FindConnection(a.requester);
    if (requester == nullptr) return;
  }
  Answer(kind, requester, m);
}

void BrokerCore::ScheduleStreamTimer() {
  if (streams_timer_.when != absl::InfinitePast()) return;
  bool needed = options_.stream_sync() == BrokerOptions::INTERVAL;
  for (const auto& [name, s] : streams_) needed |= s->config.max_age_ms() > 0;
  if (!needed) return;
  const absl::Duration every =
      options_.stream_sync() == BrokerOptions::INTERVAL
          ? std::min(absl::Seconds(1),
                     absl::Milliseconds(options_.stream_sync_interval_ms()))
          : absl::Seconds(1);
  streams_timer_ = timers_.Schedule(now_ + every, TimerKind::kStreams, 0);
}

void BrokerCore::OnStreamTimer() {
  streams_timer_ = TimerQueue::Key();
  for (auto& [name, s] : streams_) {
    if (s->config.max_age_ms() > 0 && s->state.messages > 0) {
      LaneOf(*s).gathering.enforce_streams.push_back(name);
    }
  }
  FlushStorage();
  CollectStorage();
  ScheduleStreamTimer();
}

// --- Replays ----------------------------------------------------------------

Stream* BrokerCore::StreamStoringAll(const wire::Subscribe& subscribe) {
  const std::string& named = subscribe.replay().stream();
  for (auto& [name, s] : streams_) {
    if (!named.empty() && name != named) continue;
    for (const std::string& pattern : s->config.topics()) {
      if (Covers(pattern, subscribe.pattern())) return s.get();
    }
  }
  return nullptr;
}

std::optional<uint64_t> BrokerCore::ReplayPosition(const Stream& stream,
                                                   const wire::Replay& replay) {
  switch (replay.start_case()) {
    case wire::Replay::kFromSeq:
      return std::max<uint64_t>(replay.from_seq(), 1) - 1;
    case wire::Replay::START_NOT_SET:
      // As StartReplay starts it.
      return stream.assigned_last;
    default:
      return std::nullopt;
  }
}

absl::StatusOr<Stream*> BrokerCore::StreamForReplay(
    const wire::Subscribe& subscribe) {
  const std::string& named = subscribe.replay().stream();
  if (!named.empty()) {
    auto it = streams_.find(named);
    if (it == streams_.end()) {
      return ProtocolError(
          wire::UNKNOWN_STREAM,
          absl::StrCat("no stream '", named.substr(0, 80), "' to replay"));
    }
    if (!it->second->topics.IntersectsPattern(subscribe.pattern())) {
      return ProtocolError(
          wire::UNKNOWN_STREAM,
          absl::StrCat("stream '", named, "' stores no topic that '",
                       subscribe.pattern(), "' matches"));
    }
    return it->second.get();
  }
  std::vector<Stream*> found;
  for (auto& [name, s] : streams_) {
    if (s->topics.IntersectsPattern(subscribe.pattern()))
      found.push_back(s.get());
  }
  if (found.size() == 1) return found[0];
  if (found.empty()) {
    return ProtocolError(wire::UNKNOWN_STREAM,
                         absl::StrCat("no stream stores topics that '",
                                      subscribe.pattern(), "' matches"));
  }
  std::vector<std::string> names;
  for (const Stream* s : found) names.push_back(s->config.name());
  std::sort(names.begin(), names.end());
  return ProtocolError(
      wire::UNKNOWN_STREAM,
      absl::StrCat("'", subscribe.pattern(), "' matches topics of streams ",
                   absl::StrJoin(names, ", "), "; name one to replay"));
}

void BrokerCore::StartReplay(Stream& stream, const wire::Replay& replay,
                             Subscription& sub) {
  auto cursor = std::make_unique<ReplayCursor>();
  cursor->subscription = sub.id;
  cursor->pattern = sub.pattern;
  const StreamState& st = stream.state;
  cursor->first_read = StartOf(stream, replay);
  cursor->next_seq = cursor->first_read.next_seq;
  if (replay.start_case() == wire::Replay::kLastPerTopic) {
    std::vector<uint64_t> seqs;
    for (const auto& [topic, seq] : stream.last_per_topic) {
      if (seq >= st.first_seq && seq <= st.last_seq &&
          StoredTopicReaches(sub.pattern, topic)) {
        seqs.push_back(seq);
      }
    }
    std::sort(seqs.begin(), seqs.end());
    cursor->seqs.assign(seqs.begin(), seqs.end());
    cursor->next_seq = st.last_seq + 1;
  }
  ReplayCursor& c = *cursor;
  stream.cursors.push_back(std::move(cursor));
  ReadMore(stream, c);
}

void BrokerCore::ReadMore(Stream& stream, ReplayCursor& cursor) {
  if (cursor.reading || !cursor.ready.empty()) return;
  ReadRequest read;
  if (!cursor.seqs.empty()) {
    const size_t n =
        std::min<size_t>(cursor.seqs.size(), options_.replay_batch_messages());
    read.seqs.assign(cursor.seqs.begin(), cursor.seqs.begin() + n);
    cursor.seqs.erase(cursor.seqs.begin(), cursor.seqs.begin() + n);
  } else if (cursor.next_seq <= stream.state.last_seq) {
    read.from_seq = cursor.next_seq;
    cursor.first_read.AddTo(read);
  } else {
    return;  // caught up: the next durable batch reads on
  }
  read.id = ++last_read_id_;
  read.stream = stream.config.name();
  read.max_messages = options_.replay_batch_messages();
  read.max_bytes = std::max<size_t>(options_.max_outbound_bytes() / 2, 1);
  cursor.reading = true;
  StorageLane& lane = LaneOf(stream);
  lane.reads[read.id] = {stream.config.name(), cursor.subscription};
  ++stats_.storage_reads;
  lane.storage->Read(std::move(read));
}

ReplayCursor* BrokerCore::FindCursor(const std::string& stream_name,
                                     SubscriptionId id, Stream** stream) {
  auto it = streams_.find(stream_name);
  if (it == streams_.end()) return nullptr;
  for (auto& cursor : it->second->cursors) {
    if (cursor->subscription == id) {
      *stream = it->second.get();
      return cursor.get();
    }
  }
  return nullptr;
}

void BrokerCore::OnReadDone(StorageLane& lane, ReadDone& done) {
  auto r = lane.reads.find(done.id);
  if (r == lane.reads.end()) return;
  const auto [stream_name, id] = std::move(r->second);
  lane.reads.erase(r);
  Stream* stream = nullptr;
  ReplayCursor* cursor = FindCursor(stream_name, id, &stream);
  if (cursor == nullptr) return;  // the subscription or stream is gone
  cursor->reading = false;
  Subscription* sub = index_.Find(id);
  if (sub == nullptr) return;
  if (!done.status.ok()) {
    // The replay cannot go on without a gap: it ends, saying why.
    ConnectionCore& c = *sub->connection;
    wire::ServerMessage error;
    wire::Error* e = error.mutable_error();
    e->set_code(wire::STORAGE_UNAVAILABLE);
    e->set_message(absl::StrCat("the replay of stream '", stream->config.name(),
                                "' failed: ", done.status.message()));
    e->set_subscription_id(id.value());
    e->set_pattern(sub->pattern);
    Send(c, error);
    c.subscriptions_.erase(id);
    RemoveSubscription(*sub, /*emit_event=*/true, "replay failed");
    return;
  }
  for (StoredRecord& rec : done.messages)
    cursor->ready.push_back(std::move(rec));
  cursor->first_read.FirstReadDone();
  if (done.next_seq > cursor->next_seq) cursor->next_seq = done.next_seq;
  DeliverReady(*stream, *cursor);
}

void BrokerCore::DeliverReady(Stream& stream, ReplayCursor& cursor) {
  Subscription* sub = index_.Find(cursor.subscription);
  if (sub == nullptr) return;  // swept later (SweepCursors)
  ConnectionCore& c = *sub->connection;
  const size_t room = std::max<size_t>(options_.max_outbound_bytes() / 2, 1);
  wire::StoredMessage stored;
  while (!cursor.ready.empty()) {
    if (c.state_ == ConnectionState::kClosing) return;
    if (c.outbound_.size() >= room) {
      cursors_waiting_ = true;
      return;
    }
    StoredRecord rec = std::move(cursor.ready.front());
    cursor.ready.pop_front();
    if (!stored.ParseFromString(rec.record)) continue;
    if (!StoredTopicReaches(sub->pattern, stored.topic())) continue;
    if (sub->filter != nullptr &&
        !sub->filter->Allows(stored.topic(), sub->pattern)) {
      continue;
    }
    DeliverStored(c, sub->id, rec.seq, stored, /*redelivered=*/false);
    if (++sub->delivered == sub->max_messages) {
      c.subscriptions_.erase(sub->id);
      RemoveSubscription(*sub, /*emit_event=*/true);
      return;
    }
  }
  ReadMore(stream, cursor);
}

void BrokerCore::DeliverStored(ConnectionCore& c, SubscriptionId sub,
                               uint64_t seq, const wire::StoredMessage& stored,
                               bool redelivered, absl::string_view reply_to) {
  if (c.native_) {
    // With its sequence, time and mark, which only the native protocol has.
    wire::ServerMessage m;
    wire::Deliver* d = m.mutable_deliver();
    d->set_subscription_id(sub.value());
    d->set_topic(stored.topic());
    d->set_payload(stored.payload());
    *d->mutable_headers() = stored.headers();
    d->set_stream_seq(seq);
    d->set_stream_time_unix_ms(stored.time_unix_ms());
    d->set_redelivered(redelivered);
    d->set_reply_to(std::string(reply_to));
    Send(c, m);
  } else {
    PublishOp op;
    op.topic = stored.topic();
    op.payload = stored.payload();
    op.reply_to = reply_to;
    op.stream_seq = seq;
    for (const wire::Header& h : stored.headers()) {
      op.headers.push_back({h.key(), h.value()});
    }
    SharedMessage message(op, encode_scratch_, ++last_message_id_);
    message.set_single_recipient(true);
    c.codec_->EncodeDelivery(message, sub, c.outbound_);
    ++stats_.messages_out;
    MarkChanged(c);
  }
  ++stats_.deliveries;
  ++stats_.replayed_messages;
}

void BrokerCore::PumpCursors() {
  if (cursors_waiting_) {
    cursors_waiting_ = false;
    for (auto& [name, s] : streams_) {
      // By index: delivering never adds or removes cursors (removal waits
      // for SweepCursors).
      for (size_t i = 0; i < s->cursors.size(); ++i) {
        if (!s->cursors[i]->ready.empty()) DeliverReady(*s, *s->cursors[i]);
      }
      for (auto& [consumer_name, consumer] : s->consumers) {
        PumpConsumer(*s, *consumer);
      }
    }
  }
  SweepCursors();
}

void BrokerCore::SweepCursors() {
  if (!cursors_to_sweep_) return;
  cursors_to_sweep_ = false;
  for (auto& [name, s] : streams_) {
    std::erase_if(s->cursors, [&](const std::unique_ptr<ReplayCursor>& c) {
      return index_.Find(c->subscription) == nullptr;
    });
  }
}

}  // namespace manifold::internal
