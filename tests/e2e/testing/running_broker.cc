#include "tests/e2e/testing/running_broker.h"

#include <signal.h>
#include <sys/wait.h>

#include <sstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "bench/soak/rss_series.h"
#include "broker/sys_topics.h"
#include "tests/transports/testing/wire_client.h"

#ifndef MANIFOLDD_PATH
#define MANIFOLDD_PATH nullptr
#endif

namespace manifold::testing {

std::string ManifolddPath() { return ProgramPath("MANIFOLDD", MANIFOLDD_PATH); }

absl::StatusOr<std::unique_ptr<RunningBroker>> RunningBroker::Start(
    absl::string_view loop, const std::vector<std::string>& flags,
    Options options) {
  std::vector<std::string> args = {absl::StrCat("--loop=", loop),
                                   "--listen=127.0.0.1:0", "--log_level=info"};
  if (options.nats) args.push_back("--nats=127.0.0.1:0");
  args.insert(args.end(), flags.begin(), flags.end());
  absl::StatusOr<std::unique_ptr<ChildProcess>> process =
      ChildProcess::Start(ManifolddPath(), args);
  if (!process.ok()) return process.status();
  absl::StatusOr<std::string> line = (*process)->ReadLine(absl::Seconds(10));
  if (!line.ok()) {
    return absl::Status(
        line.status().code(),
        absl::StrCat("manifoldd did not start: ", line.status().message(),
                     "; stderr: ", (*process)->Stderr()));
  }
  std::unique_ptr<RunningBroker> broker(new RunningBroker(*std::move(process)));
  absl::string_view rest = *line;
  if (!absl::ConsumePrefix(&rest, "manifoldd listening on ")) {
    return absl::InternalError(absl::StrCat("unexpected line: ", *line));
  }
  for (absl::string_view place : absl::StrSplit(rest, ", ")) {
    Endpoint* target = nullptr;
    if (absl::ConsumeSuffix(&place, " (tcp)")) {
      target = &broker->tcp_;
    } else if (absl::ConsumeSuffix(&place, " (nats)")) {
      target = &broker->nats_;
    } else {
      continue;  // "loop epoll"
    }
    absl::StatusOr<Endpoint> endpoint = ParseTcpEndpoint(place);
    if (!endpoint.ok()) return endpoint.status();
    *target = *std::move(endpoint);
  }
  if (broker->tcp_.port == 0 || (options.nats && broker->nats_.port == 0)) {
    return absl::InternalError(absl::StrCat("a listener is missing: ", *line));
  }
  return broker;
}

bool RunningBroker::Alive() {
  return absl::IsDeadlineExceeded(
      process_->Wait(absl::ZeroDuration()).status());
}

absl::StatusOr<int64_t> RunningBroker::ResidentKib() const {
  return soak::ReadResidentKib(process_->pid());
}

absl::StatusOr<wire::Statistics> RunningBroker::Statistics() const {
  absl::StatusOr<WireClient> client = WireClient::Connect(tcp_);
  if (!client.ok()) return client.status();
  if (absl::StatusOr<wire::Welcome> welcome = client->Hello("statistics");
      !welcome.ok()) {
    return welcome.status();
  }
  wire::ClientMessage request;
  const uint64_t op = client->next_op_id();
  request.mutable_request()->set_op_id(op);
  request.mutable_request()->set_topic(
      std::string(sys_topics::kStatisticsTopic));
  request.mutable_request()->set_timeout_ms(5000);
  if (absl::Status sent = client->Send(request); !sent.ok()) return sent;
  absl::StatusOr<wire::ServerMessage> reply = client->ReceiveSkippingPings();
  if (!reply.ok()) return reply.status();
  if (!reply->has_response() || reply->response().op_id() != op ||
      reply->response().status() != wire::REQUEST_OK) {
    return absl::InternalError(
        absl::StrCat("unexpected answer to a statistics request: ",
                     reply->ShortDebugString()));
  }
  wire::Statistics statistics;
  if (!statistics.ParseFromString(reply->response().payload())) {
    return absl::InternalError("the statistics do not parse");
  }
  return statistics;
}

absl::Status RunningBroker::Stop() {
  if (absl::Status s = process_->Signal(SIGTERM); !s.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("manifoldd had already exited; log: ", Log()));
  }
  absl::StatusOr<int> status = process_->Wait(absl::Seconds(15));
  if (!status.ok()) return status.status();
  if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
    return absl::InternalError(absl::StrCat("manifoldd ended with wait status ",
                                            *status, "; log: ", Log()));
  }
  return absl::OkStatus();
}

}  // namespace manifold::testing
