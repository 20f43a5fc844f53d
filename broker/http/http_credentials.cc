#include "broker/http/http_credentials.h"

#include <openssl/sha.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace manifold {

void ClientCredentials::FillHello(wire::Hello& hello) const {
  if (!hello.auth_token().empty() || !hello.user().empty() ||
      !hello.password().empty()) {
    return;
  }
  hello.set_auth_token(token);
  hello.set_user(user);
  hello.set_password(password);
  if (empty() && hello.session_token().empty()) {
    hello.set_session_token(session_token);
    hello.set_session_binding(session_binding);
  }
}

std::string ClientCredentials::Digest() const {
  // Each field with its length first, so that no two triples write the same
  // bytes.
  const std::string input =
      absl::StrCat(token.size(), ":", token, user.size(), ":", user,
                   password.size(), ":", password);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(),
         digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof(digest));
}

absl::StatusOr<ClientCredentials> ParseAuthorization(absl::string_view value) {
  value = absl::StripAsciiWhitespace(value);
  const size_t space = value.find(' ');
  const absl::string_view scheme = value.substr(0, space);
  const absl::string_view rest =
      space == absl::string_view::npos
          ? absl::string_view()
          : absl::StripAsciiWhitespace(value.substr(space + 1));
  ClientCredentials credentials;
  if (absl::EqualsIgnoreCase(scheme, "Bearer")) {
    if (rest.empty()) {
      return absl::InvalidArgumentError(
          "Authorization: Bearer carries no token");
    }
    credentials.token = std::string(rest);
    return credentials;
  }
  if (absl::EqualsIgnoreCase(scheme, "Basic")) {
    std::string decoded;
    if (rest.empty() || !absl::Base64Unescape(rest, &decoded)) {
      return absl::InvalidArgumentError(
          "Authorization: Basic credentials are not base64");
    }
    const size_t colon = decoded.find(':');
    if (colon == std::string::npos) {
      return absl::InvalidArgumentError(
          "Authorization: Basic credentials are not user:password");
    }
    credentials.user = decoded.substr(0, colon);
    credentials.password = decoded.substr(colon + 1);
    return credentials;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("Authorization scheme '", scheme.substr(0, 32),
                   "' is not supported; use Basic or Bearer"));
}

absl::StatusOr<ClientCredentials> CredentialsFromRequest(
    const http::HttpRequest& request) {
  const std::string* value = request.Header("authorization");
  if (value == nullptr) return ClientCredentials();
  return ParseAuthorization(*value);
}

}  // namespace manifold
