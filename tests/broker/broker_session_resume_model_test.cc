// Model-based randomized test of resumable native sessions.
//
// Several clients subscribe (exact and wildcard patterns, queue groups),
// unsubscribe, publish, lose their links without a word, stop reading, come
// back with their resume tokens (in time or too late, after their queue
// overflowed, with a stale or unknown token, saying the lost link dropped
// frames in flight, or on a new link while the old one still stands) and let
// the fake clock run. A reference model predicts, for every session, the
// whole stream of frames the broker owes it, numbered from its Welcome as the
// resume protocol numbers them; whether each resume succeeds and, when not,
// the code and the reason; which sessions end, when and why (events and
// counters). After every step the broker must agree:
//  - a client that reads has handled exactly the frames the model predicts:
//    nothing lost, nothing twice, each publisher's order kept across any
//    number of losses and resumes;
//  - a resume re-sends exactly the frames after the one the client names;
//  - Welcome says resumed (with the client's frame count) or why not;
//  - a session without a link ends when its queue is full (the reason names
//    the exact byte count the model predicts, which bounds the queue by
//    session_buffer_bytes plus one frame) or session_timeout after its link
//    went, each with a SessionRemoved event at that very step.
//
// What the model does not predict it checks as an invariant:
//  - the order of one session's frames caused by a single publish (the
//    subscription index decides it) is matched as a set, and the order first
//    seen is then required of every replay;
//  - when several linked, reading members of a queue group could take a
//    message, exactly one of them gets it.
// A publish whose queue-group taker would not be observable (several members
// without a link, or several linked ones not all reading) is skipped.
//
// A failure prints the seed and every step taken; replay one seed with
// MANIFOLD_SESSION_MODEL_SEED=<seed>.

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "broker/broker.h"
#include "core/framing.h"
#include "core/manifold.pb.h"
#include "core/topic.h"
#include "gtest/gtest.h"
#include "tests/testing/broker_harness.h"

namespace manifold {
namespace {

using ::manifold::testing::BrokerHarness;
using ::manifold::testing::TestClient;

constexpr int kResumableClients = 4;
constexpr int kSteps = 300;
constexpr uint32_t kSeeds = 200;
// Subscription ids stay below 128, so every delivery of one publish has the
// same size whichever subscription it is for, and the byte at which a queue
// overflows does not depend on the order the index visits subscriptions in.
constexpr int kMaxSubscribes = 100;
constexpr size_t kMaxSubscriptionsPerSession = 5;

// What one frame says, comparable between the model and the wire.
std::string KeyOf(const wire::ServerMessage& m) {
  switch (m.kind_case()) {
    case wire::ServerMessage::kWelcome:
      return "welcome";
    case wire::ServerMessage::kAck:
      return absl::StrCat("ack ", m.ack().op_id(), " sub ",
                          m.ack().subscription_id(), " delivered ",
                          m.ack().delivered());
    case wire::ServerMessage::kDeliver:
      return absl::StrCat("deliver ", m.deliver().subscription_id(), " ",
                          m.deliver().topic(), " ", m.deliver().payload());
    case wire::ServerMessage::kError:
      return absl::StrCat("error ", wire::Code_Name(m.error().code()), " ",
                          m.error().message());
    default:
      return m.ShortDebugString();
  }
}

struct Frame {
  std::string key;
  bool key_is_prefix = false;  // an Ack whose subscription id is not known
  size_t bytes = 0;            // 0 until known (replies are measured)
  uint64_t batch = 0;          // frames caused by one publish share a batch
  bool fixed = true;           // its place is known (seen once, or alone)
  int choice = -1;             // a queue-group delivery it may or may not get
};

struct ModelSubscription {
  std::string pattern;
  std::string group;
};

struct SessionModel {
  int slot = 0;
  bool resumable = true;
  uint64_t session_id = 0;
  std::string token;
  TestClient* link = nullptr;  // null: no link (detached or ended)
  bool reading = true;
  bool ended = false;
  wire::Code end_code = wire::OK;
  std::vector<std::string> end_message_parts;
  absl::Time detached_at;
  // The broker's stream to the session: frames[k] is frame k + 1.
  std::vector<Frame> frames;
  // Frames its client handled. On a link all of them were written, so this
  // is also where the replay window ends; without a link, what follows is
  // the queue.
  size_t handled = 0;
  // The frame after which the replay window starts (before trimming).
  size_t replay_base = 0;
  uint64_t frames_in = 0;  // the client's frames the broker handled
  uint64_t next_op = 0;
  std::map<uint64_t, ModelSubscription> subscriptions;
  std::map<uint64_t, ModelSubscription> pending_subscribes;  // by op id
};

struct Coverage {
  int resumed = 0;
  int replayed_in_flight = 0;
  int taken_over = 0;
  int resumed_with_queue = 0;
  int expired = 0;
  int overflow_while_detached = 0;
  int overflow_at_loss = 0;
  int overflow_on_resume = 0;
  int beyond_sent = 0;
  int unknown_token = 0;
  int ended_token = 0;
  int overflow_told_on_resume = 0;
  int group_to_detached = 0;
  int group_choice = 0;
  int skipped_publishes = 0;
  int filled_exactly = 0;
};

std::string RandomTopic(std::mt19937& rng, bool allow_wildcards) {
  static const char* const kSegments[] = {"a", "b", "c"};
  const int depth = 1 + rng() % 3;
  std::string topic;
  for (int i = 0; i < depth; ++i) {
    if (i > 0) topic += "/";
    const int pick = rng() % 10;
    if (allow_wildcards && pick == 0) {
      topic += "*";
    } else if (allow_wildcards && pick == 1) {
      topic += "**";
    } else {
      topic += kSegments[rng() % 3];
    }
  }
  return topic;
}

class SessionResumeWalk {
 public:
  SessionResumeWalk(uint32_t seed, Coverage& coverage)
      : rng_(seed), coverage_(coverage) {
    options_.set_keepalive_interval_ms(0);
    options_.set_statistics_interval_ms(0);
    options_.set_session_id_seed(seed);
    options_.set_session_timeout_ms(500 + rng_() % 2000);
    options_.set_session_buffer_bytes(rng_() % 2 == 0 ? 1024 : 2048);
    harness_ = std::make_unique<BrokerHarness>(options_);
    Log(absl::StrCat("options: session_timeout_ms ",
                     options_.session_timeout_ms(), ", session_buffer_bytes ",
                     options_.session_buffer_bytes()));
    slots_.resize(kResumableClients + 1);
    slot_tokens_.resize(kResumableClients + 1);
    for (int slot = 0; slot <= kResumableClients; ++slot) {
      Connect(slot, /*resumable=*/slot < kResumableClients, "", 0);
      if (::testing::Test::HasFailure()) return;
    }
    Check();
  }

