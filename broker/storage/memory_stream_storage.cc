#include "broker/storage/memory_stream_storage.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"

namespace manifold {

absl::StatusOr<std::vector<RecoveredStream>> MemoryStreamStorage::Load() {
  if (!load_failure_.ok())
    return std::exchange(load_failure_, absl::OkStatus());
  std::vector<RecoveredStream> out;
  for (const auto& [name, stream] : streams_) {
    RecoveredStream& r = out.emplace_back();
    r.config = stream.config;
    r.state = stream.state;
    for (const auto& [topic, seqs] : stream.topics) {
      r.last_per_topic.emplace_back(topic, seqs.back());
    }
    for (const auto& [consumer, state] : stream.consumers) {
      r.consumers.push_back(state);
    }
  }
  return out;
}

void MemoryStreamStorage::Write(StorageBatch batch) {
  if (holding_ || !held_.empty()) {
    held_.push_back(Queued{false, std::move(batch), {}});
    return;
  }
  StorageCompletion& done = done_.emplace_back();
  done.kind = StorageCompletion::Kind::kBatch;
  done.batch = Apply(batch);
}

void MemoryStreamStorage::Read(ReadRequest read) {
  if (!held_.empty()) {
    held_.push_back(Queued{true, {}, std::move(read)});
    return;
  }
  StorageCompletion& done = done_.emplace_back();
  done.kind = StorageCompletion::Kind::kRead;
  done.read = Execute(read);
}

void MemoryStreamStorage::Poll(std::vector<StorageCompletion>& out) {
  for (StorageCompletion& c : done_) out.push_back(std::move(c));
  done_.clear();
}

void MemoryStreamStorage::FailNextWrites(int count, absl::Status status) {
  failing_writes_ = count;
  write_failure_ = std::move(status);
}

void MemoryStreamStorage::FailNextReads(int count, absl::Status status) {
  failing_reads_ = count;
  read_failure_ = std::move(status);
}

void MemoryStreamStorage::Release() {
  holding_ = false;
  std::deque<Queued> held = std::move(held_);
  held_.clear();
  for (Queued& q : held) {
    if (q.is_read) {
      Read(std::move(q.read));
    } else {
      Write(std::move(q.batch));
    }
  }
}

size_t MemoryStreamStorage::Crash() {
  size_t lost = 0;
  for (const Queued& q : held_) lost += q.is_read ? 0 : 1;
  held_.clear();
  holding_ = false;
  done_.clear();
  return lost;
}

std::vector<StoredRecord> MemoryStreamStorage::Contents(
    const std::string& stream) const {
  std::vector<StoredRecord> out;
  auto it = streams_.find(stream);
  if (it == streams_.end()) return out;
  for (const auto& [seq, m] : it->second.messages) {
    out.push_back(StoredRecord{seq, m.record});
  }
  return out;
}

BatchDone MemoryStreamStorage::Apply(const StorageBatch& batch) {
  BatchDone done;
  done.id = batch.id;
  if (failing_writes_ > 0) {
    --failing_writes_;
    done.status = write_failure_;
    return done;
  }
  // Checked before anything changes, so that a refused batch leaves no
  // trace.
  absl::flat_hash_map<std::string, uint64_t> next;
  for (const AppendRecord& a : batch.appends) {
    auto n = next.find(a.stream);
    if (n == next.end()) {
      auto s = streams_.find(a.stream);
      bool created = false;
      for (const wire::StreamConfig& c : batch.put_streams) {
        created |= c.name() == a.stream;
      }
      if (s == streams_.end() && !created) {
        done.status = absl::NotFoundError(
            absl::StrCat("append to unknown stream '", a.stream, "'"));
        return done;
      }
      const uint64_t last = s == streams_.end() ? 0 : s->second.state.last_seq;
      n = next.emplace(a.stream, last + 1).first;
    }
    if (a.seq != n->second) {
      done.status = absl::InternalError(
          absl::StrCat("stream '", a.stream, "': append of seq ", a.seq,
                       " where ", n->second, " comes next"));
      return done;
    }
    ++n->second;
  }
  for (const wire::StreamConfig& c : batch.put_streams) {
    auto held = streams_.find(c.name());
    if (held != streams_.end() && held->second.state.messages > 0 &&
        held->second.config.max_msgs_per_topic() != c.max_msgs_per_topic()) {
      done.status = absl::InvalidArgumentError(absl::StrCat(
          "stream '", c.name(),
          "': max_msgs_per_topic cannot change while it holds messages"));
      return done;
    }
  }
  ++batches_written_;
  if (batch.sync) ++syncs_;
  std::vector<std::string> touched;
  auto touch = [&touched](const std::string& name) {
    if (std::find(touched.begin(), touched.end(), name) == touched.end()) {
      touched.push_back(name);
    }
  };
  for (const wire::StreamConfig& c : batch.put_streams) {
    Stream& s = streams_[c.name()];
    s.config = c;
    s.state.name = c.name();
    touch(c.name());
  }
  for (const std::string& name : batch.remove_streams) streams_.erase(name);
  for (const std::string& name : batch.purge_streams) {
    auto s = streams_.find(name);
    if (s == streams_.end()) continue;
    s->second.messages.clear();
    s->second.topics.clear();
    StreamState& st = s->second.state;
    st.first_seq = st.messages = st.bytes = 0;
    st.first_time_unix_ms = 0;
    touch(name);
  }
  for (const AppendRecord& a : batch.appends) {
    Stream& s = streams_[a.stream];
    s.messages.emplace(a.seq, Message{a.time_unix_ms, std::string(a.topic),
                                      std::string(a.record)});
    const uint64_t per_topic = s.config.max_msgs_per_topic();
    absl::InlinedVector<uint64_t, 1>& of_topic = s.topics[std::string(a.topic)];
    if (per_topic == 0) of_topic.clear();  // only the newest is kept
    of_topic.push_back(a.seq);
    StreamState& st = s.state;
    if (st.messages == 0) {
      st.first_seq = a.seq;
      st.first_time_unix_ms = a.time_unix_ms;
    }
    ++st.messages;
    st.bytes += a.record.size();
    st.last_seq = a.seq;
    st.last_time_unix_ms = a.time_unix_ms;
    if (per_topic > 0 && of_topic.size() > per_topic) {
      Drop(s, of_topic.front());
    }
    touch(a.stream);
  }
  for (const wire::ConsumerState& c : batch.put_consumers) {
    auto s = streams_.find(c.stream());
    if (s == streams_.end()) continue;
    wire::ConsumerState& kept = s->second.consumers[c.name()];
    kept = c;
    kept.clear_in_flight();
    kept.clear_members();
  }
  for (const auto& [stream, consumer] : batch.remove_consumers) {
    auto s = streams_.find(stream);
    if (s != streams_.end()) s->second.consumers.erase(consumer);
  }
  for (const std::string& name : batch.enforce_streams) touch(name);
  for (const std::string& name : touched) {
    auto s = streams_.find(name);
    if (s == streams_.end()) continue;
    Enforce(s->second, batch.now_unix_ms);
    done.states.push_back(s->second.state);
  }
  return done;
}

void MemoryStreamStorage::Enforce(Stream& stream, int64_t now_unix_ms) {
  StreamState& st = stream.state;
  while (!stream.messages.empty()) {
    const auto& [seq, oldest] = *stream.messages.begin();
    if (!MustDropOldest(stream.config, st, oldest.record.size(),
                        oldest.time_unix_ms, now_unix_ms)) {
      break;
    }
    Drop(stream, seq);
  }
}

void MemoryStreamStorage::Drop(Stream& stream, uint64_t seq) {
  auto it = stream.messages.find(seq);
  if (it == stream.messages.end()) return;
  const Message& m = it->second;
  // A dropped message is the oldest of its topic: the stream's oldest, or
  // the one max_msgs_per_topic pushed out. (Without the limit, the topic
  // keeps only its newest, which goes only when it is the last.)
  auto topic = stream.topics.find(m.topic);
  if (topic != stream.topics.end()) {
    absl::InlinedVector<uint64_t, 1>& seqs = topic->second;
    auto held = std::find(seqs.begin(), seqs.end(), seq);
    if (held != seqs.end()) seqs.erase(held);
    if (seqs.empty()) stream.topics.erase(topic);
  }
  StreamState& st = stream.state;
  --st.messages;
  st.bytes -= m.record.size();
  stream.messages.erase(it);
  if (stream.messages.empty()) {
    st.first_seq = 0;
    st.first_time_unix_ms = 0;
  } else {
    st.first_seq = stream.messages.begin()->first;
    st.first_time_unix_ms = stream.messages.begin()->second.time_unix_ms;
  }
}

ReadDone MemoryStreamStorage::Execute(const ReadRequest& read) const {
  ReadDone done;
  done.id = read.id;
  if (failing_reads_ > 0) {
    // Reads are const in spirit; the fault counter is the test's knob.
    auto* self = const_cast<MemoryStreamStorage*>(this);
    --self->failing_reads_;
    done.status = read_failure_;
    return done;
  }
  auto it = streams_.find(read.stream);
  if (it == streams_.end()) {
    done.status = absl::NotFoundError(
        absl::StrCat("no stream '", read.stream, "' in the storage"));
    return done;
  }
  const Stream& s = it->second;
  done.next_seq = s.state.last_seq + 1;
  size_t bytes = 0;
  auto full = [&] {
    return done.messages.size() >= read.max_messages ||
           (!done.messages.empty() && bytes >= read.max_bytes);
  };
  if (!read.seqs.empty()) {
    for (uint64_t seq : read.seqs) {
      if (full()) {
        done.next_seq = seq;
        break;
      }
      auto m = s.messages.find(seq);
      if (m == s.messages.end()) continue;
      done.messages.push_back(StoredRecord{seq, m->second.record});
      bytes += m->second.record.size();
    }
    return done;
  }
  auto m = s.messages.lower_bound(read.from_seq);
  if (m != s.messages.end() && m->second.time_unix_ms < read.since_unix_ms) {
    // Times never decrease with the sequence: binary-search the sequences
    // (probing the first held one at or after each).
    uint64_t lo = m->first;
    uint64_t hi = s.state.last_seq + 1;
    while (lo < hi) {
      const uint64_t mid = lo + (hi - lo) / 2;
      auto probe = s.messages.lower_bound(mid);
      if (probe == s.messages.end() || probe->first >= hi) {
        hi = mid;
      } else if (probe->second.time_unix_ms < read.since_unix_ms) {
        lo = probe->first + 1;
      } else {
        hi = mid;
      }
    }
    m = s.messages.lower_bound(lo);
  }
  if (read.last > 0) {
    // The last `read.last` held up to last_through (not before `m`).
    auto back = s.messages.upper_bound(read.last_through);
    for (uint64_t n = 0; n < read.last && back != s.messages.begin(); ++n) {
      auto earlier = std::prev(back);
      if (m == s.messages.end() || earlier->first < m->first) break;
      back = earlier;
    }
    if (m != s.messages.end() && back != s.messages.end() &&
        back->first > m->first) {
      m = back;
    }
  }
  for (; m != s.messages.end(); ++m) {
    if (full()) {
      done.next_seq = m->first;
      break;
    }
    done.messages.push_back(StoredRecord{m->first, m->second.record});
    bytes += m->second.record.size();
  }
  return done;
}

}  // namespace manifold
