// Durable consumers (docs/streams.md): a position in a stream, kept in the
// storage, with explicit acknowledgements, redelivery after ack_wait, a bound
// on what is in flight, and subscriptions sharing one consumer (each message
// to one of them). At-least-once: after a restart everything past the
// acknowledged floor is delivered again, marked redelivered when it had been
// delivered before.

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "broker/internal/broker_core.h"
#include "broker/internal/streams.h"
#include "core/nats/subject.h"
#include "core/status.h"
#include "core/topic.h"

namespace manifold::internal {
namespace {

constexpr uint64_t kDefaultAckWaitMs = 30000;
constexpr uint64_t kDefaultMaxInFlight = 1000;
constexpr size_t kMaxConsumerNameLength = 64;

}  // namespace

absl::Status CheckConsumerName(absl::string_view name) {
  bool valid = !name.empty() && name.size() <= kMaxConsumerNameLength;
  for (char ch : name) {
    valid &= absl::ascii_isalnum(static_cast<unsigned char>(ch)) || ch == '-' ||
             ch == '_';
  }
  if (valid) return absl::OkStatus();
  return ProtocolError(
      wire::INVALID_ARGUMENT,
      absl::StrCat("consumer name '", name.substr(0, 80),
                   "' must have 1 to 64 letters, digits, '-' or '_'"));
}

absl::Status BrokerCore::CheckConsumer(const Stream& stream,
                                       const wire::Subscribe& subscribe) const {
  const std::string& name = subscribe.consumer().name();
  if (absl::Status s = CheckConsumerName(name); !s.ok()) return s;
  if (subscribe.replay().start_case() == wire::Replay::kLastPerTopic) {
    return ProtocolError(wire::INVALID_ARGUMENT,
                         "a durable consumer cannot start at the last "
                         "message per topic");
  }
  auto it = stream.consumers.find(name);
  if (it != stream.consumers.end() &&
      it->second->state.pattern() != subscribe.pattern()) {
    return ProtocolError(
        wire::INVALID_ARGUMENT,
        absl::StrCat("consumer '", name, "' of stream '", stream.config.name(),
                     "' delivers '", it->second->state.pattern(), "', not '",
                     subscribe.pattern(), "'"));
  }
  return absl::OkStatus();
}

void BrokerCore::RestoreConsumer(Stream& stream,
                                 const wire::ConsumerState& state) {
  auto consumer = std::make_unique<Consumer>();
  consumer->state = state;
  consumer->state.clear_in_flight();
  consumer->state.clear_members();
  consumer->next_seq = state.ack_floor() + 1;
  consumer->id = ++last_consumer_id_;
  PutOffPushHeartbeat(*consumer);
  // An ephemeral one's subscribers have its threshold to come back.
  if (consumer->ephemeral()) WatchInterest(*consumer);
  consumer_ids_[consumer->id] = {stream.config.name(), state.name()};
  stream.consumers[state.name()] = std::move(consumer);
}

Consumer& BrokerCore::OpenConsumer(Stream& stream, const std::string& name,
                                   absl::string_view pattern,
                                   const wire::Replay& start) {
  auto [it, created] = stream.consumers.try_emplace(name);
  if (created) {
    it->second = std::make_unique<Consumer>();
    Consumer& c = *it->second;
    c.id = ++last_consumer_id_;
    consumer_ids_[c.id] = {stream.config.name(), name};
    c.state.set_stream(stream.config.name());
    c.state.set_name(name);
    c.state.set_pattern(std::string(pattern));
    c.state.set_ack_wait_ms(kDefaultAckWaitMs);
    c.state.set_max_in_flight(kDefaultMaxInFlight);
    // A start time, or the last N held, is for the first read to find; what
    // it passes over counts as acknowledged.
    c.first_read = StartOf(stream, start);
    const uint64_t first = c.first_read.next_seq;
    c.state.set_ack_floor(first - 1);
    c.next_seq = first;
    MarkDirty(stream, c);
  }
  return *it->second;
}

void BrokerCore::SetConsumerLimits(Stream& stream, Consumer& c,
                                   uint64_t ack_wait_ms,
                                   uint64_t max_in_flight) {
  const uint64_t wait = ack_wait_ms == 0 ? kDefaultAckWaitMs : ack_wait_ms;
  const uint64_t most =
      max_in_flight == 0 ? kDefaultMaxInFlight : max_in_flight;
  if (wait == c.state.ack_wait_ms() && most == c.state.max_in_flight()) {
    return;
  }
  c.state.set_ack_wait_ms(wait);
  c.state.set_max_in_flight(most);
  MarkDirty(stream, c);
}

void BrokerCore::BindConsumer(Stream& stream, const wire::Subscribe& subscribe,
                              Subscription& sub) {
  const wire::ConsumerOptions& options = subscribe.consumer();
  Consumer& c = OpenConsumer(stream, options.name(), subscribe.pattern(),
                             subscribe.replay());
  // Options given by a later subscriber change the consumer.
  SetConsumerLimits(stream, c, options.ack_wait_ms(), options.max_in_flight());
  c.members.push_back(sub.id);
  consumer_members_[sub.id] = {stream.config.name(), options.name()};
  PumpConsumer(stream, c);
}

void BrokerCore::RaiseAckFloor(Stream& stream, Consumer& c) {
  uint64_t floor = c.state.ack_floor();
  while (true) {
    if (!c.not_held.empty() && c.not_held.begin()->first <= floor + 1) {
      floor = std::max(floor, c.not_held.begin()->second - 1);
      c.not_held.erase(c.not_held.begin());
    } else if (!c.acked.empty() && *c.acked.begin() <= floor + 1) {
      floor = std::max(floor, *c.acked.begin());
      c.acked.erase(c.acked.begin());
    } else {
      break;
    }
  }
  if (floor != c.state.ack_floor()) {
    c.state.set_ack_floor(floor);
    MarkDirty(stream, c);
  }
}

void BrokerCore::MarkDirty(Stream& stream, Consumer& consumer) {
  if (consumer.dirty || consumer.memory_only) return;
  consumer.dirty = true;
  dirty_consumers_.emplace_back(stream.config.name(), consumer.state.name());
}

void BrokerCore::HandleAckStored(ConnectionCore& c,
                                 const wire::AckStored& ack) {
  const SubscriptionId id(ack.subscription_id());
  auto member = consumer_members_.find(id);
  if (!c.subscriptions_.contains(id) || member == consumer_members_.end()) {
    SendError(c, ack.op_id(),
              ProtocolError(wire::UNKNOWN_SUBSCRIPTION,
                            absl::StrCat("no subscription ", id.ToString(),
                                         " bound to a durable consumer on "
                                         "this connection")));
    return;
  }
  auto stream = streams_.find(member->second.first);
  if (stream == streams_.end()) return;
  auto consumer = stream->second->consumers.find(member->second.second);
  if (consumer == stream->second->consumers.end()) return;
  Consumer& cs = *consumer->second;
  bool moved = false;
  for (uint64_t seq : ack.seqs()) {
    if (seq <= cs.state.ack_floor()) continue;
    auto f = cs.in_flight.find(seq);
    if (f == cs.in_flight.end()) continue;  // not awaiting an ack
    cs.in_flight.erase(f);
    cs.acked.insert(seq);
    moved = true;
  }
  if (moved) RaiseAckFloor(*stream->second, cs);
  if (ack.op_id() != 0) {
    if (cs.dirty) {
      // Answered once the new position is durable: it goes with the next
      // batch of the stream's storage, and so does this answer.
      const uint64_t waiter = ++last_ack_id_;
      PendingAck& pending = pending_acks_[waiter];
      pending.connection = c.id();
      pending.op_id = ack.op_id();
      pending.ack = true;
      pending.waiting = 1;
      LaneOf(*stream->second).gathering_acks.emplace_back(waiter, SIZE_MAX);
    } else {
      SendAck(c, ack.op_id());
    }
  }
  PumpConsumer(*stream->second, cs);
}

void BrokerCore::PumpConsumer(Stream& stream, Consumer& c) {
  // Drop members and pull requests that ended (their subscription is gone).
  std::erase_if(c.members,
                [&](SubscriptionId id) { return index_.Find(id) == nullptr; });
  std::erase_if(c.pulls, [&](const PullRequest& p) {
    return index_.Find(p.subscription) == nullptr;
  });
  const bool pushes = !c.state.deliver_topic().empty();
  if (c.members.empty() && c.pulls.empty() && !pushes) return;
  // A flow-control request whose subscription ended is never answered:
  // whoever takes the messages now starts with a clean slate.
  if (!c.flow_request.empty() && index_.Find(c.flow_request_to) == nullptr) {
    c.unanswered_bytes = 0;
    c.flow_request.clear();
  }
  const size_t room = std::max<size_t>(options_.max_outbound_bytes() / 2, 1);
  auto has_room = [&](const Subscription& sub) {
    const ConnectionCore& conn = *sub.connection;
    return conn.state_ == ConnectionState::kOpen &&
           conn.outbound_.size() < room && !conn.detached_;
  };
  // Somebody to deliver to, with room now or not.
  auto anybody = [&] {
    return !c.members.empty() || !c.pulls.empty() || PushBound(c);
  };
  wire::StoredMessage stored;
  while (!c.ready.empty()) {
    if (c.in_flight.size() >= c.state.max_in_flight() &&
        !c.in_flight.contains(c.ready.front().seq)) {
      break;  // full: acks make room
    }
    // The next member with room, round-robin; else the oldest pull request
    // with room.
    Subscription* to = nullptr;
    for (size_t k = 0; k < c.members.size() && to == nullptr; ++k) {
      const size_t at = (c.next_member + k) % c.members.size();
      Subscription* sub = index_.Find(c.members[at]);
      if (sub != nullptr && has_room(*sub)) {
        to = sub;
        c.next_member = at + 1;
      }
    }
    auto pull = c.pulls.end();
    for (auto p = c.pulls.begin(); to == nullptr && p != c.pulls.end(); ++p) {
      Subscription* sub = index_.Find(p->subscription);
      if (sub != nullptr && has_room(*sub)) {
        to = sub;
        pull = p;
      }
    }
    const bool bound = to != nullptr && pull == c.pulls.end();
    // Pushing waits while the window is unanswered (HandleFlowControlAnswer
    // pumps again).
    const bool stalled = c.state.flow_control() &&
                         c.unanswered_bytes >= Consumer::kFlowControlWindow;
    if (to == nullptr && pushes && !stalled) to = PushTarget(c, has_room);
    if (to == nullptr && stalled) return;
    if (to == nullptr) {
      // A member drains, or a subscription to a push consumer's topic
      // comes (HandleSubscribe): PumpCursors comes back.
      if (anybody()) cursors_waiting_ = true;
      return;
    }
    StoredRecord rec = std::move(c.ready.front());
    c.ready.pop_front();
    const bool again =
        c.redeliver.erase(rec.seq) > 0 || rec.seq <= c.state.delivered_high();
    bool wanted = stored.ParseFromString(rec.record) &&
                  StoredTopicReaches(c.state.pattern(), stored.topic());
    if (wanted && bound) {
      wanted = to->filter == nullptr ||
               to->filter->Allows(stored.topic(), to->pattern);
    } else if (wanted && to->connection->permissions_ != nullptr) {
      // A pull request's or a push consumer's subscription is an inbox, not
      // the consumer's pattern: what its connection may receive is checked
      // by topic.
      wanted = to->connection->permissions_
                   ->Check(AccessOperation::kSubscribe, stored.topic())
                   .ok();
    }
    if (!wanted) {
      // Not for this consumer: counts as acknowledged.
      c.in_flight.erase(rec.seq);
      if (rec.seq > c.state.ack_floor()) c.acked.insert(rec.seq);
      RaiseAckFloor(stream, c);
      continue;
    }
    ConnectionCore& conn = *to->connection;
    ++c.deliveries;
    if (rec.seq > c.state.delivered_high()) {
      c.state.set_delivered_high(rec.seq);
      MarkDirty(stream, c);
    }
    if (bound) {
      DeliverStored(conn, to->id, rec.seq, stored, again);
    } else {
      DeliverStored(
          conn, to->id, rec.seq, stored, again,
          JetStreamAckTopic(stream, c, rec.seq, stored.time_unix_ms(), again));
      if (pull == c.pulls.end()) {
        PutOffPushHeartbeat(c);
        if (c.state.flow_control()) {
          CountPushed(stream, c, *to, rec.record.size());
        }
      } else {
        ++pull->delivered;
        if (pull->heartbeat > absl::ZeroDuration()) {
          pull->next_heartbeat = now_ + pull->heartbeat;
        }
        if (--pull->remaining == 0) c.pulls.erase(pull);
      }
      // A NATS inbox ends after the messages it asked for (UNSUB with a
      // count), as with any delivery. (A bound member is not ended so: what
      // it had in flight would go to the others.)
      if (to->delivered + 1 == to->max_messages) {
        to_unsubscribe_.push_back(to->id);
      }
    }
    ++to->delivered;
    if (c.state.ack_none()) {
      // Done with once delivered (JetStream's ack_policy none).
      c.acked.insert(rec.seq);
      RaiseAckFloor(stream, c);
      continue;
    }
    // It waits for its ack or its ack_wait. A bound member's goes to the
    // others should the member leave (LeaveConsumer); a pull request's or a
    // push consumer's waits whatever becomes of the subscription it went to.
    const absl::Time deadline =
        now_ + absl::Milliseconds(c.state.ack_wait_ms());
    c.in_flight[rec.seq] =
        Consumer::InFlight{bound ? to->id : SubscriptionId(), deadline};
    ArmConsumerTimer(c, deadline);
  }
  if (c.reading) return;
  ReadRequest read;
  bool wants_read = c.in_flight.size() < c.state.max_in_flight() && anybody();
  if (!wants_read) {
    // Full, or nobody to deliver to.
  } else if (!c.redeliver.empty()) {
    for (uint64_t seq : c.redeliver) {
      if (read.seqs.size() == options_.replay_batch_messages()) break;
      read.seqs.push_back(seq);
    }
    c.rereading = read.seqs;
  } else if (c.next_seq <= stream.state.last_seq) {
    read.from_seq = c.next_seq;
    c.first_read.AddTo(read);
    c.reading_from = c.next_seq;
  } else {
    wants_read = false;
  }
  if (!wants_read) {
    // Caught up, or full: a pull request that does not wait is answered.
    AnswerNoWaitPulls(c);
    return;  // the next durable batch, or an ack, pumps it again
  }
  read.id = ++last_read_id_;
  read.stream = stream.config.name();
  read.max_messages = std::min<uint64_t>(
      options_.replay_batch_messages(),
      c.state.max_in_flight() - c.in_flight.size() + read.seqs.size());
  read.max_bytes = room;
  c.reading = true;
  StorageLane& lane = LaneOf(stream);
  lane.consumer_reads[read.id] = {stream.config.name(), c.state.name()};
  ++stats_.storage_reads;
  lane.storage->Read(std::move(read));
}

Subscription* BrokerCore::PushTarget(
    Consumer& c, absl::FunctionRef<bool(const Subscription&)> usable,
    bool take_turn) {
  const std::string& group = c.state.deliver_group();
  push_candidates_.clear();
  for (SubscriptionNode* node : index_.Match(c.state.deliver_topic())) {
    if (group.empty()) {
      for (Subscription* sub : node->subscribers()) {
        if (!sub->stream_only) push_candidates_.push_back(sub);
      }
      continue;
    }
    for (const auto& g : node->groups()) {
      if (g->name != group) continue;
      push_candidates_.insert(push_candidates_.end(), g->members.begin(),
                              g->members.end());
    }
  }
  const size_t n = push_candidates_.size();
  for (size_t k = 0; k < n; ++k) {
    const size_t at = (c.next_push + k) % n;
    if (usable(*push_candidates_[at])) {
      if (take_turn) c.next_push = at + 1;
      return push_candidates_[at];
    }
  }
  return nullptr;
}

void BrokerCore::OnConsumerRead(StorageLane& lane, ReadDone& done) {
  auto r = lane.consumer_reads.find(done.id);
  if (r == lane.consumer_reads.end()) return;
  const auto [stream_name, name] = std::move(r->second);
  lane.consumer_reads.erase(r);
  auto stream = streams_.find(stream_name);
  if (stream == streams_.end()) return;
  auto it = stream->second->consumers.find(name);
  if (it == stream->second->consumers.end()) return;
  Consumer& c = *it->second;
  c.reading = false;
  const std::vector<uint64_t> rereading = std::move(c.rereading);
  c.rereading.clear();
  if (!done.status.ok()) {
    // Tried again when the next batch is durable or an ack comes.
    return;
  }
  if (!rereading.empty()) {
    // A sequence asked for again that is no longer held (retention dropped
    // it) is done with.
    absl::btree_set<uint64_t> found;
    for (const StoredRecord& rec : done.messages) found.insert(rec.seq);
    for (uint64_t seq : rereading) {
      if (found.contains(seq)) continue;
      if (c.redeliver.erase(seq) > 0 && seq > c.state.ack_floor()) {
        c.acked.insert(seq);
      }
    }
  } else {
    // What the read passed over without a message is not held: the floor
    // goes past it once everything before is acknowledged.
    uint64_t expected = c.reading_from;
    for (const StoredRecord& rec : done.messages) {
      if (rec.seq > expected) c.not_held[expected] = rec.seq;
      expected = rec.seq + 1;
    }
    if (done.next_seq > expected) c.not_held[expected] = done.next_seq;
    if (done.next_seq > c.next_seq) c.next_seq = done.next_seq;
    c.first_read.FirstReadDone();
    RaiseAckFloor(*stream->second, c);
  }
  for (StoredRecord& rec : done.messages) c.ready.push_back(std::move(rec));
  PumpConsumer(*stream->second, c);
}

void BrokerCore::ArmConsumerTimer(Consumer& c, absl::Time when) {
  if (when == absl::InfiniteFuture()) return;
  if (c.timer.valid() && c.timer.when <= when) return;
  timers_.Cancel(c.timer);
  c.timer = timers_.Schedule(when, TimerKind::kConsumer, c.id);
}

void BrokerCore::ScheduleConsumerTimer(Consumer& c) {
  absl::Time earliest = absl::InfiniteFuture();
  for (const auto& [seq, f] : c.in_flight) {
    earliest = std::min(earliest, f.deadline);
  }
  for (const PullRequest& p : c.pulls) {
    earliest = std::min({earliest, p.expires, p.next_heartbeat});
  }
  earliest = std::min({earliest, c.next_interest_check, c.next_push_heartbeat});
  if (earliest == absl::InfiniteFuture()) {
    timers_.Cancel(c.timer);
    return;
  }
  if (c.timer.when == earliest) return;
  timers_.Cancel(c.timer);
  c.timer = timers_.Schedule(earliest, TimerKind::kConsumer, c.id);
}

void BrokerCore::OnConsumerTimer(uint64_t id) {
  auto key = consumer_ids_.find(id);
  if (key == consumer_ids_.end()) return;
  auto stream = streams_.find(key->second.first);
  if (stream == streams_.end()) return;
  auto it = stream->second->consumers.find(key->second.second);
  if (it == stream->second->consumers.end()) return;
  Consumer& c = *it->second;
  c.timer = TimerQueue::Key();
  ExpirePulls(c);
  if (c.next_push_heartbeat <= now_) SendPushHeartbeat(c);
  if (c.next_interest_check <= now_ && !CheckInterest(c)) {
    const std::string name = key->second.second;  // RemoveConsumer erases it
    RemoveConsumer(*stream->second, name);
    FlushStorage();
    CollectStorage();
    return;
  }
  for (auto f = c.in_flight.begin(); f != c.in_flight.end();) {
    if (f->second.deadline <= now_) {
      c.redeliver.insert(f->first);
      f = c.in_flight.erase(f);
    } else {
      ++f;
    }
  }
  PumpConsumer(*stream->second, c);
  ScheduleConsumerTimer(c);
  FlushStorage();
  CollectStorage();
}

void BrokerCore::PutOffPushHeartbeat(Consumer& c) {
  if (c.state.idle_heartbeat_ms() == 0) {
    c.next_push_heartbeat = absl::InfiniteFuture();
    return;
  }
  c.next_push_heartbeat =
      now_ + absl::Milliseconds(c.state.idle_heartbeat_ms());
  ArmConsumerTimer(c, c.next_push_heartbeat);
}

void BrokerCore::SendPushHeartbeat(Consumer& c) {
  // To one subscriber of the deliver topic; the consumer and stream
  // sequences of the last message pushed, as nats-server sends them.
  if (Subscription* to = PushTarget(
          c, [](const Subscription&) { return true; }, /*take_turn=*/false)) {
    const std::string consumer_seq = absl::StrCat(c.deliveries);
    const std::string stream_seq = absl::StrCat(c.state.delivered_high());
    std::string stalled;
    nats::AppendSubjectForTopic(c.flow_request, stalled);
    const HeaderView last[] = {{"Nats-Last-Consumer", consumer_seq},
                               {"Nats-Last-Stream", stream_seq},
                               {"Nats-Consumer-Stalled", stalled}};
    // A stalled consumer names the request awaiting an answer, so a
    // subscriber that lost it can answer (as nats-server does).
    SendStatus(*to, c.state.deliver_topic(), "100", "Idle Heartbeat",
               absl::MakeConstSpan(last, c.flow_request.empty() ? 2 : 3));
  }
  PutOffPushHeartbeat(c);
}

bool BrokerCore::CheckInterest(Consumer& c) {
  if (!c.members.empty() || !c.pulls.empty() || PushBound(c)) {
    c.unused_since = absl::InfiniteFuture();
  } else if (c.unused_since == absl::InfiniteFuture()) {
    c.unused_since = now_;
  } else if (now_ - c.unused_since >= c.inactive_threshold()) {
    return false;
  }
  c.next_interest_check = now_ + c.inactive_threshold() / 2;
  return true;
}

void BrokerCore::WatchInterest(Consumer& c) {
  c.unused_since = absl::InfiniteFuture();
  c.next_interest_check = now_ + c.inactive_threshold() / 2;
  ArmConsumerTimer(c, c.next_interest_check);
}

void BrokerCore::LeaveConsumer(SubscriptionId id) {
  auto member = consumer_members_.find(id);
  if (member == consumer_members_.end()) return;
  const auto [stream_name, name] = std::move(member->second);
  consumer_members_.erase(member);
  auto stream = streams_.find(stream_name);
  if (stream == streams_.end()) return;
  auto it = stream->second->consumers.find(name);
  if (it == stream->second->consumers.end()) return;
  Consumer& c = *it->second;
  std::erase(c.members, id);
  for (auto f = c.in_flight.begin(); f != c.in_flight.end();) {
    if (f->second.member == id) {
      c.redeliver.insert(f->first);
      f = c.in_flight.erase(f);
    } else {
      ++f;
    }
  }
  // The others take over at the end of the operation (a consumer is never
  // pumped while routing iterates over subscriptions).
  cursors_waiting_ = true;
}

}  // namespace manifold::internal
