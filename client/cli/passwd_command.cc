// manifold passwd: reads a password and prints its hash (yescrypt, as
// crypt(3) writes it) for manifoldd's configuration: a user's
// `password_hash`, a hashed token, or --pass. The password is read from the
// terminal twice without echo, or as the first line of standard input when
// that is not a terminal:
//
//   manifold passwd                      # asks twice
//   printf '%s\n' "$PASSWORD" | manifold passwd

#include <openssl/rand.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>

#include "absl/strings/str_cat.h"
#include "broker/auth/password_hash.h"
#include "client/cli/command.h"

namespace manifold::cli {
namespace {

// Reads one line from standard input; false at end of input.
bool ReadLine(std::string& line) {
  if (!std::getline(std::cin, line)) return false;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return true;
}

// Reads one line from the terminal on standard input with echo off.
absl::StatusOr<std::string> AskWithoutEcho(absl::string_view prompt) {
  std::fprintf(stderr, "%.*s", static_cast<int>(prompt.size()), prompt.data());
  std::fflush(stderr);
  termios saved;
  if (tcgetattr(STDIN_FILENO, &saved) != 0) {
    return absl::FailedPreconditionError("cannot read the terminal's settings");
  }
  termios quiet = saved;
  quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  std::string line;
  const bool read = ReadLine(line);
  tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
  std::fputc('\n', stderr);
  if (!read) return absl::InvalidArgumentError("no password given");
  return line;
}

absl::StatusOr<std::string> ReadPassword() {
  if (!isatty(STDIN_FILENO)) {
    std::string line;
    if (!ReadLine(line)) {
      return UsageError("no password on standard input");
    }
    return line;
  }
  absl::StatusOr<std::string> first = AskWithoutEcho("password: ");
  if (!first.ok()) return first.status();
  absl::StatusOr<std::string> second = AskWithoutEcho("again: ");
  if (!second.ok()) return second.status();
  if (*first != *second) {
    return absl::InvalidArgumentError("the two passwords differ");
  }
  return first;
}

absl::Status RunPasswd(CommandContext& context) {
  if (absl::Status s = context.ExpectArgs(0, "no arguments"); !s.ok()) return s;
  absl::StatusOr<std::string> password = ReadPassword();
  if (!password.ok()) return password.status();
  if (password->empty()) return UsageError("the password is empty");
  std::string salt(kPasswordSaltBytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(salt.data()),
                 static_cast<int>(salt.size())) != 1) {
    return absl::InternalError("no random bytes from OpenSSL for the salt");
  }
  absl::StatusOr<std::string> hash = HashPassword(*password, salt);
  if (!hash.ok()) return hash.status();
  context.Print(*hash);
  return absl::OkStatus();
}

}  // namespace

Command PasswdCommand() {
  return {"passwd",
          "passwd",
          "print a password's hash for manifoldd's configuration",
          {},
          RunPasswd};
}

}  // namespace manifold::cli
