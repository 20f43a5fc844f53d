// native_peer: a native Manifold client (client/client.h) driven line by line
// from stdin, so the NATS compatibility suite can make native and NATS clients
// talk to each other through one manifoldd.
//
//   native_peer --server 127.0.0.1:24387
//
// Each input line is "TAG COMMAND ARGS..." (fields separated by one space; a
// PAYLOAD is the rest of the line, spaces included). Commands run one at a
// time, in order; each answers with one JSON line {"tag":TAG,"ok":true,...}
// or {"tag":TAG,"error":"..."}:
//
//   TAG ping                         a round trip to the broker
//   TAG sub SUB PATTERN [GROUP]      subscribe; messages arrive as events
//   TAG unsub SUB                    unsubscribe
//   TAG pub TOPIC PAYLOAD            publish, confirmed: "reached":N
//   TAG hpub TOPIC KEY VALUE PAYLOAD publish with one header, confirmed
//   TAG replier SUB PATTERN          answer every message on PATTERN that has
//                                    a reply_to with "native:" + payload (and
//                                    header Answered-By: native) published on
//                                    reply_to
//   TAG ask TOPIC INBOX PAYLOAD      a NATS-style request: publish PAYLOAD on
//                                    TOPIC with reply_to INBOX/<n>, wait 5 s
//                                    for the message on it: "payload",
//                                    "topic", "headers"
//   TAG serve TOPIC                  serve TOPIC natively, answering
//                                    "served:" + payload
//   TAG hserve TOPIC                 serve TOPIC natively, taking requests
//                                    with Service::Next(): "reject:WHY"
//                                    is rejected with WHY, "ignore" is not
//                                    answered, anything else is answered
//                                    "served:" + payload with the request's
//                                    headers and header Served-By: native
//   TAG req TOPIC PAYLOAD            a native Request: "payload", or error
//   TAG quit                         close the client and exit 0
//
// Events, at any time (written whole, one per line, never inside another):
//   {"event":"msg","sub":SUB,"topic":...,"payload":...,"reply_to":...,
//    "headers":[[key,value],...]}
// An error that ends the client prints {"event":"error","error":...}.

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/cli/json.h"
#include "client/client.h"

ABSL_FLAG(std::string, server, "127.0.0.1:24387",
          "The broker's native address, HOST:PORT.");

namespace manifold {
namespace {

using cli::JsonString;

std::string JsonHeaders(const Headers& headers) {
  std::string out = "[";
  for (size_t i = 0; i < headers.size(); ++i) {
    absl::StrAppend(&out, i == 0 ? "" : ",", "[", JsonString(headers[i].first),
                    ",", JsonString(headers[i].second), "]");
  }
  out += "]";
  return out;
}

// Writes whole lines from any thread (commands run on the main thread,
// messages arrive on the client's callback thread).
class Output {
 public:
  void Line(const std::string& json) {
    absl::MutexLock lock(&mutex_);
    std::fwrite(json.data(), 1, json.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }

 private:
  absl::Mutex mutex_;
};

std::string MessageEvent(absl::string_view sub, const Message& m) {
  return absl::StrCat("{\"event\":\"msg\",\"sub\":", JsonString(sub),
                      ",\"topic\":", JsonString(m.topic),
                      ",\"payload\":", JsonString(m.payload),
                      ",\"reply_to\":", JsonString(m.reply_to),
                      ",\"headers\":", JsonHeaders(m.headers), "}");
}

// Splits "a b rest of line" into `count` fields, the last one taking the rest.
// Returns false when there are fewer.
bool SplitFields(absl::string_view line, size_t count,
                 std::vector<std::string>& fields) {
  fields.clear();
  for (size_t i = 0; i + 1 < count; ++i) {
    const size_t space = line.find(' ');
    if (space == absl::string_view::npos) return false;
    fields.emplace_back(line.substr(0, space));
    line.remove_prefix(space + 1);
  }
  fields.emplace_back(line);
  return true;
}

class Peer {
 public:
  Peer(std::unique_ptr<Client> client, Output& output)
      : client_(std::move(client)), output_(output) {}
  ~Peer() {
    stopping_ = true;
    for (std::thread& t : servers_) t.join();
  }