  void Run(int steps) {
    for (step_ = 1; step_ <= steps; ++step_) {
      if (::testing::Test::HasFailure()) return;
      Step();
      if (::testing::Test::HasFailure()) return;
      Check();
    }
  }

  std::string Steps() const { return absl::StrJoin(log_, "\n"); }

 private:
  std::string Name(int slot) const {
    return slot == kResumableClients ? "pub" : absl::StrCat("c", slot);
  }
  void Log(std::string line) {
    log_.push_back(absl::StrCat("step ", step_, ": ", line));
  }
  SessionModel& Current(int slot) { return *slots_[slot]; }
  bool LinkedAndReading(int slot) {
    return Current(slot).link != nullptr && Current(slot).reading;
  }
  size_t limit() const { return options_.session_buffer_bytes(); }

  // The first frame the broker still keeps for a replay, minus one: what
  // sessions.cc's RetainForReplay leaves of the written frames, the longest
  // run of them ending at the last one within session_buffer_bytes (always
  // at least the last one).
  size_t ReplayStart(const SessionModel& s) const {
    size_t start = s.handled;
    size_t bytes = 0;
    while (start > s.replay_base) {
      const size_t next = bytes + s.frames[start - 1].bytes;
      if (next > limit() && start < s.handled) break;
      bytes = next;
      --start;
    }
    return start;
  }

  // Bytes waiting in a session without a link.
  size_t Queued(const SessionModel& s) const {
    size_t bytes = 0;
    for (size_t k = s.handled; k < s.frames.size(); ++k) {
      bytes += s.frames[k].bytes;
    }
    return bytes;
  }

  void EndSession(SessionModel& s, wire::Code code,
                  std::vector<std::string> parts) {
    s.ended = true;
    s.end_code = code;
    expected_reasons_[s.session_id] = parts;
    s.end_message_parts = std::move(parts);
    s.subscriptions.clear();
    s.pending_subscribes.clear();
    s.link = nullptr;
    if (s.resumable) {
      expected_events_.insert(
          absl::StrCat("removed ", s.session_id, " ", wire::Code_Name(code)));
    }
    if (code == wire::SESSION_OVERFLOW) ++overflows_;
    if (code == wire::SESSION_EXPIRED) ++expired_;
  }

  // --- Observing -----------------------------------------------------------

