#include "broker/transcript/transcript_runner.h"

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "broker/broker.h"
#include "broker/nats/nats_codec.h"
#ifdef MANIFOLD_HAVE_HTTP
#include "broker/http/http_codec.h"
#endif
#include "broker/transcript/field_path.h"
#include "broker/transcript/recorded_session_ids.h"
#include "core/framing.h"
#include "core/status.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"

namespace manifold {
namespace {

using google::protobuf::TextFormat;
using google::protobuf::util::MessageDifferencer;
using transcript::Step;

// 2027-01-15T08:00:00Z: a fixed, recognisable start for the fake clock.
constexpr int64_t kDefaultStartMicros = 1'800'000'000'000'000;

std::string OneLine(const google::protobuf::Message& m) {
  std::string text;
  TextFormat::Printer printer;
  printer.SetSingleLineMode(true);
  printer.PrintToString(m, &text);
  absl::StripTrailingAsciiWhitespace(&text);
  return text;
}

std::string Indented(const google::protobuf::Message& m) {
  std::string text;
  TextFormat::PrintToString(m, &text);
  if (text.empty()) return "    (empty)\n";
  std::string out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!line.empty()) absl::StrAppend(&out, "    ", line, "\n");
  }
  return out;
}

std::string Escaped(absl::string_view bytes) {
  return absl::StrCat("\"", absl::CEscape(bytes.substr(0, 200)),
                      bytes.size() > 200 ? "..." : "", "\"");
}

class ErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (first_.empty()) {
      first_ = absl::StrCat("line ", line + 1, ", column ", column + 1, ": ",
                            message);
    }
  }
  const std::string& first() const { return first_; }

 private:
  std::string first_;
};

// What one client received, from the test's side of the link.
struct Client {
  std::string name;
  ConnectionId id;
  // Bytes the broker produced for this client that no step has matched yet.
  std::string unmatched;
  // Connection::output_total() when output was last collected.
  uint64_t produced = 0;
  // The link was closed (by a disconnect step, or automatically after the
  // broker finished with it).
  bool closed = false;
  absl::Status close_reason;
  // Hand-written transcripts: whether output is taken from the connection.
  bool reading = true;
};

class Replayer {
 public:
  Replayer(const transcript::Transcript& t, const ReplayOptions& options)
      : t_(t),
        options_(options),
        broker_(TranscriptBrokerOptions(t), ReplayedIds(t)),
        now_(TranscriptStartTime(t)) {}

  absl::Status Run() {
    if (absl::Status s = session_ids_->Check(); !s.ok()) return s;
    for (int i = 0; i < t_.step_size(); ++i) {
      step_index_ = i;
      if (absl::Status s = RunStep(t_.step(i)); !s.ok()) return s;
      if (!t_.recorded()) broker_.Process(now_);
      CollectOutput();
      if (!session_ids_->divergence().empty()) {
        return Mismatch(session_ids_->divergence());
      }
    }
    step_index_ = t_.step_size();
    // Everything the broker sent must have been expected.
    for (auto& [name, client] : clients_) {
      if (!client.unmatched.empty()) {
        return Mismatch(absl::StrCat(
            "at the end, client '", name, "' has ", client.unmatched.size(),
            " bytes it was not expected to receive; the first message:\n",
            DescribeFront(client)));
      }
    }
    return absl::OkStatus();
  }

 private:
  // The broker's session tokens: those the recording drew, then seeded ones.
  std::unique_ptr<SessionIdSource> ReplayedIds(
      const transcript::Transcript& t) {
    auto ids = std::make_unique<ReplayedSessionIds>(
        t.session_ids(), TranscriptBrokerOptions(t).session_id_seed());
    session_ids_ = ids.get();
    return ids;
  }

  // --- Reporting ------------------------------------------------------------