  // Runs one command line (without its tag). Returns the JSON fields to add
  // to the answer (after "tag" and "ok"), or the error.
  absl::StatusOr<std::string> Run(absl::string_view command,
                                  absl::string_view args) {
    std::vector<std::string> f;
    if (command == "ping") return Ping();
    if (command == "sub") {
      if (!SplitFields(args, 2, f)) return Usage("sub SUB PATTERN [GROUP]");
      std::vector<std::string> g;
      if (SplitFields(f[1], 2, g)) return Subscribe(f[0], g[0], g[1]);
      return Subscribe(f[0], f[1], "");
    }
    if (command == "unsub") return Unsubscribe(std::string(args));
    if (command == "pub") {
      if (!SplitFields(args, 2, f)) return Usage("pub TOPIC PAYLOAD");
      return Publish(f[0], f[1], PublishOptions());
    }
    if (command == "hpub") {
      if (!SplitFields(args, 4, f)) {
        return Usage("hpub TOPIC KEY VALUE PAYLOAD");
      }
      PublishOptions options;
      options.headers.push_back({f[1], f[2]});
      return Publish(f[0], f[3], options);
    }
    if (command == "replier") {
      if (!SplitFields(args, 2, f)) return Usage("replier SUB PATTERN");
      return Replier(f[0], f[1]);
    }
    if (command == "ask") {
      if (!SplitFields(args, 3, f)) return Usage("ask TOPIC INBOX PAYLOAD");
      return Ask(f[0], f[1], f[2]);
    }
    if (command == "serve") return Serve(std::string(args));
    if (command == "hserve") return ServeByPulling(std::string(args));
    if (command == "req") {
      if (!SplitFields(args, 2, f)) return Usage("req TOPIC PAYLOAD");
      return Request(f[0], f[1]);
    }
    return absl::InvalidArgumentError(
        absl::StrCat("unknown command '", command, "'"));
  }

 private:
  static absl::Status Usage(absl::string_view synopsis) {
    return absl::InvalidArgumentError(absl::StrCat("usage: ", synopsis));
  }

  absl::StatusOr<std::string> Ping() {
    absl::Status s = client_->Ping(absl::Seconds(5));
    if (!s.ok()) return s;
    return std::string();
  }

  absl::StatusOr<std::string> Subscribe(const std::string& sub,
                                        const std::string& pattern,
                                        const std::string& group) {
    Output& output = output_;
    MessageHandler handler = [sub, &output](const Message& m) {
      output.Line(MessageEvent(sub, m));
    };
    absl::StatusOr<std::unique_ptr<Client::Subscription>> s =
        group.empty() ? client_->Subscribe(pattern, handler)
                      : client_->QueueSubscribe(pattern, group, handler);
    if (!s.ok()) return s.status();
    subscriptions_[sub] = *std::move(s);
    return std::string();
  }

  absl::StatusOr<std::string> Unsubscribe(const std::string& sub) {
    auto it = subscriptions_.find(sub);
    if (it == subscriptions_.end()) {
      return absl::NotFoundError(absl::StrCat("no subscription ", sub));
    }
    absl::Status s = it->second->Unsubscribe();
    subscriptions_.erase(it);
    if (!s.ok()) return s;
    return std::string();
  }

  absl::StatusOr<std::string> Publish(const std::string& topic,
                                      const std::string& payload,
                                      const PublishOptions& options) {
    absl::StatusOr<uint64_t> reached =
        client_->PublishConfirmed(topic, payload, options);
    if (!reached.ok()) return reached.status();
    return absl::StrCat(",\"reached\":", *reached);
  }

  absl::StatusOr<std::string> Replier(const std::string& sub,
                                      const std::string& pattern) {
    Client* client = client_.get();
    Output& output = output_;
    MessageHandler handler = [client, &output](const Message& m) {
      if (m.reply_to.empty()) return;
      PublishOptions options;
      options.headers.push_back({"Answered-By", "native"});
      absl::Status s = client->Publish(
          m.reply_to, absl::StrCat("native:", m.payload), options);
      if (!s.ok()) {
        output.Line(absl::StrCat(
            "{\"event\":\"error\",\"error\":", JsonString(s.ToString()), "}"));
      }
    };
    absl::StatusOr<std::unique_ptr<Client::Subscription>> s =
        client_->Subscribe(pattern, handler);
    if (!s.ok()) return s.status();
    subscriptions_[sub] = *std::move(s);
    return std::string();
  }

  absl::StatusOr<std::string> Ask(const std::string& topic,
                                  const std::string& inbox,
                                  const std::string& payload) {
    absl::StatusOr<std::unique_ptr<Client::Subscription>> answers =
        client_->Subscribe(absl::StrCat(inbox, "/*"));
    if (!answers.ok()) return answers.status();
    PublishOptions options;
    options.reply_to = absl::StrCat(inbox, "/", ++asked_);
    absl::Status sent = client_->Publish(topic, payload, options);
    if (!sent.ok()) return sent;
    absl::StatusOr<Message> answer = (*answers)->Next(absl::Seconds(5));
    if (!answer.ok()) return answer.status();
    return absl::StrCat(",\"topic\":", JsonString(answer->topic),
                        ",\"payload\":", JsonString(answer->payload),
                        ",\"headers\":", JsonHeaders(answer->headers));
  }