  void Observe(SessionModel& s, const wire::ServerMessage& m) {
    const std::string key = KeyOf(m);
    const size_t bytes = EncodeFrame(m).size();
    ASSERT_LT(s.handled, s.frames.size())
        << Name(s.slot) << " got a frame the model does not owe it: " << key;
    const auto matches = [&](const Frame& f) {
      return f.key_is_prefix ? absl::StartsWith(key, f.key) : key == f.key;
    };
    while (!s.frames[s.handled].fixed) {
      // One publish's frames: the broker's order among them is its own.
      const uint64_t batch = s.frames[s.handled].batch;
      size_t end = s.handled;
      bool found = false;
      bool only_choices = true;
      for (; end < s.frames.size() && s.frames[end].batch == batch; ++end) {
        only_choices = only_choices && s.frames[end].choice >= 0;
        if (!found && matches(s.frames[end])) {
          std::swap(s.frames[s.handled], s.frames[end]);
          found = true;
        }
      }
      if (found || !only_choices) break;
      // What is left of the batch are queue-group messages another member
      // took: this frame is the next batch's.
      s.frames.erase(s.frames.begin() + s.handled, s.frames.begin() + end);
      ASSERT_LT(s.handled, s.frames.size())
          << Name(s.slot) << " got a frame the model does not owe it: " << key;
    }
    Frame& f = s.frames[s.handled];
    ASSERT_TRUE(matches(f))
        << Name(s.slot) << " frame " << s.handled + 1 << ": got '" << key
        << "', the model expects '" << f.key << "'";
    if (f.key_is_prefix) {
      f.key = key;
      f.key_is_prefix = false;
    }
    if (f.bytes == 0) f.bytes = bytes;
    ASSERT_EQ(f.bytes, bytes) << Name(s.slot) << " frame " << s.handled + 1
                              << " '" << key << "' has another size";
    f.fixed = true;
    ++s.handled;
    if (m.has_ack()) {
      auto it = s.pending_subscribes.find(m.ack().op_id());
      if (it != s.pending_subscribes.end()) {
        ASSERT_LT(m.ack().subscription_id(), 128u);
        s.subscriptions[m.ack().subscription_id()] = it->second;
        s.pending_subscribes.erase(it);
      }
    }
  }

  // Hands every reading link's new frames to the model, then settles the
  // queue-group deliveries that were left to the broker's choice.
  void Drain(int choices = 0) {
    for (SessionModel& s : sessions_) {
      if (s.link == nullptr || !s.reading) continue;
      for (const wire::ServerMessage& m : s.link->TakeAll()) {
        Observe(s, m);
        if (::testing::Test::HasFailure()) return;
      }
    }
    std::vector<int> taken(choices, 0);
    for (SessionModel& s : sessions_) {
      if (s.link == nullptr || !s.reading) continue;
      for (size_t k = 0; k < s.frames.size(); ++k) {
        if (s.frames[k].choice < 0) continue;
        if (k < s.handled) ++taken[s.frames[k].choice];
      }
      std::vector<Frame> kept(s.frames.begin(), s.frames.begin() + s.handled);
      for (size_t k = s.handled; k < s.frames.size(); ++k) {
        if (s.frames[k].choice < 0) kept.push_back(s.frames[k]);
      }
      for (Frame& f : kept) f.choice = -1;
      s.frames = std::move(kept);
      if (s.handled != s.frames.size()) {
        ADD_FAILURE() << Name(s.slot) << " reads but did not get frames "
                      << s.handled + 1 << " to " << s.frames.size()
                      << ", the first: '" << s.frames[s.handled].key << "'";
        return;
      }
    }
    for (int c = 0; c < choices; ++c) {
      ASSERT_EQ(taken[c], 1) << "a queue-group message reached " << taken[c]
                             << " members, not one";
    }
  }

  void Check() {
    if (::testing::Test::HasFailure()) return;
    std::multiset<std::string> events;
    for (const wire::BrokerEvent& e : harness_->TakeEvents()) {
      if (e.has_session_added()) {
        events.insert(absl::StrCat("added ", e.session_added().session_id()));
      } else if (e.has_session_removed()) {
        const wire::SessionRemoved& removed = e.session_removed();
        events.insert(absl::StrCat("removed ", removed.session_id(), " ",
                                   wire::Code_Name(removed.code())));
        // The reason says why, with the numbers the model predicts.
        for (const std::string& part :
             expected_reasons_[removed.session_id()]) {
          EXPECT_TRUE(absl::StrContains(removed.reason(), part))
              << "SessionRemoved '" << removed.reason() << "' does not say '"
              << part << "'";
        }
      }
    }
    ASSERT_EQ(events, expected_events_) << "session events";
    expected_events_.clear();
    expected_reasons_.clear();

    const BrokerStatistics& stats = harness_->broker().statistics();
    uint64_t detached = 0;
    uint64_t subscriptions = 0;
    for (const SessionModel& s : sessions_) {
      if (s.ended) continue;
      subscriptions += s.subscriptions.size();
      if (s.link != nullptr) continue;
      ++detached;
      // The queue holds at most session_buffer_bytes plus the one frame
      // that found it below the limit: the broker ended the session at the
      // same step as the model (the events above), so its queue is this.
      const size_t queued = Queued(s);
      const size_t last =
          s.frames.size() > s.handled ? s.frames.back().bytes : 0;
      ASSERT_LT(queued - last, limit()) << Name(s.slot) << " queue";
    }
    EXPECT_EQ(stats.detached_sessions, detached);
    EXPECT_EQ(stats.subscriptions, subscriptions);
    EXPECT_EQ(stats.sessions_resumed, resumed_);
    EXPECT_EQ(stats.sessions_expired, expired_);
    EXPECT_EQ(stats.session_overflows, overflows_);
  }