  absl::Status Mismatch(absl::string_view what) const {
    std::string report;
    if (step_index_ < t_.step_size()) {
      const Step& step = t_.step(step_index_);
      absl::StrAppend(&report, "step ", step_index_ + 1, " of ", t_.step_size(),
                      ": ", OneLine(step), "\n");
      if (!step.note().empty())
        absl::StrAppend(&report, "  (", step.note(), ")\n");
    }
    absl::StrAppend(&report, what);
    return absl::FailedPreconditionError(report);
  }

  absl::Status BadTranscript(absl::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat("step ", step_index_ + 1, ": ", what));
  }

  std::string DescribeFront(const Client& client) const {
    absl::StatusOr<std::optional<FrameView>> frame =
        LocateFrame(client.unmatched, 1 << 30);
    wire::ServerMessage m;
    if (frame.ok() && frame->has_value() &&
        m.ParseFromArray((*frame)->body.data(),
                         static_cast<int>((*frame)->body.size()))) {
      return Indented(m);
    }
    return absl::StrCat("    raw ", Escaped(client.unmatched), "\n");
  }

  // --- Clients --------------------------------------------------------------

  absl::StatusOr<Client*> FindClient(absl::string_view name) {
    auto it = clients_.find(std::string(name));
    if (it == clients_.end()) {
      return BadTranscript(absl::StrCat("no client named '", name, "'"));
    }
    return &it->second;
  }

  // Moves what the broker produced since the last look into each client's
  // `unmatched` bytes. In a hand-written transcript the output is then taken
  // from the connection, and a connection the broker is done with is closed,
  // as a transport would.
  void CollectOutput() {
    for (auto& [name, client] : clients_) {
      if (client.closed) continue;
      Connection* c = broker_.FindConnection(client.id);
      if (c == nullptr) continue;
      if (!t_.recorded() && !client.reading) continue;
      const uint64_t pending = c->PendingOutputBytes();
      // Bytes queued since the last look are the newest pending ones, except
      // any discarded unread (a closing connection's linger ran out).
      const uint64_t fresh =
          std::min<uint64_t>(c->output_total() - client.produced, pending);
      if (fresh > 0) {
        const std::string all = c->CopyPendingOutput();
        client.unmatched.append(all, all.size() - fresh, fresh);
      }
      client.produced = c->output_total();
      if (!t_.recorded() && client.reading) {
        c->Consume(pending);
        if (c->ShouldClose()) {
          client.closed = true;
          client.close_reason = c->close_reason();
          broker_.Close(client.id, "transport closed the link", now_);
        }
      }
    }
  }

  // Takes one frame off the client's unmatched bytes.
  absl::StatusOr<wire::ServerMessage> NextMessage(Client& client,
                                                  absl::string_view expected) {
    absl::StatusOr<std::optional<FrameView>> frame =
        LocateFrame(client.unmatched, 1 << 30);
    if (!frame.ok() || !frame->has_value()) {
      return Mismatch(absl::StrCat(
          "client '", client.name, "' received ",
          client.unmatched.empty()
              ? "nothing"
              : absl::StrCat("only ", Escaped(client.unmatched)),
          "; expected:\n", expected,
          client.closed ? absl::StrCat("  (the connection was closed: ",
                                       client.close_reason.ToString(), ")\n")
                        : ""));
    }
    wire::ServerMessage m;
    if (!m.ParseFromArray((*frame)->body.data(),
                          static_cast<int>((*frame)->body.size()))) {
      return Mismatch(absl::StrCat(
          "client '", client.name,
          "' received a frame that does not parse: ", Escaped((*frame)->body)));
    }
    client.unmatched.erase(0, (*frame)->size);
    return m;
  }

  // --- Variables ------------------------------------------------------------

  absl::Status ApplyGets(
      google::protobuf::Message& m,
      const google::protobuf::RepeatedPtrField<transcript::Binding>& gets) {
    for (const transcript::Binding& b : gets) {
      auto it = vars_.find(b.var());
      if (it == vars_.end()) {
        return BadTranscript(
            absl::StrCat("variable '", b.var(), "' is used before it is set"));
      }
      if (absl::Status s = transcript::SetField(m, b.field(), it->second);
          !s.ok()) {
        return BadTranscript(s.message());
      }
    }
    return absl::OkStatus();
  }

  // Compares `expected` with `actual`, ignoring the fields `sets` capture;
  // on a match, captures them.
  absl::StatusOr<bool> MatchAndCapture(
      google::protobuf::Message& expected,
      const google::protobuf::Message& actual,
      const google::protobuf::RepeatedPtrField<transcript::Binding>& sets,
      std::string* differences) {
    std::unique_ptr<google::protobuf::Message> compared(actual.New());
    compared->CopyFrom(actual);
    for (const transcript::Binding& b : sets) {
      if (absl::Status s = transcript::ClearField(expected, b.field());
          !s.ok()) {
        return BadTranscript(s.message());
      }
      transcript::ClearField(*compared, b.field()).IgnoreError();
    }
    MessageDifferencer differencer;
    if (differences != nullptr)
      differencer.ReportDifferencesToString(differences);
    if (!differencer.Compare(expected, *compared)) return false;
    for (const transcript::Binding& b : sets) {
      absl::StatusOr<std::string> value =
          transcript::GetField(actual, b.field());
      if (!value.ok()) {
        return Mismatch(absl::StrCat("cannot capture '", b.field(),
                                     "': ", value.status().message()));
      }
      vars_[b.var()] = *value;
    }
    return true;
  }

  // --- Steps ----------------------------------------------------------------

  absl::Status RunStep(const Step& step) {
    switch (step.kind_case()) {
      case Step::kConnect:
        return DoConnect(step.connect());
      case Step::kSend:
        return DoSend(step.send());
      case Step::kExpect:
        return DoExpect(step.expect());
      case Step::kExpectUnordered:
        return DoExpectUnordered(step.expect_unordered());
      case Step::kExpectClosed:
        return DoExpectClosed(step.expect_closed());
      case Step::kExpectNothing: {
        absl::StatusOr<Client*> client =
            FindClient(step.expect_nothing().client());
        if (!client.ok()) return client.status();
        if (!(*client)->unmatched.empty()) {
          return Mismatch(absl::StrCat("client '", (*client)->name,
                                       "' was expected to have received "
                                       "nothing more, but received:\n",
                                       DescribeFront(**client)));
        }
        return absl::OkStatus();
      }
      case Step::kAdvance:
        now_ += absl::Milliseconds(step.advance().millis()) +
                absl::Microseconds(step.advance().micros());
        if (!t_.recorded()) broker_.Tick(now_);
        return absl::OkStatus();
      case Step::kTick:
        broker_.Tick(now_);
        return absl::OkStatus();
      case Step::kProcess:
        broker_.Process(now_);
        return absl::OkStatus();
      case Step::kWritten:
        return DoWritten(step.written());
      case Step::kDisconnect: {
        absl::StatusOr<Client*> client = FindClient(step.disconnect().client());
        if (!client.ok()) return client.status();
        CollectOutput();  // what it was sent before the link went away
        if (Connection* c = broker_.FindConnection((*client)->id)) {
          (*client)->close_reason = c->close_reason();
        }
        (*client)->closed = true;
        broker_.Close((*client)->id, step.disconnect().reason(), now_);
        return absl::OkStatus();
      }
      case Step::kAdmit: {
        absl::StatusOr<Client*> client = FindClient(step.admit().client());
        if (!client.ok()) return client.status();
        Grant grant;
        grant.user = step.admit().user();
        if (step.admit().has_permissions()) {
          absl::StatusOr<std::shared_ptr<const PermissionSet>> compiled =
              PermissionSet::Compile(step.admit().permissions());
          if (!compiled.ok()) return compiled.status();
          grant.permissions = *std::move(compiled);
        }
        if (absl::Status s =
                broker_.Admit((*client)->id, std::move(grant), now_);
            !s.ok()) {
          return Mismatch(absl::StrCat("Admit failed: ", s.message()));
        }
        return absl::OkStatus();
      }
      case Step::kRefuse: {
        absl::StatusOr<Client*> client = FindClient(step.refuse().client());
        if (!client.ok()) return client.status();
        if (absl::Status s =
                broker_.Refuse((*client)->id, step.refuse().reason(), now_);
            !s.ok()) {
          return Mismatch(absl::StrCat("Refuse failed: ", s.message()));
        }
        return absl::OkStatus();
      }
      case Step::kShutdown:
        broker_.Shutdown(now_);
        return absl::OkStatus();
      case Step::kExpectEvent:
        return DoExpectEvent(step.expect_event());
      case Step::kStopReading:
      case Step::kStartReading: {
        const bool start = step.has_start_reading();
        absl::StatusOr<Client*> client =
            FindClient(start ? step.start_reading().client()
                             : step.stop_reading().client());
        if (!client.ok()) return client.status();
        (*client)->reading = start;
        return absl::OkStatus();
      }
      default:
        return BadTranscript("empty step");
    }
  }

  absl::Status DoConnect(const transcript::Connect& connect) {
    if (connect.client().empty())
      return BadTranscript("connect needs a client name");
    if (clients_.contains(connect.client())) {
      return BadTranscript(
          absl::StrCat("client '", connect.client(), "' already exists"));
    }
    PeerInfo peer{connect.peer().empty()
                      ? absl::StrCat("transcript:", connect.client())
                      : connect.peer()};
    Connection* c = nullptr;
    if (connect.protocol().empty() || connect.protocol() == "native") {
      c = &broker_.Accept(std::move(peer), now_);
    } else {
      if (!options_.codec_factory) {
        return BadTranscript(absl::StrCat("protocol '", connect.protocol(),
                                          "' is not available here"));
      }
      absl::StatusOr<std::unique_ptr<ProtocolCodec>> codec =
          options_.codec_factory(connect.protocol(),
                                 connect.protocol_settings());
      if (!codec.ok()) return BadTranscript(codec.status().message());
      c = &broker_.Accept(std::move(peer), now_, *std::move(codec));
    }
    Client& client = clients_[connect.client()];
    client.name = connect.client();
    client.id = c->id();
    if (!connect.handshake()) return absl::OkStatus();
    wire::ClientMessage hello;
    hello.mutable_hello()->set_protocol_version(kProtocolVersion);
    hello.mutable_hello()->set_client_name(connect.client());
    c->Receive(EncodeFrame(hello), now_);
    broker_.Process(now_);
    CollectOutput();
    absl::StatusOr<wire::ServerMessage> welcome =
        NextMessage(client, "    welcome { ... }\n");
    if (!welcome.ok()) return welcome.status();
    if (!welcome->has_welcome() ||
        welcome->welcome().session_id() != client.id.value()) {
      return Mismatch(absl::StrCat(
          "client '", client.name, "' expected a Welcome for session ",
          client.id.value(), ", received:\n", Indented(*welcome)));
    }
    return absl::OkStatus();
  }

  absl::Status DoSend(const transcript::Send& send) {
    absl::StatusOr<Client*> client = FindClient(send.client());
    if (!client.ok()) return client.status();
    std::string bytes;
    if (send.what_case() == transcript::Send::kRaw) {
      bytes = send.raw();
    } else {
      wire::ClientMessage m = send.message();
      if (absl::Status s = ApplyGets(m, send.get()); !s.ok()) return s;
      bytes = EncodeFrame(m);
    }
    Connection* c = broker_.FindConnection((*client)->id);
    if (c == nullptr || (*client)->closed) {
      return Mismatch(absl::StrCat("client '", send.client(),
                                   "' cannot send: its connection is closed (",
                                   (*client)->close_reason.ToString(), ")"));
    }
    c->Receive(bytes, now_);
    return absl::OkStatus();
  }

  absl::Status DoExpect(const transcript::Expect& expect) {
    absl::StatusOr<Client*> found = FindClient(expect.client());
    if (!found.ok()) return found.status();
    Client& client = **found;
    CollectOutput();
    if (expect.what_case() == transcript::Expect::kRaw) {
      if (!absl::StartsWith(client.unmatched, expect.raw())) {
        return Mismatch(absl::StrCat("client '", client.name,
                                     "' expected raw bytes\n    ",
                                     Escaped(expect.raw()), "\nreceived\n    ",
                                     Escaped(client.unmatched), "\n"));
      }
      client.unmatched.erase(0, expect.raw().size());
      return absl::OkStatus();
    }
    wire::ServerMessage expected = expect.message();
    if (absl::Status s = ApplyGets(expected, expect.get()); !s.ok()) return s;
    absl::StatusOr<wire::ServerMessage> actual =
        NextMessage(client, Indented(expected));
    if (!actual.ok()) return actual.status();
    std::string differences;
    absl::StatusOr<bool> same =
        MatchAndCapture(expected, *actual, expect.set(), &differences);
    if (!same.ok()) return same.status();
    if (!*same) {
      return Mismatch(absl::StrCat(
          "client '", client.name, "' received a different message.\n",
          "  expected:\n", Indented(expected), "  received:\n",
          Indented(*actual), "  differences:\n    ",
          absl::StrReplaceAll(differences, {{"\n", "\n    "}})));
    }
    return absl::OkStatus();
  }

  absl::Status DoExpectUnordered(const transcript::ExpectUnordered& expect) {
    absl::StatusOr<Client*> found = FindClient(expect.client());
    if (!found.ok()) return found.status();
    Client& client = **found;
    CollectOutput();
    std::string expected_text;
    for (const auto& m : expect.messages())
      absl::StrAppend(&expected_text, Indented(m));
    std::vector<wire::ServerMessage> actual;
    for (int i = 0; i < expect.messages_size(); ++i) {
      absl::StatusOr<wire::ServerMessage> m =
          NextMessage(client, expected_text);
      if (!m.ok()) return m.status();
      actual.push_back(std::move(*m));
    }
    std::vector<bool> used(actual.size(), false);
    for (const wire::ServerMessage& want : expect.messages()) {
      bool found_one = false;
      for (size_t k = 0; k < actual.size() && !found_one; ++k) {
        if (!used[k] && MessageDifferencer::Equals(want, actual[k])) {
          used[k] = found_one = true;
        }
      }
      if (!found_one) {
        std::string received;
        for (const auto& m : actual) absl::StrAppend(&received, Indented(m));
        return Mismatch(absl::StrCat(
            "client '", client.name, "' did not receive, in any order:\n",
            Indented(want), "  it received:\n", received));
      }
    }
    return absl::OkStatus();
  }

  absl::Status DoExpectClosed(const transcript::ExpectClosed& expect) {
    absl::StatusOr<Client*> found = FindClient(expect.client());
    if (!found.ok()) return found.status();
    Client& client = **found;
    CollectOutput();
    if (!client.unmatched.empty()) {
      return Mismatch(absl::StrCat("client '", client.name,
                                   "' was to be closed, but first received:\n",
                                   DescribeFront(client)));
    }
    absl::Status reason = client.close_reason;
    bool closing = client.closed;
    if (Connection* c = broker_.FindConnection(client.id)) {
      closing = c->state() == ConnectionState::kClosing;
      reason = c->close_reason();
    }
    if (!closing) {
      return Mismatch(
          absl::StrCat("client '", client.name, "' is still connected"));
    }
    if (expect.code() != wire::OK && WireCode(reason) != expect.code()) {
      return Mismatch(
          absl::StrCat("client '", client.name, "' was closed with ",
                       CodeName(WireCode(reason)), " (", reason.message(),
                       "), expected ", CodeName(expect.code())));
    }
    if (!absl::StrContains(reason.message(), expect.reason_contains())) {
      return Mismatch(absl::StrCat(
          "client '", client.name, "' was closed because '", reason.message(),
          "', which does not contain '", expect.reason_contains(), "'"));
    }
    return absl::OkStatus();
  }

  absl::Status DoWritten(const transcript::Written& written) {
    absl::StatusOr<Client*> found = FindClient(written.client());
    if (!found.ok()) return found.status();
    Client& client = **found;
    CollectOutput();
    Connection* c = broker_.FindConnection(client.id);
    const uint64_t pending = c == nullptr ? 0 : c->PendingOutputBytes();
    if (written.bytes() > pending) {
      return Mismatch(absl::StrCat("the transport wrote ", written.bytes(),
                                   " bytes to client '", client.name,
                                   "', but the broker has only ", pending,
                                   " pending for it"));
    }
    if (written.bytes() > 0) c->Consume(written.bytes());
    return absl::OkStatus();
  }

  absl::Status DoExpectEvent(const transcript::ExpectEvent& expect) {
    std::optional<wire::BrokerEvent> event = broker_.PollEvent();
    wire::BrokerEvent expected = expect.event();
    if (absl::Status s = ApplyGets(expected, expect.get()); !s.ok()) return s;
    if (!event.has_value()) {
      return Mismatch(
          absl::StrCat("no event; expected:\n", Indented(expected)));
    }
    std::string differences;
    absl::StatusOr<bool> same =
        MatchAndCapture(expected, *event, expect.set(), &differences);
    if (!same.ok()) return same.status();
    if (!*same) {
      return Mismatch(absl::StrCat("a different event.\n  expected:\n",
                                   Indented(expected), "  received:\n",
                                   Indented(*event), "  differences:\n    ",
                                   differences));
    }
    return absl::OkStatus();
  }

  const transcript::Transcript& t_;
  const ReplayOptions& options_;
  ReplayedSessionIds* session_ids_ = nullptr;  // owned by broker_
  Broker broker_;
  absl::Time now_;
  std::map<std::string, Client> clients_;  // ordered: deterministic reports
  absl::flat_hash_map<std::string, std::string> vars_;
  int step_index_ = 0;
};

}  // namespace

