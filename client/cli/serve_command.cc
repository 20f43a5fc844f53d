// manifold serve TOPIC [--reply TEXT | --exec 'COMMAND'] [--count N]: serves
// TOPIC, answering each request with TEXT, with what COMMAND prints when given
// the request on stdin (a non-zero exit rejects the request), or, by default,
// with the request's own payload (an echo). Prints one line per request.

#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/cli/command.h"
#include "client/cli/flags.h"
#include "client/cli/format.h"
#include "client/cli/json.h"
#include "client/cli/shell_command.h"

ABSL_FLAG(std::string, reply, "", "serve: answer every request with this text");
ABSL_FLAG(std::string, exec, "",
          "serve: answer each request with the output of this shell command, "
          "which gets the request on stdin");

namespace manifold::cli {
namespace {

constexpr absl::Duration kPollInterval = absl::Milliseconds(200);

// The answer to one request, or why it is declined.
absl::StatusOr<std::string> Answer(const IncomingRequest& request,
                                   size_t max_payload) {
  if (const std::string command = absl::GetFlag(FLAGS_exec); !command.empty()) {
    absl::StatusOr<ShellResult> result =
        RunShellCommand(command, request.payload, request.timeout, max_payload);
    if (!result.ok()) return result.status();
    if (result->exit_code != 0) {
      const std::string first_line(absl::StripAsciiWhitespace(
          *absl::StrSplit(result->err, '\n').begin()));
      return absl::AbortedError(
          absl::StrCat("the command exited with status ", result->exit_code,
                       first_line.empty() ? "" : ": ", first_line));
    }
    return result->out;
  }
  if (absl::GetFlag(FLAGS_reply).empty()) return request.payload;
  return absl::GetFlag(FLAGS_reply);
}

void Report(const CommandContext& context, const IncomingRequest& request,
            const absl::StatusOr<std::string>& answer) {
  if (context.json()) {
    JsonObject o;
    o.Add("topic", request.topic)
        .Add("request_id", request.id)
        .Add("requester_session_id", request.requester_session_id)
        .AddBytes("payload", request.payload);
    if (answer.ok()) {
      o.AddBytes("reply", *answer);
    } else {
      o.Add("rejected", answer.status().message());
    }
    context.Print(o.str());
    return;
  }
  context.Print(absl::StrCat(
      "[", Printable(request.topic), "] request ", request.id, " from session ",
      request.requester_session_id, ": ", Printable(request.payload),
      answer.ok() ? absl::StrCat(" -> ", Printable(*answer))
                  : absl::StrCat(" -> rejected: ", answer.status().message())));
}

absl::Status RunServe(CommandContext& context) {
  if (absl::Status s = context.ExpectArgs(1, "TOPIC"); !s.ok()) return s;
  if (!absl::GetFlag(FLAGS_reply).empty() &&
      !absl::GetFlag(FLAGS_exec).empty()) {
    return UsageError("give --reply or --exec, not both");
  }
  const int64_t count = absl::GetFlag(FLAGS_count);
  if (count < 0) return UsageError("--count must be 0 or more");
  absl::StatusOr<std::unique_ptr<Client>> client = context.Connect();
  if (!client.ok()) return client.status();
  absl::StatusOr<std::unique_ptr<Client::Service>> service =
      (*client)->Serve(context.args()[0]);
  if (!service.ok()) return service.status();
  const size_t max_payload = (*client)->welcome().max_payload_bytes;
  for (int64_t answered = 0; count == 0 || answered < count;) {
    if (context.stop_requested()) return absl::OkStatus();
    absl::StatusOr<IncomingRequest> request = (*service)->Next(kPollInterval);
    if (absl::IsDeadlineExceeded(request.status())) continue;
    if (!request.ok()) return request.status();
    absl::StatusOr<std::string> answer = Answer(*request, max_payload);
    absl::Status sent =
        answer.ok() ? (*client)->Respond(request->id, *answer)
                    : (*client)->Reject(request->id, answer.status().message());
    if (!sent.ok()) return sent;
    Report(context, *request, answer);
    ++answered;
  }
  // Make sure the last answer has left before the connection closes.
  return (*client)->Ping();
}

}  // namespace

Command ServeCommand() {
  return {"serve",
          "serve TOPIC [--reply TEXT | --exec 'COMMAND'] [--count N]",
          "answer requests on TOPIC (echo, fixed text, or a command's output)",
          {"reply", "exec", "count"},
          RunServe};
}

}  // namespace manifold::cli