  // --- Operations ----------------------------------------------------------

  // Opens a link for `slot` and says Hello: fresh, or resuming `token`
  // after `received_frames`.
  void Connect(int slot, bool resumable, const std::string& token,
               uint64_t received_frames) {
    TestClient& link = harness_->Connect(Name(slot), /*hello=*/false);
    auto found = by_token_.find(token);
    SessionModel* old =
        token.empty() || found == by_token_.end() ? nullptr : found->second;
    // The model's verdict, before the broker's.
    bool resumed = false;
    wire::Code code = wire::OK;
    std::vector<std::string> parts;
    TestClient* old_link = nullptr;
    size_t old_handled = 0;
    if (!token.empty()) {
      if (old == nullptr) {
        code = wire::SESSION_UNKNOWN;
        parts = {absl::StrCat("no session ", token.substr(0, 8), "...")};
        ++coverage_.unknown_token;
      } else if (old->ended) {
        code = old->end_code;
        parts = old->end_message_parts;
        ++coverage_.ended_token;
        if (code == wire::SESSION_OVERFLOW) ++coverage_.overflow_told_on_resume;
      } else {
        old_link = old->link;
        old_handled = old->handled;
        const size_t kept_from = ReplayStart(*old);
        if (received_frames < kept_from) {
          code = wire::SESSION_OVERFLOW;
          parts = {absl::StrCat("cannot resume after frame ", received_frames),
                   absl::StrCat("from frame ", kept_from + 1, " on")};
          ++coverage_.overflow_on_resume;
        } else if (received_frames > old->frames.size()) {
          code = wire::INVALID_ARGUMENT;
          parts = {absl::StrCat("the broker has sent this session ",
                                old->frames.size(), " frames")};
          ++coverage_.beyond_sent;
        } else {
          resumed = true;
        }
        if (!resumed) EndSession(*old, code, parts);
      }
    }
    Log(absl::StrCat(
        Name(slot), " connects",
        token.empty() ? ""
                      : absl::StrCat(" resuming ", token.substr(0, 8),
                                     " after frame ", received_frames),
        "; the model expects ", resumed ? "resumed" : wire::Code_Name(code)));

    wire::ClientMessage hello;
    hello.mutable_hello()->set_protocol_version(1);
    hello.mutable_hello()->set_client_name(Name(slot));
    hello.mutable_hello()->set_resumable(resumable);
    hello.mutable_hello()->set_resume_token(token);
    hello.mutable_hello()->set_received_frames(received_frames);
    link.Send(hello);

    if (old_link != nullptr) {
      // The old link still stood: it gets its last word and closes.
      const std::vector<wire::ServerMessage> last = old_link->TakeAll();
      ASSERT_EQ(last.size(), 1u) << "old link of " << Name(slot);
      ASSERT_TRUE(last[0].has_error()) << last[0].ShortDebugString();
      EXPECT_EQ(last[0].error().code(),
                resumed ? wire::SESSION_TAKEN_OVER : code);
      EXPECT_TRUE(old_link->closed());
      if (resumed) ++coverage_.taken_over;
    }

    std::vector<wire::ServerMessage> got = link.TakeAll();
    ASSERT_FALSE(got.empty()) << "no Welcome";
    ASSERT_TRUE(got[0].has_welcome()) << got[0].ShortDebugString();
    const wire::Welcome& w = got[0].welcome();
    ASSERT_EQ(w.resumed(), resumed) << w.ShortDebugString();
    ASSERT_EQ(w.resume_code(), code) << w.ShortDebugString();
    for (const std::string& part : parts) {
      EXPECT_TRUE(absl::StrContains(w.resume_message(), part))
          << "'" << w.resume_message() << "' does not say '" << part << "'";
    }

    SessionModel* s = nullptr;
    if (resumed) {
      s = old;
      EXPECT_EQ(w.session_id(), s->session_id);
      EXPECT_EQ(w.resume_token(), s->token);
      EXPECT_EQ(w.received_frames(), s->frames_in);
      ++resumed_;
      ++coverage_.resumed;
      if (received_frames < old_handled) ++coverage_.replayed_in_flight;
      if (s->frames.size() > old_handled) ++coverage_.resumed_with_queue;
      // The client forgets what the lost link dropped: the broker sends it
      // again, and the replay window starts afresh from there.
      s->handled = received_frames;
      s->replay_base = received_frames;
    } else {
      sessions_.emplace_back();
      s = &sessions_.back();
      s->slot = slot;
      s->resumable = resumable;
      s->session_id = w.session_id();
      s->token = w.resume_token();
      EXPECT_EQ(s->token.empty(), !resumable);
      if (resumable) {
        EXPECT_EQ(by_token_.count(s->token), 0u) << "token used twice";
        by_token_[s->token] = s;
        slot_tokens_[slot].push_back(s->token);
        expected_events_.insert(absl::StrCat("added ", s->session_id));
      }
      s->frames.push_back(Frame{"welcome", false, EncodeFrame(got[0]).size()});
      s->handled = 1;
      s->frames_in = 1;
    }
    s->slot = slot;
    s->link = &link;
    s->reading = true;
    slots_[slot] = s;
    for (size_t k = 1; k < got.size(); ++k) {
      Observe(*s, got[k]);
      if (::testing::Test::HasFailure()) return;
    }
    Drain();
  }

