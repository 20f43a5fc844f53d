#include "client/cli/flags.h"

#include "absl/flags/flag.h"

ABSL_FLAG(std::string, server, "127.0.0.1:24387",
          "the broker: HOST:PORT for TCP, unix:PATH for a Unix socket");
ABSL_FLAG(std::string, user, "",
          "user name for the broker's admission check (with --pass)");
ABSL_FLAG(std::string, pass, "",
          "password for the broker's admission check (with --user)");
ABSL_FLAG(std::string, token, "",
          "bearer token for the broker's admission check");
ABSL_FLAG(bool, json, false, "print one JSON object per line, for scripts");
ABSL_FLAG(int64_t, count, 0,
          "stop after this many messages, requests or events (0: no limit)");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(5),
          "how long to wait for an answer, e.g. 500ms, 2s");