  absl::StatusOr<std::string> Serve(const std::string& topic) {
    absl::StatusOr<std::unique_ptr<Client::Service>> service = client_->Serve(
        topic, [](const IncomingRequest& r) -> absl::StatusOr<std::string> {
          return absl::StrCat("served:", r.payload);
        });
    if (!service.ok()) return service.status();
    services_.push_back(*std::move(service));
    return std::string();
  }

  absl::StatusOr<std::string> ServeByPulling(const std::string& topic) {
    absl::StatusOr<std::unique_ptr<Client::Service>> service =
        client_->Serve(topic);
    if (!service.ok()) return service.status();
    Client::Service* pulled = service->get();
    services_.push_back(*std::move(service));
    servers_.emplace_back([this, pulled] {
      while (!stopping_) {
        absl::StatusOr<IncomingRequest> r = pulled->Next(absl::Seconds(0.2));
        if (absl::IsDeadlineExceeded(r.status())) continue;
        if (!r.ok()) return;
        absl::Status s;
        if (absl::StartsWith(r->payload, "reject:")) {
          s = client_->Reject(r->id, r->payload.substr(7));
        } else if (r->payload != "ignore") {
          Headers headers = r->headers;
          headers.push_back({"Served-By", "native"});
          s = client_->Respond(r->id, absl::StrCat("served:", r->payload),
                               headers);
        }
        if (!s.ok()) {
          output_.Line(absl::StrCat("{\"event\":\"error\",\"error\":",
                                    JsonString(s.ToString()), "}"));
        }
      }
    });
    return std::string();
  }

  absl::StatusOr<std::string> Request(const std::string& topic,
                                      const std::string& payload) {
    absl::StatusOr<Message> reply =
        client_->Request(topic, payload, absl::Seconds(5));
    if (!reply.ok()) return reply.status();
    return absl::StrCat(",\"payload\":", JsonString(reply->payload),
                        ",\"headers\":", JsonHeaders(reply->headers));
  }

  std::unique_ptr<Client> client_;
  Output& output_;
  std::map<std::string, std::unique_ptr<Client::Subscription>> subscriptions_;
  std::vector<std::unique_ptr<Client::Service>> services_;
  // Threads of `hserve`, stopped and joined before services_ go.
  std::atomic<bool> stopping_{false};
  std::vector<std::thread> servers_;
  uint64_t asked_ = 0;
};

int Main() {
  Output output;
  ClientOptions options;
  options.name = "nats-compat-native-peer";
  options.on_error = [&output](const absl::Status& s) {
    output.Line(absl::StrCat(
        "{\"event\":\"error\",\"error\":", JsonString(s.ToString()), "}"));
  };
  absl::StatusOr<std::unique_ptr<Client>> client =
      Client::Connect(absl::GetFlag(FLAGS_server), options);
  if (!client.ok()) {
    std::fprintf(stderr, "native_peer: %s\n",
                 client.status().ToString().c_str());
    return 1;
  }
  Peer peer(*std::move(client), output);
  output.Line("{\"event\":\"ready\"}");

  std::string line;
  while (std::getline(std::cin, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::vector<std::string> head;
    if (!SplitFields(line, 2, head)) head = {line, ""};
    const std::string& tag = head[0];
    absl::string_view rest = head[1];
    const size_t space = rest.find(' ');
    const absl::string_view command = rest.substr(0, space);
    const absl::string_view args = space == absl::string_view::npos
                                       ? absl::string_view()
                                       : rest.substr(space + 1);
    if (command == "quit") {
      output.Line(absl::StrCat("{\"tag\":", JsonString(tag), ",\"ok\":true}"));
      return 0;
    }
    absl::StatusOr<std::string> result = peer.Run(command, args);
    if (result.ok()) {
      output.Line(absl::StrCat("{\"tag\":", JsonString(tag), ",\"ok\":true",
                               *result, "}"));
    } else {
      output.Line(absl::StrCat("{\"tag\":", JsonString(tag), ",\"error\":",
                               JsonString(result.status().ToString()), "}"));
    }
  }
  return 0;
}

}  // namespace
}  // namespace manifold

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return manifold::Main();
}