  void Subscribe(int slot) {
    SessionModel& s = Current(slot);
    if (subscribes_ >= kMaxSubscribes ||
        s.subscriptions.size() >= kMaxSubscriptionsPerSession) {
      return;
    }
    const std::string pattern = RandomTopic(rng_, true);
    const std::string group =
        rng_() % 3 == 0 ? (rng_() % 2 == 0 ? "g" : "h") : "";
    if (!group.empty()) {
      // One membership per session and group keeps the taker observable.
      for (auto& [id, sub] : s.subscriptions) {
        if (sub.pattern == pattern && sub.group == group) return;
      }
    }
    ++subscribes_;
    const uint64_t op = ++s.next_op;
    Log(absl::StrCat(Name(slot), " subscribes '", pattern, "'",
                     group.empty() ? "" : absl::StrCat(" in group ", group)));
    wire::ClientMessage m;
    m.mutable_subscribe()->set_op_id(op);
    m.mutable_subscribe()->set_pattern(pattern);
    m.mutable_subscribe()->set_queue_group(group);
    s.pending_subscribes[op] = {pattern, group};
    s.frames.push_back(Frame{absl::StrCat("ack ", op, " sub "), true});
    ++s.frames_in;
    s.link->Send(m);
    Drain();
  }

  void Unsubscribe(int slot) {
    SessionModel& s = Current(slot);
    if (s.subscriptions.empty()) return;
    auto it = s.subscriptions.begin();
    std::advance(it, rng_() % s.subscriptions.size());
    const uint64_t id = it->first;
    const uint64_t op = ++s.next_op;
    Log(absl::StrCat(Name(slot), " unsubscribes ", id, " '", it->second.pattern,
                     "'"));
    s.subscriptions.erase(it);
    wire::ClientMessage m;
    m.mutable_unsubscribe()->set_op_id(op);
    m.mutable_unsubscribe()->set_subscription_id(id);
    s.frames.push_back(Frame{absl::StrCat("ack ", op, " "), true});
    ++s.frames_in;
    s.link->Send(m);
    Drain();
  }

  // One delivery to `s`, as the broker's DeliverTo does it. Returns whether
  // it was queued.
  bool Deliver(SessionModel& s, uint64_t subscription, const std::string& topic,
               const std::string& payload, uint64_t batch) {
    if (s.ended) return false;
    if (s.link == nullptr) {
      const size_t queued = Queued(s);
      if (queued >= limit()) {
        EndSession(
            s, wire::SESSION_OVERFLOW,
            {absl::StrCat("while its link was lost: ", queued,
                          " bytes waited for it; the limit is ", limit())});
        ++coverage_.overflow_while_detached;
        return false;
      }
    }
    wire::ServerMessage m;
    m.mutable_deliver()->set_subscription_id(subscription);
    m.mutable_deliver()->set_topic(topic);
    m.mutable_deliver()->set_payload(payload);
    s.frames.push_back(
        Frame{KeyOf(m), false, EncodeFrame(m).size(), batch, false});
    return true;
  }