absl::StatusOr<transcript::Transcript> ParseTranscript(absl::string_view text) {
  transcript::Transcript t;
  TextFormat::Parser parser;
  ErrorCollector errors;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(std::string(text), &t)) {
    return absl::InvalidArgumentError(
        errors.first().empty() ? std::string("transcript does not parse")
                               : errors.first());
  }
  return t;
}

std::string TranscriptToText(const transcript::Transcript& t) {
  std::string out;
  transcript::Transcript header = t;
  header.clear_step();
  TextFormat::PrintToString(header, &out);
  for (const Step& step : t.step()) {
    absl::StrAppend(&out, "step { ", OneLine(step), " }\n");
  }
  return out;
}

BrokerOptions TranscriptBrokerOptions(const transcript::Transcript& t) {
  BrokerOptions options = t.broker();
  if (!options.has_statistics_interval_ms()) {
    options.set_statistics_interval_ms(0);
  }
  return options;
}

absl::Time TranscriptStartTime(const transcript::Transcript& t) {
  return absl::FromUnixMicros(t.has_start_time_unix_micros()
                                  ? t.start_time_unix_micros()
                                  : kDefaultStartMicros);
}

ReplayOptions StandardReplayOptions() {
  ReplayOptions options;
  options.codec_factory = [](absl::string_view protocol,
                             absl::string_view settings)
      -> absl::StatusOr<std::unique_ptr<ProtocolCodec>> {
#ifdef MANIFOLD_HAVE_HTTP
    if (protocol == "http") {
      absl::StatusOr<HttpOptions> http = ParseHttpSettings(settings);
      if (!http.ok()) return http.status();
      return std::make_unique<HttpCodec>(*std::move(http));
    }
#endif
    if (protocol != "nats") {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown protocol '", protocol, "'"));
    }
    absl::StatusOr<NatsOptions> nats = ParseNatsSettings(settings);
    if (!nats.ok()) return nats.status();
    return std::make_unique<NatsCodec>(*std::move(nats));
  };
  return options;
}

absl::Status ReplayTranscript(const transcript::Transcript& t,
                              const ReplayOptions& options) {
  Replayer replayer(t, options);
  return replayer.Run();
}

}  // namespace manifold