  void Publish(int slot, const std::string& topic, const std::string& payload,
               bool ack) {
    struct Target {
      SessionModel* session;
      uint64_t subscription;
    };
    std::vector<Target> definite;
    std::map<std::pair<std::string, std::string>, std::vector<Target>> groups;
    for (SessionModel& s : sessions_) {
      if (s.ended) continue;
      for (auto& [id, sub] : s.subscriptions) {
        if (!Intersects(sub.pattern, topic)) continue;
        if (sub.group.empty()) {
          definite.push_back({&s, id});
        } else {
          groups[{sub.pattern, sub.group}].push_back({&s, id});
        }
      }
    }
    std::vector<std::vector<Target>> choices;
    for (auto& [key, members] : groups) {
      std::vector<Target> linked;
      std::vector<Target> unlinked;
      bool all_reading = true;
      for (const Target& t : members) {
        if (t.session->link != nullptr) {
          linked.push_back(t);
          all_reading = all_reading && t.session->reading;
        } else {
          unlinked.push_back(t);
        }
      }
      // A member without a link takes a message only when no linked one
      // can (sessions_test: AQueueGroupPrefersMembersThatHaveALink).
      if (linked.size() == 1) {
        definite.push_back(linked[0]);
      } else if (linked.size() > 1 && all_reading) {
        choices.push_back(linked);
      } else if (linked.empty() && unlinked.size() == 1) {
        definite.push_back(unlinked[0]);
        ++coverage_.group_to_detached;
      } else {
        ++coverage_.skipped_publishes;
        Log(absl::StrCat("(skipped: ", Name(slot), " publishing '", topic,
                         "', group ", key.second, " on '", key.first,
                         "' has no observable taker)"));
        return;
      }
    }
    SessionModel& publisher = Current(slot);
    const uint64_t op = ++publisher.next_op;
    Log(absl::StrCat(Name(slot), " publishes '", topic, "' ", payload.size(),
                     " bytes '", payload.substr(0, 12), "'",
                     ack ? " with ack" : ""));
    const uint64_t batch = ++batches_;
    uint64_t delivered = 0;
    for (const Target& t : definite) {
      if (Deliver(*t.session, t.subscription, topic, payload, batch)) {
        ++delivered;
      }
    }
    for (size_t c = 0; c < choices.size(); ++c) {
      for (const Target& t : choices[c]) {
        Deliver(*t.session, t.subscription, topic, payload, batch);
        t.session->frames.back().choice = static_cast<int>(c);
      }
      ++delivered;
      ++coverage_.group_choice;
    }
    ++publisher.frames_in;
    if (ack) {
      publisher.frames.push_back(
          Frame{absl::StrCat("ack ", op, " sub 0 delivered ", delivered)});
    }
    wire::ClientMessage m;
    m.mutable_publish()->set_op_id(op);
    m.mutable_publish()->set_topic(topic);
    m.mutable_publish()->set_payload(payload);
    m.mutable_publish()->set_ack(ack);
    publisher.link->Send(m);
    Drain(static_cast<int>(choices.size()));
  }

  std::string Payload() {
    std::string payload = absl::StrCat("p", step_, "-", ++payloads_);
    if (rng_() % 4 == 0) payload.append(40 + rng_() % 120, 'x');
    return payload;
  }

  void Detach(int slot) {
    SessionModel& s = Current(slot);
    Log(absl::StrCat(Name(slot), " loses its link",
                     s.reading ? "" : " with unread output"));
    TestClient* link = s.link;
    s.link = nullptr;
    s.detached_at = harness_->now();
    const size_t queued = Queued(s);
    if (queued >= limit()) {
      EndSession(
          s, wire::SESSION_OVERFLOW,
          {absl::StrCat("when its link was lost: ", queued,
                        " bytes waited for it; the limit is ", limit())});
      ++coverage_.overflow_at_loss;
    }
    link->Disconnect();
  }

  // Comes back on a new link: with its own token mostly, sometimes an old
  // or made-up one, or none.
  void Reconnect(int slot) {
    const int pick = rng_() % 20;
    std::string token = Current(slot).token;
    if (pick < 2) {
      token.clear();
    } else if (pick < 5) {
      const std::vector<std::string>& held = slot_tokens_[slot];
      token = held[rng_() % held.size()];
    } else if (pick < 7) {
      token.clear();
      for (int k = 0; k < 40; ++k)
        token.push_back("0123456789abcdef"[rng_() % 16]);
    }
    Connect(slot, /*resumable=*/true, token, ReceivedFrames(token));
  }

  // What a client says it handled: all it got, or less when the lost link
  // dropped frames in flight; rarely less than the broker keeps, or more
  // than it sent.
  uint64_t ReceivedFrames(const std::string& token) {
    auto it = by_token_.find(token);
    if (it == by_token_.end() || it->second->ended) return rng_() % 5;
    const SessionModel& s = *it->second;
    const size_t kept_from = ReplayStart(s);
    const int pick = rng_() % 20;
    if (pick < 12) return s.handled;
    if (pick < 17) return kept_from + rng_() % (s.handled - kept_from + 1);
    if (pick < 19 && kept_from > 0) return rng_() % kept_from;
    if (pick == 19) return s.frames.size() + 1 + rng_() % 3;
    return s.handled;
  }

  void Advance() {
    const uint64_t timeout = options_.session_timeout_ms();
    const uint64_t ms = rng_() % 5 == 0 ? timeout : rng_() % (timeout / 2);
    Log(absl::StrCat("the clock advances ", ms, " ms"));
    const absl::Time now = harness_->now() + absl::Milliseconds(ms);
    for (SessionModel& s : sessions_) {
      if (s.ended || s.link != nullptr || !s.resumable) continue;
      if (s.detached_at + absl::Milliseconds(timeout) <= now) {
        EndSession(s, wire::SESSION_EXPIRED, {"session expired: no link for"});
        ++coverage_.expired;
      }
    }
    harness_->Advance(absl::Milliseconds(ms));
  }

  void Step() {
    const int slot = rng_() % (kResumableClients + 1);
    const bool resumable = slot < kResumableClients;
    SessionModel& s = Current(slot);
    const int action = rng_() % 100;
    if (s.link == nullptr) {
      // Without a link a client can only come back (or stay away).
      if (action < 40) {
        Reconnect(slot);
      } else if (action < 55) {
        Advance();
      } else {
        PublishSomething(kResumableClients);
      }
      return;
    }
    if (!s.reading) {
      if (action < 30) {
        Log(absl::StrCat(Name(slot), " reads again"));
        s.link->set_reading(true);
        s.reading = true;
        Drain();
      } else if (action < 50) {
        Detach(slot);
      } else if (action < 65) {
        // Aimed at it, so that its unread output can outgrow the queue it
        // would have without a link.
        Burst(kResumableClients, AnyTopicOf(s));
      } else {
        PublishSomething(kResumableClients);
      }
      return;
    }
    if (action < 15) {
      Subscribe(slot);
    } else if (action < 20) {
      Unsubscribe(slot);
    } else if (action < 50) {
      PublishSomething(slot);
    } else if (action < 54) {
      Burst(slot);
    } else if (action < 58) {
      FillExactly(slot);
    } else if (!resumable) {
      Advance();
    } else if (action < 70) {
      Detach(slot);
    } else if (action < 76) {
      Log(absl::StrCat(Name(slot), " stops reading"));
      s.link->set_reading(false);
      s.reading = false;
    } else if (action < 79) {
      // The client gives up on a link the broker still believes in.
      Connect(slot, true, s.token, ReceivedFrames(s.token));
    } else {
      Advance();
    }
  }

  // A topic the pattern matches.
  static std::string LiteralOf(const std::string& pattern) {
    std::vector<std::string> segments = absl::StrSplit(pattern, '/');
    for (std::string& segment : segments) {
      if (segment == "*" || segment == "**") segment = "a";
    }
    return absl::StrJoin(segments, "/");
  }

  // A topic one of the session's subscriptions matches, or a random one.
  std::string AnyTopicOf(const SessionModel& s) {
    if (s.subscriptions.empty()) return RandomTopic(rng_, false);
    auto sub = s.subscriptions.begin();
    std::advance(sub, rng_() % s.subscriptions.size());
    return LiteralOf(sub->second.pattern);
  }

  // Publishes to one subscription of a session without a link a message
  // that fills its queue to exactly session_buffer_bytes, when one size
  // does: the next delivery must end the session, and none before it.
  void FillExactly(int slot) {
    std::vector<SessionModel*> away;
    for (SessionModel& s : sessions_) {
      if (!s.ended && s.link == nullptr && !s.subscriptions.empty()) {
        away.push_back(&s);
      }
    }
    if (away.empty()) return;
    SessionModel& target = *away[rng_() % away.size()];
    auto sub = target.subscriptions.begin();
    std::advance(sub, rng_() % target.subscriptions.size());
    const std::string topic = LiteralOf(sub->second.pattern);
    for (auto& [id, other] : target.subscriptions) {
      if (id != sub->first && Intersects(other.pattern, topic)) return;
    }
    const size_t queued = Queued(target);
    if (queued >= limit()) return;
    std::string payload = absl::StrCat("p", step_, "-", ++payloads_, "-fill");
    wire::ServerMessage m;
    m.mutable_deliver()->set_subscription_id(sub->first);
    m.mutable_deliver()->set_topic(topic);
    while (payload.size() < 4 * limit()) {
      m.mutable_deliver()->set_payload(payload);
      const size_t bytes = EncodeFrame(m).size();
      if (bytes == limit() - queued) {
        ++coverage_.filled_exactly;
        break;
      }
      if (bytes > limit() - queued) return;
      payload.push_back('f');
    }
    Publish(slot, topic, payload, rng_() % 2 == 0);
  }

  // Enough messages on one topic to fill a queue without a link.
  void Burst(int slot, std::string topic = "") {
    if (topic.empty()) topic = RandomTopic(rng_, false);
    for (int k = 5 + rng_() % 15; k > 0; --k) {
      Publish(slot, topic, Payload(), false);
      if (::testing::Test::HasFailure()) return;
    }
  }

  void PublishSomething(int slot) {
    if (!LinkedAndReading(slot)) return;
    Publish(slot, RandomTopic(rng_, rng_() % 4 == 0), Payload(),
            rng_() % 2 == 0);
  }

  std::mt19937 rng_;
  Coverage& coverage_;
  BrokerOptions options_;
  std::unique_ptr<BrokerHarness> harness_;
  std::deque<SessionModel> sessions_;  // every session, ended ones too
  std::vector<SessionModel*> slots_;   // each client's current session
  std::vector<std::vector<std::string>> slot_tokens_;
  std::map<std::string, SessionModel*> by_token_;
  std::multiset<std::string> expected_events_;
  std::map<uint64_t, std::vector<std::string>> expected_reasons_;
  std::vector<std::string> log_;
  uint64_t resumed_ = 0;
  uint64_t expired_ = 0;
  uint64_t overflows_ = 0;
  uint64_t batches_ = 0;
  uint64_t payloads_ = 0;
  int subscribes_ = 0;
  int step_ = 0;
};

bool RunSeed(uint32_t seed, Coverage& coverage) {
  SessionResumeWalk walk(seed, coverage);
  walk.Run(kSteps);
  if (!::testing::Test::HasFailure()) return true;
  ADD_FAILURE() << "MANIFOLD_SESSION_MODEL_SEED=" << seed
                << " fails; its steps:\n"
                << walk.Steps();
  return false;
}

TEST(BrokerSessionResumeModelTest,
     ResumesLoseNothingWithinTheBoundAndEndedSessionsSayWhy) {
  Coverage coverage;
  if (const char* env = std::getenv("MANIFOLD_SESSION_MODEL_SEED")) {
    RunSeed(static_cast<uint32_t>(std::strtoul(env, nullptr, 10)), coverage);
    return;
  }
  for (uint32_t seed = 1; seed <= kSeeds; ++seed) {
    if (!RunSeed(seed, coverage)) return;
  }
  // The walk must have reached every case it exists for.
  EXPECT_GT(coverage.resumed, 0);
  EXPECT_GT(coverage.replayed_in_flight, 0);
  EXPECT_GT(coverage.resumed_with_queue, 0);
  EXPECT_GT(coverage.taken_over, 0);
  EXPECT_GT(coverage.expired, 0);
  EXPECT_GT(coverage.overflow_while_detached, 0);
  EXPECT_GT(coverage.overflow_at_loss, 0);
  EXPECT_GT(coverage.overflow_on_resume, 0);
  EXPECT_GT(coverage.beyond_sent, 0);
  EXPECT_GT(coverage.unknown_token, 0);
  EXPECT_GT(coverage.ended_token, 0);
  EXPECT_GT(coverage.overflow_told_on_resume, 0);
  EXPECT_GT(coverage.group_to_detached, 0);
  EXPECT_GT(coverage.group_choice, 0);
  EXPECT_GT(coverage.filled_exactly, 0);
  std::printf(
      "resumed %d (in-flight replays %d, with a queue %d, taken over %d), "
      "expired %d, overflowed %d while detached / %d at loss / %d on resume, "
      "beyond sent %d, unknown tokens %d, ended tokens %d, group deliveries "
      "to a detached member %d, group choices %d, skipped publishes %d, "
      "queues filled to the byte %d\n",
      coverage.resumed, coverage.replayed_in_flight,
      coverage.resumed_with_queue, coverage.taken_over, coverage.expired,
      coverage.overflow_while_detached, coverage.overflow_at_loss,
      coverage.overflow_on_resume, coverage.beyond_sent, coverage.unknown_token,
      coverage.ended_token, coverage.group_to_detached, coverage.group_choice,
      coverage.skipped_publishes, coverage.filled_exactly);
}

}  // namespace
}  // namespace manifold
